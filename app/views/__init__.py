"""Widgets: each receives plain engine objects and emits Qt signals."""
