"""A tiny COHORT directory in the docs/cohort.md format, written in tmp for stage tests.

ECGs: a per-class sinusoid plus noise (so that a label is learnable), float32
[N, 12, 1000] in [-1, 1]; CXRs: int16 [N, 1, 224, 224] with a brighter disc for
positives. Labels alternate so every split has both classes.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from engine.constants import PATHOLOGIES, preprocessing_constants

PAIRS_HEADER = ["index", "subject_id", "split", "ecg_study_id", "ecg_file", "ecg_time", "cxr_study_id",
                "dicom_id", "cxr_file", "view_position", "cxr_time", "stay_id", *PATHOLOGIES]


def write_tiny_cohort(root: Path, n: int = 24, n_ssl: int = 16, seed: int = 0) -> Path:
    """Write a COHORT of `n` pairs (60/20/20 split) and `n_ssl` SSL ECGs into `root`."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    t = np.arange(1000) / 100.0
    labels = np.stack([(np.arange(n) // (j + 1)) % 2 for j in range(len(PATHOLOGIES))], axis=1)
    splits = np.array(["train"] * int(n * 0.6) + ["val"] * int(n * 0.2), dtype=object)
    splits = np.concatenate([splits, ["test"] * (n - len(splits))])

    def ecg(y: int) -> np.ndarray:
        f = 1.0 + y
        x = np.sin(2 * np.pi * f * t + rng.uniform(0, 6.28, (12, 1))) + 0.2 * rng.standard_normal((12, 1000))
        return (x / np.abs(x).max(axis=1, keepdims=True)).astype(np.float32)

    np.save(root / "ecg.npy", np.stack([ecg(int(y)) for y in labels[:, 0]]))
    yy, xx = np.mgrid[:224, :224]
    disc = ((yy - 112) ** 2 + (xx - 112) ** 2 < 60 ** 2)
    cxr = rng.integers(-600, 600, (n, 1, 224, 224)).astype(np.int16)
    cxr[labels[:, 0] == 1, 0][:, disc] = 900
    np.save(root / "cxr.npy", cxr)
    np.save(root / "ssl_ecg.npy", np.stack([ecg(int(rng.integers(0, 2))) for _ in range(n_ssl)]))
    with open(root / "pairs.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(PAIRS_HEADER)
        for i in range(n):
            w.writerow([i, 1000 + i, splits[i], 5000 + i, f"e{i}", "2180-01-01 00:00:00", 7000 + i, f"d{i}",
                        f"c{i}.jpg", "PA", "2180-01-01 01:00:00", 9000 + i, *labels[i]])
    with open(root / "ssl.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["index", "subject_id", "split", "ecg_study_id", "ecg_file"])
        for i in range(n_ssl):
            w.writerow([i, 2000 + i, "val" if i % 4 == 0 else "train", 6000 + i, f"s{i}"])
    (root / "cohort.json").write_text(json.dumps({"preprocessing": preprocessing_constants(), "seed": seed,
                                                   "source": "tests/training/cohort_fixture.py"}))
    return root
