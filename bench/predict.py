"""Benchmark of ECG inference: latency, throughput, CLI overhead, torch eager side by side.

    python bench/predict.py [--models DIR] [--runs 50] [--files 256] [--batch 32] [--json OUT]

Figures (printed as a table, optionally written as JSON):
- latency_ms: one 10 s ECG (one window), all three pathologies, batch 1, p50 / p90
  over `--runs` runs of `Predictor.predict_ecg_inputs` (pure inference), and of the
  whole file path (read + preprocess + quality + inference).
- throughput: pure inference (ECG windows/s at `--batch`, inputs already in memory)
  vs end to end through the CLI code path (`engine.cli.run_predict`, as
  `cromotex predict FOLDER -o OUT` runs it: files -> JSON lines, reading and
  preprocessing overlapped with inference) once the bundle is open, and their
  ratio (target >= 0.90); `startup_s` is the one-off bundle verification and
  session creation.
- torch eager (when torch and training are importable): the same ECG networks run
  by plain `torch` in eval mode under `torch.inference_mode()`, built from the
  manifest's training config, weights copied from the ONNX initialisers by name
  and checked for parity (`torch_weights` says whether the outputs matched).

Inputs are the 10 s real sample records of tests/data (symlinked `--files` times
into a temporary folder for the throughput run). The bench may import torch; the
engine never does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.cli import build_predict_parser, run_predict  # noqa: E402
from engine.inference import DEFAULT_THREADS, Predictor  # noqa: E402
from engine.io import read_ecg  # noqa: E402
from engine.preprocess import preprocess_ecg  # noqa: E402
from engine.quality import assess_quality  # noqa: E402

#: 10 s sample records (WFDB header + signal files, or a DICOM file).
SAMPLES = [
    ("tests/data/ecg/wfdb/ptbxl", "00001_lr"), ("tests/data/ecg/wfdb/ludb", "1"),
    ("tests/data/ecg/wfdb/ludb", "2"), ("tests/data/ecg/wfdb/ludb", "8"),
    ("tests/data/ecg/wfdb/ludb", "17"), ("tests/data/ecg/wfdb_mat/cinc2021", "HR06000"),
    ("tests/data/ecg/wfdb_mat/cinc2021", "E07505"), ("tests/data/ecg/dicom", "pydicom_waveform_ecg"),
]


def sample_files() -> list[Path]:
    out = []
    for folder, stem in SAMPLES:
        hea = REPO / folder / f"{stem}.hea"
        out.append(hea if hea.exists() else REPO / folder / f"{stem}.dcm")
    return out


def percentiles(times_s: list[float]) -> dict[str, float]:
    a = np.asarray(times_s) * 1000
    return {"p50_ms": float(np.percentile(a, 50)), "p90_ms": float(np.percentile(a, 90)),
            "min_ms": float(a.min())}


def timed(fn, runs: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def make_corpus(folder: Path, n: int) -> int:
    """Symlink the sample records into `folder/k/` until there are `n` ECG files."""
    files = sample_files()
    count = 0
    for k in range(n):
        src = files[k % len(files)]
        d = folder / f"{k:06d}"
        d.mkdir(parents=True)
        for companion in src.parent.glob(src.stem + ".*"):
            os.symlink(companion, d / companion.name)
        count += 1
    return count


def torch_models(predictor: Predictor):
    """pathology -> (torch module in eval mode, weights note), or a reason string."""
    try:
        import onnx
        import torch
        from onnx import numpy_helper

        from training import config as config_mod
        from training.stages import common
    except Exception as exc:  # torch / training not installed: bench still runs
        return f"torch eager skipped: {type(exc).__name__}: {exc}"
    cfg_dict = (predictor.bundle.manifest.get("training") or {}).get("config")
    out = {}
    for p, file in predictor.ecg_files.items():
        spec = predictor.bundle.ecg[p]
        try:
            cfg = config_mod.from_dict(cfg_dict) if cfg_dict else config_mod.Config()
            model = common.make_classifier(cfg).eval()
        except Exception as exc:
            return f"torch eager skipped: cannot build the ECG network ({exc})"
        inits = {i.name: numpy_helper.to_array(i) for i in
                 onnx.load(str(predictor.bundle.path(spec.file))).graph.initializer}
        state = model.state_dict()
        copied = 0
        for name, tensor in state.items():
            arr = inits.get(name)
            if arr is not None and tuple(arr.shape) == tuple(tensor.shape):
                state[name] = torch.from_numpy(arr.copy())
                copied += 1
        if copied == 0:
            return ("torch eager skipped: the bundle's ECG networks are not training.models "
                    "networks (no parameter name matched)")
        model.load_state_dict(state)
        x = preprocess_ecg(read_ecg(sample_files()[0])).windows
        with torch.inference_mode():
            t_logit, _ = model(torch.from_numpy(x))
        ort_logit = predictor.predict_ecg_inputs(x)[p].logits
        diff = float(np.abs(t_logit.numpy()[:, 0] - ort_logit).max())
        note = (f"same weights ({copied}/{len(state)} tensors, max |dlogit| {diff:.1e})"
                if diff < 1e-3 else f"same architecture, weights not recovered "
                f"({copied}/{len(state)} tensors matched, max |dlogit| {diff:.2f})")
        out[p] = (model, note)
    return out


def bench_torch(models, x1: np.ndarray, xb: np.ndarray, runs: int, threads: int) -> dict:
    import torch
    torch.set_num_threads(threads)

    def run(x):
        with torch.inference_mode():
            t = torch.from_numpy(x)
            for model, _ in models.values():
                model(t)

    lat = percentiles(timed(lambda: run(x1), runs))
    tb = timed(lambda: run(xb), max(3, runs // 10), warmup=1)
    return {"latency": lat, "throughput_ecg_per_s": xb.shape[0] / float(np.median(tb)),
            "weights": {p: note for p, (_, note) in models.items()}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", help="bundle directory (default: resources/models/)")
    ap.add_argument("--precision", default="auto", choices=("auto", "fp32", "int8"))
    ap.add_argument("--threads", type=int, default=DEFAULT_THREADS)
    ap.add_argument("--runs", type=int, default=50, help="batch-1 latency runs")
    ap.add_argument("--files", type=int, default=256, help="files in the throughput run")
    ap.add_argument("--batch", type=int, default=32, help="windows per run, pure-inference figure")
    ap.add_argument("--cli-batch", type=int, default=0,
                    help="CLI --batch (0 = one record per run, the bit-identical default)")
    ap.add_argument("--workers", type=int, default=2, help="CLI reader threads")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args(argv)

    predictor = Predictor(args.models, precision=args.precision, threads=args.threads)
    files = sample_files()
    x = np.concatenate([preprocess_ecg(read_ecg(f)).windows for f in files])
    x1 = x[:1]
    xb = np.concatenate([x] * (args.batch // len(x) + 1))[:args.batch]
    res: dict = {"bundle": predictor.describe(), "threads": args.threads,
                 "machine": f"{platform.processor() or platform.machine()}, "
                            f"{os.cpu_count()} CPUs", "batch": args.batch}

    res["latency_inference"] = percentiles(timed(lambda: predictor.predict_ecg_inputs(x1),
                                                 args.runs))

    def whole_file():
        rec = read_ecg(files[0])
        inp = preprocess_ecg(rec)
        predictor.predict_ecg_input(inp, assess_quality(rec, inp))
    res["latency_file"] = percentiles(timed(whole_file, args.runs))

    reps = max(3, args.files // args.batch)
    tb = timed(lambda: predictor.predict_ecg_inputs(xb), reps, warmup=1)
    pure = args.batch * reps / sum(tb)
    with tempfile.TemporaryDirectory() as tmp:
        n = make_corpus(Path(tmp) / "ecgs", args.files)
        cli_args = build_predict_parser().parse_args([
            str(Path(tmp) / "ecgs"), "--batch", str(args.cli_batch), "--workers", str(args.workers),
            "--no-progress"])
        with open(Path(tmp) / "out.jsonl", "w") as out:
            t = time.perf_counter()
            code = run_predict(cli_args, out, sys.stderr, predictor=predictor)
            elapsed = time.perf_counter() - t
        lines = (Path(tmp) / "out.jsonl").read_text().splitlines()
        t = time.perf_counter()
        Predictor(args.models, precision=args.precision, threads=args.threads)
        res["startup_s"] = time.perf_counter() - t
        assert code == 0 and len(lines) == n, (code, len(lines), n)
    e2e = n / elapsed
    pure1 = 1000.0 / res["latency_inference"]["p50_ms"]  # one record per run (CLI default)
    res["throughput"] = {"pure_inference_ecg_per_s": pure, "pure_inference_batch1_ecg_per_s": pure1,
                         "cli_end_to_end_ecg_per_s": e2e, "ratio": e2e / pure,
                         "ratio_vs_batch1": e2e / pure1, "files": n, "cli_batch": args.cli_batch}
    if not args.no_torch:
        models = torch_models(predictor)
        if isinstance(models, str):
            res["torch_eager"] = models
        else:
            t = bench_torch(models, x1, xb, args.runs, args.threads)
            t["speedup_latency"] = t["latency"]["p50_ms"] / res["latency_inference"]["p50_ms"]
            t["speedup_throughput"] = pure / t["throughput_ecg_per_s"]
            res["torch_eager"] = t

    print(f"bundle {res['bundle']['bundle_id']} ({res['bundle']['precision']}), "
          f"{args.threads} threads, {res['machine']}")
    li, lf = res["latency_inference"], res["latency_file"]
    print(f"latency, 3 pathologies, batch 1: inference p50 {li['p50_ms']:.1f} ms "
          f"(p90 {li['p90_ms']:.1f}); file->prediction p50 {lf['p50_ms']:.1f} ms")
    th = res["throughput"]
    print(f"throughput: pure inference {th['pure_inference_ecg_per_s']:.1f} ECG/s, CLI files->JSON "
          f"{th['cli_end_to_end_ecg_per_s']:.1f} ECG/s, ratio {th['ratio']:.2f} "
          f"(vs batch-1 inference {th['ratio_vs_batch1']:.2f}; {n} files); "
          f"startup {res['startup_s']:.2f} s")
    te = res.get("torch_eager")
    if isinstance(te, dict):
        print(f"torch eager: p50 {te['latency']['p50_ms']:.1f} ms ({te['speedup_latency']:.2f}x "
              f"slower than onnxruntime), {te['throughput_ecg_per_s']:.1f} ECG/s "
              f"({te['speedup_throughput']:.2f}x); weights: {next(iter(te['weights'].values()))}")
    elif te:
        print(te)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
