"""The overread panel: the reader confirms, edits, removes or adds statements (free
text or a common statement), records agree / disagree / uncertain for each AI finding,
and signs with their name. A signed read is amended (a new version, with a reason),
never overwritten. Layout and the statement bookkeeping only; signing goes through
`engine.store.sign_read` / `amend_read` in `app.worklist_controller`."""

from __future__ import annotations

from dataclasses import replace

from app.qt import QtCore, QtGui, QtWidgets, Signal
from app.worklist.model import entry_call
from engine.store import COMMON_STATEMENTS, EcgEntry, ReadStatement, SignedRead, device_statements

_STATUS_ROLE = int(QtCore.Qt.ItemDataRole.UserRole) + 1


class OverreadPanel(QtWidgets.QWidget):
    """Signals:
        sign_requested(): Sign (or Sign amendment) was pressed.
        statement_edited(dict): {"action", "text", "original"}: a statement was added,
            edited or removed (before signing; the controller logs it).
    """

    sign_requested = Signal()
    statement_edited = Signal(dict)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.entry: EcgEntry | None = None
        self.latest: SignedRead | None = None
        self._statements: list[ReadStatement] = []
        self.status_label = QtWidgets.QLabel("No ECG open from the worklist.")
        self.status_label.setWordWrap(True)
        self.list = QtWidgets.QListWidget()
        self.list.itemChanged.connect(self._item_changed)
        self.remove_button = QtWidgets.QPushButton("Remove statement")
        self.remove_button.clicked.connect(self.remove_selected)
        self.common_combo = QtWidgets.QComboBox()
        self.common_combo.addItems(COMMON_STATEMENTS)
        self.add_common_button = QtWidgets.QPushButton("Add")
        self.add_common_button.clicked.connect(lambda: self.add_statement(self.common_combo.currentText()))
        self.free_edit = QtWidgets.QLineEdit()
        self.free_edit.setPlaceholderText("Type a statement, Enter to add")
        self.free_edit.returnPressed.connect(self._add_free)
        self.findings_box = QtWidgets.QGroupBox("AI findings: do you agree?")
        self.findings_layout = QtWidgets.QFormLayout(self.findings_box)
        self.agreement_combos: dict[str, QtWidgets.QComboBox] = {}
        self.comment_edit = QtWidgets.QLineEdit()
        self.comment_edit.setPlaceholderText("Comment (optional)")
        self.reader_edit = QtWidgets.QLineEdit()
        self.reader_edit.setPlaceholderText("Your name (mandatory; set it once in the settings)")
        self.reason_edit = QtWidgets.QLineEdit()
        self.reason_edit.setPlaceholderText("Why is the signed read amended? (mandatory)")
        self.sign_button = QtWidgets.QPushButton("Sign")
        self.sign_button.setStyleSheet("font-weight:bold;")
        self.sign_button.clicked.connect(self.sign_requested)
        self.message = QtWidgets.QLabel("")
        self.message.setWordWrap(True)
        self.history_label = QtWidgets.QLabel("")
        self.history_label.setWordWrap(True)
        self.history_label.setStyleSheet("color:#555;")

        add_row = QtWidgets.QHBoxLayout()
        add_row.addWidget(self.common_combo, 1)
        add_row.addWidget(self.add_common_button)
        form = QtWidgets.QFormLayout()
        form.addRow("Comment", self.comment_edit)
        form.addRow("Reader", self.reader_edit)
        self.reason_row_label = QtWidgets.QLabel("Amendment")
        form.addRow(self.reason_row_label, self.reason_edit)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.status_label)
        lay.addWidget(QtWidgets.QLabel("<b>Statements</b> (double-click to edit)"))
        lay.addWidget(self.list, 1)
        lay.addWidget(self.remove_button)
        lay.addLayout(add_row)
        lay.addWidget(self.free_edit)
        lay.addWidget(self.findings_box)
        lay.addLayout(form)
        lay.addWidget(self.sign_button)
        lay.addWidget(self.message)
        lay.addWidget(self.history_label)
        self.set_entry(None, None)

    # ------------------------------------------------------------ filling
    def set_entry(self, entry: EcgEntry | None, latest: SignedRead | None, history: list[SignedRead] = (),
                  bands: dict | None = None) -> None:
        """Start an overread of `entry`: from the latest signed read when there is one (an
        amendment), else from the device's statements."""
        self.entry, self.latest = entry, latest
        self._statements = list(latest.statements) if latest else device_statements(entry.statements if entry else None)
        self._fill_list()
        for i in reversed(range(self.findings_layout.rowCount())):
            self.findings_layout.removeRow(i)
        self.agreement_combos = {}
        probs = (entry.probabilities or {}) if entry else {}
        for path, p in probs.items():
            combo = QtWidgets.QComboBox()
            combo.addItem("— choose —", None)
            for v in ("agree", "disagree", "uncertain"):
                combo.addItem(v, v)
            if latest and path in latest.agreement:
                combo.setCurrentIndex(combo.findData(latest.agreement[path]))
            call = (entry_call(entry, path, bands) or "").replace("_", " ")
            self.findings_layout.addRow(f"{path}: {p:.2f} ({call})", combo)
            self.agreement_combos[path] = combo
        self.findings_box.setVisible(bool(probs))
        self.comment_edit.setText(latest.comment if latest else "")
        self.reason_edit.clear()
        amend = latest is not None
        self.reason_edit.setVisible(amend)
        self.reason_row_label.setVisible(amend)
        self.sign_button.setText("Sign amendment" if amend else "Sign")
        usable = entry is not None and entry.error is None
        for w in (self.list, self.remove_button, self.common_combo, self.add_common_button,
                  self.free_edit, self.findings_box, self.comment_edit, self.reader_edit,
                  self.reason_edit, self.sign_button):
            w.setEnabled(usable)
        self.message.setText("")
        if entry is None:
            self.status_label.setText("No ECG open from the worklist.")
        elif entry.error is not None:
            self.status_label.setText(f"This file could not be read: {entry.error}")
        elif latest is None:
            self.status_label.setText(f"<b>Unread</b>: {entry.patient_name or entry.patient_id or ''} "
                                      f"{(entry.acquired or '').replace('T', ' ')}")
        else:
            self.status_label.setText(f"<b>Signed v{latest.version}</b> by {latest.reader} on "
                                      f"{latest.signed_at}. Changes make a new version.")
        self.history_label.setText("  ".join(
            f"v{r.version}: {r.reader}, {r.signed_at}" + (f" ({r.reason})" if r.reason else "")
            for r in history))

    def set_reader(self, name: str) -> None:
        self.reader_edit.setText(name)

    def show_message(self, text: str, error: bool = False) -> None:
        self.message.setStyleSheet("color:#b00020;" if error else "color:#1b5e20;")
        self.message.setText(text)

    # ------------------------------------------------------------ reading back
    def statements(self) -> list[ReadStatement]:
        return list(self._statements)

    def agreement(self) -> dict[str, str]:
        """pathology -> value for the findings the reader answered (the rest are missing)."""
        return {p: c.currentData() for p, c in self.agreement_combos.items() if c.currentData()}

    def reader(self) -> str:
        return self.reader_edit.text().strip()

    def reason(self) -> str:
        return self.reason_edit.text().strip()

    def comment(self) -> str:
        return self.comment_edit.text().strip()

    # ------------------------------------------------------------ editing
    def add_statement(self, text: str) -> None:
        text = " ".join(text.split())
        if not text:
            return
        self._statements.append(ReadStatement(text, "added"))
        self._fill_list()
        self.statement_edited.emit({"action": "added", "text": text, "original": None})

    def remove_selected(self) -> None:
        row = self.list.currentRow()
        if not 0 <= row < len(self._statements):
            return
        s = self._statements[row]
        if s.status == "added":
            del self._statements[row]
        else:  # a device statement struck: kept as "removed" with its original text
            self._statements[row] = replace(s, status="removed")
        self._fill_list()
        self.statement_edited.emit({"action": "removed", "text": s.text, "original": s.original})

    def _add_free(self) -> None:
        self.add_statement(self.free_edit.text())
        self.free_edit.clear()

    def _item_changed(self, item: QtWidgets.QListWidgetItem) -> None:
        row = self.list.row(item)
        if not 0 <= row < len(self._statements):
            return
        s = self._statements[row]
        text = " ".join(item.text().split())
        if text == s.text or s.status == "removed":
            return
        status = "added" if s.status == "added" else ("confirmed" if text == s.original else "edited")
        self._statements[row] = replace(s, text=text, status=status)
        self._fill_list()
        self.statement_edited.emit({"action": "edited", "text": text, "original": s.original or s.text})

    def _fill_list(self) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        for s in self._statements:
            item = QtWidgets.QListWidgetItem(s.text)
            item.setData(_STATUS_ROLE, s.status)
            item.setToolTip(f"{s.status}" + (f" (device: {s.original})" if s.original and s.original != s.text else ""))
            if s.status == "removed":
                f = item.font()
                f.setStrikeOut(True)
                item.setFont(f)
                item.setForeground(QtGui.QBrush(QtGui.QColor("#888")))
            else:
                item.setFlags(item.flags() | QtCore.Qt.ItemFlag.ItemIsEditable)
                if s.status in ("edited", "added"):
                    item.setForeground(QtGui.QBrush(QtGui.QColor("#0b5394")))
            self.list.addItem(item)
        self.list.blockSignals(False)
