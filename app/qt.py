"""One place that imports Qt: PySide6 first, then pyqtgraph, so pyqtgraph binds to
PySide6 whatever other bindings are installed.

Every app module imports Qt names from here.
"""

from __future__ import annotations

import logging
import os

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

from PySide6 import QtCore, QtGui, QtWidgets  # noqa: E402  (order matters)
import pyqtgraph as pg  # noqa: E402
from shiboken6 import isValid as alive  # noqa: E402  alive(qobject): its C++ side not deleted yet

pg.setConfigOptions(antialias=True, background="w", foreground="k")

Signal = QtCore.Signal
Slot = QtCore.Slot


def quiet_offscreen_noise() -> object:
    """Under the offscreen platform plugin (tests, self-test, benchmarks), drop its
    "This plugin does not support propagateSizeHints()" warning, meaningless without a
    window system, and route Qt's other messages to logging (logger "qt"). Does nothing
    under a real platform plugin. Returns the handler it replaced (None if none)."""
    if not os.environ.get("QT_QPA_PLATFORM", "").startswith("offscreen"):
        return None
    qt_log = logging.getLogger("qt")
    levels = {QtCore.QtMsgType.QtDebugMsg: logging.DEBUG, QtCore.QtMsgType.QtInfoMsg: logging.INFO,
              QtCore.QtMsgType.QtWarningMsg: logging.WARNING}

    def handler(mode: QtCore.QtMsgType, _ctx: QtCore.QMessageLogContext, msg: str) -> None:
        if "propagateSizeHints" not in msg:
            qt_log.log(levels.get(mode, logging.ERROR), "%s", msg)

    return QtCore.qInstallMessageHandler(handler)


__all__ = ["QtCore", "QtGui", "QtWidgets", "pg", "Signal", "Slot", "alive", "quiet_offscreen_noise"]
