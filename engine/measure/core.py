"""`measure_ecg`: the measurement pipeline, from a record to `EcgMeasurements`.

Steps: condition (500 Hz, 0.5-100 Hz zero phase) -> multi-lead QRS detection ->
beat classification (ectopic and premature beats out) -> median beats ->
usable leads (flat or noisy leads out) -> global delineation -> intervals,
axes, amplitudes, voltage criteria. At most MAX_SECONDS of the record are
measured (the first ones), as a cart measures its 10 s.

Every value that cannot be measured is None with a reason; nothing defaults to 0.
"""

from __future__ import annotations

import logging

import numpy as np

from engine.measure import amplitudes as amp_mod
from engine.measure import axes, beats, delineate, median, prep, qrs_detect
from engine.measure.qtc import DEFAULT_QTC_FORMULA, qtc_all
from engine.measure.result import GLOBAL_KEYS, EcgMeasurements
from engine.records import EcgRecord

logger = logging.getLogger(__name__)

#: Longest stretch measured (s), from the start of the record.
MAX_SECONDS: float = 20.0
#: Shortest record measured (s).
MIN_SECONDS: float = 4.0
#: Fewest dominant beats for a median beat.
MIN_BEATS: int = 3
#: A lead is flat below this QRS peak-to-peak on the median beat (mV).
FLAT_MV: float = 0.02
#: A lead is usable when its median QRS is at least this many times its
#: beat-to-beat noise (RMS mV).
NOISE_RATIO: float = 5.0
#: Fewest usable leads for the global delineation.
MIN_USABLE_LEADS: int = 3
#: Fraction of beats with a pacing spike for "paced" (spikes are often too small
#: in some beats after the device's filters: LUDB 8, ventricular paced, shows them
#: in 1 beat of 3; no unpaced LUDB record 1-20 has any).
PACED_FRACTION: float = 0.25

#: Below this sampling rate the record is measured but flagged (IEC 60601-2-25
#: interval accuracy assumes at least 500 Hz).
LOW_FS_HZ: float = 500.0

METHODS: dict[str, str] = {
    "hr_bpm": "ventricular rate: 60000 / mean RR over all detected beats",
    "rr_ms": "mean RR over all detected beats",
    "pr_ms": "global P onset to global QRS onset on the median beats of all usable leads",
    "p_ms": "global P onset to P offset (RMS of leads, median beats)",
    "qrs_ms": "global QRS onset to offset on the spatial velocity of the median beats of all usable leads",
    "qt_ms": "global QRS onset to the latest T end confirmed by 2 leads (tangent method, median beats)",
    "qtc_ms": "QT corrected with the Fridericia formula (QT / RR^(1/3)), RR = mean interval "
              "between consecutive dominant beats (the beats of the median)",
    "p_axis_deg": "frontal P axis from the net P areas of leads I and aVF",
    "qrs_axis_deg": "frontal QRS axis from the net QRS areas of leads I and aVF",
    "t_axis_deg": "frontal T axis from the net ST-T areas of leads I and aVF",
}


def _fail(reason: str, values: dict[str, float | None] | None = None, **kw) -> EcgMeasurements:
    vals = {k: None for k in GLOBAL_KEYS}
    if values:
        vals.update(values)
    reasons = {k: reason for k, v in vals.items() if v is None}
    return EcgMeasurements(values=vals, reasons=reasons, methods=dict(METHODS), qtc_formula=DEFAULT_QTC_FORMULA, **kw)


def _ms(samples: float) -> float:
    return float(samples) * 1000.0 / prep.FS_HZ


def measure_ecg(record: EcgRecord) -> EcgMeasurements:
    """Measure `record` (any rate >= 100 Hz, any subset of the 12 leads)."""
    leads = tuple(record.leads)
    if record.signal.ndim != 2 or record.signal.shape[0] < MIN_USABLE_LEADS:
        n = record.signal.shape[0] if record.signal.ndim == 2 else 0
        return _fail(f"lead missing: {n} ECG lead(s), at least {MIN_USABLE_LEADS} needed", leads=leads)
    if record.duration_s < MIN_SECONDS:
        return _fail(f"too short: {record.duration_s:.1f} s (needs {MIN_SECONDS:.0f} s)")
    raw = record.signal[:, :int(round(MAX_SECONDS * record.fs))]
    if not np.all(np.isfinite(raw)):
        raw = np.nan_to_num(raw, nan=0.0, posinf=0.0, neginf=0.0)
    x = prep.condition(raw, record.fs)
    live = np.ptp(x, axis=1) > FLAT_MV
    if live.sum() < MIN_USABLE_LEADS:
        return _fail("flat signal: no ECG in the leads", leads=leads)
    peaks = qrs_detect.detect_qrs(x[live])
    bc = beats.classify_beats(x[live], peaks)
    if bc.peaks.size < 2:
        return _fail("too few beats", leads=leads, n_beats=int(bc.peaks.size))
    rr = beats.rr_intervals_ms(bc.peaks)
    rr_mean = float(rr.mean())
    values: dict[str, float | None] = {"hr_bpm": round(60000.0 / rr_mean, 1), "rr_ms": round(rr_mean, 1)}
    rr_sd = float(rr.std(ddof=1)) if rr.size >= 2 else None
    rmssd = float(np.sqrt(np.mean(np.diff(rr) ** 2))) if rr.size >= 2 else None
    common = dict(leads=leads, n_beats=int(bc.peaks.size), n_dominant=int(bc.dominant.sum()),
                  rr_sd_ms=None if rr_sd is None else round(rr_sd, 1),
                  rr_rmssd_ms=None if rmssd is None else round(rmssd, 1))
    flags: list[str] = []
    if record.fs < LOW_FS_HZ:
        flags.append(f"sampled at {record.fs:g} Hz: boundaries resolved to {1000.0 / record.fs:.0f} ms, "
                     f"below the {LOW_FS_HZ:g} Hz IEC 60601-2-25 assumes")
    nn = beats.nn_intervals_ms(bc)
    # rhythm judged on normal-to-normal intervals (ectopic beats and their pauses out);
    # in atrial fibrillation those stay irregular
    irregular = beats.is_irregular(nn if nn.size >= 3 else rr)
    rr_qtc = float(nn.mean()) if nn.size >= 2 else rr_mean
    if irregular:
        flags.append("irregular rhythm")
    paced = beats.paced_fraction(raw, record.fs, bc.peaks / prep.FS_HZ) >= PACED_FRACTION
    if paced:
        flags.append("paced")
    dom = bc.peaks[bc.dominant]
    if dom.size < MIN_BEATS:
        return _fail(f"too few beats: {dom.size} dominant beats (needs {MIN_BEATS})", values, flags=tuple(flags), **common)
    med = median.median_beats(x, dom, float(np.median(rr)))
    if med is None or med.n_beats < MIN_BEATS:
        return _fail("too few beats inside the record for a median beat", values, flags=tuple(flags), **common)
    mb = med.beats
    w = int(round(0.06 * prep.FS_HZ))
    qrs_pp = np.ptp(mb[:, med.origin - w:med.origin + w], axis=1)
    usable = (qrs_pp > FLAT_MV) & (qrs_pp >= NOISE_RATIO * med.noise_mv)
    common.update(median_beats=mb.astype(np.float32), median_t0_ms=-_ms(med.origin), flags=tuple(flags))
    if usable.sum() < MIN_USABLE_LEADS:
        return _fail("too noisy: fewer than 3 leads with a clear QRS", values, **common)
    ub = mb[usable]
    reasons: dict[str, str] = {}
    qrs_on, qrs_off = delineate.qrs_boundaries(ub, med.origin)
    if qrs_on is None or qrs_off is None:
        return _fail("QRS boundaries not found (too noisy)", values, **common)
    rr_med = float(np.median(rr))
    t_limit = med.origin + int(round(min(0.7, 0.72 * rr_med / 1000.0) * prep.FS_HZ))
    t_off, t_reason = delineate.t_end(ub, qrs_on, qrs_off, t_limit)
    stack = median.beat_stack(x, dom, med)[usable]
    p_on, p_off, p_reason = delineate.p_wave(ub, stack, med.noise_mv[usable], qrs_on, med.n_beats)
    if p_on is None and irregular:
        p_reason = "atrial fibrillation suspected: irregular RR, no consistent P wave"
    if paced:
        for k in ("qrs_ms", "qt_ms", "qtc_ms", "qrs_axis_deg", "t_axis_deg"):
            reasons[k] = "paced rhythm: QRS and repolarisation not measured"
    else:
        values["qrs_ms"] = round(_ms(qrs_off - qrs_on), 1)
    if p_on is None:
        for k in ("pr_ms", "p_ms", "p_axis_deg"):
            reasons[k] = p_reason or "no P wave"
    else:
        values["pr_ms"] = round(_ms(qrs_on - p_on), 1)
        values["p_ms"] = round(_ms(p_off - p_on), 1)
    q_all: dict[str, float] = {}
    if not paced:
        if t_off is None:
            for k in ("qt_ms", "qtc_ms", "t_axis_deg"):
                reasons[k] = t_reason or "no T wave end"
        else:
            values["qt_ms"] = round(_ms(t_off - qrs_on), 1)
            if irregular:
                reasons["qtc_ms"] = "irregular rhythm: QTc from a mean RR is not reliable"
            else:
                q_all = qtc_all(values["qt_ms"], rr_qtc)
                values["qtc_ms"] = q_all[DEFAULT_QTC_FORMULA]
    b0 = max(0, qrs_on - int(round(0.02 * prep.FS_HZ)))
    base = mb[:, b0:max(b0 + 1, qrs_on - 2)].mean(axis=1)
    if not paced:
        values["qrs_axis_deg"] = axes.wave_axis(mb, leads, base, qrs_on, qrs_off)
        if t_off is not None:
            values["t_axis_deg"] = axes.wave_axis(mb, leads, base, qrs_off, t_off)
    if p_on is not None:
        values["p_axis_deg"] = axes.wave_axis(mb, leads, base, p_on, p_off)
    for k in ("qrs_axis_deg", "t_axis_deg", "p_axis_deg"):
        if k not in reasons and values.get(k) is None:
            reasons[k] = "lead missing: I and aVF (or II) needed for the frontal axis"
    amps = amp_mod.lead_amplitudes(mb, leads, base, qrs_on, qrs_off,
                                   (p_on, p_off) if p_on is not None else None,
                                   (qrs_off, t_off) if t_off is not None else None)
    for r, name in enumerate(leads):
        if not usable[r]:
            amps[name] = {k: None for k in amps[name]}
            amps[name]["reason"] = "flat lead" if qrs_pp[r] <= FLAT_MV else "too noisy"  # type: ignore[assignment]
    voltage = amp_mod.voltage_criteria(amps, values.get("qrs_ms"), record.meta.get("sex"))
    full = {k: values.get(k) for k in GLOBAL_KEYS}
    for k, v in full.items():
        if v is None and k not in reasons:
            reasons[k] = "not measured"
    fid = {"p_on": p_on, "p_off": p_off, "qrs_on": qrs_on, "qrs_off": qrs_off, "t_off": t_off}
    fid_ms = {k: (None if v is None else round(_ms(v - med.origin), 1)) for k, v in fid.items()}
    return EcgMeasurements(values=full, reasons=reasons, methods=dict(METHODS), qtc_formula=DEFAULT_QTC_FORMULA,
                           qtc_all=q_all, amplitudes=amps, voltage=voltage, fiducials_ms=fid_ms, **common)
