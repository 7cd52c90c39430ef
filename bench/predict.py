"""Benchmark of ECG inference: latency, throughput, CLI overhead, torch eager side by side.

    python bench/predict.py [--models DIR] [--runs 50] [--files 256] [--batch 32] [--json OUT]

Figures (printed as a table, optionally written as JSON):
- latency_ms: one 10 s ECG (one window), all three pathologies, batch 1, p50 / p90
  over `--runs` runs of `Predictor.predict_ecg_inputs` (pure inference), and of the
  whole file path, `Predictor.predict_ecg(read_ecg(file))` (read + preprocess + quality +
  inference).
- throughput: pure inference, inputs already in memory, the better of two ways of
  running it: `--batch` windows per onnxruntime run, and one record per run (the
  CLI's default, bit-identical to the app; on the shipped int8 bundle it is the
  faster one) vs end to end through the CLI code path (`engine.cli.run_predict`, as
  `cromotex predict FOLDER -o OUT` runs it: files -> JSON lines, reading and
  preprocessing overlapped with inference) once the bundle is open, and their
  ratio (target >= 0.90), for worker threads and worker processes (`--parallel`;
  the processes are started once before the rounds, `process_start_s`), the pure
  figures including the CLI's own pattern (`--workers` threads, FILES_PER_TASK
  records model by model, one record per run, and, when processes are timed, the same
  pattern in `--workers` worker processes, each with its own sessions); medians of
  `--rounds` interleaved rounds, with the process CPU time per ECG of both;
  `startup_s` is the one-off bundle verification and session creation.
- decomposition (with processes): the CLI's worker processes' inference alone over the
  best pure figure (what holding one copy of the weights per process costs), and the CLI
  with processes over that (what the file work costs).
- onnxruntime fp32 vs torch eager (when torch and training are importable): the
  fp32 ONNX files in onnxruntime, and the same ECG networks run
  by plain `torch` (fp32) in eval mode under `torch.inference_mode()`, built from each
  pathology's training config in the manifest, every weight taken from the bundle's
  fp32 ONNX file (`onnx_to_torch_state`) and checked against onnxruntime on that file
  (`weights[p].same_weights`: max |difference| of logits and embeddings <= 1e-4).

Inputs are the 10 s real sample records of tests/data (symlinked `--files` times
into a temporary folder for the throughput run). The bench may import torch; the
engine never does.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.cli import DEFAULT_WORKERS, build_predict_parser, predictor_threads, run_predict  # noqa: E402
from engine.batch import FILES_PER_TASK  # noqa: E402
from engine.process_pool import PredictorSpec, ProcessScorer  # noqa: E402
from engine.inference import DEFAULT_THREADS, Predictor  # noqa: E402
from engine.io import read_ecg  # noqa: E402
from engine.preprocess import preprocess_ecg  # noqa: E402

#: 10 s sample records (WFDB header + signal files, or a DICOM file).
SAMPLES = [
    ("tests/data/ecg/wfdb/ptbxl", "00001_lr"), ("tests/data/ecg/wfdb/ludb", "1"),
    ("tests/data/ecg/wfdb/ludb", "2"), ("tests/data/ecg/wfdb/ludb", "8"),
    ("tests/data/ecg/wfdb/ludb", "17"), ("tests/data/ecg/wfdb_mat/cinc2021", "HR06000"),
    ("tests/data/ecg/wfdb_mat/cinc2021", "E07505"), ("tests/data/ecg/dicom", "pydicom_waveform_ecg"),
]


def sample_files(formats: str = "all") -> list[Path]:
    """The sample records; `formats` "all", "wfdb" (no DICOM) or "dicom" (the DICOM only)."""
    out = []
    for folder, stem in SAMPLES:
        hea = REPO / folder / f"{stem}.hea"
        out.append(hea if hea.exists() else REPO / folder / f"{stem}.dcm")
    if formats == "all":
        return out
    return [f for f in out if (f.suffix == ".dcm") == (formats == "dicom")]


def sample_windows(formats: str = "all") -> np.ndarray:
    """Model input of the sample records, float32 `[W, 12, 1000]` (one 10 s window each)."""
    return np.concatenate([preprocess_ecg(read_ecg(f)).windows for f in sample_files(formats)])


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


def make_corpus(folder: Path, n: int, formats: str = "all") -> int:
    """Symlink the sample records into `folder/k/` until there are `n` ECG files."""
    files = sample_files(formats)
    count = 0
    for k in range(n):
        src = files[k % len(files)]
        d = folder / f"{k:06d}"
        d.mkdir(parents=True)
        for companion in src.parent.glob(src.stem + ".*"):
            os.symlink(companion, d / companion.name)
        count += 1
    return count


_pure_worker: tuple | None = None  # (Predictor, windows) of a pure-inference worker process


def _pure_worker_init(spec: PredictorSpec, formats: str) -> None:
    """Initialiser of a pure-inference worker process: the CLI's worker Predictor and the
    sample records' windows in memory (the same inputs as the in-process figures)."""
    global _pure_worker
    _pure_worker = (spec.open(), sample_windows(formats))


def _pure_worker_task(indices: list[int]) -> int:
    """Inference alone on records `indices` (cycled over the samples), model by model, one
    record per run: exactly the inference a CLI worker process runs on one file task."""
    predictor, windows = _pure_worker
    predictor.predict_ecg_inputs_each([windows[i % len(windows)][None] for i in indices])
    return len(indices)


def onnx_to_torch_state(onnx_path: Path, state: dict) -> tuple[dict, int]:
    """Map an exported ECG graph's initialisers onto a training.models state dict.

    Initialisers that kept their PyTorch name (convolutions, norms, biases, the
    classifier) are copied by name. The exporter folds each Transformer layer's
    `self_attn.in_proj_weight`, `linear1.weight` and `linear2.weight` into anonymous
    `onnx::MatMul_*` initialisers holding the transposed matrix (`x @ W.T`); they
    appear in the graph in the same order as those parameters in the state dict,
    so the remaining 2-D parameters are filled from them in order, transposed, with
    the shape checked. Returns (new state dict of numpy-backed tensors, tensors set).
    """
    import onnx
    import torch
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    if any(n.domain == "com.microsoft" for n in graph.node):
        raise ValueError(f"{onnx_path} is a fused graph (training/onnx_fused.py: packed attention weights); "
                         "its weights cannot be mapped back by name. Use a traced export or the checkpoint.")
    inits = [(i.name, numpy_helper.to_array(i)) for i in graph.initializer]
    named = {n: a for n, a in inits if n in state}
    anonymous = [a for n, a in inits if n not in state and n.startswith("onnx::MatMul")]
    out, copied = dict(state), 0
    for name, tensor in state.items():
        arr = named.get(name)
        if arr is None and tensor.ndim == 2 and anonymous and \
                tuple(anonymous[0].T.shape) == tuple(tensor.shape):
            arr = anonymous.pop(0).T
        if arr is not None:
            if tuple(arr.shape) != tuple(tensor.shape):
                raise ValueError(f"{name}: ONNX {arr.shape} vs torch {tuple(tensor.shape)}")
            out[name] = torch.from_numpy(np.array(arr, copy=True))
            copied += 1
    if anonymous:
        raise ValueError(f"{len(anonymous)} ONNX MatMul weights left without a torch parameter")
    return out, copied


def torch_models(predictor: Predictor, x: np.ndarray):
    """pathology -> (fp32 torch module in eval mode, weights note), or a reason string.

    Each network is built with training.stages.common.make_classifier from that
    pathology's training config in the manifest, and given the weights of the
    bundle's fp32 ONNX file (`onnx_to_torch_state`); its outputs on `x` are compared
    with onnxruntime running the same fp32 file (must agree to 1e-4)."""
    try:
        import onnxruntime as ort
        import torch

        from training import config as config_mod
        from training.stages import common
    except Exception as exc:  # torch / training not installed: bench still runs
        return f"torch eager skipped: {type(exc).__name__}: {exc}"
    configs = (predictor.bundle.manifest.get("training") or {}).get("config") or {}
    out = {}
    for p in predictor.ecg_files:
        spec = predictor.bundle.ecg[p]
        try:
            cfg = config_mod.from_dict(configs[p]) if p in configs else config_mod.Config()
            model = common.make_classifier(cfg).eval()
            state, copied = onnx_to_torch_state(predictor.bundle.path(spec.file), model.state_dict())
        except Exception as exc:
            return f"torch eager skipped: cannot rebuild the {p} ECG network ({exc})"
        model.load_state_dict(state)
        with torch.inference_mode():
            t_logit, t_emb = model(torch.from_numpy(x))
        ref = ort.InferenceSession(str(predictor.bundle.path(spec.file)),
                                   providers=["CPUExecutionProvider"])
        o_logit, o_emb = ref.run(["logit", "embedding"], {"ecg": x})
        diff = max(float(np.abs(t_logit.numpy() - o_logit).max()),
                   float(np.abs(t_emb.numpy() - o_emb).max()))
        n_params = sum(1 for k in state if not k.endswith("num_batches_tracked"))
        note = {"tensors_set": copied, "tensors": n_params, "max_abs_diff_vs_onnx_fp32": diff,
                "same_weights": diff <= 1e-4}
        out[p] = (model, note)
    return out


def parallel_throughput(fn, x: np.ndarray, workers: int, reps: int) -> float:
    """ECG/s of `workers` Python threads each calling `fn(x)` `reps` times (after one warm-up call each)."""
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda _: fn(x), range(workers)))
        t = time.perf_counter()
        list(pool.map(lambda _: [fn(x) for _ in range(reps)], range(workers)))
        return workers * reps * x.shape[0] / (time.perf_counter() - t)


def bench_torch(models, x1: np.ndarray, xb: np.ndarray, runs: int, threads: int, workers: int = 2) -> dict:
    """torch eager latency (batch 1, all models) and throughput (batch of `xb`), each the
    better of 1 and `threads` intra-op threads (torch's OpenMP workers busy-wait, which
    on a loaded 2-core machine makes 2 threads several times slower than 1: the figure
    given to torch is its best, per_threads has both)."""
    import torch

    def run(x):
        with torch.inference_mode():
            t = torch.from_numpy(x)
            for model, _ in models.values():
                model(t)

    per_threads = {}
    for n in sorted({1, threads}):
        torch.set_num_threads(n)
        lat = percentiles(timed(lambda: run(x1), runs))
        tb = timed(lambda: run(xb), max(3, runs // 10), warmup=1)
        per_threads[n] = {"latency": lat, "throughput_ecg_per_s": xb.shape[0] / float(np.median(tb))}
    torch.set_num_threads(1)  # `workers` Python threads on 1 intra-op thread each, as the CLI runs onnxruntime
    per_threads[f"{workers}x1"] = {"throughput_ecg_per_s": parallel_throughput(run, xb, workers, max(2, runs // 20))}
    best_lat = min((r for r in per_threads.values() if "latency" in r), key=lambda r: r["latency"]["p50_ms"])["latency"]
    best_thr = max(r["throughput_ecg_per_s"] for r in per_threads.values())
    return {"latency": best_lat, "throughput_ecg_per_s": best_thr, "per_threads": per_threads,
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
    ap.add_argument("--workers", type=int, default=DEFAULT_WORKERS,
                    help=f"CLI --workers (default {DEFAULT_WORKERS}, as the CLI)")
    ap.add_argument("--parallel", choices=("threads", "processes", "both"), default="both",
                    help="CLI worker kind(s) to time (default both; processes are started once, "
                         "before the rounds, and their start-up reported apart)")
    ap.add_argument("--rounds", type=int, default=5,
                    help="interleaved rounds of pure inference and CLI runs (medians reported)")
    ap.add_argument("--formats", choices=("all", "wfdb", "dicom"), default="all",
                    help="sample records in the CLI corpus: all 8 (default; 1 of 8 is DICOM), WFDB only or "
                         "the DICOM only (reading the DICOM costs ~3.5 ms, a WFDB record ~0.3 ms)")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args(argv)

    predictor = Predictor(args.models, precision=args.precision, threads=args.threads)
    files = sample_files(args.formats)
    x = sample_windows(args.formats)
    x1 = x[:1]
    xb = np.concatenate([x] * (args.batch // len(x) + 1))[:args.batch]
    res: dict = {"bundle": predictor.describe(), "threads": args.threads,
                 "machine": f"{platform.processor() or platform.machine()}, "
                            f"{os.cpu_count()} CPUs", "batch": args.batch}

    res["latency_inference"] = percentiles(timed(lambda: predictor.predict_ecg_inputs(x1),
                                                 args.runs))

    res["latency_file"] = percentiles(timed(lambda: predictor.predict_ecg(read_ecg(files[0])), args.runs))

    reps = max(3, args.files // args.batch)
    per_record = [x[i % len(x)][None] for i in range(args.files)]

    def pure_batch_once() -> float:
        tb = timed(lambda: predictor.predict_ecg_inputs(xb), reps, warmup=1)
        return args.batch * reps / sum(tb)

    def pure_record_once() -> float:
        # the default CLI's inference work alone: one onnxruntime run per record, in memory
        t, c = time.perf_counter(), time.process_time()
        for w in per_record:
            predictor.predict_ecg_inputs(w)
        cpu_ms.setdefault("record", []).append((time.process_time() - c) * 1000 / len(per_record))
        return len(per_record) / (time.perf_counter() - t)

    # the CLI's own session settings, by its own rule (1 intra-op thread, files in parallel, unless --cli-batch)
    cli_flags = ["--batch", str(args.cli_batch), "--workers", str(args.workers)]
    if args.cli_batch > 0:
        cli_flags += ["--threads", str(args.threads)]
    cli_threads = predictor_threads(build_predict_parser().parse_args(["-", *cli_flags]))
    cli_predictor = predictor if args.cli_batch > 0 else \
        Predictor(args.models, precision=args.precision, threads=cli_threads, parallel_models=False)

    def pure_parallel_once(batch: int) -> float:
        # inference alone as the CLI parallelises it: `workers` threads on 1-thread sessions
        chunks = [np.concatenate(per_record[i:i + batch]) for i in range(0, len(per_record), batch)]
        t = time.perf_counter()
        with ThreadPoolExecutor(args.workers) as pool:
            list(pool.map(cli_predictor.predict_ecg_inputs, chunks))
        return len(per_record) / (time.perf_counter() - t)

    def pure_grouped_once() -> float:
        # the CLI's exact inference work: `workers` threads, FILES_PER_TASK records per task,
        # model by model, one record per onnxruntime run
        groups = [per_record[i:i + FILES_PER_TASK] for i in range(0, len(per_record), FILES_PER_TASK)]
        t = time.perf_counter()
        with ThreadPoolExecutor(args.workers) as pool:
            list(pool.map(cli_predictor.predict_ecg_inputs_each, groups))
        return len(per_record) / (time.perf_counter() - t)

    modes = ("threads", "processes") if args.parallel == "both" else (args.parallel,)
    if args.cli_batch > 0:
        modes = ("threads",)  # cross-file micro-batches run in one process
    scorer = pure_pool = None
    if "processes" in modes:
        spec = PredictorSpec.of(cli_predictor, cli_threads)
        scorer = ProcessScorer(spec, args.workers)
        res["process_start_s"] = scorer.start()
        pure_pool = ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_pure_worker_init, initargs=(spec, args.formats))
        list(pure_pool.map(_pure_worker_task, [[0]] * (4 * args.workers)))  # started and warm

    def pure_processes_once() -> float:
        # the CLI's worker processes' inference alone: each process holds its own sessions
        # (its own copy of the weights), FILES_PER_TASK records per task, model by model
        tasks = [list(range(i, min(i + FILES_PER_TASK, args.files)))
                 for i in range(0, args.files, FILES_PER_TASK)]
        t = time.perf_counter()
        done = sum(pure_pool.map(_pure_worker_task, tasks))
        return done / (time.perf_counter() - t)

    rounds: list[dict] = []
    cpu_ms: dict[str, list[float]] = {}  # process CPU time per ECG (all threads of this process)
    with tempfile.TemporaryDirectory() as tmp:
        n = make_corpus(Path(tmp) / "ecgs", args.files, args.formats)

        def cli_once(mode: str) -> float:
            """ECG/s of one `cromotex predict FOLDER -o OUT` run with `mode` workers."""
            cli_args = build_predict_parser().parse_args([
                str(Path(tmp) / "ecgs"), *cli_flags, "--parallel", mode, "--no-progress"])
            with open(Path(tmp) / "out.jsonl", "w") as out:
                t, c = time.perf_counter(), time.process_time()
                code = run_predict(cli_args, out, sys.stderr, predictor=cli_predictor,
                                   scorer=scorer if mode == "processes" else None)
                elapsed = time.perf_counter() - t
                cpu_ms.setdefault(f"e2e_{mode}", []).append((time.process_time() - c) * 1000 / n)
            lines = (Path(tmp) / "out.jsonl").read_text().splitlines()
            assert code == 0 and len(lines) == n, (code, len(lines), n)
            return n / elapsed

        # interleaved rounds, so that a background load that comes and goes hits every figure
        for _ in range(args.rounds):
            pb, pr = pure_batch_once(), pure_record_once()
            ppb, ppr = pure_parallel_once(args.batch), pure_parallel_once(1)
            pg = pure_grouped_once()
            pp = pure_processes_once() if pure_pool is not None else 0.0
            rnd = {"batch": pb, "record": pr, "parallel_batch": ppb, "parallel_record": ppr,
                   "parallel_grouped": pg, "processes_grouped": pp}
            for mode in modes:
                rnd[f"e2e_{mode}"] = cli_once(mode)
                rnd[f"ratio_{mode}"] = rnd[f"e2e_{mode}"] / max(pb, pr, ppb, ppr, pg, pp)
            if pp:
                rnd["ratio_processes_same_workers"] = rnd["e2e_processes"] / pp
            rnd["e2e"] = max(rnd[f"e2e_{m}"] for m in modes)
            rnd["ratio"] = max(rnd[f"ratio_{m}"] for m in modes)
            rounds.append(rnd)
        if scorer is not None:
            scorer.close()
            pure_pool.shutdown()
        t = time.perf_counter()
        Predictor(args.models, precision=args.precision, threads=args.threads)
        res["startup_s"] = time.perf_counter() - t

    def med(key: str) -> float:
        return float(np.median([r[key] for r in rounds]))

    pure = max(med("batch"), med("record"), med("parallel_batch"), med("parallel_record"),
               med("parallel_grouped"), med("processes_grouped"))
    res["throughput"] = {"pure_inference_ecg_per_s": pure,
                         f"pure_inference_batch{args.batch}_ecg_per_s": med("batch"),
                         "pure_inference_one_record_per_run_ecg_per_s": med("record"),
                         f"pure_inference_{args.workers}_threads_1thread_sessions_batch{args.batch}_ecg_per_s":
                             med("parallel_batch"),
                         f"pure_inference_{args.workers}_threads_1thread_sessions_one_record_ecg_per_s":
                             med("parallel_record"),
                         f"pure_inference_{args.workers}_threads_1thread_sessions_{FILES_PER_TASK}_records_"
                         "model_by_model_ecg_per_s": med("parallel_grouped"),
                         **({f"pure_inference_{args.workers}_processes_1thread_sessions_{FILES_PER_TASK}_"
                             "records_model_by_model_ecg_per_s": med("processes_grouped"),
                             "ratio_processes_to_same_processes_inference_alone":
                                 med("ratio_processes_same_workers")} if pure_pool is not None else {}),
                         "cli_end_to_end_ecg_per_s": med("e2e"), "ratio": med("ratio"),
                         "ratio_per_round": [r["ratio"] for r in rounds],
                         **{f"cli_{m}_ecg_per_s": med(f"e2e_{m}") for m in modes},
                         **{f"ratio_{m}": med(f"ratio_{m}") for m in modes},
                         "cpu_ms_per_ecg_one_record_per_run": float(np.median(cpu_ms["record"])),
                         "cpu_ms_per_ecg_cli_threads": float(np.median(cpu_ms["e2e_threads"]))
                         if "threads" in modes else None,
                         "files": n, "rounds": args.rounds, "cli_batch": args.cli_batch,
                         "workers": args.workers, "modes": list(modes)}
    if not args.no_torch:
        models = torch_models(predictor, x)
        if isinstance(models, str):
            res["torch_eager"] = models
        else:
            # onnxruntime on the very same fp32 weights, for the like-for-like comparison
            fp32 = predictor if predictor.precision == "fp32" else \
                Predictor(args.models, precision="fp32", threads=args.threads)
            lat32 = percentiles(timed(lambda: fp32.predict_ecg_inputs(x1), args.runs))
            tb32 = timed(lambda: fp32.predict_ecg_inputs(xb), max(3, reps // 2), warmup=1)
            fp32_1 = Predictor(args.models, precision="fp32", threads=1, parallel_models=False)
            par32 = parallel_throughput(fp32_1.predict_ecg_inputs, xb, args.workers, max(2, reps // 2))
            res["onnxruntime_fp32"] = {"latency": lat32,
                                       "throughput_ecg_per_s": max(xb.shape[0] / float(np.median(tb32)), par32),
                                       f"throughput_{args.workers}x1_thread_ecg_per_s": par32,
                                       f"throughput_{args.threads}_threads_ecg_per_s":
                                           xb.shape[0] / float(np.median(tb32))}
            t = bench_torch(models, x1, xb, args.runs, args.threads, args.workers)
            t["speedup_latency_fp32"] = t["latency"]["p50_ms"] / lat32["p50_ms"]
            t["speedup_throughput_fp32"] = (res["onnxruntime_fp32"]["throughput_ecg_per_s"]
                                            / t["throughput_ecg_per_s"])
            t["speedup_latency_default"] = (t["latency"]["p50_ms"]
                                            / res["latency_inference"]["p50_ms"])
            t["speedup_throughput_default"] = pure / t["throughput_ecg_per_s"]
            res["torch_eager"] = t

    print(f"bundle {res['bundle']['bundle_id']} ({res['bundle']['precision']}), "
          f"{args.threads} threads, {res['machine']}")
    li, lf = res["latency_inference"], res["latency_file"]
    print(f"latency, 3 pathologies, batch 1: inference p50 {li['p50_ms']:.1f} ms "
          f"(p90 {li['p90_ms']:.1f}); file->prediction p50 {lf['p50_ms']:.1f} ms")
    th = res["throughput"]
    print(f"throughput: pure inference {th['pure_inference_ecg_per_s']:.1f} ECG/s (batch "
          f"{args.batch}: {th[f'pure_inference_batch{args.batch}_ecg_per_s']:.1f}, one record per "
          f"run: {th['pure_inference_one_record_per_run_ecg_per_s']:.1f}; {args.workers} threads on "
          f"1-thread sessions, batch {args.batch}: "
          f"{med('parallel_batch'):.1f}, one record per run: {med('parallel_record'):.1f}, "
          f"{FILES_PER_TASK} records model by model, one per run: {med('parallel_grouped'):.1f}), CLI files->JSON "
          f"{th['cli_end_to_end_ecg_per_s']:.1f} ECG/s, ratio {th['ratio']:.2f} (median of "
          f"{args.rounds} interleaved rounds, each {min(th['ratio_per_round']):.2f}-"
          f"{max(th['ratio_per_round']):.2f}; {n} files, --batch {args.cli_batch}, --workers "
          f"{args.workers}); startup {res['startup_s']:.2f} s")
    print("CLI by worker kind: " + ", ".join(
        f"{m} {th[f'cli_{m}_ecg_per_s']:.1f} ECG/s (ratio {th[f'ratio_{m}']:.2f})" for m in modes)
        + (f"; {args.workers} worker processes started in {res['process_start_s']:.2f} s (not in "
           "the figure)" if "process_start_s" in res else ""))
    if pure_pool is not None:
        print(f"decomposition: the same {args.workers} worker processes running inference alone "
              f"(each its own copy of the weights) {med('processes_grouped'):.1f} ECG/s = "
              f"{med('processes_grouped') / pure:.2f} of the best pure figure; CLI processes / that = "
              f"{th['ratio_processes_to_same_processes_inference_alone']:.2f} (the file work's share)")
    if th["cpu_ms_per_ecg_cli_threads"] is not None:
        print(f"CPU time per ECG (process, all threads): pure inference one record per run "
              f"{th['cpu_ms_per_ecg_one_record_per_run']:.1f} ms, CLI files->JSON (threads) "
              f"{th['cpu_ms_per_ecg_cli_threads']:.1f} ms")
    te = res.get("torch_eager")
    if isinstance(te, dict):
        o32 = res["onnxruntime_fp32"]
        print(f"fp32, same weights: onnxruntime p50 {o32['latency']['p50_ms']:.1f} ms, "
              f"{o32['throughput_ecg_per_s']:.1f} ECG/s at batch {args.batch} (best of {args.threads} threads "
              f"and {args.workers} x 1-thread sessions); torch eager (best of 1, {args.threads} and "
              f"{args.workers} x 1 threads) p50 "
              f"{te['latency']['p50_ms']:.1f} ms, {te['throughput_ecg_per_s']:.1f} ECG/s -> "
              f"onnxruntime {te['speedup_latency_fp32']:.2f}x (latency), "
              f"{te['speedup_throughput_fp32']:.2f}x (throughput); default precision vs torch: "
              f"{te['speedup_latency_default']:.2f}x / {te['speedup_throughput_default']:.2f}x")
        print(f"torch weights = the fp32 ONNX files: "
              f"{all(w['same_weights'] for w in te['weights'].values())} (max |diff| "
              f"{max(w['max_abs_diff_vs_onnx_fp32'] for w in te['weights'].values()):.1e}, "
              f"{next(iter(te['weights'].values()))['tensors_set']} tensors set per model)")
    elif te:
        print(te)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
