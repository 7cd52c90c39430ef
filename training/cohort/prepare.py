"""Read and preprocess one source file into its COHORT row, through the engine
(the same reader and preprocessing the app uses at inference time).

Functions here run in worker processes: they take and return plain data.
"""

from __future__ import annotations

import numpy as np

from engine.constants import CXR_RANGE, CXR_SIZE, ECG_SAMPLES, LEADS
from engine.errors import CromotexError
from engine.io import read_cxr, read_ecg
from engine.preprocess import preprocess_cxr, preprocess_ecg

ECG_ROW_SHAPE: tuple[int, int] = (len(LEADS), ECG_SAMPLES)
CXR_ROW_SHAPE: tuple[int, int, int] = (1, CXR_SIZE, CXR_SIZE)


def prepare_ecg(path: str) -> np.ndarray:
    """float32 `[12, 1000]`: first window of `preprocess_ecg(read_ecg(path))`
    (100 Hz, 10 s, leads in `LEADS` order, each lead in [-1, 1])."""
    row = np.asarray(preprocess_ecg(read_ecg(path)).windows[0], dtype=np.float32)
    if row.shape != ECG_ROW_SHAPE:
        raise CromotexError(f"preprocess_ecg gave shape {row.shape}, expected {ECG_ROW_SHAPE}")
    return row


def prepare_cxr(path: str) -> np.ndarray:
    """int16 `[1, 224, 224]`: `round(preprocess_cxr(read_cxr(path)))`, values in
    [-1024, 1024] (exact for the integer grey levels of a JPEG)."""
    x = np.asarray(preprocess_cxr(read_cxr(path)), dtype=np.float32)
    if x.shape != CXR_ROW_SHAPE:
        raise CromotexError(f"preprocess_cxr gave shape {x.shape}, expected {CXR_ROW_SHAPE}")
    return np.clip(np.rint(x), *CXR_RANGE).astype(np.int16)


def _attempt(func, path: str) -> tuple[np.ndarray | None, str | None]:
    """(row, None) or (None, "ErrorType: message"). Typed engine errors are the
    expected failures; anything else is reported as "unexpected" (a reader bug)
    so that one bad file cannot end a long build."""
    try:
        return func(path), None
    except CromotexError as exc:
        return None, f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - reported as a reader bug, see docstring
        return None, f"unexpected {type(exc).__name__}: {exc}"


def ecg_job(path: str) -> tuple[np.ndarray | None, str | None]:
    """Worker entry: one SSL ECG."""
    return _attempt(prepare_ecg, path)


def pair_job(job: tuple[str | None, str]) -> tuple[np.ndarray | None, str | None,
                                                   np.ndarray | None, str | None]:
    """Worker entry: one pair `(ecg_path or None when already prepared, cxr_path)`
    -> (ecg row, ecg error, cxr row, cxr error)."""
    ecg_path, cxr_path = job
    ecg, ecg_err = _attempt(prepare_ecg, ecg_path) if ecg_path is not None else (None, None)
    if ecg_err is not None:
        return None, ecg_err, None, None
    cxr, cxr_err = _attempt(prepare_cxr, cxr_path)
    return ecg, None, cxr, cxr_err
