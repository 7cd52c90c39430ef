"""Saliency maps by occlusion, batched through the bundle's onnxruntime sessions (no torch).

Why occlusion: it needs no extra graphs in the signed bundle, it runs on the same verified
sessions as the predictions (`engine.inference.Predictor`), and every value of a map can be
checked by hand: it is the drop in the model's probability when that part of the input is
replaced by a neutral value (tests/engine/test_explain.py recomputes one patch directly).

ECG (input float32 `[W, 12, 1000]`, 100 Hz, each lead min-max scaled to [-1, 1]):
- ``mode="grid"``: one occlusion per (lead, time segment) of every window: the lead's samples
  in that segment (default 1 s, about one beat) are replaced by the lead's median in that
  window (its baseline after preprocessing). 12 x 10 = 120 model runs per 10 s window.
- ``mode="separable"`` (fast, the app's default): 12 whole-lead occlusions plus one
  occlusion per segment across all leads (22 runs per window); the map at (lead, segment)
  is sqrt(max(lead drop, 0) * max(segment drop, 0)), a rank-one picture of "which leads"
  times "which beats" that cannot show a lead-and-beat interaction.
All occlusions of all windows run in one `Predictor.predict_ecg_inputs` call, which scores
the three pathologies' models concurrently; the unoccluded windows are in the same batch.
The record probability is the mean of the window probabilities, so the record-level value
of a patch in window w is that window's probability drop / W. The map is float32
`[12, T]` on a 100 Hz grid from the record's start (`times_s`); the model saw the record
resampled to 100 Hz and cut into 10 s windows (`EcgInput.report["window_starts_s"]`).

CXR (input float32 `[1, 224, 224]`, the centre square of the image resized): a G x G grid
of patches (default 7 x 7, 32 px) each replaced by the image's mean value; one batch of
G*G + 1 teacher runs gives the maps of all the teacher's findings. The map is float32
`[224, 224]` (the patch's drop over its pixels); `extent` = (top, left, side) locates the
model's square on the displayed image in its pixels.

Precision: maps are computed with the bundle's fp32 models (`Explainer` opens them from the
same verified bundle). The int8 models quantise activations dynamically per batch, so their
outputs depend on what else is in the batch: measured on PTB-XL 00001_lr, the int8
probability of the same window moved by 7e-4 between batch sizes, as large as a typical
occlusion drop, whereas fp32 maps equal a direct recomputation to 1e-7.

Units: a map value is a probability difference in [-1, 1]; positive = this part pushed the
probability up. A map is a description of the model's sensitivity to removing parts of the
input, not evidence that the finding is present there (docs/explain.md).

Validity: the map of a prediction that is not assessable (`Prediction.call ==
"not_assessable"` where the engine sets it, out of distribution, or an ECG whose signal
quality was flagged) is returned with ``valid=False`` and the reason; the app does not show
it as a valid map.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.constants import CXR_SIZE, ECG_FS_HZ, ECG_SAMPLES, LEADS
from engine.errors import InferenceError
from engine.numeric import sigmoid
from engine.records import EcgInput, Prediction

if TYPE_CHECKING:  # pragma: no cover
    from engine.inference import Predictor

log = logging.getLogger(__name__)

ECG_MODES = ("grid", "separable")
#: Default ECG occlusion segment in seconds (about one beat at 60 bpm).
DEFAULT_SEGMENT_S = 1.0
#: Default CXR occlusion grid (G x G patches over the 224 x 224 input).
DEFAULT_CXR_GRID = 7


@dataclass(frozen=True)
class SaliencyMap:
    """One finding's occlusion map.

    Attributes:
        pathology: one of `engine.constants.PATHOLOGIES`.
        modality: "ecg" or "cxr".
        values: float32, ECG `[12, T]` (rows in `LEADS` order, columns at `times_s`),
            CXR `[224, 224]` over the model's input square. Probability drop when that part
            is occluded (positive = supports the finding).
        probability: the model's probability on the unoccluded input (same batch).
        valid: False when the prediction was flagged (see `reason`): do not show as valid.
        reason: why the map is not valid ("" when valid).
        method: short description, e.g. "occlusion grid 12 leads x 1.0 s, lead median".
        times_s: ECG only: float64 `[T]`, seconds from the record's start of each column.
        extent: CXR only: (top, left, side) of the model's square in the displayed image's
            pixels (centre square of the image).
        lead_scores: ECG only: per lead the sum over time of the positive part of `values`,
            float64 `[12]` in `LEADS` order.
        summary: ECG: "V5, V6 and I contribute most"; CXR: where the maximum is.
        seconds: wall time of the batch that computed this map (shared by its findings).
    """

    pathology: str
    modality: str
    values: np.ndarray
    probability: float
    valid: bool = True
    reason: str = ""
    method: str = ""
    times_s: np.ndarray | None = None
    extent: tuple[int, int, int] | None = None
    lead_scores: np.ndarray | None = None
    summary: str = ""
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """JSON-ready description (no arrays)."""
        out: dict[str, Any] = {"pathology": self.pathology, "modality": self.modality,
                               "probability": self.probability, "valid": self.valid,
                               "reason": self.reason, "method": self.method,
                               "summary": self.summary, "shape": list(self.values.shape),
                               "max": float(self.values.max()), "min": float(self.values.min())}
        if self.lead_scores is not None:
            out["lead_scores"] = {lead: float(v) for lead, v in zip(LEADS, self.lead_scores)}
        if self.extent is not None:
            out["extent"] = list(self.extent)
        return out


class Explainer:
    """Computes maps with fp32 sessions of an already loaded predictor's bundle.

    Args:
        predictor: the app's / CLI's `Predictor`; reused as is when it is fp32, else an fp32
            `Predictor` of the same verified `Bundle` is opened (once, on first use, so build
            it in a worker thread).
    """

    def __init__(self, predictor: "Predictor") -> None:
        self.source = predictor
        self._fp32: "Predictor | None" = predictor if predictor.precision == "fp32" else None
        self._lock = threading.Lock()

    @property
    def predictor(self) -> "Predictor":
        """The fp32 `Predictor` (opened on first use; safe from several threads)."""
        with self._lock:
            return self._open()

    def _open(self) -> "Predictor":
        if self._fp32 is None:
            from engine.inference import Predictor  # local: engine.inference imports numpy/ort only
            p = self.source
            self._fp32 = Predictor(p.bundle, device=p.device, precision="fp32", threads=p.threads,
                                   max_batch=p.max_batch)
        return self._fp32

    def ecg(self, ecg_input: EcgInput, predictions: dict[str, Prediction] | None = None,
            **kwargs: Any) -> dict[str, "SaliencyMap"]:
        """`explain_ecg` with the fp32 models."""
        return explain_ecg(self.predictor, ecg_input, predictions, **kwargs)

    def cxr(self, x: np.ndarray, predictions: dict[str, Prediction] | None = None,
            **kwargs: Any) -> dict[str, "SaliencyMap"]:
        """`explain_cxr` with the teacher (fp32 in every bundle: the source predictor's)."""
        return explain_cxr(self.source, x, predictions, **kwargs)


# ---------------------------------------------------------------------- validity
def not_assessable_reason(pred: Prediction | None) -> str:
    """Why a prediction's map must not be shown as valid ("" when it may)."""
    if pred is None:
        return "no prediction"
    if getattr(pred, "call", None) == "not_assessable":
        # the engine's call already names every flag behind it (quality, OOD, gate): one reason
        return str(getattr(pred, "call_reason", "") or "not assessable")
    reasons: list[str] = []
    if pred.ood:
        reasons.append(f"out of distribution (d={pred.ood_distance:.1f} > {pred.ood_cutoff:.1f})")
    q = pred.quality
    if q is not None and not q.ok:
        reasons += [f"{name} leads: {', '.join(leads)}" for name, leads in q.lead_problems()]
        if q.short_record:
            reasons.append("short record")
    return "; ".join(dict.fromkeys(reasons))


# ---------------------------------------------------------------------- ECG
@dataclass(frozen=True)
class EcgOcclusion:
    """One occluded copy of window `window`: lead rows `leads` over samples [start, stop)."""

    window: int
    leads: tuple[int, ...]
    start: int
    stop: int


def ecg_segments(segment_s: float = DEFAULT_SEGMENT_S) -> list[tuple[int, int]]:
    """[start, stop) sample ranges covering one 1000-sample window in steps of `segment_s`."""
    step = int(round(segment_s * ECG_FS_HZ))
    if step < 1 or step > ECG_SAMPLES:
        raise InferenceError(f"ECG occlusion segment must be 0.01 to {ECG_SAMPLES / ECG_FS_HZ:g} s, "
                             f"got {segment_s}")
    return [(s, min(s + step, ECG_SAMPLES)) for s in range(0, ECG_SAMPLES, step)]


def ecg_occlusions(n_windows: int, mode: str = "grid",
                   segment_s: float = DEFAULT_SEGMENT_S) -> list[EcgOcclusion]:
    """The occlusions of `mode` for `n_windows` windows, in batch order."""
    if mode not in ECG_MODES:
        raise InferenceError(f"unknown ECG saliency mode {mode!r}; use one of {', '.join(ECG_MODES)}")
    segs = ecg_segments(segment_s)
    out: list[EcgOcclusion] = []
    for w in range(n_windows):
        if mode == "grid":
            out += [EcgOcclusion(w, (lead,), s0, s1) for lead in range(len(LEADS)) for s0, s1 in segs]
        else:
            out += [EcgOcclusion(w, (lead,), 0, ECG_SAMPLES) for lead in range(len(LEADS))]
            out += [EcgOcclusion(w, tuple(range(len(LEADS))), s0, s1) for s0, s1 in segs]
    return out


def occlude_ecg(windows: np.ndarray, occlusions: list[EcgOcclusion]) -> np.ndarray:
    """The occluded copies, float32 `[len(occlusions), 12, 1000]`: each occluded lead's
    samples replaced by that lead's median in its window (its baseline after preprocessing)."""
    x = np.asarray(windows, dtype=np.float32)
    fill = np.median(x, axis=2).astype(np.float32)          # [W, 12]
    batch = x[[o.window for o in occlusions]].copy()
    for i, o in enumerate(occlusions):
        rows = list(o.leads)
        batch[i, rows, o.start:o.stop] = fill[o.window, rows, None]
    return batch


def ecg_window_maps(drops: np.ndarray, occlusions: list[EcgOcclusion], n_windows: int,
                     mode: str) -> np.ndarray:
    """float32 `[W, 12, 1000]` window maps from the probability drops `[len(occlusions)]`."""
    maps = np.zeros((n_windows, len(LEADS), ECG_SAMPLES), dtype=np.float32)
    if mode == "grid":
        for d, o in zip(drops, occlusions):
            maps[o.window, list(o.leads), o.start:o.stop] = d
        return maps
    lead_drop = np.zeros((n_windows, len(LEADS)))
    seg_drop = np.zeros((n_windows, ECG_SAMPLES))
    for d, o in zip(drops, occlusions):
        if len(o.leads) == 1:
            lead_drop[o.window, o.leads[0]] = d
        else:
            seg_drop[o.window, o.start:o.stop] = d
    maps[:] = np.sqrt(np.maximum(lead_drop, 0.0)[:, :, None] * np.maximum(seg_drop, 0.0)[:, None, :])
    return maps


def lead_summary(lead_scores: np.ndarray, top: int = 3) -> str:
    """"V5, V6 and I contribute most" from per-lead scores `[12]` (LEADS order)."""
    scores = np.asarray(lead_scores, dtype=np.float64)
    if not np.any(scores > 0):
        return "no lead's occlusion lowered the probability"
    order = [int(i) for i in np.argsort(-scores, kind="stable") if scores[i] > 0][:top]
    names = [LEADS[i] for i in order]
    text = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"{text} contribute{'s' if len(names) == 1 else ''} most"


def explain_ecg(predictor: "Predictor", ecg_input: EcgInput,
                predictions: dict[str, Prediction] | None = None, *, mode: str = "separable",
                segment_s: float = DEFAULT_SEGMENT_S) -> dict[str, SaliencyMap]:
    """Occlusion maps of every pathology's ECG model for one preprocessed record.

    Args:
        predictor: the loaded `Predictor` (its verified sessions are used).
        ecg_input: the record's model input (`engine.preprocess.preprocess_ecg`).
        predictions: the record's predictions (for validity); None = all maps valid
            unless the caller checks.
        mode: "separable" (12 + segments runs per window) or "grid" (12 x segments).
        segment_s: occlusion segment length in seconds.

    Returns:
        pathology -> `SaliencyMap` with values float32 `[12, 1000 * W / 1000 * 100]`.

    Raises:
        InferenceError: bad mode / segment, wrong input shape, onnxruntime failure.
    """
    t0 = time.perf_counter()
    windows = np.asarray(ecg_input.windows, dtype=np.float32)
    n_w = int(windows.shape[0])
    occlusions = ecg_occlusions(n_w, mode, segment_s)
    batch = np.concatenate([windows, occlude_ecg(windows, occlusions)])
    scores = predictor.predict_ecg_inputs(batch)
    seconds = time.perf_counter() - t0
    starts = [int(round(s * ECG_FS_HZ)) for s in
              ecg_input.report.get("window_starts_s", [k * 10.0 for k in range(n_w)])]
    total = max(starts) + ECG_SAMPLES
    times = np.arange(total, dtype=np.float64) / ECG_FS_HZ
    step = int(round(segment_s * ECG_FS_HZ))
    method = (f"occlusion {mode} {len(LEADS)} leads x {step / ECG_FS_HZ:g} s segments, "
              f"lead median; {len(occlusions)} runs")
    out: dict[str, SaliencyMap] = {}
    for p, s in scores.items():
        base = s.probabilities[:n_w]
        occluded = s.probabilities[n_w:]
        drops = base[[o.window for o in occlusions]] - occluded
        wmaps = ecg_window_maps(drops, occlusions, n_w, mode) / np.float32(n_w)
        values = np.zeros((len(LEADS), total), dtype=np.float32)
        for w, start in enumerate(starts):
            values[:, start:start + ECG_SAMPLES] += wmaps[w]
        lead_scores = np.maximum(values, 0.0).sum(axis=1, dtype=np.float64) / ECG_FS_HZ
        reason = not_assessable_reason(predictions.get(p)) if predictions is not None else ""
        out[p] = SaliencyMap(pathology=p, modality="ecg", values=values,
                             probability=float(np.mean(base)), valid=not reason, reason=reason,
                             method=method, times_s=times, lead_scores=lead_scores,
                             summary=lead_summary(lead_scores), seconds=seconds)
    log.info("ECG occlusion maps (%s): %d runs x %d models in %.2f s", mode, len(batch),
             len(scores), seconds)
    return out


# ---------------------------------------------------------------------- CXR
def cxr_patches(grid: int = DEFAULT_CXR_GRID) -> list[tuple[int, int, int, int]]:
    """(row0, row1, col0, col1) of the G x G occlusion patches over the 224 x 224 input."""
    if grid < 1 or grid > CXR_SIZE:
        raise InferenceError(f"CXR occlusion grid must be 1 to {CXR_SIZE}, got {grid}")
    edges = np.linspace(0, CXR_SIZE, grid + 1).round().astype(int)
    return [(int(edges[i]), int(edges[i + 1]), int(edges[j]), int(edges[j + 1]))
            for i in range(grid) for j in range(grid)]


def occlude_cxr(x: np.ndarray, patches: list[tuple[int, int, int, int]]) -> np.ndarray:
    """float32 `[len(patches), 1, 224, 224]`: each patch replaced by the image's mean."""
    img = np.asarray(x, dtype=np.float32).reshape(1, CXR_SIZE, CXR_SIZE)
    fill = np.float32(img.mean())
    batch = np.repeat(img[None], len(patches), axis=0)
    for i, (r0, r1, c0, c1) in enumerate(patches):
        batch[i, 0, r0:r1, c0:c1] = fill
    return batch


def cxr_extent(image_shape: tuple[int, int]) -> tuple[int, int, int]:
    """(top, left, side) of the model's centre square in an image of shape (H, W)."""
    h, w = int(image_shape[0]), int(image_shape[1])
    side = min(h, w)
    return (h - side) // 2, (w - side) // 2, side


def _cxr_summary(values: np.ndarray) -> str:
    r, c = np.unravel_index(int(np.argmax(values)), values.shape)
    vert = ("upper", "middle", "lower")[min(2, r * 3 // CXR_SIZE)]
    horiz = ("image left", "centre", "image right")[min(2, c * 3 // CXR_SIZE)]
    if values.max() <= 0:
        return "no region's occlusion lowered the probability"
    return f"largest drop in the {vert} zone, {horiz}"


def explain_cxr(predictor: "Predictor", x: np.ndarray,
                predictions: dict[str, Prediction] | None = None, *,
                image_shape: tuple[int, int] | None = None,
                grid: int = DEFAULT_CXR_GRID) -> dict[str, SaliencyMap]:
    """Occlusion maps of the chest X-ray teacher for every finding, one batch.

    Args:
        predictor: the loaded `Predictor`.
        x: float32 `[1, 224, 224]` in [-1024, 1024] (`engine.preprocess.preprocess_cxr`).
        predictions: the image's predictions (for validity), or None.
        image_shape: (H, W) of the displayed image, for `extent`; None = the input square.
        grid: patches per side.

    Returns:
        pathology -> `SaliencyMap` with values float32 `[224, 224]`.
    """
    t0 = time.perf_counter()
    patches = cxr_patches(grid)
    img = np.asarray(x, dtype=np.float32).reshape(1, CXR_SIZE, CXR_SIZE)
    batch = np.concatenate([img[None], occlude_cxr(img, patches)])
    logits = predictor.cxr_logits(batch)
    seconds = time.perf_counter() - t0
    extent = cxr_extent(image_shape) if image_shape is not None else (0, 0, CXR_SIZE)
    method = (f"occlusion {grid} x {grid} patches ({CXR_SIZE // grid} px), image mean; "
              f"{len(patches)} runs")
    out: dict[str, SaliencyMap] = {}
    for p, lg in logits.items():
        prob = sigmoid(lg.astype(np.float32))
        drops = prob[0] - prob[1:]
        values = np.zeros((CXR_SIZE, CXR_SIZE), dtype=np.float32)
        for d, (r0, r1, c0, c1) in zip(drops, patches):
            values[r0:r1, c0:c1] = d
        reason = not_assessable_reason(predictions.get(p)) if predictions is not None else ""
        out[p] = SaliencyMap(pathology=p, modality="cxr", values=values,
                             probability=float(prob[0]), valid=not reason, reason=reason,
                             method=method, extent=extent, summary=_cxr_summary(values),
                             seconds=seconds)
    log.info("CXR occlusion maps: %d runs in %.2f s", len(batch), seconds)
    return out
