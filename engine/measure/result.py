"""The measurement result: a frozen, JSON-ready dataclass."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Global keys, in the vocabulary of record.meta["device_measurements"].
GLOBAL_KEYS: tuple[str, ...] = ("hr_bpm", "rr_ms", "pr_ms", "p_ms", "qrs_ms", "qt_ms", "qtc_ms",
                                "p_axis_deg", "qrs_axis_deg", "t_axis_deg")


@dataclass(frozen=True)
class EcgMeasurements:
    """Automated measurements of one ECG.

    Attributes:
        values: global key (GLOBAL_KEYS) -> value (ms, bpm or degrees) or None.
        reasons: global key -> why the value is None (only for None values).
        methods: global key -> how the value was obtained (one sentence).
        qtc_formula: formula of `values["qtc_ms"]` ("fridericia").
        qtc_all: formula -> QTc ms (empty without QT).
        rr_sd_ms, rr_rmssd_ms: RR variability over all beats, ms (None < 3 beats).
        n_beats, n_dominant: beats detected / used for the median beat.
        amplitudes: lead -> {p_mv, q_mv, r_mv, s_mv, r_prime_mv, st_j_mv, st_j60_mv, t_mv, qrs_pp_mv}.
        voltage: voltage criteria (see engine.measure.amplitudes).
        median_beats: float32 `[n_leads, L]` mV at `median_fs` Hz, rows follow `leads`
            (None when no median beat could be formed).
        median_fs: sampling rate of `median_beats` (Hz).
        median_t0_ms: time of the first median-beat sample relative to the origin,
            the QRS alignment point (peak of the multi-lead QRS energy), ms.
        fiducials_ms: p_on, p_off, qrs_on, qrs_off, t_off in ms relative to the origin
            (None when absent).
        leads: lead names of `median_beats` rows.
        flags: record-level findings ("paced", "irregular rhythm", ...).
    """

    values: dict[str, float | None]
    reasons: dict[str, str]
    methods: dict[str, str]
    qtc_formula: str
    qtc_all: dict[str, float] = field(default_factory=dict)
    rr_sd_ms: float | None = None
    rr_rmssd_ms: float | None = None
    n_beats: int = 0
    n_dominant: int = 0
    amplitudes: dict[str, dict[str, float | None]] = field(default_factory=dict)
    voltage: dict[str, Any] = field(default_factory=dict)
    median_beats: np.ndarray | None = None
    median_fs: float = 500.0
    median_t0_ms: float = 0.0
    fiducials_ms: dict[str, float | None] = field(default_factory=dict)
    leads: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()

    def get(self, key: str) -> float | None:
        return self.values.get(key)

    def to_dict(self, *, include_median_beats: bool = False) -> dict[str, Any]:
        """JSON-ready dict (floats, str, None, lists). Median beats only on request
        (12 x ~500 numbers)."""
        d: dict[str, Any] = {k: self.values.get(k) for k in GLOBAL_KEYS}
        d.update({
            "reasons": dict(self.reasons),
            "qtc_formula": self.qtc_formula,
            "qtc_all": dict(self.qtc_all),
            "rr_sd_ms": self.rr_sd_ms,
            "rr_rmssd_ms": self.rr_rmssd_ms,
            "n_beats": self.n_beats,
            "n_dominant": self.n_dominant,
            "flags": list(self.flags),
            "fiducials_ms": dict(self.fiducials_ms),
            "amplitudes": {k: dict(v) for k, v in self.amplitudes.items()},
            "voltage": dict(self.voltage),
        })
        if include_median_beats and self.median_beats is not None:
            d["median_beats"] = {"fs": self.median_fs, "t0_ms": self.median_t0_ms, "leads": list(self.leads),
                                 "mv": np.round(self.median_beats.astype(np.float64), 4).tolist()}
        return d
