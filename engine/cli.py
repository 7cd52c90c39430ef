"""`cromotex SUBCOMMAND ...`: the headless command line of CroMoTEX Review.

`cromotex predict ECG_FILE... [--cxr CXR_FILE] [--models DIR] [--format json|csv]
[-o OUT] [--device cpu|cuda|auto]` scores ECG files (files, folders searched
recursively, glob patterns) and streams one JSON line (or CSV row) per input,
flushed as soon as it is produced. See `cromotex predict --help`.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import multiprocessing
import os
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any, NamedTuple, TextIO

from engine.batch import InputItem, files_per_task, iter_inputs, score_files
from engine.errors import CromotexError
from engine.inference import DEFAULT_THREADS, DEVICES, PRECISIONS, Predictor
from engine.io import read_cxr
from engine.predict_output import CsvWriter, cxr_json, dumps, help_text, model_json, result_json
from engine.process_pool import PredictorSpec, ProcessScorer

log = logging.getLogger(__name__)

#: More inputs than this show a progress bar on stderr.
PROGRESS_MIN_FILES = 3
#: Default number of files scored in parallel: one per CPU (at most 16).
DEFAULT_WORKERS = max(1, min(16, os.cpu_count() or 1))
#: `--parallel auto` (`choose_parallel`, measured there): one thread with fewer idle CPUs
#: than this (CPUs minus the 1-minute load average) ...
THREADS_MIN_IDLE_CPUS = 1.0
#: ... worker processes only with at least this many idle CPUs for the workers ...
PROCESS_MIN_IDLE_CPUS = 2.0
#: ... and files x idle CPUs used of at least this (4,000 files on 2 idle CPUs, 500 on 16).
PROCESS_MIN_FILE_CPUS = 8000
#: Inputs looked at before choosing (the most files the rule can ask for).
PROCESS_MIN_FILES = PROCESS_MIN_FILE_CPUS // 2
PARALLEL_MODES = ("auto", "processes", "threads")


def build_predict_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="cromotex predict",
        description="Score 12-lead ECG files with the ECG-only CroMoTEX models (cardiomegaly, "
                    "pulmonary edema, pleural effusion), offline. Inputs: files (WFDB .hea, "
                    "DICOM waveform, GE MUSE / Philips / HL7 aECG XML, ...), folders (searched "
                    "recursively for *.hea, *.dcm, suffix-less files and ECG *.xml) and glob "
                    "patterns ('**' recursive).",
        epilog=help_text(), formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="+", metavar="ECG_FILE", help="ECG files, folders or globs")
    ap.add_argument("--cxr", metavar="CXR_FILE",
                    help="chest X-ray (DICOM/PNG/JPEG) to score with the teacher model; its "
                         "predictions are added to every output line, unless the gate refuses it "
                         "(not a frontal chest radiograph, or unlike the teacher's training "
                         "images) or it belongs to a different patient than the ECG (see "
                         "'pairing' and 'cxr' below)")
    ap.add_argument("--models", metavar="DIR",
                    help="model bundle directory (default: the shipped resources/models/); its "
                         "manifest must be signed by a trusted key")
    ap.add_argument("--trusted-key", action="append", default=[], metavar="KEY.pub",
                    help="also trust bundles signed with this Ed25519 public key (file, or folder of "
                         ".pub files; repeatable). Always trusted: the CroMoTEX project key, the "
                         "settings folder's trusted_keys/ and settings.json 'trusted_keys' (as the "
                         "app), and CROMOTEX_TRUSTED_KEYS (paths separated by the OS path separator)")
    ap.add_argument("--format", choices=("json", "csv"), default="json",
                    help="JSON lines (default) or CSV")
    ap.add_argument("-o", "--output", metavar="OUT", help="write here instead of stdout")
    ap.add_argument("--device", choices=DEVICES, default="cpu",
                    help="cpu (default), cuda (needs onnxruntime-gpu) or auto")
    ap.add_argument("--precision", choices=PRECISIONS, default="auto",
                    help="ECG model precision: auto (int8 when the bundle ships it), fp32, int8")
    ap.add_argument("--threads", type=int, default=None,
                    help="onnxruntime threads per model (default: 1, files are scored in parallel by "
                         f"--workers instead; {DEFAULT_THREADS} with --batch)")
    ap.add_argument("--workers", type=int, default=DEFAULT_WORKERS,
                    help="files in parallel, each read, preprocessed and scored by one worker "
                         f"(default: the number of CPUs, at most 16: {DEFAULT_WORKERS} here; "
                         "--parallel auto uses one on a busy machine); with "
                         "--batch: threads reading files ahead of inference")
    ap.add_argument("--parallel", choices=PARALLEL_MODES, default="auto",
                    help="workers are processes (no shared GIL: scale with cores; 1-3 s to start) "
                         "or threads; auto (default), by the CPUs left idle by other work (CPUs minus "
                         "the 1-minute load average): under 1, one thread; processes when at least "
                         f"{PROCESS_MIN_IDLE_CPUS:g} are idle for the workers and inputs x those CPUs "
                         f">= {PROCESS_MIN_FILE_CPUS} (e.g. {PROCESS_MIN_FILE_CPUS // 2} files on 2 idle "
                         "CPUs); else --workers threads. Same outputs either way")
    ap.add_argument("--batch", type=int, default=0,
                    help="0 (default): each record's windows in one onnxruntime run, outputs "
                         "bit-identical to the app; N > 0: gather up to N windows across files "
                         "per run (outputs then depend on which files share a run: ~1e-7 with "
                         "fp32 models, up to ~1e-3 in probability with int8 models, whose "
                         "activation scales are computed per run); e.g. 16 for bulk scoring")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    ap.add_argument("--explain", metavar="OUTDIR", default=None,
                    help="also write occlusion saliency maps of every scored file (and --cxr) to "
                         "OUTDIR as .npy arrays, PNGs and a JSON sidecar (fp32 models; seconds per file)")
    ap.add_argument("--explain-mode", choices=("grid", "separable"), default="grid",
                    help="ECG occlusion: every lead x 1 s segment (grid) or leads and segments "
                         "separately (separable, about 5 x faster)")
    return ap


def _peek(items, n: int) -> tuple[list[InputItem], Any]:
    """The first n items and an iterator over all of them (lazy)."""
    it = iter(items)
    head = list(itertools.islice(it, n))
    return head, itertools.chain(head, it)


def _score_cxr(predictor: Predictor, path: str) -> tuple[dict, dict | None]:
    """(the `cxr` field, the image's meta for the pairing; None when it could not be read)."""
    try:
        image = read_cxr(path)
        return cxr_json(path, predictor.assess_cxr(image), None, predictor.cxr_pathologies), image.meta
    except CromotexError as exc:
        return cxr_json(path, None, str(exc)), None


def predictor_threads(args: argparse.Namespace) -> int:
    """onnxruntime intra-op threads: as asked, else 1 when files run in parallel (the default)."""
    if args.threads is not None:
        return args.threads
    return DEFAULT_THREADS if args.batch > 0 else 1


class ParallelChoice(NamedTuple):
    """How files are scored: `mode` "processes" or "threads", with `workers` of them."""

    mode: str
    workers: int


def choose_parallel(cpus: int, load1: float | None, n_inputs: int, workers: int) -> ParallelChoice:
    """The worker mode of `--parallel auto`.

    Args:
        cpus: CPUs of the machine (`os.cpu_count()`).
        load1: 1-minute load average (`os.getloadavg()[0]`), read before any worker starts;
            None where the platform has none (Windows): the machine is taken as idle.
        n_inputs: inputs of the run (counted up to PROCESS_MIN_FILES; more count as that).
        workers: `--workers` (the most workers used).

    The rule, with `idle = cpus - load1` (CPUs not used by other work):

    1. `idle < THREADS_MIN_IDLE_CPUS` (1): **one thread**: a second worker has no CPU to
       run on.
    2. `min(workers, idle) >= PROCESS_MIN_IDLE_CPUS` (2) and `n_inputs * min(workers, idle)
       >= PROCESS_MIN_FILE_CPUS` (8,000): `workers` **processes**.
    3. Otherwise `workers` **threads**.

    Why, measured (docs/results/parallel_mode.md: bench/predict_parallel.py, end to end
    in a fresh interpreter per run; bench/predict.py, started pools):

    - Processes cost a fixed start-up: each worker is a fresh interpreter that imports the
      engine and opens (verifies) the bundle again. End to end on the 2-CPU machine,
      16 files: 5.9-6.7 s of CPU with 2 processes against 2.4-3.1 s with threads (+3.3-3.9 s,
      ~1.8 s of wall time on two idle CPUs); 2 started workers took 0.85 s on the idle
      machine in bench/predict.py (warm page cache).
    - Their gain per file is what the GIL takes from threads, and it grows with the idle
      CPUs: 0.42 ms a file on 2 idle CPUs (132.6 vs 125.6 ECG/s, started pools), 0.9 ms on
      4, 2.4 ms on 8 and 5.0 ms on 16 (16-core Xeon: 294-342 vs 106-126 ECG/s; threads stop
      at ~110-130 ECG/s whatever the core count), ~0.3 ms x idle CPUs. Start-up / gain
      gives the break-even: 2,000-4,400 files on 2 idle CPUs, ~2,000 on 4, 350-750 on 8
      and 170-360 on 16; the constant 8,000 file-CPUs puts the switch inside or just past
      that (4,000 / 2,000 / 1,000 / 500 files).
    - When other work keeps the CPUs busy the processes' start-up is never paid back:
      under a load average of 2.5-5.6 on 2 CPUs, 2 processes took 1.85x the time of 1
      thread for 256 files and 1.52x for 16 (the issue saw 129 vs 87 s for 2,048 files).
    - Under that load 2 threads were not clearly faster than 1 (256 files, 6 alternating
      rounds, load 5.1-7.9: medians 26.5 vs 27.7 s, rounds 24-34 vs 26-41 s) and spent 7%
      more CPU (14.7 vs 13.7 s; GIL hand-offs), CPU the other jobs then lack; one thread
      is the single-thread baseline itself. On an idle machine 2 threads use the second CPU.
    """
    idle = float(cpus) if load1 is None else max(0.0, cpus - load1)
    if workers <= 1 or idle < THREADS_MIN_IDLE_CPUS:
        return ParallelChoice("threads", 1)
    usable = min(float(workers), idle)
    if usable >= PROCESS_MIN_IDLE_CPUS and n_inputs * usable >= PROCESS_MIN_FILE_CPUS:
        return ParallelChoice("processes", workers)
    return ParallelChoice("threads", workers)


def load_average() -> float | None:
    """The 1-minute load average, or None where the platform has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def parallel_plan(args: argparse.Namespace, n_inputs: int) -> ParallelChoice:
    """How this run scores its files, given `--parallel`, `--workers`, `--batch` and the
    number of inputs seen so far (at most PROCESS_MIN_FILES are looked at):
    `choose_parallel` with this machine's CPUs and load for `auto` (threads with --batch)."""
    if args.parallel != "auto":
        return ParallelChoice(args.parallel, args.workers)
    if args.batch != 0:
        return ParallelChoice("threads", args.workers)
    cpus, load1 = os.cpu_count() or 1, load_average()
    choice = choose_parallel(cpus, load1, n_inputs, args.workers)
    log.info("--parallel auto: %d %s (%d CPUs, load average %s, %d+ inputs, --workers %d)",
             choice.workers, choice.mode, cpus, load1, n_inputs, args.workers)
    return choice


def _process_scorer(predictor: Predictor, args: argparse.Namespace, err: TextIO,
                    task_size: int, workers: int) -> ProcessScorer | None:
    """Started worker processes, or None (with a warning) when they cannot start here."""
    scorer = ProcessScorer(PredictorSpec.of(predictor, predictor_threads(args)), workers,
                           task_size=task_size)
    try:
        scorer.start()
    except CromotexError as exc:
        err.write(f"cromotex predict: {exc}; scoring in threads instead\n")
        return None
    return scorer


def run_predict(args: argparse.Namespace, out: TextIO, err: TextIO,
                predictor: Predictor | None = None, scorer: ProcessScorer | None = None) -> int:
    """Score every input, writing to `out`; returns the exit status.

    `predictor`: an already opened Predictor (else one is opened from `args`).
    `scorer`: already started worker processes to score the files with (else `--parallel`
    decides, and processes started here are stopped at the end).
    """
    if predictor is None:
        try:
            predictor = Predictor(args.models, device=args.device, precision=args.precision,
                                  threads=predictor_threads(args), parallel_models=args.batch > 0)
        except CromotexError as exc:
            err.write(f"cromotex predict: {exc}\n")
            return 2
    if predictor.demo:
        err.write(f"WARNING: {predictor.bundle.disclaimer} (bundle {predictor.bundle.bundle_id})\n")
    model = model_json(predictor)
    cxr, cxr_meta = _score_cxr(predictor, args.cxr) if args.cxr else (None, None)
    all_ok = cxr is None or cxr["ok"]
    if cxr is not None and not cxr["ok"]:
        err.write(f"cromotex predict: chest X-ray {args.cxr}: {cxr['error']}\n")
    elif cxr is not None and cxr["withheld"]:
        err.write(f"cromotex predict: chest X-ray {args.cxr}: {cxr['withheld']}\n")

    peek = max(PROGRESS_MIN_FILES + 1, PROCESS_MIN_FILES)
    head, items = _peek(iter_inputs(args.inputs), peek)
    mode, workers = parallel_plan(args, len(head)) if scorer is None else ("processes", args.workers)
    task_size = files_per_task(len(head) if len(head) < peek else None, workers)
    own_scorer = None
    if mode == "processes" and scorer is None:
        scorer = own_scorer = _process_scorer(predictor, args, err, task_size, workers)
    bar = None
    if len(head) > PROGRESS_MIN_FILES and not args.no_progress:
        from tqdm import tqdm
        bar = tqdm(unit="file", file=err, desc="scoring", dynamic_ncols=True)
    writer = CsvWriter(out) if args.format == "csv" else None
    n = n_bad = 0
    explained: list[str] = []
    results = scorer.score(items) if scorer is not None else \
        score_files(predictor, items, workers=workers, prefetch=max(8, 4 * workers, 2 * args.batch),
                    micro_batch=args.batch, task_size=task_size)
    try:
        for r in results:
            obj = result_json(r, model, cxr, cxr_meta)
            if writer is not None:
                writer.write(obj)
            else:
                out.write(dumps(obj) + "\n")
            out.flush()
            n += 1
            n_bad += not r.ok
            if args.explain and r.ok:
                explained.append(r.file)
            if bar is not None:
                bar.update(1)
                if n_bad:
                    bar.set_postfix(failed=n_bad, refresh=False)
    finally:
        if bar is not None:
            bar.close()
        if own_scorer is not None:
            own_scorer.close()
    if n_bad:
        err.write(f"cromotex predict: {n_bad} of {n} inputs could not be scored (ok: false)\n")
    if args.explain:
        all_ok &= _write_explanations(predictor, args, explained, err)
    return 0 if (all_ok and n_bad == 0) else 1


def _write_explanations(predictor: Predictor, args: argparse.Namespace, files: list[str],
                        err: TextIO) -> bool:
    """`--explain OUTDIR`: maps of every scored file (and --cxr); False when one failed."""
    from engine.explain import Explainer
    from engine.explain_export import explain_cxr_file, explain_ecg_file

    explainer, ok, outdir = Explainer(predictor), True, Path(args.explain)
    jobs = [(explain_ecg_file, f, {"mode": args.explain_mode}) for f in files]
    if args.cxr:
        jobs.append((explain_cxr_file, args.cxr, {}))
    for fn, f, kw in jobs:
        try:
            fn(explainer, f, outdir, **kw)
        except CromotexError as exc:
            err.write(f"cromotex predict: --explain {f}: {exc}\n")
            ok = False
    return ok


SUBCOMMANDS = {"predict": "score ECG files (JSON lines or CSV), see `cromotex predict --help`",
               "archive": "score an ECG archive on a Dask cluster into Parquet (extra .[cluster]), "
                          "see `cromotex archive --help`",
               "scan": "index ECG files into the study store, see `cromotex scan --help`",
               "audit": "verify or export the audit log, see `cromotex audit --help`",
               "deid": "write de-identified copies of ECG files, see `cromotex deid --help`"}


def _other_subcommand(name: str, argv: list[str]) -> int:
    """Run a subcommand other than predict (each lives beside what it drives; Dask and pyarrow
    are imported by `archive` only)."""
    if name == "archive":
        from engine.archive.cli import main as archive_main
        return archive_main(argv)
    if name == "scan":
        from engine.store.cli import run_scan_cli
        return run_scan_cli(argv)
    if name == "audit":
        from engine.store.cli import run_audit
        return run_audit(argv)
    from engine.deid.cli import run_deid
    return run_deid(argv)


def _usage() -> str:
    lines = ["usage: cromotex SUBCOMMAND [options]", "", "subcommands:"]
    lines += [f"  {k}  {v}" for k, v in SUBCOMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `cromotex`; returns the exit status."""
    multiprocessing.freeze_support()  # a frozen (PyInstaller) build's worker processes start here
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] not in SUBCOMMANDS:
        sys.stderr.write(f"cromotex: unknown subcommand {argv[0]!r}\n\n{_usage()}\n")
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if argv[0] != "predict":
        return _other_subcommand(argv[0], argv[1:])
    try:
        args = build_predict_parser().parse_args(argv[1:])
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    if args.batch < 0 or args.workers < 1 or (args.threads is not None and args.threads < 1):
        sys.stderr.write("cromotex predict: --workers and --threads must be >= 1, --batch >= 0\n")
        return 2
    if args.batch > 0 and args.parallel == "processes":
        sys.stderr.write("cromotex predict: --batch gathers files into one inference loop and needs "
                         "--parallel threads (or auto)\n")
        return 2
    try:
        ctx = open(args.output, "w", encoding="utf-8", newline="") if args.output \
            else nullcontext(sys.stdout)
    except OSError as exc:
        sys.stderr.write(f"cromotex predict: cannot write {args.output}: {exc.strerror}\n")
        return 2
    if args.trusted_key:  # through the environment, so worker processes trust them too
        from engine.trust import add_to_environment
        add_to_environment(args.trusted_key)
    with ctx as out:
        return run_predict(args, out, sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
