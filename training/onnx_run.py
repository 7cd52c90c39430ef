"""Batched onnxruntime passes of exported models (`x -> (logit [n, K], embedding [n, D])`),
shared by the exporter's parity check, the bundle build and `evaluate --onnx`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.data import take_rows


def session(model: bytes | str | Path):
    """A CPU `onnxruntime.InferenceSession` of an ONNX file or serialised model, warnings off."""
    import onnxruntime as ort
    ort.disable_telemetry_events()  # no network (ORT_DISABLE_TELEMETRY is set by `engine`)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    src = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])


def _width(sess, output: int) -> int:
    """The static last dimension of output `output` (0 when symbolic)."""
    dim = sess.get_outputs()[output].shape[-1]
    return dim if isinstance(dim, int) else 0


def predict(sess, input_name: str, arr: np.ndarray, idx: np.ndarray | None = None,
            batch: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(logits float32 `[n, K]`, embeddings float32 `[n, D]`) of rows `idx` of `arr` (all rows
    when None), `batch` rows per run, each batch read in ascending row order (`take_rows`,
    for memory-mapped cohort arrays) and fed as float32. With no rows: `[0, K]`, `[0, D]`."""
    idx = np.arange(len(arr)) if idx is None else np.asarray(idx)
    logits, embs = [], []
    for s in range(0, len(idx), batch):
        x = take_rows(arr, idx[s:s + batch], np.float32)
        lg, emb = sess.run(["logit", "embedding"], {input_name: x})
        logits.append(lg)
        embs.append(emb)
    if not logits:
        return np.zeros((0, _width(sess, 0)), np.float32), np.zeros((0, _width(sess, 1)), np.float32)
    return np.concatenate(logits), np.concatenate(embs)
