"""Automated 12-lead ECG measurements: intervals, axes, amplitudes, median beats.

Entry point: `measure_ecg(record) -> EcgMeasurements` (numpy/scipy only).
Modules: prep (resampling, zero-phase filters), qrs_detect, beats
(classification, ectopy, pacing, rhythm), median (median beats), delineate
(global boundaries), axes, amplitudes (per-lead amplitudes, voltage
criteria), qtc (QT correction formulas), result (the dataclass), core
(the pipeline).
"""

from __future__ import annotations

from engine.measure.core import measure_ecg
from engine.measure.qtc import DEFAULT_QTC_FORMULA, QTC_FORMULAS, qtc_all
from engine.measure.result import GLOBAL_KEYS, EcgMeasurements

__all__ = ["measure_ecg", "EcgMeasurements", "GLOBAL_KEYS", "QTC_FORMULAS", "DEFAULT_QTC_FORMULA", "qtc_all"]
