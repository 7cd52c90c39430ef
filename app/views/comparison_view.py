"""Serial comparison: the open ECG above a prior ECG of the same patient, on the same
paper scale (two `EcgView`s; the prior follows the upper one's zoom), the measurement
differences (prior -> this ECG) and the patient's AI trend (`TrendPlot`).

Layout only: `app.worklist_controller` fills it from `engine.store` (the patient's
ECGs by `patient_key`, so a prior is never another patient's)."""

from __future__ import annotations

from app.qt import QtCore, QtWidgets, Signal
from app.views.ecg_view import EcgView
from app.views.trend_plot import TrendPlot
from engine.records import EcgRecord
from engine.store import EcgEntry, MeasurementDiff

#: Measurements listed (engine.io.ecg_common keys).
DIFF_KEYS: tuple[str, ...] = ("hr_bpm", "pr_ms", "qrs_ms", "qt_ms", "qtc_ms", "p_axis_deg",
                              "qrs_axis_deg", "t_axis_deg")


def entry_label(e: EcgEntry) -> str:
    when = (e.acquired or "time unknown").replace("T", " ")
    return f"{when} · {e.format or '?'}"


def _fmt(v: float | None, unit: str) -> str:
    return "—" if v is None else f"{v:.0f} {unit}".strip()


class ComparisonView(QtWidgets.QWidget):
    """Signals:
        prior_changed(int): the ecg id of the prior picked (-1: none).
    """

    prior_changed = Signal(int)

    def __init__(self, px_per_mm: float | None = None, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QtWidgets.QLabel("Open an ECG from the worklist to compare it with the patient's others.")
        self.title.setWordWrap(True)
        self.prior_combo = QtWidgets.QComboBox()
        self.prior_combo.setMinimumContentsLength(24)
        self.prior_combo.currentIndexChanged.connect(self._prior_picked)
        self.current_label = QtWidgets.QLabel("This ECG")
        self.prior_label = QtWidgets.QLabel("Prior")
        for lab in (self.current_label, self.prior_label):
            lab.setStyleSheet("font-weight:bold;")
        self.current_view = EcgView(px_per_mm=px_per_mm)
        self.prior_view = EcgView(px_per_mm=px_per_mm)
        self.current_view.fit_mode = "page"
        self.prior_view.fit_mode = None  # follows the upper view: the same paper scale
        self.current_view.zoom_changed.connect(self._follow_zoom)

        top = QtWidgets.QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(QtWidgets.QLabel("Prior:"))
        top.addWidget(self.prior_combo)
        papers = QtWidgets.QWidget()
        pl = QtWidgets.QVBoxLayout(papers)
        pl.setContentsMargins(0, 0, 0, 0)
        pl.addWidget(self.current_label)
        pl.addWidget(self.current_view, 1)
        pl.addWidget(self.prior_label)
        pl.addWidget(self.prior_view, 1)

        self.diff_table = QtWidgets.QTableWidget(0, 4)
        self.diff_table.setHorizontalHeaderLabels(["Measurement", "Prior", "This ECG", "Change"])
        self.diff_table.verticalHeader().hide()
        self.diff_table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.diff_table.horizontalHeader().setStretchLastSection(True)
        self.trend = TrendPlot()
        right = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        right.addWidget(self.diff_table)
        trend_box = QtWidgets.QWidget()
        tl = QtWidgets.QVBoxLayout(trend_box)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addWidget(QtWidgets.QLabel("<b>AI probabilities of this patient's ECGs</b>"))
        tl.addWidget(self.trend, 1)
        right.addWidget(trend_box)
        right.setSizes([260, 420])
        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        split.addWidget(papers)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(top)
        lay.addWidget(split, 1)
        self.current: EcgEntry | None = None
        self.others: list[EcgEntry] = []

    # ------------------------------------------------------------ filling
    def set_patient(self, current: EcgEntry | None, others: list[EcgEntry]) -> None:
        """The open ECG's entry and the patient's other ECGs (any order); the newest ECG
        before the current one is picked as the prior (else the newest other)."""
        self.current = current
        self.others = sorted(others, key=lambda e: (e.acquired is None, e.acquired or ""), reverse=True)
        self.prior_combo.blockSignals(True)
        self.prior_combo.clear()
        for e in self.others:
            self.prior_combo.addItem(entry_label(e) + ("  (unreadable)" if e.error else ""), e.id)
        self.prior_combo.blockSignals(False)
        if current is None:
            self.title.setText("Open an ECG from the worklist to compare it with the patient's others.")
        else:
            who = current.patient_name or current.patient_id or "this patient"
            self.title.setText(f"<b>{who}</b> (ID {current.patient_id or '—'}): "
                               f"{len(self.others)} other ECG(s) in the store")
            self.current_label.setText(f"This ECG: {entry_label(current)}")
        earlier = [e for e in self.others if e.acquired and current is not None and current.acquired
                   and e.acquired < current.acquired and e.error is None]
        pick = earlier[0] if earlier else next((e for e in self.others if e.error is None), None)
        if pick is None:
            self.prior_label.setText("Prior: none in the store for this patient")
            self.prior_view.set_record(None)
            self.set_differences([])
            self.prior_changed.emit(-1)
            return
        self.prior_combo.setCurrentIndex(self.others.index(pick))
        self._prior_picked(self.others.index(pick))

    def set_current_record(self, record: EcgRecord | None) -> None:
        self.current_view.set_record(record)
        self.current_view.zoom_fit()

    def set_prior_record(self, entry: EcgEntry, record: EcgRecord | None, error: str = "") -> None:
        self.prior_label.setText(f"Prior: {entry_label(entry)}" + (f": {error}" if error else ""))
        self.prior_view.set_record(record)
        self.prior_view.zoom_to(self.current_view.zoom, reset_position=True)

    def set_differences(self, diffs: list[MeasurementDiff]) -> None:
        rows = [d for d in diffs if d.key in DIFF_KEYS]
        self.diff_table.setRowCount(len(rows))
        for i, d in enumerate(rows):
            change = "—" if d.delta is None else f"{d.delta:+.0f} {d.unit}".strip()
            vals = (f"{d.label}", _fmt(d.a, d.unit), _fmt(d.b, d.unit), change)
            for j, v in enumerate(vals):
                item = QtWidgets.QTableWidgetItem(v)
                if j in (1, 2):
                    src = d.source_a if j == 1 else d.source_b
                    if src:
                        item.setToolTip(f"{src} value")
                self.diff_table.setItem(i, j, item)
        self.diff_table.resizeColumnsToContents()

    def selected_prior(self) -> EcgEntry | None:
        i = self.prior_combo.currentIndex()
        return self.others[i] if 0 <= i < len(self.others) else None

    # ------------------------------------------------------------ private
    def _prior_picked(self, index: int) -> None:
        e = self.others[index] if 0 <= index < len(self.others) else None
        self.prior_changed.emit(e.id if e is not None else -1)

    def _follow_zoom(self, zoom: float) -> None:
        if self.prior_view.record is not None:
            self.prior_view.zoom_to(zoom, reset_position=True)
