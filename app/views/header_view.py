"""Header strip above the ECG: patient, acquisition, device measurements and
statements, as far as the file carries them. Receives an `EcgRecord`."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from app.qt import QtCore, QtGui, QtWidgets
from engine.io.ecg_common import format_device_measurements, statement_texts, statements_confirmed
from engine.measure.device import DEVICE_QTC_FORMULA, comparable_value, device_values, differences
from engine.records import EcgRecord

#: Measurements shown first when present (names as devices write them vary).
_MAX_MEASUREMENTS = 12


def _fmt_device(device: Any) -> str:
    if isinstance(device, dict):
        return " ".join(str(v) for k, v in device.items() if v and k not in ("serial", "cart"))
    return str(device)


def _fmt_measurements(measurements: Any) -> list[str]:
    out: list[str] = []
    if isinstance(measurements, dict):
        items = [{"name": k, "value": v, "units": ""} for k, v in measurements.items()]
    else:
        items = list(measurements or [])
    for m in items:
        if not isinstance(m, dict) or m.get("group") not in (None, 0, 1):
            continue
        value = m.get("value")
        value_txt = f"{value:g}" if isinstance(value, (int, float)) else str(value)
        units = m.get("units") or ""
        units = {"deg": "°", "uV": "µV"}.get(units, units)
        out.append(f"{m.get('name', '?')} {value_txt}{(' ' + units) if units and units != '°' else units}")
        if len(out) >= _MAX_MEASUREMENTS:
            break
    return out


def header_fields(record: EcgRecord) -> dict[str, str]:
    """The header's text fields (plain strings; empty ones left out): "patient",
    "acquisition", "signal", "measurements", "statements", "source"."""
    m = record.meta
    patient = []
    for key, label in (("patient_name", ""), ("patient_id", "ID "), ("age", "Age "),
                       ("sex", "Sex ")):
        if m.get(key) not in (None, ""):
            patient.append(f"{label}{m[key]}")
    acquisition = []
    if m.get("acquired"):
        acquisition.append(str(m["acquired"]))
    if m.get("device"):
        acquisition.append(_fmt_device(m["device"]))
    if m.get("institution"):
        acquisition.append(str(m["institution"]))
    signal = (f"{len(record.leads)} leads · {record.fs:g} Hz · {record.duration_s:.1f} s")
    if m.get("derived_leads"):
        signal += f" · derived from I and II: {', '.join(m['derived_leads'])}"
    statements = statement_texts(m.get("statements"))
    confirmed = statements_confirmed(m.get("statements"))
    if statements and confirmed is not None:
        statements.append("confirmed by a physician" if confirmed else "unconfirmed")
    if not statements and m.get("comments"):
        statements = [str(c) for c in m["comments"]][:6]
    fields = {
        "patient": "  ·  ".join(patient) or "Patient: not in file",
        "acquisition": "  ·  ".join(acquisition),
        "signal": signal,
        "measurements": "  ·  ".join(format_device_measurements(m["device_measurements"])
                                     if m.get("device_measurements")
                                     else _fmt_measurements(m.get("measurements"))),
        "statements": " / ".join(statements),
        "source": (f"{Path(record.source.path).name} ({record.source.format})"
                   if record.source is not None else ""),
    }
    return {k: v for k, v in fields.items() if v}


#: Computed measurement keys shown in the header: (key, label, unit).
_COMPUTED = (("hr_bpm", "HR", " bpm"), ("pr_ms", "PR", " ms"), ("qrs_ms", "QRS", " ms"),
             ("qt_ms", "QT", " ms"), ("qtc_ms", "QTc", " ms"), ("p_axis_deg", "P axis", "°"),
             ("qrs_axis_deg", "QRS axis", "°"), ("t_axis_deg", "T axis", "°"))
#: A computed value differing from the device's by more than this is highlighted.
_DIFF_MATTERS = {"hr_bpm": 5.0, "pr_ms": 20.0, "qrs_ms": 20.0, "qt_ms": 20.0, "qtc_ms": 20.0,
                 "p_axis_deg": 30.0, "qrs_axis_deg": 30.0, "t_axis_deg": 30.0}


def computed_items(record: EcgRecord) -> list[dict[str, Any]]:
    """One dict per computed value: key, label, text, tooltip, device (text or None),
    differs (bool). Empty when the record has no `meta["computed_measurements"]`."""
    m = record.meta.get("computed_measurements")
    if m is None:
        return []
    device = device_values(record.meta)
    diffs = differences(m, device)
    out = []
    for key, label, unit in _COMPUTED:
        v = m.values.get(key)
        if v is None:
            text = f"{label} —"
            tip = f"{label} not measured: {m.reasons.get(key, 'unknown')}"
        else:
            text = f"{label} {v:g}{unit}" if key == "hr_bpm" else f"{label} {v:.0f}{unit}"
            tip = f"{label}: {m.methods.get(key, '')}"
            if key == "qtc_ms":
                tip += "; " + ", ".join(f"{k} {q:g} ms" for k, q in m.qtc_all.items())
        d = device.get(key)
        differs = key in diffs and abs(diffs[key]) > _DIFF_MATTERS[key]
        if key == "qtc_ms" and d is not None and key in diffs:
            tip += (f"\nThe device's QTc is compared with our {DEVICE_QTC_FORMULA.capitalize()} QTc "
                    f"({comparable_value(m, key):g} ms), the correction carts report")
        out.append({"key": key, "label": label, "text": text, "tooltip": tip,
                    "device": None if d is None else (f"{d:g}{unit}" if key == "hr_bpm" else f"{d:.0f}{unit}"),
                    "differs": bool(differs)})
    return out


def computed_line(record: EcgRecord) -> str:
    """The computed measurements as one line ("" without them), missing values as "—",
    device values in brackets where the file has them."""
    items = computed_items(record)
    if not items:
        return ""
    m = record.meta["computed_measurements"]
    parts = [it["text"] + (f" [device {it['device']}]" if it["device"] is not None else "")
             + (" (!)" if it["differs"] else "") for it in items]
    return f"Computed (QTc {m.qtc_formula.capitalize()}): " + " · ".join(parts)


#: Shown in place of the computed values while they are being measured.
MEASURING_TEXT = "measuring…"
#: The computed values in a grid of the first of these numbers of columns that fits the
#: header's width (chosen by the width alone, never by the values).
_GRID_COLUMNS = (4, 2, 1)
#: Width (average characters) the left column keeps beside the computed values' grid.
_LEFT_CHARS = 30
#: Zero-width space: a long file name may wrap after its underscores.
_ZWSP = "\u200b"
#: The widest text of each computed value (`computed_items`). The grid of computed
#: values keeps the size of these (and the lines of the device values the file has)
#: while measuring and after, so that the columns beside it, and the header's height, do
#: not change when the values arrive (the ECG below would jump).
_WIDEST = ("HR 188.8 bpm", "PR 888 ms", "QRS 888 ms", "QT 888 ms", "QTc 888 ms",
           "P axis -188°", "QRS axis -188°", "T axis -188°")


class HeaderView(QtWidgets.QFrame):
    """Two-column header. `set_record(None)` clears it; `measuring`: the computed
    measurements are still to come (the header says so). The computed values sit in a
    grid (4, 2 or 1 columns by the header's width) that has the same size while measuring
    and after, so the ECG below does not move when they arrive."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QtWidgets.QFrame.Shape.StyledPanel)
        self.left = QtWidgets.QLabel()
        self.right = QtWidgets.QLabel()
        for lab in (self.left, self.right):
            lab.setTextFormat(QtCore.Qt.TextFormat.RichText)
            lab.setWordWrap(True)
            lab.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
            lab.setAlignment(QtCore.Qt.AlignmentFlag.AlignTop | QtCore.Qt.AlignmentFlag.AlignLeft)
        lay = QtWidgets.QHBoxLayout(self)
        lay.setContentsMargins(8, 4, 8, 4)
        lay.addWidget(self.left, 2)
        # computed measurements: one label per value, each with its own tooltip
        self.computed_box = QtWidgets.QWidget()
        self.computed_lay = QtWidgets.QGridLayout(self.computed_box)
        self.computed_lay.setContentsMargins(0, 0, 0, 0)
        self.computed_lay.setVerticalSpacing(0)
        self.computed_lay.setHorizontalSpacing(10)
        self._columns = _GRID_COLUMNS[0]
        self.computed_labels: list[QtWidgets.QLabel] = []
        self.computed: list[dict[str, Any]] = []
        self.measuring = False
        right_col = QtWidgets.QWidget()
        rl = QtWidgets.QVBoxLayout(right_col)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.computed_box)
        rl.addWidget(self.right)
        rl.addStretch(1)  # the grid's rows stay together when the left column is taller
        lay.addWidget(right_col, 3)
        self.fields: dict[str, str] = {}
        self._shown: tuple[EcgRecord | None, bool] = (None, False)  # set_record's arguments
        self._label_sizes: dict[str, QtCore.QSize] = {}
        self.set_record(None)

    def _reserved_size(self, record: EcgRecord | None, columns: int) -> tuple[int, int]:
        """(width, height) px of the computed values' grid in `columns` columns with the
        widest values (`_WIDEST`) and a device line in each row where `record` has a
        device value."""
        device = device_values(record.meta) if record is not None else {}
        keys = [key for key, _, _ in _COMPUTED]
        spacing = self.computed_lay.horizontalSpacing()
        width = self._label_size("<b>Computed:</b>").width() + spacing * columns
        for col in range(columns):
            width += max(self._label_size(t).width() for t in _WIDEST[col::columns])
        one, two = (self._label_size(t).height() for t in ("8", "8<br>8"))
        height = sum(two if any(k in device for k in keys[r:r + columns]) else one
                     for r in range(0, len(keys), columns))
        return width, height

    def _label_size(self, text: str) -> QtCore.QSize:
        """Size hint (px) of a label showing `text` (measured once per text)."""
        if text not in self._label_sizes:
            self._label_sizes[text] = QtWidgets.QLabel(text).sizeHint()
        return self._label_sizes[text]

    def _fitting_columns(self) -> int:
        """The most grid columns (`_GRID_COLUMNS`) beside which the left column keeps its
        unwrapped width, or `_LEFT_CHARS` characters where that is wider."""
        m = self.layout().contentsMargins()
        doc = QtGui.QTextDocument()
        doc.setDefaultFont(self.left.font())
        doc.setHtml(self.left.text())
        left = min(doc.idealWidth(), _LEFT_CHARS * self.left.fontMetrics().averageCharWidth())
        room = self.width() - m.left() - m.right() - self.layout().spacing() - left
        return next((c for c in _GRID_COLUMNS if self._reserved_size(None, c)[0] <= room),
                    _GRID_COLUMNS[-1])

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        if event.oldSize().width() != event.size().width() and self.computed_box.isVisibleTo(self):
            columns = self._fitting_columns()
            if columns != self._columns:
                self._columns = columns
                self._set_computed(*self._shown)

    def _set_computed(self, record: EcgRecord | None, measuring: bool = False) -> None:
        self._shown = (record, measuring)
        while self.computed_lay.count():
            item = self.computed_lay.takeAt(0)
            if item.widget() is not None:
                item.widget().hide()  # not drawn under the new labels until deleted
                item.widget().deleteLater()
        self.computed_labels = []
        self.computed = computed_items(record) if record is not None else []
        self.measuring = measuring and record is not None and not self.computed
        if not self.computed and not self.measuring:
            self.computed_box.hide()
            return
        for col in range(_GRID_COLUMNS[0] + 2):  # the grid packed to the left
            self.computed_lay.setColumnStretch(col, 1 if col == self._columns + 1 else 0)
        title = QtWidgets.QLabel("<b>Computed:</b>")
        title.setToolTip("Measured by CroMoTEX on the median beats of all leads (engine.measure)")
        self.computed_labels.append(title)
        self.computed_lay.addWidget(title, 0, 0, QtCore.Qt.AlignmentFlag.AlignTop)
        if self.measuring:
            lab = QtWidgets.QLabel(f"<span style='color:#666'><i>{MEASURING_TEXT}</i></span>")
            lab.setToolTip("The measurements are computed in the background and shown here "
                           "when ready")
            self.computed_labels.append(lab)
            self.computed_lay.addWidget(lab, 0, 1, 1, self._columns,
                                        QtCore.Qt.AlignmentFlag.AlignTop)
        for i, it in enumerate(self.computed):
            text = html.escape(it["text"])
            if it["device"] is not None:
                style = "color:#b00;font-weight:bold" if it["differs"] else "color:#666"
                text += f"<br><span style='{style}'>device {html.escape(it['device'])}</span>"
            lab = QtWidgets.QLabel(text)
            lab.setTextFormat(QtCore.Qt.TextFormat.RichText)
            tip = it["tooltip"] + (f"\nDevice: {it['device']}" if it["device"] is not None else "")
            if it["differs"]:
                tip += "\nDiffers from the device's value by more than the tolerance: check on the median beats"
            lab.setToolTip(tip)
            self.computed_labels.append(lab)
            self.computed_lay.addWidget(lab, i // self._columns, 1 + i % self._columns,
                                        QtCore.Qt.AlignmentFlag.AlignTop)
        width, height = self._reserved_size(record, self._columns)
        self.computed_box.setMinimumSize(width, height)
        self.computed_box.show()

    def set_record(self, record: EcgRecord | None, measuring: bool = False) -> None:
        if record is None:
            self.fields = {}
            self.left.setText("<b>No ECG open</b>")
            self.right.setText("")
            self._set_computed(None)
            return
        f = self.fields = header_fields(record)
        e = {k: html.escape(v) for k, v in f.items()}
        self.left.setText("<br>".join(x for x in (
            f"<b>{e['patient']}</b>", e.get("acquisition", ""),
            e["signal"], f"<span style='color:#666'>{e.get('source', '').replace('_', '_' + _ZWSP)}</span>")
            if x))
        right = []
        if "measurements" in e:
            right.append(f"<b>Device measurements:</b> {e['measurements']}")
        if "statements" in e:
            right.append(f"<b>Statements:</b> {e['statements']}")
        self.right.setText("<br>".join(right) or "<span style='color:#666'>No device "
                           "measurements or statements in the file</span>")
        self._columns = self._fitting_columns()
        self._set_computed(record, measuring)
