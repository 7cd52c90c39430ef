"""The worklist: filters, the table of indexed ECGs (`app.worklist.model.WorklistModel`),
the scan's progress bar with Cancel, and a banner saying why the worklist is off
when the study store cannot be used. Layout only; `app.worklist_controller` drives it."""

from __future__ import annotations

from app.qt import QtCore, QtWidgets, Signal
from app.worklist.model import ENTRY_ROLE, WorklistModel
from engine.store import EcgEntry, WorklistFilter


#: Widest a column is made by the automatic sizing (statements, errors, paths are long).
MAX_COLUMN_PX = 240


class WorklistView(QtWidgets.QWidget):
    """Filters above the table, scan progress below.

    Signals:
        open_requested(EcgEntry): a row was activated (double click / Enter).
        filter_changed(WorklistFilter): a filter control changed.
        cancel_requested(): the Cancel button of the scan.
    """

    open_requested = Signal(object)
    filter_changed = Signal(object)
    cancel_requested = Signal()

    def __init__(self, model: WorklistModel, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.banner = QtWidgets.QLabel()
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("background:#fdecea; color:#8a1c1c; padding:6px; border:1px solid #e0a0a0;")
        self.banner.hide()

        self.unread_check = QtWidgets.QCheckBox("Unread")
        self.positive_check = QtWidgets.QCheckBox("AI positive")
        self.flagged_check = QtWidgets.QCheckBox("Flagged")
        self.patient_edit = QtWidgets.QLineEdit()
        self.patient_edit.setPlaceholderText("Patient name or ID")
        self.patient_edit.setClearButtonEnabled(True)
        self.dates_check = QtWidgets.QCheckBox("From")
        self.date_from = QtWidgets.QDateEdit(calendarPopup=True)
        self.date_to = QtWidgets.QDateEdit(calendarPopup=True)
        for d in (self.date_from, self.date_to):
            d.setDisplayFormat("yyyy-MM-dd")
            d.setDate(QtCore.QDate.currentDate())
            d.setEnabled(False)
        self.date_from.setDate(QtCore.QDate.currentDate().addYears(-1))
        self.count_label = QtWidgets.QLabel("")
        bar = QtWidgets.QHBoxLayout()
        for w in (self.unread_check, self.positive_check, self.flagged_check):
            bar.addWidget(w)
        bar.addWidget(self.patient_edit, 1)
        bar.addWidget(self.dates_check)
        bar.addWidget(self.date_from)
        bar.addWidget(QtWidgets.QLabel("to"))
        bar.addWidget(self.date_to)
        bar.addWidget(self.count_label)

        self.table = QtWidgets.QTableView()
        self.table.setModel(model)
        self.table.setSortingEnabled(True)
        self.table.horizontalHeader().setSortIndicator(model.column_index("acquired"),
                                                       QtCore.Qt.SortOrder.DescendingOrder)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Fixed)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.activated.connect(self._activated)
        self.table.doubleClicked.connect(self._activated)

        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setFormat("%v files")
        self.cancel_button = QtWidgets.QPushButton("Cancel scan")
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.scan_label = QtWidgets.QLabel("")
        bottom = QtWidgets.QHBoxLayout()
        bottom.addWidget(self.progress, 1)
        bottom.addWidget(self.cancel_button)
        bottom.addWidget(self.scan_label, 2)
        self.set_scanning(False)

        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.banner)
        lay.addLayout(bar)
        lay.addWidget(self.table, 1)
        lay.addLayout(bottom)

        for c in (self.unread_check, self.positive_check, self.flagged_check, self.dates_check):
            c.toggled.connect(self._filter_changed)
        self.dates_check.toggled.connect(self.date_from.setEnabled)
        self.dates_check.toggled.connect(self.date_to.setEnabled)
        self.date_from.dateChanged.connect(self._filter_changed)
        self.date_to.dateChanged.connect(self._filter_changed)
        self._patient_timer = QtCore.QTimer(self, singleShot=True, interval=250)
        self._patient_timer.timeout.connect(self._filter_changed)
        self.patient_edit.textChanged.connect(lambda _: self._patient_timer.start())
        model.modelReset.connect(self._update_count)
        model.rowsInserted.connect(self._update_count)
        model.modelReset.connect(self._autosize_once)
        self._autosized = False

    # ------------------------------------------------------------ state
    def current_filter(self) -> WorklistFilter:
        dates = self.dates_check.isChecked()
        return WorklistFilter(
            unread=self.unread_check.isChecked(), ai_positive=self.positive_check.isChecked(),
            flagged=self.flagged_check.isChecked(),
            date_from=self.date_from.date().toString("yyyy-MM-dd") if dates else None,
            date_to=self.date_to.date().toString("yyyy-MM-dd") if dates else None,
            patient=self.patient_edit.text().strip() or None)

    def set_disabled_reason(self, reason: str) -> None:
        """Turn the worklist off with `reason` shown (the store cannot be used), or back on ("")."""
        self.banner.setText(reason)
        self.banner.setVisible(bool(reason))
        for w in (self.table, self.unread_check, self.positive_check, self.flagged_check,
                  self.patient_edit, self.dates_check):
            w.setEnabled(not reason)

    def set_scanning(self, on: bool) -> None:
        self.progress.setVisible(on)
        self.cancel_button.setVisible(on)
        self.cancel_button.setEnabled(on)

    def show_progress(self, done: int, total: int | None, text: str) -> None:
        if total:
            self.progress.setRange(0, total)
            self.progress.setFormat("%v / %m files")
        self.progress.setValue(done)
        self.scan_label.setText(text)

    def selected_entry(self) -> EcgEntry | None:
        idx = self.table.currentIndex()
        return idx.data(ENTRY_ROLE) if idx.isValid() else None

    def select_row(self, row: int) -> None:
        idx = self.model.index(row, 1)
        self.table.setCurrentIndex(idx)
        self.table.scrollTo(idx)

    # ------------------------------------------------------------ private
    def _activated(self, index: QtCore.QModelIndex) -> None:
        entry = index.data(ENTRY_ROLE)
        if entry is not None:
            self.open_requested.emit(entry)

    def _filter_changed(self, *_: object) -> None:
        self.filter_changed.emit(self.current_filter())

    def _autosize_once(self) -> None:
        """Columns sized to the first rows shown (text columns capped), once."""
        if self._autosized or self.model.rowCount() == 0:
            return
        self._autosized = True
        self.table.resizeColumnsToContents()
        for c in range(self.model.columnCount()):
            self.table.setColumnWidth(c, min(self.table.columnWidth(c), MAX_COLUMN_PX))

    def _update_count(self, *_: object) -> None:
        self.count_label.setText(f"{self.model.total} ECGs")
