"""One ECG trace on the paper: exact samples in (seconds, mV), drawn through an item
transform onto paper millimetres, with clip-to-view and peak decimation so long
records stay fluid.

`EcgTrace.original()` is the engine's data, untouched; `getData()` is what is
currently handed to Qt (the visible slice, decimated only when there are more
than `MAX_SAMPLES_PER_PX` samples per screen pixel).
"""

from __future__ import annotations

import numpy as np

from app.qt import QtGui, pg

#: Decimate only when more than this many samples fall on one pixel.
MAX_SAMPLES_PER_PX = 8.0


def peak_decimate(t: np.ndarray, y: np.ndarray, ds: int) -> tuple[np.ndarray, np.ndarray]:
    """Min/max decimation: each block of `ds` samples becomes its min and max, in
    time order, so spikes (QRS, pacing) survive.

    Args:
        t, y: float `[n]`.
        ds: block length (>= 2).
    Returns:
        (t, y) float `[2 * (n // ds)]` (+ a tail block if n % ds).
    """
    n = (len(y) // ds) * ds
    if n == 0:
        return t, y
    yb = y[:n].reshape(-1, ds)
    tb = t[:n].reshape(-1, ds)
    i_min = yb.argmin(axis=1)
    i_max = yb.argmax(axis=1)
    first = np.minimum(i_min, i_max)
    second = np.maximum(i_min, i_max)
    rows = np.arange(yb.shape[0])
    y_out = np.stack([yb[rows, first], yb[rows, second]], axis=1).ravel()
    t_out = np.stack([tb[rows, first], tb[rows, second]], axis=1).ravel()
    if len(y) > n:
        y_out = np.concatenate([y_out, [y[n:].min(), y[n:].max()]])
        t_out = np.concatenate([t_out, [t[n], t[-1]]])
    return t_out, y_out


class EcgTrace(pg.PlotCurveItem):
    """A lead segment. Data in seconds (x) and mV (y); placed on paper with
    `place(x_mm, y_mm, t0_s, speed, gain)`."""

    def __init__(self, t_s: np.ndarray, mv: np.ndarray, pen: QtGui.QPen) -> None:
        super().__init__(pen=pen, skipFiniteCheck=True, connect="finite")
        self._t = np.ascontiguousarray(t_s, dtype=np.float64)
        self._y = np.ascontiguousarray(mv, dtype=np.float32)
        self._fs = (len(self._t) - 1) / (self._t[-1] - self._t[0]) if len(self._t) > 1 else 1.0
        self._shown: tuple[int, int, int] | None = None
        self._x_offset_mm, self._speed = 0.0, 1.0
        self.lod_enabled = True
        self.setData(self._t, self._y)

    def original(self) -> tuple[np.ndarray, np.ndarray]:
        """The exact samples: (t float64 `[n]` in s, y float32 `[n]` in mV)."""
        return self._t, self._y

    def place(self, x_mm: float, y_mm: float, t0_s: float, speed: float, gain: float) -> None:
        """Map (t, mV) to paper: x = x_mm + (t - t0) * speed, y = y_mm + mV * gain."""
        self.setTransform(QtGui.QTransform.fromScale(speed, gain))
        self.setPos(x_mm - t0_s * speed, y_mm)
        self._x_offset_mm, self._speed = x_mm - t0_s * speed, speed

    def update_lod(self, px_per_second: float, view_left_mm: float, view_right_mm: float) -> None:
        """Show only the visible samples, peak-decimated when dense.

        Args:
            px_per_second: screen pixels per second of record at the current zoom.
            view_left_mm, view_right_mm: paper x range currently visible.
        """
        if len(self._t) < 2:
            return
        t0 = self._t[0]
        left_s = (view_left_mm - self._x_offset_mm) / self._speed
        right_s = (view_right_mm - self._x_offset_mm) / self._speed
        lo = int(np.clip(np.floor((left_s - t0) * self._fs) - 2, 0, len(self._t)))
        hi = int(np.clip(np.ceil((right_s - t0) * self._fs) + 3, 0, len(self._t)))
        if hi - lo < 2:
            lo, hi = 0, min(2, len(self._t))
        spp = self._fs / max(px_per_second, 1e-9)
        ds = int(spp / 2) if (self.lod_enabled and spp > MAX_SAMPLES_PER_PX) else 1
        if not self.lod_enabled:
            lo, hi = 0, len(self._t)
        # snap to block boundaries so panning does not make the trace shimmer
        if ds > 1:
            lo = (lo // ds) * ds
        key = (lo, hi, ds)
        if key == self._shown:
            return
        self._shown = key
        t, y = self._t[lo:hi], self._y[lo:hi]
        if ds > 1:
            t, y = peak_decimate(t, y, ds)
        self.setData(t, y)
