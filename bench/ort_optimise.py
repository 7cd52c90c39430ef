"""Measure only: what onnxruntime's transformer optimiser gives on copies of the shipped ECG
models (resources/models/ is not changed: the bundle is signed; the lead decides).

For each finding and precision (fp32, int8) a copy of the shipped ONNX file is optimised in a
temp dir with `onnxruntime.transformers.optimizer.optimize_model(model_type="bert",
num_heads=0, hidden_size=0)` (fusions found from the graph: Attention, SkipLayerNormalization,
Gelu...), then both are timed with the engine's session options (ORT_ENABLE_ALL, 2 threads,
deterministic), alternating runs, on one 10 s window of a real ECG, and their outputs compared
on the windows of several sample files (max |logit difference|; the bundle's reference
tolerance is 1e-5 on probabilities).

    nice python3 bench/ort_optimise.py [--reps 60] [--threads 2]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402

from engine.inference import session_options  # noqa: E402
from engine.io import read_ecg  # noqa: E402
from engine.preprocess import preprocess_ecg  # noqa: E402

MODELS = ROOT / "resources" / "models"
SAMPLES = ["tests/data/ecg/wfdb/ptb_diagnostic/s0010_re.hea", "tests/data/ecg/wfdb/ludb/1.hea",
           "tests/data/ecg/wfdb_mat/cinc2021/HR06000.hea", "tests/data/ecg/dicom/pydicom_waveform_ecg.dcm"]
FUSED = ("Attention", "MultiHeadAttention", "SkipLayerNormalization", "BiasGelu", "FastGelu", "Gelu",
         "BiasSkipLayerNormalization", "QAttention", "FusedMatMul", "FusedConv")


def optimise(src: Path, dst: Path) -> Counter:
    from onnxruntime.transformers.optimizer import optimize_model
    model = optimize_model(str(src), model_type="bert", num_heads=0, hidden_size=0, opt_level=0)
    model.save_model_to_file(str(dst))
    return Counter(n.op_type for n in onnx.load(str(dst)).graph.node)


def p50(session: ort.InferenceSession, x: np.ndarray, reps: int) -> list[float]:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        session.run(None, {session.get_inputs()[0].name: x})
        times.append((time.perf_counter() - t0) * 1000)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    logging.getLogger("onnxruntime").setLevel(logging.ERROR)
    windows = np.concatenate([preprocess_ecg(read_ecg(ROOT / f)).windows for f in SAMPLES])
    one = windows[:1]
    opts = session_options(args.threads)
    totals: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for precision in ("fp32", "int8"):
            for finding in ("cardiomegaly", "edema", "pleural_effusion"):
                name = f"ecg_{finding}{'.int8' if precision == 'int8' else ''}.onnx"
                src = Path(tmp) / name
                shutil.copy(MODELS / name, src)
                dst = Path(tmp) / f"opt_{name}"
                try:
                    ops = optimise(src, dst)
                except Exception as exc:  # report, keep going
                    print(f"{name}: optimiser failed: {type(exc).__name__}: {exc}")
                    continue
                fused = {k: v for k, v in ops.items() if k in FUSED}
                a = ort.InferenceSession(str(src), opts, providers=["CPUExecutionProvider"])
                b = ort.InferenceSession(str(dst), opts, providers=["CPUExecutionProvider"])
                feed = a.get_inputs()[0].name
                ra = a.run(None, {feed: windows})
                rb = b.run(None, {b.get_inputs()[0].name: windows})
                diff = max(float(np.max(np.abs(x - y))) for x, y in zip(ra, rb))
                p_a = 1 / (1 + np.exp(-ra[0].astype(np.float64)))
                p_b = 1 / (1 + np.exp(-rb[0].astype(np.float64)))
                p50(a, one, 5), p50(b, one, 5)  # warm-up
                ta, tb = [], []
                for _ in range(4):  # alternate, so load changes hit both
                    ta += p50(a, one, args.reps // 4)
                    tb += p50(b, one, args.reps // 4)
                ma, mb = statistics.median(ta), statistics.median(tb)
                totals.setdefault(f"{precision} shipped", []).append(ma)
                totals.setdefault(f"{precision} optimised", []).append(mb)
                print(f"{name}: p50 shipped {ma:.2f} ms, optimised {mb:.2f} ms; fused ops {fused or 'none'}; "
                      f"max |output diff| {diff:.2e}, max |prob diff| {np.max(np.abs(p_a - p_b)):.2e} "
                      f"on {len(windows)} windows", flush=True)
    for k, v in totals.items():
        print(f"{k}: sum of the three findings' p50 = {sum(v):.1f} ms")
    import os
    print(f"onnxruntime {ort.__version__}, {args.threads} threads, load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
