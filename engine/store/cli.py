"""`cromotex audit verify|export` and `cromotex scan FOLDER...` (wired in engine/cli.py).

`cromotex audit verify [--store DB]`: checks the audit log's hash chain; exit 0 when
intact, 1 with the first broken entry when not.
`cromotex audit export --format csv|json -o OUT [--store DB]`: writes the log.
`cromotex scan PATH... [--store DB] [--no-ai] [--models DIR] [--workers N]`: indexes
folders / DICOMDIRs / files into the study store and prints a summary.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from engine.errors import CromotexError


def _store_arg(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--store", metavar="DB",
                    help="the study store's database file (default: $CROMOTEX_REVIEW_STORE, the "
                         "store_path setting, else the user data folder)")


def build_audit_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="cromotex audit",
                                 description="Check or export the study store's audit log (every AI "
                                             "result shown, read, edit, signature and export).")
    sub = ap.add_subparsers(dest="action", required=True)
    v = sub.add_parser("verify", help="check the hash chain; report the first broken entry")
    _store_arg(v)
    e = sub.add_parser("export", help="write the log as CSV or JSON")
    e.add_argument("--format", choices=("csv", "json"), default="json")
    e.add_argument("-o", "--output", metavar="OUT", required=True, help="file to write")
    e.add_argument("--user", default=None,
                   help="who exports (logged as an audit_export entry; default: the login name)")
    _store_arg(e)
    return ap


def _login() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no login name (some containers)
        return "unknown"


def run_audit(argv: list[str], out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    from engine.store.audit import export, log_event, verify
    from engine.store.db import Store
    from engine.store.location import store_path

    try:
        args = build_audit_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        path = args.store or str(store_path())
        with Store(path, readonly=args.action == "verify" and _exists(path)) as store:
            if args.action == "verify":
                result = verify(store)
                if result.ok:
                    out.write(f"audit log OK: {result.n_entries} entries, chain intact "
                              f"(last hash {result.last_hash})\n")
                    return 0
                out.write(f"audit log BROKEN at entry {result.first_bad_seq}: {result.reason} "
                          f"({result.n_entries} entries before it verified)\n")
                return 1
            n = export(store, args.output, args.format)
            log_event(store, "audit_export", args.user or _login(),
                      details={"output": args.output, "format": args.format, "entries": n})
            out.write(f"wrote {n} audit entries to {args.output}\n")
            return 0
    except CromotexError as exc:
        err.write(f"cromotex audit: {exc}\n")
        return 2


def _exists(path: str) -> bool:
    import os

    return os.path.isfile(path)


def build_scan_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="cromotex scan",
                                 description="Index ECG files (folders searched recursively, DICOMDIRs, "
                                             "files) into the study store, scoring them with the ECG "
                                             "models; re-scans are incremental.")
    ap.add_argument("inputs", nargs="+", metavar="PATH")
    _store_arg(ap)
    ap.add_argument("--no-ai", action="store_true", help="index without scoring (faster)")
    ap.add_argument("--models", metavar="DIR", help="model bundle directory (default: the shipped one)")
    ap.add_argument("--workers", type=int, default=2, help="threads reading and scoring files (default 2)")
    ap.add_argument("--rescan-failed", action="store_true", help="retry files that failed before")
    ap.add_argument("--quiet", action="store_true", help="no per-file lines for failed files")
    return ap


def run_scan_cli(argv: list[str], out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    from engine.store.db import Store
    from engine.store.scan import run_scan, scan

    try:
        args = build_scan_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.workers < 1:
        err.write("cromotex scan: --workers must be >= 1\n")
        return 2
    try:
        predictor = None
        if not args.no_ai:
            from engine.inference import Predictor

            predictor = Predictor(args.models, threads=1)
        with Store(args.store) as store:
            import time

            t0 = time.perf_counter()
            finals: dict[str, object] = {}
            for p in scan(args.inputs, store, predictor=predictor, workers=args.workers,
                          rescan_failed=args.rescan_failed):
                finals[p.phase] = p
                if p.status == "failed" and not args.quiet:
                    err.write(f"failed: {p.error}\n")
            seconds = time.perf_counter() - t0
            index = finals.get("index")
            if index is None:
                out.write(f"no ECG files found; store {store.path}\n")
                return 1
            line = (f"{index.done} files in {seconds:.1f} s: {index.indexed} indexed, {index.unchanged} "
                    f"unchanged, {index.failed} failed")
            score = finals.get("score")
            if score is not None:
                line += f"; AI: {score.indexed} scored, {score.failed} could not be scored"
            out.write(f"{line}; store {store.path}\n")
            failed = index.failed + (score.failed if score is not None else 0)
            return 0 if failed == 0 else 1
    except CromotexError as exc:
        err.write(f"cromotex scan: {exc}\n")
        return 2


__all__ = ["run_audit", "run_scan_cli", "build_audit_parser", "build_scan_parser"]
