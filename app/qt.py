"""One place that imports Qt: PySide6 first, then pyqtgraph, so pyqtgraph binds to
PySide6 whatever other bindings are installed.

Every app module imports Qt names from here.
"""

from __future__ import annotations

import os

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

from PySide6 import QtCore, QtGui, QtWidgets  # noqa: E402  (order matters)
import pyqtgraph as pg  # noqa: E402

pg.setConfigOptions(antialias=True, background="w", foreground="k")

Signal = QtCore.Signal
Slot = QtCore.Slot

__all__ = ["QtCore", "QtGui", "QtWidgets", "pg", "Signal", "Slot"]
