"""Saliency maps in the app: the "Explain" controls under the ECG and the chest X-ray, the
maps computed on demand in a worker thread (never on the GUI thread), drawn by
`app.views.saliency_overlay`.

One occlusion batch gives the maps of all three findings (engine.explain, "separable" mode
for the ECG); the finding box only switches which one is drawn. A map is kept only for the
record / image it was computed for: opening another file clears it, and a result that
arrives for a file no longer shown is dropped. A map of a flagged prediction is not drawn;
the caption says it is not assessable and why.
"""

from __future__ import annotations

import logging
from typing import Any

from app import workers
from app.qt import QtCore, QtWidgets
from app.views.saliency_overlay import CxrSaliencyOverlay, EcgSaliencyBands, map_caption
from engine.constants import PATHOLOGIES, PATHOLOGY_NAMES
from engine.explain import Explainer, SaliencyMap

log = logging.getLogger(__name__)


class ExplainBar(QtWidgets.QWidget):
    """[x] Explain  [finding v]  caption  (and, for the X-ray, an opacity slider)."""

    def __init__(self, label: str, opacity: bool = False,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.toggle = QtWidgets.QCheckBox(label)
        self.toggle.setToolTip("Occlusion map: how much the model's probability falls when each "
                               "part of the input is hidden. Not a diagnosis; see the model card.")
        self.finding = QtWidgets.QComboBox()
        for p in PATHOLOGIES:
            self.finding.addItem(PATHOLOGY_NAMES[p], p)
        self.caption = QtWidgets.QLabel("")
        self.caption.setWordWrap(True)
        lay = QtWidgets.QHBoxLayout(self)
        lay.setContentsMargins(4, 2, 4, 2)
        lay.addWidget(self.toggle)
        lay.addWidget(self.finding)
        self.opacity: QtWidgets.QSlider | None = None
        if opacity:
            self.opacity = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
            self.opacity.setRange(0, 100)
            self.opacity.setValue(50)
            self.opacity.setMaximumWidth(120)
            self.opacity.setToolTip("Opacity of the map over the film")
            lay.addWidget(QtWidgets.QLabel("Opacity"))
            lay.addWidget(self.opacity)
        lay.addWidget(self.caption, 1)

    @property
    def pathology(self) -> str:
        return str(self.finding.currentData())


class SaliencyController(QtCore.QObject):
    """Wires the Explain bars to a `Controller` (its predictor, record, image, predictions
    and worker pool) and to the overlays."""

    def __init__(self, controller: Any) -> None:
        super().__init__(controller)
        self.c = controller
        w = controller.w
        self.ecg_bar = ExplainBar("Explain ECG")
        self.cxr_bar = ExplainBar("Explain X-ray", opacity=True)
        w.ecg_view.parentWidget().layout().addWidget(self.ecg_bar)
        w.cxr_view.layout().addWidget(self.cxr_bar)
        self.bands = EcgSaliencyBands(w.ecg_view)
        self.overlay = CxrSaliencyOverlay(w.cxr_view, 0.5)
        self.ecg_maps: dict[str, SaliencyMap] = {}
        self.cxr_maps: dict[str, SaliencyMap] = {}
        self._for = {"ecg": None, "cxr": None}  # the record / image the maps were computed for
        self._explainer: Explainer | None = None
        self._busy = {"ecg": False, "cxr": False}
        self._workers: set[workers.Worker] = set()  # referenced until they report
        self.ecg_bar.toggle.toggled.connect(lambda _: self._update("ecg"))
        self.cxr_bar.toggle.toggled.connect(lambda _: self._update("cxr"))
        self.ecg_bar.finding.currentIndexChanged.connect(lambda _: self._show("ecg"))
        self.cxr_bar.finding.currentIndexChanged.connect(lambda _: self._show("cxr"))
        self.cxr_bar.opacity.valueChanged.connect(lambda v: self.overlay.set_opacity(v / 100))
        controller.ecg_shown.connect(lambda _: self._reset("ecg"))
        controller.cxr_shown.connect(lambda _: self._reset("cxr"))
        controller.ecg_predicted.connect(lambda _: self._update("ecg"))
        controller.cxr_predicted.connect(lambda _: self._update("cxr"))

    # ------------------------------------------------------------------ state
    def explainer(self) -> Explainer | None:
        p = self.c.predictor
        if p is None:
            return None
        if self._explainer is None or self._explainer.source is not p:
            self._explainer = Explainer(p)
        return self._explainer

    def _bar(self, kind: str) -> ExplainBar:
        return self.ecg_bar if kind == "ecg" else self.cxr_bar

    def _reset(self, kind: str) -> None:
        """A new file is shown: its old maps go at once."""
        if kind == "ecg":
            self.ecg_maps = {}
        else:
            self.cxr_maps = {}
        self._for[kind] = None
        self._show(kind)

    def _update(self, kind: str) -> None:
        """Toggle or new predictions: compute the maps if wanted and missing, else show."""
        bar = self._bar(kind)
        maps = self.ecg_maps if kind == "ecg" else self.cxr_maps
        if bar.toggle.isChecked() and not maps and not self._busy[kind]:
            self.compute(kind)
        self._show(kind)

    def compute(self, kind: str) -> bool:
        """Start computing `kind`'s maps in a worker; False when there is nothing to explain."""
        ex = self.explainer()
        data = self.c.record if kind == "ecg" else self.c.cxr
        preds = dict(self.c.ecg_predictions if kind == "ecg" else self.c.cxr_predictions)
        if ex is None or data is None or not preds:
            return False
        self._busy[kind] = True
        self._bar(kind).caption.setText("Computing the map…")
        fn = _explain_ecg if kind == "ecg" else _explain_cxr
        holder: list[workers.Worker] = []

        def done(maps: dict, seconds: float) -> None:
            self._workers.discard(holder[0])
            self._done(kind, data, maps, seconds)

        def failed(exc: BaseException) -> None:
            self._workers.discard(holder[0])
            self._failed(kind, data, exc)

        holder.append(workers.start(fn, ex, data, preds, pool=self.c.pool,
                                    name=f"explain {kind}", on_done=done, on_failed=failed))
        self._workers.add(holder[0])
        return True

    def _still_shown(self, kind: str, data: Any) -> bool:
        return (self.c.record if kind == "ecg" else self.c.cxr) is data

    def _done(self, kind: str, data: Any, maps: dict, seconds: float) -> None:
        self._busy[kind] = False
        if not self._still_shown(kind, data):  # another file was opened meanwhile
            log.info("explain %s: result for a file no longer shown dropped", kind)
            self._update(kind)
            return
        log.info("explain %s: %.2f s", kind, seconds)
        if kind == "ecg":
            self.ecg_maps = maps
        else:
            self.cxr_maps = maps
        self._for[kind] = data
        self._show(kind)

    def _failed(self, kind: str, data: Any, exc: BaseException) -> None:
        self._busy[kind] = False
        if self._still_shown(kind, data):
            self._bar(kind).caption.setText(f"No map: {exc}")

    def _show(self, kind: str) -> None:
        bar = self._bar(kind)
        maps = self.ecg_maps if kind == "ecg" else self.cxr_maps
        m = maps.get(bar.pathology) if bar.toggle.isChecked() else None
        if kind == "ecg":
            self.bands.set_map(m, self._for["ecg"])
        else:
            self.overlay.set_map(m, self._for["cxr"])
        if not self._busy[kind]:
            bar.caption.setText(map_caption(m))

    def export_maps(self) -> dict[str, dict[str, SaliencyMap]]:
        """For the PDF: the maps of each kind whose Explain box is ticked (all findings)."""
        out = {}
        if self.ecg_bar.toggle.isChecked() and self.ecg_maps:
            out["ecg"] = dict(self.ecg_maps)
        if self.cxr_bar.toggle.isChecked() and self.cxr_maps:
            out["cxr"] = dict(self.cxr_maps)
        return out

    def shown_map(self, kind: str) -> SaliencyMap | None:
        """The map drawn now for `kind` (None when off, missing or not assessable)."""
        m = self.bands.map if kind == "ecg" else self.overlay.map
        return m if m is not None and m.valid else None


def _explain_ecg(explainer: Explainer, record: Any, preds: dict) -> dict[str, SaliencyMap]:
    """Worker: preprocess the record and compute its three ECG maps (separable occlusion)."""
    from engine.preprocess import preprocess_ecg

    return explainer.ecg(preprocess_ecg(record), preds, mode="separable")


def _explain_cxr(explainer: Explainer, image: Any, preds: dict) -> dict[str, SaliencyMap]:
    """Worker: preprocess the image and compute the teacher's maps."""
    from engine.preprocess import preprocess_cxr

    return explainer.cxr(preprocess_cxr(image), preds, image_shape=image.pixels.shape)
