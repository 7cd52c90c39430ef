"""AI findings: ECG-only CroMoTEX predictions and the chest X-ray teacher's, side by
side, one row per pathology, with thresholds, calls (positive, negative, borderline,
not assessable: `app.findings`), the reason of each flag, provenance and the demo
disclaimer. Receives `Prediction` objects.

The flags are not squeezed into a table column (cut to "ECG OO…" at the default size):
each finding with flags gets a "⚑" in the table and a reason line under the table
(`flags_label`), word-wrapped to the panel's width, so it is readable at every window
size. Every call cell has its reason as tooltip, every flagged finding its flags.

Layout: the table keeps the height of all its rows; the reason lines, the provenance
line and the "Model card…" button below it sit in one scroll area (`details`) whose
minimum height is the whole text where it is short, else `DETAILS_MIN_LINES` lines, so
when the window is small the reasons scroll instead of being drawn over the provenance
(a layout given less than its wrapped labels need overlaps them)."""

from __future__ import annotations

import html

from app.findings import (BOLD_CALLS, CALL_RGB, ITALIC_CALLS, calibration_note, finding_notes,
                          grouped_notes, prediction_cells, prediction_flags)
from app.qt import QtCore, QtGui, QtWidgets, Signal
from engine.constants import DEMO_DISCLAIMER, PATHOLOGIES, PATHOLOGY_NAMES
from engine.records import Prediction

COLUMNS = ("Finding", "ECG p", "ECG thr", "ECG call", "CXR p", "CXR thr", "CXR call")
#: Marks a finding with flags (their text is under the table and in the tooltip).
FLAG_MARK = " ⚑"
#: Lines of the reasons area always shown; more scroll when the panel is short.
DETAILS_MIN_LINES = 4
__all__ = ["AiPanel", "COLUMNS", "prediction_flags"]


class AiPanel(QtWidgets.QWidget):
    """The AI findings panel.

    Signals:
        model_card_requested(): the user asked for the model card.
    """

    model_card_requested = Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QtWidgets.QLabel("<b>CroMoTEX AI findings</b> (ECG-only vs chest X-ray teacher)")
        self.disclaimer = QtWidgets.QLabel(DEMO_DISCLAIMER)
        self.disclaimer.setWordWrap(True)
        self.disclaimer.setStyleSheet("background:#fff3cd; color:#7a4b00; border:1px solid #e0b84c;"
                                      "padding:4px; font-weight:bold;")
        self.busy_bar = QtWidgets.QProgressBar()
        self.busy_bar.setRange(0, 0)
        self.busy_bar.setMaximumHeight(10)
        self.busy_bar.setTextVisible(False)
        self.busy_label = QtWidgets.QLabel("Running models…")
        self.message = QtWidgets.QLabel()
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color:#8a1c1c;")
        self.teacher_note = QtWidgets.QLabel()  # why the teacher's columns are empty
        self.teacher_note.setWordWrap(True)
        self.teacher_note.setStyleSheet("color:#8a1c1c; font-weight:bold;")
        self.teacher_note.setVisible(False)
        self.table = QtWidgets.QTableWidget(len(PATHOLOGIES), len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.NoSelection)
        header = self.table.horizontalHeader()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Interactive)
        header.setMinimumSectionSize(40)
        self.table.setTextElideMode(QtCore.Qt.TextElideMode.ElideNone)
        self.table.setVerticalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # the table grows with its scroll bar (which must not cover the last row)
        self.table.horizontalScrollBar().rangeChanged.connect(lambda *_: self._fit_height())
        self.flags_label = QtWidgets.QLabel()  # one reason line per flagged finding
        self.flags_label.setWordWrap(True)
        self.flags_label.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.flags_label.setTextInteractionFlags(
            QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.flags_label.setStyleSheet("color:#333;")
        self._notes: dict[str, list[str]] = {}
        self._details_needed = 0  # px the reasons area needs to show all its text
        self.provenance = QtWidgets.QLabel()
        self.provenance.setWordWrap(True)
        self.provenance.setStyleSheet("color:#555;")
        self.card_button = QtWidgets.QPushButton("Model card…")
        self.card_button.clicked.connect(self.model_card_requested)
        # reasons, provenance and button: one scroll area (its text never squeezed)
        self.details = QtWidgets.QScrollArea()
        self.details.setWidgetResizable(True)
        self.details.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self.details.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        content = QtWidgets.QWidget()
        dl = QtWidgets.QVBoxLayout(content)
        dl.setContentsMargins(0, 0, 0, 0)
        dl.addWidget(self.flags_label)
        bottom = QtWidgets.QHBoxLayout()
        bottom.addWidget(self.provenance, 1)
        bottom.addWidget(self.card_button, 0, QtCore.Qt.AlignmentFlag.AlignTop)
        dl.addLayout(bottom)
        dl.addStretch(1)
        self.details.setWidget(content)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(self.title)
        lay.addWidget(self.disclaimer)
        busy = QtWidgets.QHBoxLayout()
        busy.addWidget(self.busy_label)
        busy.addWidget(self.busy_bar, 1)
        lay.addLayout(busy)
        lay.addWidget(self.message)
        lay.addWidget(self.teacher_note)
        lay.addWidget(self.table)
        lay.addWidget(self.details, 1)
        lay.addStretch(0)  # below the details once they show all their text
        self.ecg: dict[str, Prediction] = {}
        self.cxr: dict[str, Prediction] = {}
        self._fill_names()
        self._fit_columns()
        self.set_busy(False)
        self.set_message("")
        self.set_demo(True)

    # ----------------------------------------------------------------- inputs
    def set_busy(self, busy: bool, text: str = "Running models…") -> None:
        """Show or hide the busy indicator (inference running in a worker)."""
        self.busy_label.setText(text)
        self.busy_bar.setVisible(busy)
        self.busy_label.setVisible(busy)

    @property
    def busy(self) -> bool:
        return not self.busy_bar.isHidden()

    def set_message(self, text: str) -> None:
        """A message in place of predictions (e.g. the model bundle was refused)."""
        self.message.setText(text)
        self.message.setVisible(bool(text))
        self._fit_labels()

    def set_demo(self, demo: bool) -> None:
        """Show the demo disclaimer (phantom-trained models)."""
        self.disclaimer.setVisible(demo)
        self._fit_labels()

    def set_teacher_note(self, text: str) -> None:
        """Why the chest X-ray teacher's columns are empty (withheld: another patient's
        image, or refused by the gate); "" hides the note."""
        self.teacher_note.setText(text)
        self.teacher_note.setVisible(bool(text))
        self._fit_labels()

    def set_provenance(self, text: str) -> None:
        self.provenance.setText(text)
        self._fit_labels()
        self._grow_in_splitter()

    def set_ecg_predictions(self, preds: dict[str, Prediction]) -> None:
        """Fill the ECG-only columns; `{}` clears them."""
        self.ecg = dict(preds)
        self._fill(1, self.ecg)
        self._fill_flags()
        if any(p.demo for p in self.ecg.values()):
            self.set_demo(True)
        if self.ecg:
            first = next(iter(self.ecg.values()))
            models = ", ".join(sorted({p.model_name for p in self.ecg.values()}))
            self.set_provenance(f"ECG models: {models} · trained on {first.provenance} data"
                                + (" (demonstration)" if first.demo else "")
                                + f" · {calibration_note(self.ecg, short=True)}")
        note = calibration_note(self.ecg)  # the ECG p / thr headers say how p was made
        for col in (COLUMNS.index("ECG p"), COLUMNS.index("ECG thr")):
            self.table.horizontalHeaderItem(col).setToolTip(note)

    def set_cxr_predictions(self, preds: dict[str, Prediction]) -> None:
        """Fill the chest X-ray teacher columns; `{}` clears them."""
        self.cxr = dict(preds)
        self._fill(4, self.cxr)
        self._fill_flags()

    def clear(self) -> None:
        self.set_ecg_predictions({})
        self.set_cxr_predictions({})
        self.set_provenance("")

    def cell_text(self, pathology: str, column: str) -> str:
        """Text shown in a cell (for tests and export); column "Flags": the finding's
        flags and reasons, one a line ("ok" when there are none)."""
        if column == "Flags":
            return "\n".join(self._notes.get(pathology, []))
        item = self.table.item(PATHOLOGIES.index(pathology), COLUMNS.index(column))
        return item.text() if item is not None else ""

    def cell(self, pathology: str, column: str) -> QtWidgets.QTableWidgetItem | None:
        """The item of a cell (text, tooltip, colour, font)."""
        return self.table.item(PATHOLOGIES.index(pathology), COLUMNS.index(column))

    # ---------------------------------------------------------------- drawing
    def _fill_names(self) -> None:
        for r, p in enumerate(PATHOLOGIES):
            self.table.setItem(r, 0, QtWidgets.QTableWidgetItem(PATHOLOGY_NAMES[p]))

    def _fill(self, col: int, preds: dict[str, Prediction]) -> None:
        for r, p in enumerate(PATHOLOGIES):
            pred = preds.get(p)
            for k, text in enumerate(prediction_cells(pred)):
                item = QtWidgets.QTableWidgetItem(text)
                item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
                if k == 0 and pred is not None and pred.call == "not_assessable":
                    item.setForeground(QtGui.QColor(*CALL_RGB["not_assessable"]))  # not a result
                if k == 2 and pred is not None:
                    item.setForeground(QtGui.QColor(*CALL_RGB[pred.call]))
                    font = item.font()
                    font.setBold(pred.call in BOLD_CALLS)
                    font.setItalic(pred.call in ITALIC_CALLS)
                    item.setFont(font)
                if pred is not None:
                    item.setToolTip(f"{pred.call_reason}\n{pred.model_name} · "
                                    f"{pred.provenance} data" if k == 2 else
                                    f"{pred.model_name} · {pred.provenance} data")
                self.table.setItem(r, col + k, item)
        self._fit_columns()

    def _fit_columns(self) -> None:
        """Size every column to its contents (the user may resize them)."""
        self.table.resizeColumnsToContents()
        self._fit_height()

    def _fit_height(self) -> None:
        """Show every pathology row without a vertical scroll bar, and above the
        horizontal one when there is one (it must not cover the last row)."""
        h = self.table.horizontalHeader().height() + 2 * self.table.frameWidth()
        h += sum(self.table.rowHeight(r) for r in range(self.table.rowCount()))
        sb = self.table.horizontalScrollBar()
        self.table.setFixedHeight(h + (sb.sizeHint().height() if sb.maximum() > 0 else 0) + 2)


    def _fill_flags(self) -> None:
        """The reason lines under the table, and a flag mark with the same text as
        tooltip on each flagged finding's name."""
        for r, p in enumerate(PATHOLOGIES):
            notes = finding_notes(self.ecg.get(p), self.cxr.get(p))
            self._notes[p] = notes
            flagged = [n for n in notes if n != "ok"]
            item = QtWidgets.QTableWidgetItem(PATHOLOGY_NAMES[p] + (FLAG_MARK if flagged else ""))
            item.setToolTip("\n".join(flagged))
            self.table.setItem(r, 0, item)
        lines = [f"<b>{html.escape(title)}</b>: "
                 + "<br>&nbsp;&nbsp;".join(html.escape(n) for n in notes)
                 for title, notes in grouped_notes(self.ecg, self.cxr, PATHOLOGIES,
                                                   PATHOLOGY_NAMES)]
        self.flags_label.setText("<br>".join(lines))
        self.flags_label.setVisible(bool(lines))
        self.table.resizeColumnToContents(0)
        self._fit_height()
        self._fit_labels()
        self._grow_in_splitter()

    def _fit_labels(self) -> None:
        """Wrapped labels ask for the height their text needs at the current width, so
        that the splitter above the chest X-ray gives it to them (never squeezed); the
        reasons area asks for all its text up to `DETAILS_MIN_LINES` lines (it scrolls)."""
        width = max(self.width() - 12, 100)
        for label in (self.disclaimer, self.teacher_note, self.message):
            label.setMinimumHeight(label.heightForWidth(width) if label.text() else 0)
        # the details' height at the narrowest they get (a vertical scroll bar shown),
        # summed here: the layouts' cached heights lag behind a setText
        inner = max(width - self.details.verticalScrollBar().sizeHint().width(), 100)
        spacing = self.details.widget().layout().spacing()
        button = self.card_button.sizeHint()
        needed = max(self.provenance.heightForWidth(max(inner - button.width() - spacing, 50))
                     if self.provenance.text() else 0, button.height())
        if self.flags_label.text() and not self.flags_label.isHidden():
            needed += self.flags_label.heightForWidth(inner) + spacing
        lines = DETAILS_MIN_LINES * self.fontMetrics().lineSpacing()
        self.details.setMinimumHeight(min(needed, max(lines, button.height())))
        self.details.setMaximumHeight(needed)
        self._details_needed = needed

    def _grow_in_splitter(self) -> None:
        """New text: in a vertical splitter (above the chest X-ray), take the room the
        whole text needs from the pane below as far as that pane's minimum allows (the
        user's own splitter moves are kept until the text changes again)."""
        splitter = self.parentWidget()
        if not isinstance(splitter, QtWidgets.QSplitter) or not self.isVisible() \
                or splitter.orientation() != QtCore.Qt.Orientation.Vertical:
            return
        self.layout().activate()  # the details' height with their new limits
        short = self._details_needed - self.details.height()
        i = splitter.indexOf(self)
        if short <= 0 or i + 1 >= splitter.count():
            return
        below = splitter.widget(i + 1)
        sizes = splitter.sizes()
        spare = sizes[i + 1] - max(below.minimumSizeHint().height(), below.minimumHeight())
        give = min(short, spare)
        if give > 0:
            sizes[i] += give
            sizes[i + 1] -= give
            splitter.setSizes(sizes)

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        if event.oldSize().width() != event.size().width():
            self._fit_labels()
