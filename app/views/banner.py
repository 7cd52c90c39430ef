"""The patient-identity banner at the top of the review window: whether the ECG and the
chest X-ray on screen belong to the same patient (`engine.pairing.Pairing`).

- different patient: red, bold, full width, cannot be missed;
- unknown (a file without identifiers): an amber line saying so;
- same patient: a quiet green line;
- hidden when there is nothing to compare (no chest X-ray, or no ECG).

Layout only: the controller (app.pairing_guard) decides what it says.
"""

from __future__ import annotations

from app.qt import QtCore, QtWidgets

#: Style sheet of each state of the banner.
STYLES: dict[str, str] = {
    "different_patient": ("background:#b01e1e; color:white; font-weight:bold; font-size:15px;"
                          "padding:8px; border:2px solid #6d0000;"),
    "unknown": "background:#fff3cd; color:#6b4400; padding:3px 6px; border:1px solid #e0b84c;",
    "same_patient": "color:#1e6b32; padding:2px 6px;",
}


class PairingBanner(QtWidgets.QLabel):
    """One label; `status` is the pairing status shown, or None when hidden."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.status: str | None = None
        self.show_pairing(None, "")

    def show_pairing(self, status: str | None, text: str) -> None:
        """Show `text` in the style of `status` ("same_patient", "different_patient",
        "unknown"); None hides the banner."""
        self.status = status
        self.setText(text)
        self.setToolTip(text)
        self.setStyleSheet(STYLES.get(status or "", ""))
        self.setVisible(status is not None)
