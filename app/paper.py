"""ECG paper maths: screen calibration, speed/gain scaling, layouts, the samples of
each panel, the grid, calipers.

Pure functions, no Qt; shared by the ECG view and the PDF export. The ECG view
works in *paper millimetres*: x grows to the right, y grows upwards; a trace of
lead samples (seconds, millivolts) is placed on paper by
`x_mm = x0 + (t - t0) * speed` and `y_mm = y0 + v * gain`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.constants import LEADS

#: Paper speeds offered, mm/s.
SPEEDS_MM_S: tuple[float, ...] = (12.5, 25.0, 50.0)
#: Gains offered, mm/mV.
GAINS_MM_MV: tuple[float, ...] = (5.0, 10.0, 20.0)
DEFAULT_SPEED_MM_S = 25.0
DEFAULT_GAIN_MM_MV = 10.0

#: Layout names, in the order of the keyboard shortcuts 1, 2, 3.
LAYOUTS: tuple[str, ...] = ("3x4", "6x2", "12x1")
LAYOUT_TITLES: dict[str, str] = {
    "3x4": "3×4 + rhythm strip",
    "6x2": "6×2",
    "12x1": "12×1 (whole record)",
}

#: Limb leads in Cabrera (hexaxial) order; aVR is shown inverted as −aVR.
CABRERA_LIMB: tuple[str, ...] = ("aVL", "I", "aVR", "II", "aVF", "III")
STANDARD_LIMB: tuple[str, ...] = LEADS[:6]
PRECORDIAL: tuple[str, ...] = LEADS[6:]

#: Width of the calibration-pulse margin at the start of each row, mm.
CAL_MARGIN_MM = 10.0
#: Calibration pulse: 1 mV high, 0.2 s wide.
CAL_PULSE_MV = 1.0
CAL_PULSE_S = 0.2

#: Grid line spacing, mm: minor and major (every 5th minor line) squares.
MINOR_MM, MAJOR_MM = 1.0, 5.0
#: Paper and grid line colours (RGB).
PAPER_RGB = (255, 247, 247)
MINOR_RGB = (246, 190, 190)
MAJOR_RGB = (226, 110, 110)

#: Row heights (mm) per layout.
ROW_HEIGHT_MM: dict[str, float] = {"3x4": 30.0, "6x2": 30.0, "12x1": 20.0}

#: Fallback logical DPI when the screen reports no plausible physical size.
FALLBACK_DPI = 96.0
MM_PER_INCH = 25.4


def px_per_mm(physical_dpi: float | None, logical_dpi: float | None = None,
              override_dpi: float | None = None) -> float:
    """Device-independent pixels per millimetre of the screen.

    Args:
        physical_dpi: `QScreen.physicalDotsPerInch()` (pixels per real inch).
        logical_dpi: `QScreen.logicalDotsPerInch()`, used when the physical value is
            implausible (missing EDID, projectors: outside 50..600).
        override_dpi: a user calibration (ruler measured on screen) that wins.
    Returns:
        pixels per mm (float > 0).
    """
    for dpi in (override_dpi, physical_dpi, logical_dpi):
        if dpi is not None and np.isfinite(dpi) and 50.0 <= float(dpi) <= 600.0:
            return float(dpi) / MM_PER_INCH
    return FALLBACK_DPI / MM_PER_INCH


@dataclass(frozen=True)
class Panel:
    """One lead segment placed on the paper.

    Attributes:
        lead: canonical lead name (row of `EcgRecord.signal`).
        label: text drawn on paper ("II", "−aVR", "II (rhythm)").
        invert: draw the negated signal (Cabrera −aVR).
        t0_s, t1_s: time span of the record shown, seconds.
        x_mm: paper x of `t0_s`; y_mm: paper y of the 0 mV baseline.
        row: row index from the top.
    """

    lead: str
    label: str
    invert: bool
    t0_s: float
    t1_s: float
    x_mm: float
    y_mm: float
    row: int


def _grid_columns(layout: str, cabrera: bool) -> list[list[str]]:
    limb = CABRERA_LIMB if cabrera else STANDARD_LIMB
    if layout == "3x4":
        return [list(limb[0:3]), list(limb[3:6]), list(PRECORDIAL[0:3]), list(PRECORDIAL[3:6])]
    if layout == "6x2":
        return [list(limb), list(PRECORDIAL)]
    if layout == "12x1":
        return [list(limb) + list(PRECORDIAL)]
    raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")


def page_seconds(layout: str, duration_s: float) -> float:
    """Seconds of record shown by one page of `layout` (12×1 shows the whole record)."""
    if layout == "12x1":
        return float(duration_s)
    return 10.0


def layout_panels(layout: str, leads: tuple[str, ...], duration_s: float,
                  speed_mm_s: float, page_start_s: float = 0.0,
                  rhythm_lead: str = "II", cabrera: bool = False) -> list[Panel]:
    """Place the record's leads on paper.

    Args:
        layout: one of `LAYOUTS`.
        leads: leads present in the record (canonical names); absent ones leave a gap.
        duration_s: record duration, seconds.
        speed_mm_s: paper speed.
        page_start_s: first second shown (3×4 and 6×2 show 10 s pages).
        rhythm_lead: lead of the 3×4 rhythm strip.
        cabrera: limb leads in Cabrera order with −aVR.
    Returns:
        panels, top row first; time spans are clipped to the record.
    """
    columns = _grid_columns(layout, cabrera)
    row_h = ROW_HEIGHT_MM[layout]
    span = page_seconds(layout, duration_s)
    col_s = span / len(columns)
    panels: list[Panel] = []
    n_rows = max(len(c) for c in columns)
    for c, column in enumerate(columns):
        for r, lead in enumerate(column):
            if lead not in leads:
                continue
            t0 = page_start_s + c * col_s
            t1 = min(t0 + col_s, duration_s)
            if t0 >= duration_s:
                continue
            invert = cabrera and lead == "aVR"
            panels.append(Panel(lead=lead, label=("−aVR" if invert else lead), invert=invert,
                                t0_s=t0, t1_s=t1,
                                x_mm=CAL_MARGIN_MM + c * col_s * speed_mm_s,
                                y_mm=-(r + 0.5) * row_h, row=r))
    if layout == "3x4" and rhythm_lead in leads and page_start_s < duration_s:
        panels.append(Panel(lead=rhythm_lead, label=f"{rhythm_lead}", invert=False,
                            t0_s=page_start_s, t1_s=min(page_start_s + span, duration_s),
                            x_mm=CAL_MARGIN_MM, y_mm=-(n_rows + 0.5) * row_h, row=n_rows))
    return panels


@dataclass(frozen=True)
class Segment:
    """The samples one panel draws.

    Attributes:
        panel: where it goes on the paper.
        t_s: float64 `[n]` time of each sample from the record start, seconds (n >= 2).
        mv: `[n]` amplitude in mV in the signal's dtype, negated for an inverted panel.
        first_in_row: the first segment drawn in its row (the row's calibration pulse
            is drawn with it).
    """

    panel: Panel
    t_s: np.ndarray
    mv: np.ndarray
    first_in_row: bool


def panel_segments(panels: list[Panel], signal: np.ndarray, fs: float,
                   leads: tuple[str, ...]) -> list[Segment]:
    """Cut each panel's time span out of `signal`.

    Args:
        panels: from `layout_panels`.
        signal: `[n_leads, n_samples]` in mV, rows in the order of `leads`.
        fs: sampling rate, Hz.
        leads: lead name of each row of `signal`.
    Returns:
        one segment per panel, in panel order; panels spanning fewer than 2 samples
        are left out.
    """
    segments: list[Segment] = []
    rows: set[int] = set()
    for panel in panels:
        i0 = int(round(panel.t0_s * fs))
        i1 = min(int(round(panel.t1_s * fs)), signal.shape[1])
        if i1 - i0 < 2:
            continue
        y = signal[leads.index(panel.lead), i0:i1]
        segments.append(Segment(panel=panel, t_s=np.arange(i0, i1, dtype=np.float64) / fs,
                                mv=-y if panel.invert else y, first_in_row=panel.row not in rows))
        rows.add(panel.row)
    return segments


def grid_offsets(lo_mm: float, hi_mm: float, step_mm: float, skip_every: int = 0) -> list[float]:
    """Grid lines every `step_mm` from the paper's edge that lie between `lo_mm` and
    `hi_mm` (both measured from that edge), as distances (mm) from it; `skip_every` k > 0
    leaves out every k-th line from the edge (where a major line goes)."""
    i0 = int(math.ceil(lo_mm / step_mm - 1e-9))
    i1 = int(math.floor(hi_mm / step_mm + 1e-9))
    return [i * step_mm for i in range(i0, i1 + 1) if not (skip_every and i % skip_every == 0)]


def paper_size_mm(layout: str, duration_s: float, speed_mm_s: float) -> tuple[float, float]:
    """(width, height) of the paper in mm for `layout`, including the calibration margin
    and a 10 mm strip at the bottom for the scale label."""
    n_rows = {"3x4": 4, "6x2": 6, "12x1": 12}[layout]
    width = CAL_MARGIN_MM + page_seconds(layout, duration_s) * speed_mm_s + 5.0
    height = n_rows * ROW_HEIGHT_MM[layout] + 10.0
    # round up to whole 5 mm squares so the paper ends on a major line
    return float(np.ceil(width / 5.0) * 5.0), float(np.ceil(height / 5.0) * 5.0)


def calibration_pulse_mm(x_mm: float, y_mm: float, gain_mm_mv: float,
                         speed_mm_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Polyline (x, y in mm) of a 1 mV × 0.2 s calibration pulse starting at (x, y).

    Returns two float64 arrays of 6 vertices.
    """
    w = CAL_PULSE_S * speed_mm_s
    h = CAL_PULSE_MV * gain_mm_mv
    lead_in = 2.0
    xs = np.array([x_mm, x_mm + lead_in, x_mm + lead_in, x_mm + lead_in + w,
                   x_mm + lead_in + w, x_mm + 2 * lead_in + w])
    ys = np.array([y_mm, y_mm, y_mm + h, y_mm + h, y_mm, y_mm])
    return xs, ys


def lead_box_mm(panel: Panel, layout: str, speed_mm_s: float) -> tuple[float, float, float, float]:
    """The box a panel's trace is drawn in (and clipped to on paper): (x_left, x_right,
    y_bottom, y_top) in paper mm, its time span wide and its row high (baseline in the
    middle)."""
    half = ROW_HEIGHT_MM[layout] / 2
    return (panel.x_mm, panel.x_mm + (panel.t1_s - panel.t0_s) * speed_mm_s,
            panel.y_mm - half, panel.y_mm + half)


def label_x_mm(panel_x_mm: float, first_in_row: bool, speed_mm_s: float) -> float:
    """Paper x (mm) of a lead label: 1 mm into its panel, and past the calibration
    pulse (drawn from x = 0.5 mm) in the first panel of a row, which at 50 mm/s
    reaches 14.5 mm, beyond the 10 mm margin."""
    x = panel_x_mm + 1.0
    if first_in_row:
        pulse_xs, _ = calibration_pulse_mm(0.5, 0.0, 1.0, speed_mm_s)
        x = max(x, float(pulse_xs[-1]) + 1.0)
    return x


def interval_ms(dx_mm: float, speed_mm_s: float) -> float:
    """Time (ms) spanned by `dx_mm` of paper at `speed_mm_s`."""
    return abs(dx_mm) / speed_mm_s * 1000.0


def rate_bpm(interval: float) -> float:
    """Heart rate (beats/min) implied by an R-R interval in ms (inf for 0)."""
    return 60000.0 / interval if interval > 0 else float("inf")


def amplitude_mv(dy_mm: float, gain_mm_mv: float) -> float:
    """Amplitude (mV) spanned by `dy_mm` of paper at `gain_mm_mv`."""
    return abs(dy_mm) / gain_mm_mv


def marching_positions(x1_mm: float, x2_mm: float, x_min: float, x_max: float,
                       limit: int = 200) -> list[float]:
    """Positions of marching-caliper ticks: x1 + k (x2 - x1) for every integer k
    (k not 0 or 1) that falls inside [x_min, x_max], at most `limit` of them."""
    step = x2_mm - x1_mm
    if abs(step) < 1e-9:
        return []
    step = abs(step)
    lo = min(x1_mm, x2_mm)
    hi = max(x1_mm, x2_mm)
    out: list[float] = []
    k0 = int(np.floor((x_min - lo) / step))
    k1 = int(np.ceil((x_max - lo) / step))
    for k in range(k0, k1 + 1):
        x = lo + k * step
        if x_min <= x <= x_max and not (abs(x - lo) < 1e-9 or abs(x - hi) < 1e-9):
            out.append(float(x))
        if len(out) >= limit:
            break
    return out
