"""onnxruntime inference on a verified model bundle.

A `Predictor` opens one onnxruntime session per ONNX file once, checks each
against the manifest (`engine.bundle.check_session`) and reuses them for every
prediction. It is safe to call from several threads (onnxruntime sessions are).
The pathologies' ECG models run concurrently, one Python thread each.

ECG aggregation rule: a record is cut into W >= 1 windows of 10 s by
`engine.preprocess.preprocess_ecg`; every window is scored, all W in one
onnxruntime run. The record's probability is the **mean of the window
probabilities** (sigmoid of each window's logit), its embedding the mean of
the window embeddings; the per-window probabilities are kept in
`Prediction.window_probabilities`. The out-of-distribution flag compares the
Mahalanobis distance of that mean embedding to the training statistics in
the manifest with the manifest's cut-off.

Calibration (`engine.calibration`): the ONNX models output the raw logit. When the bundle
states a temperature T for a model (`ModelSpec.temperature`), every probability shown is
calibrated: a window's is `sigmoid(logit / T)`, the record's is the record's raw probability
(above) mapped by `sigmoid(logit(p) / T)` (equal to the window's for one window), and the
threshold is the manifest's `threshold_calibrated`. `Prediction.positive` is the raw
decision (raw probability >= raw threshold), so the calls of a calibrated bundle are those of
the same models uncalibrated; the band is in calibrated units (`ModelSpec.band`). A bundle
without a temperature gives `sigmoid(logit)` as before (`Prediction.temperature` None:
"uncalibrated").

Calls: every `Prediction` carries `call` / `call_reason` (`engine.calls`): "not_assessable"
when flagged (quality, OOD), "borderline" inside the band the manifest states around the
threshold (`ModelSpec.band`), else "positive" / "negative". Chest X-rays go through the gate
(`engine.cxr_gate`) with `Predictor.assess_cxr`: tag and geometry checks before the teacher,
the teacher-embedding OOD check after it; `predict_cxr` is the teacher alone.

Determinism: sessions use a fixed number of intra-op threads, one inter-op
thread, sequential execution, a fixed graph optimisation level and
deterministic compute, so the same input gives bit-identical outputs in
repeated runs, in different `Predictor` instances, and in the CLI and the app.
(Measured on the shipped bundle: 1, 2 or 4 intra-op threads, spinning on or
off, give the same bits for a batch of one window; the batch size does not.)

Threads: onnxruntime's intra-op workers do not spin-wait between operators
(`session.intra_op.allow_spinning = 0`). On a 2-core machine shared with other
work (or with the CLI's reader thread) spinning workers steal the cores that
the other threads need: measured on the shipped int8 bundle with a training
job occupying both cores, batch-1 latency for all three models went from
48 ms (2 threads, spinning) to 12.7 ms (2 threads, no spinning).
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from engine.bundle import Bundle, EmbeddingStats, ModelSpec, check_session, load_bundle, read_verified
from engine.calibration import calibrate_probability, calibrated_probability
from engine.calls import not_assessable
from engine.cxr_gate import CxrAssessment, gate_cxr, with_embedding_check
from engine.constants import CXR_SIZE, ECG_SAMPLES, LEADS
from engine.errors import BundleError, InferenceError
from engine.preprocess import preprocess_cxr, preprocess_ecg
from engine.quality import assess_quality
from engine.records import CxrImage, EcgInput, EcgRecord, Prediction, QualityFlags
from engine.numeric import sigmoid  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)

# No telemetry (engine/__init__.py sets ORT_DISABLE_TELEMETRY before onnxruntime starts); also
# the explicit call, should onnxruntime have been imported before `engine`.
ort.disable_telemetry_events()

#: Intra-op threads of every session unless asked otherwise (fixed for determinism).
DEFAULT_THREADS = max(1, min(4, os.cpu_count() or 1))
#: Most ECG windows per onnxruntime run; larger batches are split.
DEFAULT_MAX_BATCH = 64
DEVICES = ("cpu", "cuda", "auto")
PRECISIONS = ("auto", "fp32", "int8")


@dataclass(frozen=True)
class WindowScores:
    """One ECG model's outputs for N windows.

    Attributes:
        logits: float32 `[N]`, the raw model outputs.
        probabilities: float64 `[N]`, the shown window probabilities: `sigmoid(logits / T)`
            for a calibrated model (temperature T), else `sigmoid(logits)`.
        embeddings: float32 `[N, 256]`.
    """

    logits: np.ndarray
    probabilities: np.ndarray
    embeddings: np.ndarray

    def rows(self, start: int, stop: int) -> "WindowScores":
        """Windows `start:stop` (e.g. one record's windows out of a micro-batch)."""
        return WindowScores(self.logits[start:stop], self.probabilities[start:stop],
                            self.embeddings[start:stop])


def ood_fields(stats: EmbeddingStats | None, embedding: np.ndarray) -> dict[str, Any]:
    """The out-of-distribution fields of a `Prediction` for one embedding (float `[D]`).

    Returns:
        {"ood": Mahalanobis distance to the training statistics > their cut-off,
        "ood_distance": that distance, "ood_cutoff": the cut-off}; (False, NaN, NaN)
        when the model has no statistics.
    """
    if stats is None:
        return {"ood": False, "ood_distance": float("nan"), "ood_cutoff": float("nan")}
    distance = float(stats.distance(embedding))
    return {"ood": distance > stats.cutoff, "ood_distance": distance, "ood_cutoff": stats.cutoff}


def _ecg_model_input(windows: np.ndarray) -> np.ndarray:
    """Contiguous float32 `[N, 12, 1000]` (N >= 1); InferenceError for any other shape."""
    x = np.asarray(windows)
    if x.ndim != 3 or x.shape[1:] != (len(LEADS), ECG_SAMPLES) or x.shape[0] < 1:
        raise InferenceError(f"ECG model input must be [N, {len(LEADS)}, {ECG_SAMPLES}] with "
                             f"N >= 1, got {list(x.shape)}")
    return np.ascontiguousarray(x, dtype=np.float32)


def session_options(threads: int = DEFAULT_THREADS) -> ort.SessionOptions:
    """Session options used for every bundle session (fixed for bit-identical outputs)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.use_deterministic_compute = True
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return opts


def providers_for(device: str) -> list[str]:
    """onnxruntime execution providers for `device` ("cpu", "cuda" or "auto").

    Raises:
        InferenceError: "cuda" asked but this onnxruntime has no CUDA provider.
    """
    if device not in DEVICES:
        raise InferenceError(f"unknown device {device!r}; use one of {', '.join(DEVICES)}")
    available = ort.get_available_providers()
    has_cuda = "CUDAExecutionProvider" in available
    if device == "cuda" and not has_cuda:
        raise InferenceError("CUDA was asked for but this onnxruntime has no CUDA provider "
                             f"(available: {', '.join(available)}). Install onnxruntime-gpu "
                             "with a matching CUDA, or use --device cpu")
    if device in ("cuda", "auto") and has_cuda:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class Predictor:
    """Scores ECGs (and chest X-rays) with a bundle's ONNX models.

    Args:
        models: a bundle directory, an already loaded `Bundle`, or None for the
            shipped bundle (`resources/models/`).
        device: "cpu" (default), "cuda" or "auto" (CUDA when available).
        precision: "auto" (the bundle's int8 ECG models when it has them, else
            fp32), "fp32" or "int8".
        threads: intra-op threads per session.
        max_batch: most windows per onnxruntime run.
        parallel_models: run the pathologies' ECG models concurrently (one Python
            thread each; onnxruntime releases the GIL). Same bits as one after the
            other; batch-1 latency of the shipped int8 bundle 12.6 -> 8.4 ms on 2 cores.

    Raises:
        BundleError: the bundle is missing, tampered with or incompatible.
        InferenceError: the device cannot be used.
    """

    def __init__(self, models: str | Path | Bundle | None = None, *, device: str = "cpu",
                 precision: str = "auto", threads: int = DEFAULT_THREADS,
                 max_batch: int = DEFAULT_MAX_BATCH, parallel_models: bool = True):
        self.bundle = models if isinstance(models, Bundle) else load_bundle(models)
        if precision not in PRECISIONS:
            raise InferenceError(f"unknown precision {precision!r}; use one of "
                                 f"{', '.join(PRECISIONS)}")
        has_int8 = all(s.int8_file for s in self.bundle.ecg.values())
        if precision == "int8" and not has_int8:
            raise BundleError(f"Model bundle {self.bundle.directory}: manifest.json lists no int8 "
                              "ECG model for every pathology; use precision fp32")
        self.precision = "int8" if (precision == "int8" or (precision == "auto" and has_int8)) \
            else "fp32"
        self.device = device
        self.providers = providers_for(device)
        self.threads = int(threads)
        self.max_batch = int(max_batch)
        opts = session_options(self.threads)
        self.ecg_files: dict[str, str] = {}
        self._ecg: dict[str, ort.InferenceSession] = {}
        for p, spec in self.bundle.ecg.items():
            file = spec.int8_file if self.precision == "int8" else spec.file
            self._ecg[p] = self._open(spec, file, opts)
            self.ecg_files[p] = file
        self._pool = ThreadPoolExecutor(max_workers=len(self._ecg), thread_name_prefix="cromotex-ort") \
            if parallel_models and len(self._ecg) > 1 else None
        self._cxr: dict[str, ort.InferenceSession] = {}
        for p, spec in self.bundle.cxr.items():
            if spec.file not in self._cxr:
                self._cxr[spec.file] = self._open(spec, spec.file, opts)
            else:
                check_session(self.bundle, spec, self._cxr[spec.file], spec.file)

    def _open(self, spec: ModelSpec, file: str, opts: ort.SessionOptions) -> ort.InferenceSession:
        model = read_verified(self.bundle, file)  # the bytes the signed manifest vouches for
        try:
            session = ort.InferenceSession(model, sess_options=opts, providers=self.providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise BundleError(f"Model bundle {self.bundle.directory}: {file}: onnxruntime cannot "
                              f"load it ({exc})") from None
        check_session(self.bundle, spec, session, file)
        return session

    # ------------------------------------------------------------------ description
    @property
    def demo(self) -> bool:
        return self.bundle.demo

    @property
    def pathologies(self) -> tuple[str, ...]:
        return tuple(self.bundle.ecg)

    @property
    def cxr_pathologies(self) -> tuple[str, ...]:
        return tuple(self.bundle.cxr)

    def describe(self) -> dict[str, Any]:
        """JSON-ready: bundle id, data provenance, demo flag and disclaimer, precision, device,
        calibrated (every ECG model temperature-scaled) and temperature {pathology: T or None}."""
        return {**self.bundle.describe(), "precision": self.precision,
                "device": "cuda" if self.providers[0].startswith("CUDA") else "cpu",
                **self.bundle.calibration()}

    # ------------------------------------------------------------------ ECG
    def predict_ecg_inputs(self, windows: np.ndarray) -> dict[str, WindowScores]:
        """Score model-ready windows with every pathology's ECG model.

        Args:
            windows: float32 `[N, 12, 1000]` (N >= 1), as `EcgInput.windows`.

        Returns:
            pathology -> `WindowScores` for the N windows, in input order.

        Raises:
            InferenceError: wrong shape, or onnxruntime failed / gave non-finite outputs.
        """
        return self.predict_ecg_inputs_each([windows])[0]

    def predict_ecg_inputs_each(self, records: list[np.ndarray]) -> list[dict[str, WindowScores]]:
        """Score several records' windows, each record in its own onnxruntime run (so each
        gets the same bits as `predict_ecg_inputs` alone), model by model: one model over
        every record, then the next, which keeps each model's weights in the CPU caches
        (0.6 ms less per 10 s record than record by record with the shipped int8 bundle on
        the 2-core machine; docs/results/inference.md).

        Args:
            records: float32 `[N_i, 12, 1000]` arrays (N_i >= 1), one per record.

        Returns:
            One dict pathology -> `WindowScores` per record, in input order.

        Raises:
            InferenceError: a wrong shape, or onnxruntime failed / gave non-finite outputs
                on any record (score them one by one to find which).
        """
        xs = [_ecg_model_input(w) for w in records]
        if self._pool is None:
            per_model = {p: [self._score_one(p, x) for x in xs] for p in self._ecg}
        else:
            futures = {p: self._pool.submit(lambda p: [self._score_one(p, x) for x in xs], p)
                       for p in self._ecg}
            per_model = {p: f.result() for p, f in futures.items()}
        return [{p: per_model[p][i] for p in self._ecg} for i in range(len(xs))]

    def _score_one(self, p: str, x: np.ndarray) -> WindowScores:
        """One pathology's ECG model on float32 `[N, 12, 1000]`, in chunks of max_batch."""
        session = self._ecg[p]
        logits, embs = [], []
        for start in range(0, x.shape[0], self.max_batch):
            chunk = x[start:start + self.max_batch]
            logit, emb = self._run(session, self.ecg_files[p], {"ecg": chunk})
            if logit.shape != (chunk.shape[0], 1) or emb.shape[0] != chunk.shape[0]:
                raise InferenceError(f"{self.ecg_files[p]} returned logit {logit.shape} and "
                                     f"embedding {emb.shape} for {chunk.shape[0]} windows")
            logits.append(logit[:, 0])
            embs.append(emb)
        lg = np.concatenate(logits).astype(np.float32, copy=False)
        t = self.bundle.ecg[p].temperature
        prob = sigmoid(lg) if t is None else calibrated_probability(lg, t)
        return WindowScores(logits=lg, probabilities=prob,
                            embeddings=np.concatenate(embs).astype(np.float32, copy=False))

    @staticmethod
    def _run(session: ort.InferenceSession, file: str, feed: dict) -> tuple[np.ndarray, np.ndarray]:
        try:
            logit, emb = session.run(["logit", "embedding"], feed)
        except Exception as exc:  # onnxruntime's exception types are not exported stably
            raise InferenceError(f"running {file} failed: {exc}") from None
        if not (np.isfinite(logit).all() and np.isfinite(emb).all()):
            raise InferenceError(f"{file} produced non-finite outputs")
        return logit, emb

    def ecg_predictions(self, scores: dict[str, WindowScores],
                        quality: QualityFlags | None = None) -> dict[str, Prediction]:
        """Aggregate one record's window scores into a `Prediction` per pathology.

        Probability = mean of window probabilities (uncalibrated model), or that raw mean
        mapped with the model's temperature (calibrated: `engine.calibration`); positive =
        the raw probability >= the raw threshold (the same decision either way); embedding =
        mean of window embeddings (float32 `[256]`); OOD = Mahalanobis distance of that
        embedding > the manifest's cut-off.
        """
        preds = {}
        for p, s in scores.items():
            spec = self.bundle.ecg[p]
            if spec.temperature is None:
                raw = prob = float(np.mean(s.probabilities))
            else:
                raw = float(np.mean(sigmoid(s.logits)))
                prob = float(s.probabilities[0]) if len(s.logits) == 1 else \
                    float(calibrate_probability(raw, spec.temperature))
            emb64 = np.mean(s.embeddings, axis=0, dtype=np.float64)
            preds[p] = Prediction(
                pathology=p, modality="ecg", probability=prob, threshold=spec.shown_threshold,
                positive=raw >= spec.threshold, embedding=emb64.astype(np.float32),
                model_name=self.ecg_files[p], provenance=self.bundle.data, demo=self.bundle.demo,
                quality=quality, **ood_fields(spec.stats, emb64),
                window_probabilities=tuple(float(v) for v in s.probabilities), band=spec.band,
                temperature=spec.temperature)
        return preds

    def predict_ecg_input(self, ecg_input: EcgInput,
                          quality: QualityFlags | None = None) -> dict[str, Prediction]:
        """Predictions for one preprocessed record (all its windows in one run)."""
        return self.ecg_predictions(self.predict_ecg_inputs(ecg_input.windows), quality)

    def predict_ecg(self, record: EcgRecord) -> dict[str, Prediction]:
        """Preprocess `record` (engine.preprocess), assess quality (engine.quality) and score it.

        Returns:
            pathology -> Prediction, in `PATHOLOGIES` order.

        Raises:
            PreprocessError, InferenceError.
        """
        ecg_input = preprocess_ecg(record)
        return self.predict_ecg_input(ecg_input, assess_quality(record, ecg_input))

    # ------------------------------------------------------------------ CXR
    def predict_cxr_input(self, x: np.ndarray) -> dict[str, Prediction]:
        """Teacher predictions for one preprocessed image, float32 `[1, 224, 224]` in [-1024, 1024]."""
        if not self._cxr:
            raise InferenceError(f"the model bundle {self.bundle.bundle_id} has no chest X-ray "
                                 "teacher models")
        x = np.asarray(x, dtype=np.float32)
        if x.shape != (1, CXR_SIZE, CXR_SIZE):
            raise InferenceError(f"CXR model input must be [1, {CXR_SIZE}, {CXR_SIZE}], got "
                                 f"{list(x.shape)}")
        feed = {"cxr": np.ascontiguousarray(x[None])}
        outputs = {f: self._run(s, f, feed) for f, s in self._cxr.items()}
        preds = {}
        for p, spec in self.bundle.cxr.items():
            logit, emb = outputs[spec.file]
            prob = float(sigmoid(logit[0, spec.output_index]))
            emb = emb[0].astype(np.float32)
            preds[p] = Prediction(
                pathology=p, modality="cxr", probability=prob, threshold=spec.threshold,
                positive=prob >= spec.threshold, embedding=emb, model_name=spec.file,
                provenance=self.bundle.data, demo=self.bundle.demo, **ood_fields(spec.stats, emb),
                band=spec.band)
        return preds

    def cxr_logits(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Teacher logits of N preprocessed images (e.g. occluded copies, `engine.explain`).

        Args:
            batch: float32 `[N, 1, 224, 224]` in [-1024, 1024], N >= 1.

        Returns:
            pathology -> float32 `[N]` logits, in `cxr_pathologies` order.

        Raises:
            InferenceError: no teacher, a wrong shape, or onnxruntime failed.
        """
        if not self._cxr:
            raise InferenceError(f"the model bundle {self.bundle.bundle_id} has no chest X-ray "
                                 "teacher models")
        x = np.asarray(batch, dtype=np.float32)
        if x.ndim != 4 or x.shape[1:] != (1, CXR_SIZE, CXR_SIZE) or x.shape[0] < 1:
            raise InferenceError(f"CXR batch must be [N, 1, {CXR_SIZE}, {CXR_SIZE}], got "
                                 f"{list(x.shape)}")
        outputs: dict[str, list[np.ndarray]] = {f: [] for f in self._cxr}
        for start in range(0, x.shape[0], self.max_batch):
            feed = {"cxr": np.ascontiguousarray(x[start:start + self.max_batch])}
            for f, s in self._cxr.items():
                outputs[f].append(self._run(s, f, feed)[0])
        logits = {f: np.concatenate(v) for f, v in outputs.items()}
        return {p: logits[spec.file][:, spec.output_index].astype(np.float32)
                for p, spec in self.bundle.cxr.items()}

    def predict_cxr(self, image: CxrImage) -> dict[str, Prediction]:
        """Preprocess `image` (engine.preprocess.preprocess_cxr) and run the teacher(s), without
        the gate (see `assess_cxr`)."""
        return self.predict_cxr_input(preprocess_cxr(image))

    def assess_cxr(self, image: CxrImage) -> CxrAssessment:
        """The gate (`engine.cxr_gate`) and, when its tag and geometry checks pass, the teacher.

        Returns:
            CxrAssessment: the gate's final decision (with the teacher-embedding OOD check
            when the teacher ran) and the predictions: none when refused before the teacher,
            all "not_assessable" with the gate's reason when refused on the embedding.

        Raises:
            PreprocessError, InferenceError.
        """
        decision = gate_cxr(image)
        if not decision.accepted:
            log.info("chest X-ray refused by the gate: %s", decision.reason)
            return CxrAssessment(decision, {})
        preds = self.predict_cxr(image)
        decision = with_embedding_check(decision, preds)
        if not decision.accepted:
            preds = {p: not_assessable(v, decision.reason) for p, v in preds.items()}
        return CxrAssessment(decision, preds)
