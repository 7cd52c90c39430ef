"""Main window: layout only (widgets, menus, toolbar, actions). Behaviour lives in
`app.controller`, which connects to the actions and signals defined here."""

from __future__ import annotations

from app import paper
from app.filters import BASELINE_CHOICES_HZ, NOTCH_CHOICES_HZ
from app.qt import QtCore, QtGui, QtWidgets, Signal
from app.views.ai_panel import AiPanel
from app.views.banner import PairingBanner
from app.views.cxr_view import CxrView
from app.views.ecg_view import EcgView
from app.views.header_view import HeaderView
from app.views.median_view import MedianView
from engine.constants import LEADS

TITLE = "CroMoTEX Review"


#: Name of the median-beat view in the layout choices (not a paper.LAYOUTS layout).
MEDIAN_LAYOUT = "median"

class MainWindow(QtWidgets.QMainWindow):
    """Header + ECG paper on the left; AI findings and chest X-ray on the right.

    Signals:
        files_dropped(list): local paths dropped on the window.
    """

    files_dropped = Signal(list)

    def __init__(self, px_per_mm: float | None = None) -> None:
        super().__init__()
        self.setWindowTitle(TITLE)
        self.setAcceptDrops(True)
        self.header = HeaderView()
        self.ecg_view = EcgView(px_per_mm=px_per_mm)
        self.ai_panel = AiPanel()
        self.cxr_view = CxrView()

        left = QtWidgets.QWidget()
        ll = QtWidgets.QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.header)
        self.median_view = MedianView(px_per_mm=px_per_mm)
        self.view_stack = QtWidgets.QStackedWidget()  # the paper: ECG layouts or median beats
        self.view_stack.addWidget(self.ecg_view)
        self.view_stack.addWidget(self.median_view)
        ll.addWidget(self.view_stack, 1)
        self.right_splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        self.right_splitter.addWidget(self.ai_panel)
        self.right_splitter.addWidget(self.cxr_view)
        self.right_splitter.setStretchFactor(1, 1)
        self.splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.right_splitter)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.banner = PairingBanner()  # patient identity of the two panes, top of the window
        central = QtWidgets.QWidget()
        cl = QtWidgets.QVBoxLayout(central)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.setSpacing(2)
        cl.addWidget(self.banner)
        cl.addWidget(self.splitter, 1)
        self.setCentralWidget(central)

        self._make_actions()
        self._make_menus()
        self._make_toolbar()
        self.zoom_label = QtWidgets.QLabel("Zoom 100%")
        self.caliper_label = QtWidgets.QLabel("")
        self.statusBar().addPermanentWidget(self.caliper_label)
        self.statusBar().addPermanentWidget(self.zoom_label)
        self.resize(1500, 860)
        self.splitter.setSizes([1000, 600])
        self.right_splitter.setSizes([300, 560])
        self.ecg_view.fit_mode = "page"  # the whole page by default; true scale on Ctrl+0

    # ---------------------------------------------------------------- actions
    def _action(self, text: str, shortcut: str | QtGui.QKeySequence.StandardKey | None = None,
                checkable: bool = False) -> QtGui.QAction:
        a = QtGui.QAction(text, self)
        if shortcut is not None:
            a.setShortcut(QtGui.QKeySequence(shortcut))
        a.setCheckable(checkable)
        self.addAction(a)
        return a

    def _make_actions(self) -> None:
        self.act_open_ecg = self._action("Open &ECG…", "Ctrl+O")
        self.act_open_cxr = self._action("Open chest &X-ray…", "Ctrl+Shift+O")
        self.act_export = self._action("&Export review to PDF…", "Ctrl+E")
        self.act_print = self._action("&Print to PDF…", "Ctrl+P")
        self.act_quit = self._action("&Quit", "Ctrl+Q")
        self.act_layouts = {name: self._action(f"Layout {paper.LAYOUT_TITLES[name]}", str(i + 1),
                                               checkable=True)
                            for i, name in enumerate(paper.LAYOUTS)}
        self.act_layouts[MEDIAN_LAYOUT] = self._action("Layout Median beats", str(len(paper.LAYOUTS) + 1),
                                                       checkable=True)
        group = QtGui.QActionGroup(self)
        for a in self.act_layouts.values():
            group.addAction(a)
        self.act_cabrera = self._action("&Cabrera order", "C", checkable=True)
        self.act_gain_up = self._action("Gain +", "+")
        self.act_gain_down = self._action("Gain −", "-")
        self.act_speed_up = self._action("Speed +", "Ctrl++")
        self.act_speed_down = self._action("Speed −", "Ctrl+-")
        self.act_zoom_100 = self._action("Zoom 100% (true scale)", "Ctrl+0")
        self.act_zoom_fit = self._action("Fit page", "F")
        self.act_zoom_fit.setToolTip("Show the whole ECG page (the default)")
        self.act_zoom_fit_width = self._action("Fit to width", "W")
        self.act_zoom_fit_width.setToolTip("Fit the page's width; scroll for the rest")
        self.act_page_next = self._action("Next 10 s", "PgDown")
        self.act_page_prev = self._action("Previous 10 s", "PgUp")
        self.act_calipers = self._action("&Calipers", "K", checkable=True)
        self.act_marching = self._action("&Marching calipers", "M", checkable=True)
        self.act_keep_cxr = self._action("&Keep X-ray when opening another ECG", checkable=True)
        self.act_keep_cxr.setToolTip("Off: opening an ECG of another patient clears the X-ray")
        self.act_keep_ecg = self._action("Keep ECG when opening another X-&ray", checkable=True)
        self.act_keep_ecg.setToolTip("Off: opening an X-ray of another patient clears the ECG")
        self.act_about = self._action("&About CroMoTEX Review")
        self.act_model_card = self._action("&Model card", "F1")

    def _make_menus(self) -> None:
        mb = self.menuBar()
        m = mb.addMenu("&File")
        self.file_menu = m  # app.worklist_controller adds its open actions here
        m.addAction(self.act_open_ecg)
        m.addAction(self.act_open_cxr)
        self.recent_menu = m.addMenu("Open &recent")
        self.demo_menu = m.addMenu("Open &demo case")
        m.addAction(self.act_keep_cxr)
        m.addAction(self.act_keep_ecg)
        m.addSeparator()
        m.addAction(self.act_export)
        m.addAction(self.act_print)
        m.addSeparator()
        m.addAction(self.act_quit)
        v = mb.addMenu("&View")
        for a in self.act_layouts.values():
            v.addAction(a)
        v.addAction(self.act_cabrera)
        v.addSeparator()
        for a in (self.act_gain_up, self.act_gain_down, self.act_speed_up, self.act_speed_down,
                  self.act_zoom_100, self.act_zoom_fit, self.act_zoom_fit_width,
                  self.act_page_prev, self.act_page_next):
            v.addAction(a)
        t = mb.addMenu("&Tools")
        t.addAction(self.act_calipers)
        t.addAction(self.act_marching)
        h = mb.addMenu("&Help")
        h.addAction(self.act_model_card)
        h.addAction(self.act_about)

    def _combo(self, items: list[tuple[str, object]]) -> QtWidgets.QComboBox:
        c = QtWidgets.QComboBox()
        for text, data in items:
            c.addItem(text, data)
        return c

    def _make_toolbar(self) -> None:
        # Files and export come first, in their own toolbar, so that Export never ends
        # up in the overflow menu of the long display toolbar at narrow widths.
        ftb = self.addToolBar("File")
        ftb.setObjectName("file_toolbar")
        ftb.addAction(self.act_open_ecg)
        ftb.addAction(self.act_open_cxr)
        ftb.addAction(self.act_export)
        self.file_toolbar = ftb
        tb = self.addToolBar("Display")
        tb.setObjectName("display_toolbar")
        self.display_toolbar = tb
        self.layout_combo = self._combo([(paper.LAYOUT_TITLES[n], n) for n in paper.LAYOUTS]
                                        + [("Median beats", MEDIAN_LAYOUT)])
        self.rhythm_combo = self._combo([(f"Rhythm {lead}", lead) for lead in LEADS])
        self.speed_combo = self._combo([(f"{s:g} mm/s", s) for s in paper.SPEEDS_MM_S])
        self.gain_combo = self._combo([(f"{g:g} mm/mV", g) for g in paper.GAINS_MM_MV])
        self.baseline_combo = self._combo([("Baseline off" if v is None else f"HP {v:g} Hz", v)
                                           for v in BASELINE_CHOICES_HZ])
        self.lowpass_check = QtWidgets.QCheckBox("LP 40 Hz")
        self.notch_combo = self._combo([("Notch off" if v is None else f"Notch {v:g} Hz", v)
                                        for v in NOTCH_CHOICES_HZ])
        for w in (self.layout_combo, self.rhythm_combo, self.speed_combo, self.gain_combo,
                  self.baseline_combo, self.lowpass_check, self.notch_combo):
            tb.addWidget(w)
        tb.addSeparator()
        tb.addAction(self.act_cabrera)
        tb.addAction(self.act_calipers)
        tb.addAction(self.act_marching)
        tb.addAction(self.act_zoom_100)
        tb.addAction(self.act_zoom_fit)
        tb.addAction(self.act_zoom_fit_width)

    # ------------------------------------------------------------ drag & drop
    def dragEnterEvent(self, event: QtGui.QDragEnterEvent) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QtGui.QDropEvent) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.files_dropped.emit(paths)
            event.acceptProposedAction()
