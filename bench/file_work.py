"""Benchmark of the per-file work of `cromotex predict`: what reading, preprocessing and
checking one ECG costs besides inference, step by step.

    python bench/file_work.py [--formats wfdb|all|dicom] [--reps 200] [--json OUT]

For each sample record of tests/data (10 s, the same records as bench/predict.py) it
times, in this process on one core (median of `--reps` timed calls, in ms):

- read: `read_ecg(path, annotations=False)`, as the CLI reads;
- preprocess: `preprocess_ecg` as a whole, and its kernels: the FIR resampling to 100 Hz,
  the two exact median filters (0.2 s and 0.6 s at 100 Hz) and the min-max scaling;
- quality: `assess_quality` as a whole, and its kernels: the flat, clipping and noise tests;
- per file, the same kernels applied once to 16 copies of the record stacked row-wise,
  divided by 16: the per-file cost when a worker task's files are processed together
  (it shows whether the cost is Python call overhead or the arithmetic itself).

Every ms here is taken from inference on a machine whose cores all run inference
(docs/results/inference.md); the figures say what a faster kernel would have to beat.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from engine.constants import ECG_BASELINE_MEDIAN_S, ECG_FS_HZ, ECG_SAMPLES, ECG_SCALE  # noqa: E402
from engine.io import read_ecg  # noqa: E402
from engine.preprocess import preprocess_ecg  # noqa: E402
from engine.preprocess.ecg import assemble_leads  # noqa: E402
from engine.preprocess.filters import median_filter_rows, median_kernel, minmax_scale, resample  # noqa: E402
from engine.quality import assess_quality, flat_rows, noise_measures, saturated_rows  # noqa: E402
from predict import sample_files, timed  # noqa: E402

STACK = 16  # files per worker task (engine.batch.FILES_PER_TASK)


def median_ms(fn, reps: int) -> float:
    """Median wall time of `fn()` in ms over `reps` calls, after 3 warm-up calls."""
    return float(np.median(timed(fn, reps)) * 1000)


def steps(path: Path, reps: int) -> dict[str, float]:
    """ms per call of each step for one record, and per file of the 16-stacked kernels."""
    record = read_ecg(path, annotations=False)
    leads, _ = assemble_leads(record)
    x100 = resample(leads, record.fs, ECG_FS_HZ)[:, :ECG_SAMPLES]
    k1, k2 = (median_kernel(s, ECG_FS_HZ) for s in ECG_BASELINE_MEDIAN_S)
    m1 = median_filter_rows(x100, k1)
    ecg_input = preprocess_ecg(record)
    sig, fs = record.signal, float(record.fs)
    out = {
        "read": median_ms(lambda: read_ecg(path, annotations=False), reps),
        "preprocess": median_ms(lambda: preprocess_ecg(record), reps),
        "resample": median_ms(lambda: resample(leads, record.fs, ECG_FS_HZ), reps),
        "median_0.2s": median_ms(lambda: median_filter_rows(x100, k1), reps),
        "median_0.6s": median_ms(lambda: median_filter_rows(m1, k2), reps),
        "minmax": median_ms(lambda: minmax_scale(x100, *ECG_SCALE), reps),
        "quality": median_ms(lambda: assess_quality(record, ecg_input), reps),
        "flat": median_ms(lambda: flat_rows(sig, fs), reps),
        "clipping": median_ms(lambda: saturated_rows(sig, fs), reps),
        "noise": median_ms(lambda: noise_measures(sig, fs), reps),
    }
    stacked = {"resample": (resample, np.concatenate([leads] * STACK), (record.fs, ECG_FS_HZ)),
               "median_0.2s": (median_filter_rows, np.concatenate([x100] * STACK), (k1,)),
               "median_0.6s": (median_filter_rows, np.concatenate([m1] * STACK), (k2,)),
               "noise": (noise_measures, np.concatenate([sig] * STACK), (fs,))}
    for name, (fn, arg, rest) in stacked.items():
        out[f"{name}_stacked{STACK}"] = median_ms(lambda: fn(arg, *rest), max(10, reps // 4)) / STACK
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--formats", choices=("all", "wfdb", "dicom"), default="wfdb")
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args(argv)

    per_file = {}
    for path in sample_files(args.formats):
        per_file[str(path.relative_to(REPO))] = steps(path, args.reps)
    names = list(next(iter(per_file.values())))
    print(f"{'record':48s} " + " ".join(f"{n[:13]:>13s}" for n in names))
    for path, fig in per_file.items():
        print(f"{path[-48:]:48s} " + " ".join(f"{fig[n]:13.3f}" for n in names))
    mean = {n: float(np.mean([fig[n] for fig in per_file.values()])) for n in names}
    print(f"{'mean (ms)':48s} " + " ".join(f"{mean[n]:13.3f}" for n in names))
    print(f"read + preprocess + quality: {mean['read'] + mean['preprocess'] + mean['quality']:.2f} ms "
          f"per file on one core")
    if args.json:
        Path(args.json).write_text(json.dumps({"per_file_ms": per_file, "mean_ms": mean}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
