"""The reading workflow's app side (issue 20): the worklist table model and the
background scan thread. The store itself is `engine.store`; the views are in
`app.views.worklist_view`, `comparison_view`, `trend_plot`, `overread_panel`, and
`app.worklist_controller` wires them to the main window."""
