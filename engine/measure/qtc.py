"""Heart-rate correction of the QT interval.

All four formulas take QT in ms and the RR interval in ms and return QTc in ms:

- Bazett (1920): QT / sqrt(RR[s]);
- Fridericia (1920): QT / cbrt(RR[s]);
- Framingham (Sagie 1992): QT + 154 * (1 - RR[s]);
- Hodges (1983): QT + 1.75 * (HR[bpm] - 60).

Default: Fridericia. Bazett over-corrects above ~80 bpm and under-corrects below
60 bpm (AHA/ACCF/HRS 2009 recommendations on the standardisation of the ECG,
part IV, advise a linear or cube-root correction rather than Bazett; the ICH E14
guidance uses Fridericia). All four are reported, so a reader who expects a
cart's Bazett value can find it.
"""

from __future__ import annotations

import math
from typing import Callable

#: The formula `measure_ecg` reports as `qtc_ms`.
DEFAULT_QTC_FORMULA: str = "fridericia"


def bazett(qt_ms: float, rr_ms: float) -> float:
    """QT / sqrt(RR in s), ms."""
    return qt_ms / math.sqrt(rr_ms / 1000.0)


def fridericia(qt_ms: float, rr_ms: float) -> float:
    """QT / cbrt(RR in s), ms."""
    return qt_ms / (rr_ms / 1000.0) ** (1.0 / 3.0)


def framingham(qt_ms: float, rr_ms: float) -> float:
    """QT + 154 ms * (1 - RR in s)."""
    return qt_ms + 154.0 * (1.0 - rr_ms / 1000.0)


def hodges(qt_ms: float, rr_ms: float) -> float:
    """QT + 1.75 ms * (HR - 60 bpm), HR = 60000 / RR."""
    return qt_ms + 1.75 * (60000.0 / rr_ms - 60.0)


#: Formula name -> function(qt_ms, rr_ms) -> qtc_ms.
QTC_FORMULAS: dict[str, Callable[[float, float], float]] = {
    "bazett": bazett,
    "fridericia": fridericia,
    "framingham": framingham,
    "hodges": hodges,
}


def qtc_all(qt_ms: float, rr_ms: float) -> dict[str, float]:
    """QTc in ms by every formula of QTC_FORMULAS, rounded to 0.1 ms."""
    if not (qt_ms > 0 and rr_ms > 0):
        raise ValueError(f"QT and RR must be positive, got {qt_ms}, {rr_ms}")
    return {name: round(f(qt_ms, rr_ms), 1) for name, f in QTC_FORMULAS.items()}
