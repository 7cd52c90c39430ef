"""Benchmark of the occlusion saliency maps (engine.explain): wall and CPU time.

    python bench/explain_speed.py [--models DIR] [--runs 5] [--json OUT]

Times, on one 10 s ECG (tests/data PTB-XL 00001_lr) and one chest X-ray (tests/data NIH
00000001_000), after one warm-up run, median over `--runs`:
- ECG, all three findings, "separable" mode (12 lead + 10 segment occlusions, 1 s), the app's
  default, and "grid" mode (12 x 10 occlusions), through `Explainer` (fp32 sessions);
- CXR, all three findings at once, 7 x 7 patch grid (one teacher batch of 50).
`cpu_s` is the process CPU time (all threads) over the same interval; on a loaded shared
machine wall time is CPU time divided by the share of the cores the process gets, so the
load average is printed before and after (it moves during the run).
Also prints, per ECG mode, how the work is batched: model inputs (unoccluded windows +
occluded copies) per finding, and onnxruntime session runs in all (each finding's model gets
all its inputs in one run per `max_batch` chunk; the three models run concurrently).
Also prints the one-off cost of opening the fp32 sessions (`Explainer` of an int8 Predictor).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's engine
ECG = REPO / "tests/data/ecg/wfdb/ptbxl/00001_lr.hea"
CXR = REPO / "tests/data/cxr/png/nih/00000001_000.png"


def timed(fn, runs: int) -> dict:
    fn()  # warm-up
    walls, cpus = [], []
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return {"wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus),
            "wall_min_s": min(walls)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=None)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    from engine.explain import Explainer, ecg_occlusions
    from engine.inference import Predictor
    from engine.io import read_cxr, read_ecg
    from engine.preprocess import preprocess_cxr, preprocess_ecg

    predictor = Predictor(args.models)
    t0, c0 = time.perf_counter(), time.process_time()
    explainer = Explainer(predictor)
    _ = explainer.predictor
    open_s = {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}
    ecg = preprocess_ecg(read_ecg(ECG))
    image = read_cxr(CXR)
    x = preprocess_cxr(image)
    res = {
        "machine": {"cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0]},
        "open_fp32_sessions": open_s,
        "ecg_separable_3_findings": timed(lambda: explainer.ecg(ecg, mode="separable"), args.runs),
        "ecg_grid_3_findings": timed(lambda: explainer.ecg(ecg, mode="grid"), args.runs),
        "cxr_7x7_3_findings": timed(lambda: explainer.cxr(x, image_shape=image.pixels.shape), args.runs),
    }
    res["machine"]["load_avg_1m_after"] = os.getloadavg()[0]
    fp32 = explainer.predictor
    n_w = int(ecg.windows.shape[0])
    for mode in ("separable", "grid"):
        n_in = n_w + len(ecg_occlusions(n_w, mode))
        runs = len(fp32.pathologies) * -(-n_in // fp32.max_batch)
        res[f"ecg_{mode}_3_findings"].update(
            inputs_per_finding=n_in, session_runs=runs, threads_per_session=fp32.threads,
            cpu_ms_per_input=1000 * res[f"ecg_{mode}_3_findings"]["cpu_s"] / (n_in * len(fp32.pathologies)))
    print(f"machine: {res['machine']['cpus']} CPUs, load average {res['machine']['load_avg_1m']:.1f} "
          f"before, {res['machine']['load_avg_1m_after']:.1f} after")
    print(f"{'what':32s} {'wall s':>8s} {'min s':>8s} {'cpu s':>8s}")
    for k, v in res.items():
        if k == "machine":
            continue
        print(f"{k:32s} {v['wall_s']:8.3f} {v.get('wall_min_s', v['wall_s']):8.3f} {v['cpu_s']:8.3f}")
    for mode in ("separable", "grid"):
        v = res[f"ecg_{mode}_3_findings"]
        print(f"ECG {mode}: {v['inputs_per_finding']} inputs per finding in {v['session_runs']} session "
              f"runs ({v['threads_per_session']} intra-op threads each), "
              f"{v['cpu_ms_per_input']:.1f} ms CPU per model input")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
