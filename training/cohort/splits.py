"""Subject-level 70:10:20 train/val/test split with a fixed seed."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

SPLITS: tuple[str, ...] = ("train", "val", "test")
SPLIT_FRACTIONS: tuple[float, float, float] = (0.7, 0.1, 0.2)


def assign_splits(subject_ids: Iterable[int], seed: int = 0,
                  fractions: tuple[float, float, float] = SPLIT_FRACTIONS) -> dict[int, str]:
    """Split subjects into train / val / test.

    The unique subject ids are sorted, permuted with `numpy.random.default_rng(seed)`,
    and cut at floor(n * 0.7 + 0.5) and floor(n * 0.8 + 0.5): deterministic for a given set
    of subjects and seed, independent of the order the ids come in.

    Returns:
        subject_id (int) -> "train" | "val" | "test".
    """
    ids = np.unique(np.asarray(list(subject_ids), dtype=np.int64))
    n = len(ids)
    order = np.random.default_rng(seed).permutation(n)
    n_train = int(np.floor(n * fractions[0] + 0.5))
    n_val = int(np.floor(n * (fractions[0] + fractions[1]) + 0.5)) - n_train
    out: dict[int, str] = {}
    for rank, idx in enumerate(order):
        split = "train" if rank < n_train else "val" if rank < n_train + n_val else "test"
        out[int(ids[idx])] = split
    return out
