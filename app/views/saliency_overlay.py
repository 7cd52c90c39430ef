"""Drawing of occlusion saliency maps (engine.explain.SaliencyMap): a heat band under each
lead on the ECG paper, and a heat overlay with an opacity on the chest X-ray.

The overlays only draw maps they are given; they never compute. An invalid map (a flagged
prediction) is not drawn: the overlay is cleared and `caption` says why.
"""

from __future__ import annotations

import numpy as np

from app import paper
from app.qt import QtCore, pg
from app.views.cxr_view import CxrView
from app.views.ecg_view import EcgView
from engine.constants import ECG_FS_HZ, LEADS, PATHOLOGY_NAMES
from engine.explain import SaliencyMap

#: Heat band height and its gap above the bottom of the lead's row, paper mm.
BAND_MM = 2.0
BAND_GAP_MM = 0.5
#: Largest alpha of the heat (0..255) where the map is at its maximum.
BAND_ALPHA = 200
HEAT_RGB = (220, 30, 30)


def heat_rgba(values: np.ndarray, top: float, alpha: int = BAND_ALPHA) -> np.ndarray:
    """uint8 RGBA `[..., 4]`: HEAT_RGB with alpha = alpha * max(v, 0) / top."""
    v = np.maximum(np.asarray(values, dtype=np.float32), 0.0)
    a = np.clip(v / top, 0.0, 1.0) if top > 0 else np.zeros_like(v)
    out = np.empty(v.shape + (4,), dtype=np.uint8)
    out[..., 0], out[..., 1], out[..., 2] = HEAT_RGB
    out[..., 3] = (a * alpha).round().astype(np.uint8)
    return out


def map_caption(m: SaliencyMap | None) -> str:
    """One line for the map shown: "Cardiomegaly: V5, V6 and I contribute most (largest
    drop 0.003)", or why it is not shown."""
    if m is None:
        return ""
    name = PATHOLOGY_NAMES.get(m.pathology, m.pathology)
    if not m.valid:
        return f"{name}: map not shown, not assessable ({m.reason})"
    return (f"{name}: {m.summary} (largest probability drop {m.values.max():.2g} "
            f"of p = {m.probability:.2f})")


class EcgSaliencyBands:
    """Heat bands under the leads of an `EcgView`, redrawn when its display changes.

    Each band shows, for the time span of its panel, the map's row of that lead: the
    redder, the more the probability fell when that lead was occluded there. Colour is
    scaled to the map's largest positive value (over all leads and times).
    """

    def __init__(self, view: EcgView) -> None:
        self.view = view
        self.map: SaliencyMap | None = None
        self.source: object | None = None  # the EcgRecord the map was computed for
        self._items: list[pg.ImageItem] = []
        self._bands: list[tuple[str, float, float, np.ndarray]] = []
        view.display_changed.connect(self.redraw)
        view.record_changed.connect(self._check_record)  # drop bands of another record

    def _check_record(self, *_: object) -> None:
        if self._items and self.view.record is not self.source:
            self.clear()

    def set_map(self, m: SaliencyMap | None, record: object | None = None) -> None:
        """Show `m`, computed for `record` (None or an invalid map clears the bands). The
        bands are drawn only while the view shows that very record."""
        self.map, self.source = m, record
        self.redraw()

    def bands(self) -> list[tuple[str, float, float, np.ndarray]]:
        """(lead, t0_s, t1_s, rgba uint8 `[n, 4]`) of every band drawn, in trace order."""
        return list(self._bands)

    def clear(self) -> None:
        for item in self._items:
            self.view.viewbox.removeItem(item)
        self._items, self._bands = [], []

    def redraw(self) -> None:
        self.clear()
        m = self.map
        if m is None or not m.valid or m.times_s is None or self.view.record is None \
                or self.view.record is not self.source:
            return
        top = float(m.values.max())
        row_mid = paper.ROW_HEIGHT_MM[self.view.layout_name] / 2
        n = m.values.shape[1]
        for panel, _trace in self.view.traces():
            if panel.lead not in LEADS:
                continue
            c0 = int(np.clip(round(panel.t0_s * ECG_FS_HZ), 0, n))
            c1 = int(np.clip(round(panel.t1_s * ECG_FS_HZ), 0, n))
            if c1 <= c0:
                continue
            rgba = heat_rgba(m.values[LEADS.index(panel.lead), c0:c1], top)
            item = pg.ImageItem(rgba[None], axisOrder="row-major")
            x0 = panel.x_mm
            width = (c1 - c0) / ECG_FS_HZ * self.view.speed
            y0 = panel.y_mm - row_mid + BAND_GAP_MM
            item.setRect(QtCore.QRectF(x0, y0, width, BAND_MM))
            item.setZValue(-50)  # above the paper grid (-100), below the traces
            self.view.viewbox.addItem(item, ignoreBounds=True)
            self._items.append(item)
            self._bands.append((panel.lead, c0 / ECG_FS_HZ, c1 / ECG_FS_HZ, rgba))


class CxrSaliencyOverlay:
    """A heat image over a `CxrView`'s film, on the model's centre square, with an opacity."""

    def __init__(self, view: CxrView, opacity: float = 0.5) -> None:
        self.view = view
        self.map: SaliencyMap | None = None
        self.item = pg.ImageItem(axisOrder="row-major")
        self.item.setZValue(10)
        view.viewbox.addItem(self.item)
        self.set_opacity(opacity)
        self.rgba: np.ndarray | None = None

    @property
    def opacity(self) -> float:
        return float(self.item.opacity())

    def set_opacity(self, value: float) -> None:
        self.item.setOpacity(float(np.clip(value, 0.0, 1.0)))

    def set_map(self, m: SaliencyMap | None, image: object | None = None) -> None:
        """Show `m`, computed for `image`, over the film (None, an invalid map or another
        image than the one shown hides the overlay)."""
        self.map = m
        if m is None or not m.valid or m.extent is None or self.view.image is None \
                or self.view.image is not image:
            self.item.clear()
            self.item.setVisible(False)
            self.rgba = None
            return
        self.rgba = heat_rgba(m.values, float(m.values.max()), alpha=255)
        top, left, side = m.extent
        self.item.setImage(self.rgba, autoLevels=False, levels=(0, 255))
        self.item.setRect(QtCore.QRectF(left, top, side, side))
        self.item.setVisible(True)

    def rect(self) -> tuple[float, float, float, float]:
        """(left, top, width, height) of the overlay in image pixels."""
        r = self.item.mapRectToParent(self.item.boundingRect())
        return r.left(), r.top(), r.width(), r.height()
