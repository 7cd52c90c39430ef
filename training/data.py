"""Load a COHORT directory (docs/cohort.md) for training, without touching the
source MIMIC / phantom files again.

Arrays are memory-mapped read-only: indexing a batch reads just those rows.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.constants import CXR_SIZE, ECG_SAMPLES, LEADS, PATHOLOGIES, preprocessing_constants
from engine.errors import CorruptFileError, MissingFileError, PreprocessError

from training.cohort.splits import SPLITS
_FILES = ("cohort.json", "pairs.csv", "ecg.npy", "cxr.npy", "ssl.csv", "ssl_ecg.npy")


@dataclass(frozen=True)
class Cohort:
    """A built cohort.

    Attributes:
        path: the COHORT directory.
        ecg: float32 `[N, 12, 1000]` (memmap): preprocessed ECG of pair i, leads in
            `engine.constants.LEADS` order, 100 Hz, each lead in [-1, 1].
        cxr: int16 `[N, 1, 224, 224]` (memmap): preprocessed CXR of pair i, in
            [-1024, 1024]; use `cxr_float` for model input.
        subject_id: int64 `[N]`.
        split: str `[N]`, "train" | "val" | "test".
        labels: pathology name (`PATHOLOGIES`) -> int64 `[N]` in {0, 1}.
        ssl_ecg: float32 `[M, 12, 1000]` (memmap): the SSL pool (no test subject).
        ssl_subject_id: int64 `[M]`.
        ssl_split: str `[M]`, "train" | "val" | "unlinked".
        info: cohort.json as a dict (inputs, link rule, counts, seed, ...).
        pairs: the rows of pairs.csv (str values), row i <-> ecg[i], cxr[i].
    """

    path: Path
    ecg: np.ndarray
    cxr: np.ndarray
    subject_id: np.ndarray
    split: np.ndarray
    labels: dict[str, np.ndarray]
    ssl_ecg: np.ndarray
    ssl_subject_id: np.ndarray
    ssl_split: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)
    pairs: list[dict[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.ecg.shape[0])

    def mask(self, split: str) -> np.ndarray:
        """bool `[N]`: pairs of `split` ("train", "val" or "test")."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        return self.split == split

    def indices(self, split: str) -> np.ndarray:
        """int64 indices of the pairs of `split`, ascending."""
        return np.flatnonzero(self.mask(split)).astype(np.int64)

    def label(self, pathology: str) -> np.ndarray:
        """int64 `[N]` of 0/1 labels of one pathology (`PATHOLOGIES`)."""
        if pathology not in self.labels:
            raise ValueError(f"Cohort {self.path} has no label column {pathology!r}.")
        return self.labels[pathology]

    def label_matrix(self, names: tuple[str, ...] = PATHOLOGIES) -> np.ndarray:
        """int64 `[N, len(names)]` of 0/1 labels, columns in `names` order."""
        return np.stack([self.labels[n] for n in names], axis=1)

    def prevalence(self, split: str) -> dict[str, float]:
        """Fraction of positives per pathology in `split` (NaN when empty)."""
        m = self.mask(split)
        return {n: float(self.labels[n][m].mean()) if m.any() else float("nan")
                for n in PATHOLOGIES}


def take_rows(arr: np.ndarray, idx: np.ndarray, dtype: np.dtype | None = None) -> np.ndarray:
    """Rows `idx` (int `[b]`, any order, repeats allowed) of a memory-mapped array `[N, ...]`
    -> a new array `[b, ...]` of `dtype` (default: `arr.dtype`) with row i = `arr[idx[i]]`.

    The rows are read in ascending index order (sequential I/O) and put back in `idx` order.
    """
    order = np.argsort(idx, kind="stable")
    rows = np.empty((len(idx),) + arr.shape[1:], dtype=arr.dtype if dtype is None else dtype)
    rows[order] = arr[idx[order]]
    return rows


def cxr_float(cxr: np.ndarray) -> np.ndarray:
    """int16 CXR rows `[..., 1, 224, 224]` -> float32 model input, same shape,
    in [-1024, 1024] (TorchXRayVision convention)."""
    return np.asarray(cxr, dtype=np.float32)


def _load_npy(path: Path, shape_tail: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    try:
        arr = np.load(path, mmap_mode="r")
    except ValueError:  # an empty array cannot be memory-mapped
        arr = np.load(path)
    except OSError as exc:
        raise CorruptFileError(f"{path} is not a readable .npy array ({exc}); rebuild the "
                               f"cohort with `cromotex-train cohort`.") from exc
    if arr.shape[1:] != shape_tail or arr.dtype != dtype:
        raise CorruptFileError(f"{path} holds {arr.dtype} {arr.shape}, expected {np.dtype(dtype)} "
                               f"[N, {', '.join(map(str, shape_tail))}]; rebuild the cohort.")
    return arr


def _read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def load_cohort(path: str | Path, check_preprocessing: bool = True) -> Cohort:
    """Open a COHORT directory.

    Args:
        path: the directory written by `cromotex-train cohort`.
        check_preprocessing: refuse a cohort built with other preprocessing
            constants than this code's (`engine.constants.preprocessing_constants`).

    Raises:
        MissingFileError: the directory or one of its files is missing (an
            unfinished build has no cohort.json).
        CorruptFileError: arrays and tables disagree in shape, dtype or length.
        PreprocessError: the cohort was built with other preprocessing constants.
    """
    root = Path(path)
    for name in _FILES:
        if not (root / name).is_file():
            raise MissingFileError(f"{root / name} is missing: is {root} a finished COHORT "
                                   f"directory? Build one with `cromotex-train cohort`.")
    info = json.loads((root / "cohort.json").read_text())
    if check_preprocessing and info.get("preprocessing") != preprocessing_constants():
        raise PreprocessError(f"{root} was built with preprocessing {info.get('preprocessing')}, "
                              f"this code uses {preprocessing_constants()}; rebuild the cohort.")
    ecg_shape = (len(LEADS), ECG_SAMPLES)
    ecg = _load_npy(root / "ecg.npy", ecg_shape, np.dtype(np.float32))
    cxr = _load_npy(root / "cxr.npy", (1, CXR_SIZE, CXR_SIZE), np.dtype(np.int16))
    ssl_ecg = _load_npy(root / "ssl_ecg.npy", ecg_shape, np.dtype(np.float32))
    pairs = _read_rows(root / "pairs.csv")
    ssl = _read_rows(root / "ssl.csv")
    if not (len(pairs) == ecg.shape[0] == cxr.shape[0]) or len(ssl) != ssl_ecg.shape[0]:
        raise CorruptFileError(
            f"{root}: pairs.csv has {len(pairs)} rows, ecg.npy {ecg.shape[0]}, cxr.npy "
            f"{cxr.shape[0]}; ssl.csv {len(ssl)}, ssl_ecg.npy {ssl_ecg.shape[0]}. Rebuild it.")
    if any(int(r["index"]) != i for i, r in enumerate(pairs)):
        raise CorruptFileError(f"{root}/pairs.csv: index column is not 0..N-1; rebuild it.")
    return Cohort(
        path=root, ecg=ecg, cxr=cxr,
        subject_id=np.array([int(r["subject_id"]) for r in pairs], dtype=np.int64),
        split=np.array([r["split"] for r in pairs], dtype=str),
        labels={n: np.array([int(r[n]) for r in pairs], dtype=np.int64) for n in PATHOLOGIES},
        ssl_ecg=ssl_ecg,
        ssl_subject_id=np.array([int(r["subject_id"]) for r in ssl], dtype=np.int64),
        ssl_split=np.array([r["split"] for r in ssl], dtype=str),
        info=info, pairs=pairs)
