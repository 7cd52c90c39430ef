"""About box (versions, bundle) and the model-card viewer."""

from __future__ import annotations

import importlib.metadata
import platform
from pathlib import Path
from typing import Any

from app.qt import QtCore, QtWidgets
from engine.constants import DEMO_DISCLAIMER


def versions() -> dict[str, str]:
    """Versions of the app and the libraries it runs on."""
    out = {"CroMoTEX Review": _version("cromotex-review"), "Python": platform.python_version()}
    for dist in ("PySide6-Essentials", "pyqtgraph", "onnxruntime", "numpy", "scipy", "wfdb",
                 "pydicom"):
        out[dist] = _version(dist)
    out["Qt"] = QtCore.qVersion()
    return out


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def about_html(predictor: Any) -> str:
    rows = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in versions().items())
    if predictor is not None:
        d = predictor.describe()
        bundle = (f"<p>Model bundle <b>{d.get('bundle_id')}</b>, trained on {d.get('data')} data, "
                  f"{d.get('precision', '')} on {d.get('device', 'cpu')}.</p>")
        if d.get("demo"):
            bundle += f"<p><b>{DEMO_DISCLAIMER}.</b></p>"
    else:
        bundle = "<p>No model bundle loaded.</p>"
    return ("<h3>CroMoTEX Review</h3><p>ECG review with ECG-only AI findings learned from chest "
            "X-rays (CroMoTEX, Punyamoorty et al., 2025). Runs entirely on this computer.</p>"
            f"{bundle}<table>{rows}</table>")


def show_about(parent: QtWidgets.QWidget, predictor: Any) -> QtWidgets.QMessageBox:
    box = QtWidgets.QMessageBox(parent)
    box.setWindowTitle("About CroMoTEX Review")
    box.setTextFormat(QtCore.Qt.TextFormat.RichText)
    box.setText(about_html(predictor))
    box.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box


def show_model_card(parent: QtWidgets.QWidget, path: Path) -> QtWidgets.QDialog:
    """Non-modal window showing MODEL_CARD.md rendered as Markdown."""
    dlg = QtWidgets.QDialog(parent)
    dlg.setWindowTitle("Model card")
    view = QtWidgets.QTextBrowser()
    try:
        view.setMarkdown(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        view.setPlainText(f"The model card {path} cannot be read: {exc}")
    lay = QtWidgets.QVBoxLayout(dlg)
    lay.addWidget(view)
    dlg.resize(700, 600)
    dlg.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
    dlg.show()
    return dlg
