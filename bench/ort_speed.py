"""ECG inference speed of the old (traced) and new (fused, training/onnx_fused.py) ONNX export,
with the shipped bundle as the baseline, and the outputs of each compared (issue 19 item 4).

Two steps, so that only the timing runs with the build paused:

    nice python3 bench/ort_speed.py prepare --dir /tmp/ort_speed          # export + compare outputs
    /work/notes/quiet.sh python3 bench/ort_speed.py time --dir /tmp/ort_speed [--reps 40]

`prepare` rebuilds each finding's network in torch with the shipped fp32 file's weights
(`bench/predict.py: onnx_to_torch_state`, so the models are the cpu preset with trained weights),
exports it both ways with `training.export.export_ecg` (fp32 + int8, parity-checked against
torch on the windows of the sample records) and prints the differences: new vs old export vs
torch vs the shipped files, and each int8 copy's drift from its own fp32 model.

`auroc --cohort C` scores the cohort's test split (one window per run, as the engine) with
all four models of each finding (shipped fp32 / int8, new fp32 / int8) and prints the test AUROCs,
int8 minus fp32 for each export, and the largest probability differences (needs scikit-learn).

`profile` runs each model 40 times on a 1-thread session with onnxruntime's profiler and prints,
per operator type, the sum over nodes of each node's fastest run: a per-operator breakdown that
load on a shared machine barely moves (a preempted run is never a node's fastest).

`time` opens every model with the engine's session options (`engine.inference.session_options`,
2 intra-op threads unless `--threads`), then alternates shipped / old export / new export, one
10 s window per run: per round, each variant runs its three models one after the other, then
the three at once on three Python threads (as `engine.inference.Predictor` does). It prints the
p50 per model and of the three together (sequential and concurrent), per precision, with the
load average before and after. Because other work on a shared machine moves wall-clock figures,
it also prints the CPU time of a run on 1-thread sessions (`time.thread_time`; onnxruntime then
computes in the calling thread), median per model and its sum over the three: that figure is
nearly independent of the load.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODELS = ROOT / "resources" / "models"
FINDINGS = ("cardiomegaly", "edema", "pleural_effusion")
SAMPLES = ["tests/data/ecg/wfdb/ptbxl/00001_lr.hea", "tests/data/ecg/wfdb/ptb_diagnostic/s0010_re.hea",
           "tests/data/ecg/wfdb/ludb/1.hea", "tests/data/ecg/wfdb/ludb/11.hea",
           "tests/data/ecg/wfdb_mat/cinc2021/HR06000.hea", "tests/data/ecg/dicom/pydicom_waveform_ecg.dcm"]
VARIANTS = ("shipped", "old", "new")


def windows() -> np.ndarray:
    """float32 `[n, 12, 1000]`: every 10 s window of the sample records."""
    from engine.io import read_ecg
    from engine.preprocess import preprocess_ecg
    return np.concatenate([preprocess_ecg(read_ecg(ROOT / f)).windows for f in SAMPLES if (ROOT / f).exists()]
                          ).astype(np.float32)


def path_of(d: Path, variant: str, finding: str, int8: bool) -> Path:
    name = f"ecg_{finding}{'.int8' if int8 else ''}.onnx"
    return MODELS / name if variant == "shipped" else d / variant / name


def torch_model(finding: str):
    """The finding's network (training config from the manifest) with the shipped fp32 weights."""
    from training import config as config_mod
    from training.stages import common
    spec = importlib.util.spec_from_file_location("bench_predict", ROOT / "bench" / "predict.py")
    bp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bp)
    cfg = config_mod.from_dict(json.loads((MODELS / "manifest.json").read_text())["training"]["config"][finding])
    model = common.make_classifier(cfg).eval()
    state, _ = bp.onnx_to_torch_state(MODELS / f"ecg_{finding}.onnx", model.state_dict())
    model.load_state_dict(state)
    return model


def run(path: Path, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(logits [n], probabilities [n] float64) one window per run, as the engine scores."""
    import onnxruntime as ort
    from engine.inference import session_options
    s = ort.InferenceSession(str(path), session_options(1), providers=["CPUExecutionProvider"])
    logit = np.array([s.run(["logit"], {"ecg": x[i:i + 1]})[0][0, 0] for i in range(len(x))], dtype=np.float64)
    return logit, 1.0 / (1.0 + np.exp(-logit))


def prepare(d: Path) -> dict:
    import torch
    from training import export as ex
    from training import onnx_fused
    x = windows()
    out: dict = {"windows": len(x), "findings": {}}
    for f in FINDINGS:
        model = torch_model(f)
        with torch.no_grad():
            t_logit = model(torch.from_numpy(x))[0][:, 0].double().numpy()
        reps = {v: ex.export_ecg(model, path_of(d, v, f, False), f, 0.5, x, int8=True, fused=(v == "new"))
                for v in ("old", "new")}
        res = {v: {p: run(path_of(d, v, f, p == "int8"), x) for p in ("fp32", "int8")} for v in VARIANTS}
        new_ops = onnx_fused.op_counts(__import__("onnx").load(str(path_of(d, "new", f, True))))
        row = {"graph": {v: reps[v].graph for v in reps}, "int8_ops_new": new_ops,
               "fp32_vs_torch_max_abs_logit": {v: float(np.abs(res[v]["fp32"][0] - t_logit).max()) for v in VARIANTS}}
        for p in ("fp32", "int8"):
            row[f"{p}_new_vs_shipped_max_abs_prob"] = float(np.abs(res["new"][p][1] - res["shipped"][p][1]).max())
            row[f"{p}_old_vs_shipped_max_abs_prob"] = float(np.abs(res["old"][p][1] - res["shipped"][p][1]).max())
        for v in VARIANTS:
            row[f"int8_drift_{v}_max_abs_prob"] = float(np.abs(res[v]["int8"][1] - res[v]["fp32"][1]).max())
            row[f"int8_drift_{v}_max_abs_logit"] = float(np.abs(res[v]["int8"][0] - res[v]["fp32"][0]).max())
        row["int8_new_vs_shipped_fp32_max_abs_prob"] = float(np.abs(res["new"]["int8"][1] - res["shipped"]["fp32"][1]).max())
        out["findings"][f] = row
    (d / "outputs.json").write_text(json.dumps(out, indent=2))
    return out


def auroc(d: Path, cohort: Path) -> dict:
    from sklearn.metrics import roc_auc_score
    from training.data import load_cohort
    co = load_cohort(cohort)
    test = co.indices("test")
    x = np.asarray(co.ecg[test], dtype=np.float32)
    out: dict = {"cohort": str(cohort), "n_test": int(len(test)), "findings": {}}
    for f in FINDINGS:
        y = co.labels[f][test]
        prob = {(v, p): run(path_of(d, v, f, p == "int8"), x)[1] for v in ("shipped", "new") for p in ("fp32", "int8")}
        auc = {f"{v}_{p}": float(roc_auc_score(y, pr)) for (v, p), pr in prob.items()}
        row = {"n_positive": int(y.sum()), "auroc": auc,
               "int8_minus_fp32_shipped": auc["shipped_int8"] - auc["shipped_fp32"],
               "int8_minus_fp32_new": auc["new_int8"] - auc["new_fp32"],
               "max_abs_prob_new_fp32_vs_shipped_fp32": float(np.abs(prob["new", "fp32"] - prob["shipped", "fp32"]).max()),
               "max_abs_prob_int8_vs_fp32_shipped": float(np.abs(prob["shipped", "int8"] - prob["shipped", "fp32"]).max()),
               "max_abs_prob_int8_vs_fp32_new": float(np.abs(prob["new", "int8"] - prob["shipped", "fp32"]).max())}
        out["findings"][f] = row
        print(f"{f} (n={len(test)}, {row['n_positive']} positive): AUROC " +
              ", ".join(f"{k} {v:.4f}" for k, v in auc.items()) +
              f"; int8 - fp32: shipped {row['int8_minus_fp32_shipped']:+.5f}, new {row['int8_minus_fp32_new']:+.5f}; "
              f"max |dprob| new fp32 vs shipped fp32 {row['max_abs_prob_new_fp32_vs_shipped_fp32']:.1e}, "
              f"int8 vs fp32 shipped {row['max_abs_prob_int8_vs_fp32_shipped']:.1e}, "
              f"new {row['max_abs_prob_int8_vs_fp32_new']:.1e}")
    return out


def profile(d: Path, reps: int = 40) -> dict:
    import collections
    import tempfile
    import onnxruntime as ort
    from engine.inference import session_options
    x = windows()[:1]
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for p in ("fp32", "int8"):
            for v in ("shipped", "new"):
                for f in FINDINGS:
                    opts = session_options(1)
                    opts.enable_profiling = True
                    opts.profile_file_prefix = str(Path(tmp) / "prof")
                    s = ort.InferenceSession(str(path_of(d, v, f, p == "int8")), opts, providers=["CPUExecutionProvider"])
                    for _ in range(reps):
                        s.run(None, {"ecg": x})
                    events = json.loads(Path(s.end_profiling()).read_text())
                    per: dict = collections.defaultdict(list)
                    kind: dict = {}
                    for e in events:
                        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
                            per[e["name"]].append(e["dur"])
                            kind[e["name"]] = e["args"]["op_name"]
                    ops: collections.Counter = collections.Counter()
                    for name, durs in per.items():
                        ops[kind[name]] += min(durs) / 1e3
                    out[f"{p}/{v}/{f}"] = {"total_ms": sum(ops.values()), "ops_ms": dict(ops.most_common())}
                    print(f"{p} {v:8s} {f:17s} {sum(ops.values()):6.2f} ms: " +
                          ", ".join(f"{k} {t:.2f}" for k, t in ops.most_common(8)))
    return out


def load() -> str:
    return " / ".join(f"{v:.2f}" for v in os.getloadavg())


def time_models(d: Path, reps: int, threads: int) -> dict:
    import onnxruntime as ort
    from engine.inference import session_options
    x = windows()[:1]
    out: dict = {"threads": threads, "reps": reps, "onnxruntime": ort.__version__, "load_before": load()}
    for p in ("fp32", "int8"):
        sess = {v: [ort.InferenceSession(str(path_of(d, v, f, p == "int8")), session_options(threads),
                                         providers=["CPUExecutionProvider"]) for f in FINDINGS] for v in VARIANTS}
        per = {v: [[] for _ in FINDINGS] for v in VARIANTS}
        tot = {v: [] for v in VARIANTS}
        conc = {v: [] for v in VARIANTS}
        pool = ThreadPoolExecutor(len(FINDINGS))
        for v in VARIANTS:                       # warm-up
            for s in sess[v]:
                s.run(None, {"ecg": x})
        for _ in range(reps):
            for v in VARIANTS:
                t_all = time.perf_counter()
                for i, s in enumerate(sess[v]):
                    t0 = time.perf_counter()
                    s.run(None, {"ecg": x})
                    per[v][i].append((time.perf_counter() - t0) * 1e3)
                tot[v].append((time.perf_counter() - t_all) * 1e3)
            for v in VARIANTS:
                t0 = time.perf_counter()
                list(pool.map(lambda s: s.run(None, {"ecg": x}), sess[v]))
                conc[v].append((time.perf_counter() - t0) * 1e3)
        pool.shutdown()
        one = {v: [ort.InferenceSession(str(path_of(d, v, f, p == "int8")), session_options(1),
                                        providers=["CPUExecutionProvider"]) for f in FINDINGS] for v in VARIANTS}
        cpu = {v: [[] for _ in FINDINGS] for v in VARIANTS}
        for r in range(reps + 1):
            for v in VARIANTS:
                for i, s in enumerate(one[v]):
                    t0 = time.thread_time()
                    s.run(None, {"ecg": x})
                    if r:                       # the first round warms up
                        cpu[v][i].append((time.thread_time() - t0) * 1e3)
        out[p] = {v: {"p50_ms": {f: statistics.median(per[v][i]) for i, f in enumerate(FINDINGS)},
                      "sum_of_3_p50_ms": statistics.median(tot[v]),
                      "sum_of_3_p90_ms": float(np.percentile(tot[v], 90)),
                      "concurrent_3_p50_ms": statistics.median(conc[v]),
                      "cpu_1thread_median_ms": {f: statistics.median(cpu[v][i]) for i, f in enumerate(FINDINGS)},
                      "cpu_1thread_sum_of_3_ms": sum(statistics.median(c) for c in cpu[v])} for v in VARIANTS}
    out["load_after"] = load()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("step", choices=("prepare", "time", "auroc", "profile"))
    ap.add_argument("--cohort", type=Path, help="auroc: the cohort whose test split is scored")
    ap.add_argument("--dir", type=Path, required=True, help="where the exported models go")
    ap.add_argument("--reps", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.step == "prepare":
        res = prepare(args.dir)
        for f, row in res["findings"].items():
            print(f"\n{f}  ({res['windows']} windows, graphs {row['graph']})")
            for k, v in row.items():
                if k not in ("graph", "int8_ops_new"):
                    print(f"  {k:42s} {v}")
            print(f"  new int8 op types: {row['int8_ops_new']}")
    elif args.step == "profile":
        res = profile(args.dir)
    elif args.step == "auroc":
        if args.cohort is None:
            ap.error("auroc needs --cohort")
        res = auroc(args.dir, args.cohort)
    else:
        res = time_models(args.dir, args.reps, args.threads)
        print(f"onnxruntime {res['onnxruntime']}, {res['threads']} threads, {res['reps']} rounds, "
              f"load before {res['load_before']}, after {res['load_after']}")
        for p in ("fp32", "int8"):
            print(f"\n{p:5s} {'model':18s} " + " ".join(f"{v:>9s}" for v in VARIANTS))
            for f in FINDINGS:
                print(f"      {f:18s} " + " ".join(f"{res[p][v]['p50_ms'][f]:7.2f}ms" for v in VARIANTS))
            print(f"      {'sum of 3 (p50)':18s} " + " ".join(f"{res[p][v]['sum_of_3_p50_ms']:7.2f}ms" for v in VARIANTS))
            print(f"      {'sum of 3 (p90)':18s} " + " ".join(f"{res[p][v]['sum_of_3_p90_ms']:7.2f}ms" for v in VARIANTS))
            print(f"      {'3 concurrent (p50)':18s} " + " ".join(f"{res[p][v]['concurrent_3_p50_ms']:7.2f}ms" for v in VARIANTS))
            print(f"      {'CPU, 1 thread, 3':18s} " + " ".join(f"{res[p][v]['cpu_1thread_sum_of_3_ms']:7.2f}ms" for v in VARIANTS))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
