"""Preprocessing shared by training and inference: any record -> model input.

`preprocess_ecg(record) -> EcgInput` (float32 `[W, 12, 1000]`) and
`preprocess_cxr(image) -> np.ndarray` (float32 `[1, 224, 224]`).
"""

from engine.preprocess.cxr import preprocess_cxr
from engine.preprocess.ecg import preprocess_ecg

__all__ = ["preprocess_ecg", "preprocess_cxr"]
