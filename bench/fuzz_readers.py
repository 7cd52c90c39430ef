"""Fuzz every reader on demand: mutants of the real samples, size bombs and file-system
oddities, each read in a child process under a time and a memory limit.

Mutants, bombs and oddities come from tests/engine/fuzz_mutants.py (the CI test
tests/engine/test_reader_fuzz_all.py runs a small deterministic budget of the same). Each
read runs in a worker process whose address space is limited with
`resource.setrlimit(RLIMIT_AS)`; a read that passes `--timeout` seconds is killed (and the
worker restarted), so a hang or a native crash is counted, not suffered. Outcomes per
family and reader:
  ok        a well-formed record / image
  typed     an engine error (CromotexError) not caused by running out of memory
  memory    an engine error caused by MemoryError (the memory limit was hit: the limits of
            engine/io/limits.py should have refused the file first), or a raw MemoryError
  untyped   any other exception (a bug)
  timeout   killed after --timeout seconds
  crash     the worker died (a native crash)
For the ECG families it also counts mutants on which the app's read (`read_ecg`) and the
CLI's signal-only read (`annotations=False`) disagree (accept vs refuse).

Usage:
  python bench/fuzz_readers.py [--mutants-per-case 150] [--seed 0] [--timeout 10]
                               [--memory-mb 3072] [--no-bombs] [--json OUT] [--engine-root DIR]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "engine"))

OUTCOMES = ("ok", "typed", "memory", "untyped", "timeout", "crash")


def worker(memory_mb: int, engine_root: Path | None) -> None:
    """Read jobs {"path", "reader"} from stdin (JSON lines); answer {"outcome", "error", "seconds"}.
    `engine_root`: import `engine` from this checkout instead (to measure an older version)."""
    import resource

    if engine_root is not None:
        sys.path.insert(0, str(engine_root))

    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import numpy as np

    import fuzz_mutants as F
    from engine.errors import CromotexError

    def caused_by_memory(exc: BaseException | None) -> bool:
        while exc is not None:
            if isinstance(exc, MemoryError):
                return True
            exc = exc.__cause__ or exc.__context__
        return False

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        start = time.perf_counter()
        try:
            result = F.READERS[job["reader"]](job["path"])
            data = getattr(result, "signal", None)
            data = result.pixels if data is None else data
            ok = data.dtype == np.float32 and data.ndim == 2 and data.size > 0
            out = {"outcome": "ok" if ok else "untyped", "error": None if ok else "malformed result"}
        except CromotexError as exc:
            out = {"outcome": "memory" if caused_by_memory(exc) else "typed",
                   "error": f"{type(exc).__name__}: {str(exc)[:200]}"}
        except MemoryError as exc:
            out = {"outcome": "memory", "error": f"MemoryError: {exc}"}
        except Exception as exc:  # noqa: BLE001 - counting them is the point
            out = {"outcome": "untyped", "error": f"{type(exc).__name__}: {str(exc)[:200]}"}
        out["seconds"] = time.perf_counter() - start
        print(json.dumps(out), flush=True)


class Runner:
    """One worker process at a time; restarted after a timeout or a crash."""

    def __init__(self, timeout: float, memory_mb: int, engine_root: Path | None = None):
        self.timeout, self.memory_mb, self.proc = timeout, memory_mb, None
        self.engine_root = engine_root

    def _start(self) -> None:
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        extra = ["--engine-root", str(self.engine_root)] if self.engine_root else []
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker", "--memory-mb",
                                      str(self.memory_mb), *extra], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     env=env, cwd=ROOT)
        assert json.loads(self.proc.stdout.readline())["ready"]

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def read(self, path: Path, reader: str) -> dict:
        if self.proc is None:
            self._start()
        start = time.perf_counter()
        try:
            self.proc.stdin.write(json.dumps({"path": str(path), "reader": reader}) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            self.stop()
            return {"outcome": "crash", "error": "worker gone", "seconds": 0.0}
        ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout)
        if not ready:
            self.stop()
            return {"outcome": "timeout", "error": f"over {self.timeout} s",
                    "seconds": time.perf_counter() - start}
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            self.proc = None
            return {"outcome": "crash", "error": f"worker exit {code}",
                    "seconds": time.perf_counter() - start}
        return json.loads(line)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mutants-per-case", type=int, default=150)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per read")
    ap.add_argument("--memory-mb", type=int, default=3072, help="address-space limit of a worker")
    ap.add_argument("--no-bombs", action="store_true", help="skip the size bombs (they take ~1 min)")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON")
    ap.add_argument("--engine-root", type=Path,
                    help="read with the engine of this checkout (e.g. an older commit's worktree) "
                         "to compare; the mutants are this checkout's")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.memory_mb, args.engine_root)
        return 0

    import fuzz_mutants as F

    runner = Runner(args.timeout, args.memory_mb, args.engine_root)
    counts: dict[tuple[str, str], collections.Counter] = collections.defaultdict(collections.Counter)
    seconds: dict[tuple[str, str], float] = collections.defaultdict(float)
    worst: dict[tuple[str, str], float] = collections.defaultdict(float)
    findings: list[dict] = []
    disagree = collections.Counter()
    mutants = collections.Counter()
    t0 = time.perf_counter()

    def record(family: str, reader: str, what: str, result: dict) -> dict:
        key = (family, reader)
        counts[key][result["outcome"]] += 1
        seconds[key] += result["seconds"]
        worst[key] = max(worst[key], result["seconds"])
        if result["outcome"] in ("memory", "untyped", "timeout", "crash"):
            findings.append({"family": family, "reader": reader, "input": what, **result})
        return result

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        cases = F.base_cases(tmp_path)
        for c_index, case in enumerate(cases):
            for k in range(args.mutants_per_case):
                rng = random.Random(f"{args.seed}:{case.name}:{c_index}:{k}")
                folder = tmp_path / f"m{c_index}_{k}"
                folder.mkdir()
                path, kind = F.make_mutant(case, folder, rng)
                mutants[case.name] += 1
                got = {r: record(case.name, r, f"seed {args.seed} case {c_index} mutant {k} ({kind})",
                                 runner.read(path, r)) for r in case.readers}
                if "read_ecg" in got:
                    a, b = got["read_ecg"]["outcome"], got["read_ecg_signal_only"]["outcome"]
                    if (a == "ok") != (b == "ok"):
                        disagree[case.name] += 1
                        findings.append({"family": case.name, "reader": "both ECG paths",
                                         "input": f"case {c_index} mutant {k} ({kind})",
                                         "outcome": f"app {a}, CLI {b}"})
                for f in folder.iterdir():
                    f.unlink()
                folder.rmdir()
        if not args.no_bombs:
            for family, path, reader in F.bomb_cases(tmp_path / "bombs", small=False):
                record(f"{family} (size bomb)", reader, path.name, runner.read(path, reader))
        for name, path in F.oddity_cases(tmp_path / "odd"):
            for reader in F.READERS:
                record(f"file system: {name}", reader, str(path), runner.read(path, reader))
        (tmp_path / "odd" / "unreadable.dcm").chmod(0o600)
    runner.stop()
    total = time.perf_counter() - t0

    print(f"fuzz_readers: engine {args.engine_root or ROOT}, seed {args.seed}, {args.mutants_per_case} mutants per case, "
          f"{sum(mutants.values())} mutants, timeout {args.timeout} s, memory {args.memory_mb} MB, "
          f"{total:.0f} s in all\n")
    print("| family | reader | reads | " + " | ".join(OUTCOMES) + " | mean ms | max ms |")
    print("|---|---|---:|" + "---:|" * len(OUTCOMES) + "---:|---:|")
    for key in counts:
        n = sum(counts[key].values())
        print(f"| {key[0]} | {key[1]} | {n} | " + " | ".join(str(counts[key][o]) for o in OUTCOMES)
              + f" | {1000 * seconds[key] / n:.1f} | {1000 * worst[key]:.0f} |")
    print(f"\nmutants per family: {dict(mutants)}")
    print(f"app vs CLI ECG read disagreements: {dict(disagree) or 0}")
    print(f"findings (memory / untyped / timeout / crash / disagreement): {len(findings)}")
    for f in findings[:50]:
        print(f"  {f}")
    if args.json:
        args.json.write_text(json.dumps({
            "seed": args.seed, "mutants_per_case": args.mutants_per_case, "seconds": total,
            "mutants": dict(mutants), "disagreements": dict(disagree), "findings": findings,
            "counts": [{"family": k[0], "reader": k[1], **counts[k]} for k in counts]}, indent=1))
    bad = sum(counts[k][o] for k in counts for o in ("untyped", "timeout", "crash", "memory"))
    return 1 if bad or disagree else 0


if __name__ == "__main__":
    sys.exit(main())
