"""Header strip above the ECG: patient, acquisition, device measurements and
statements, as far as the file carries them. Receives an `EcgRecord`."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from app.qt import QtCore, QtWidgets
from engine.io.ecg_common import format_device_measurements, statement_texts, statements_confirmed
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


class HeaderView(QtWidgets.QFrame):
    """Two-column header. `set_record(None)` clears it."""

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
        lay.addWidget(self.right, 3)
        self.fields: dict[str, str] = {}
        self.set_record(None)

    def set_record(self, record: EcgRecord | None) -> None:
        if record is None:
            self.fields = {}
            self.left.setText("<b>No ECG open</b>")
            self.right.setText("")
            return
        f = self.fields = header_fields(record)
        e = {k: html.escape(v) for k, v in f.items()}
        self.left.setText("<br>".join(x for x in (
            f"<b>{e['patient']}</b>", e.get("acquisition", ""),
            e["signal"], f"<span style='color:#666'>{e.get('source', '')}</span>") if x))
        right = []
        if "measurements" in e:
            right.append(f"<b>Device measurements:</b> {e['measurements']}")
        if "statements" in e:
            right.append(f"<b>Statements:</b> {e['statements']}")
        self.right.setText("<br>".join(right) or "<span style='color:#666'>No device "
                           "measurements or statements in the file</span>")
