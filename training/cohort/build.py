"""`cromotex-train cohort`: build a COHORT directory (docs/cohort.md) from a
MIMIC root (or a phantom in the same layout).

Steps: find and read the tables; link ECGs to frontal CXRs (training.cohort.link);
split subjects 70:10:20 (training.cohort.splits); stream the SSL-pool ECGs,
then the pairs, through the engine's readers and preprocessing into memory-
mapped `.npy` arrays; write pairs.csv, ssl.csv and, last, cohort.json.
An unreadable file is logged and skipped; the pair or SSL row goes with it.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import logging
import multiprocessing
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

import engine
from engine.constants import PATHOLOGIES, preprocessing_constants
from engine.errors import CromotexError, MissingFileError
from training.cohort import link, mimic_tables
from training.cohort.arrays import NpyStream
from training.cohort.prepare import CXR_ROW_SHAPE, ECG_ROW_SHAPE, ecg_job, pair_job
from training.cohort.splits import SPLIT_FRACTIONS, SPLITS, assign_splits
from training.jsonio import write_json

log = logging.getLogger(__name__)

FORMAT_NAME = "cromotex-cohort"
FORMAT_VERSION = 1
PAIRS_HEADER = ["index", "subject_id", "split", "ecg_study_id", "ecg_file", "ecg_time",
                "cxr_study_id", "dicom_id", "cxr_file", "view_position", "cxr_time",
                "stay_id", *PATHOLOGIES]
SSL_HEADER = ["index", "subject_id", "split", "ecg_study_id", "ecg_file"]
#: split value in ssl.csv for subjects without any linked pair (never test).
UNLINKED = "unlinked"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="cromotex-train cohort",
        description="Build a COHORT directory (docs/cohort.md) from MIMIC-IV-ECG, "
                    "MIMIC-CXR-JPG, MIMIC-IV-ED and MIMIC-IV-ECG-Ext-ICD (or a phantom).")
    p.add_argument("--mimic-root", type=Path, help="folder holding the releases as sub-folders "
                   "(tables are found by file name, .csv or .csv.gz)")
    p.add_argument("--ecg-root", type=Path, help="MIMIC-IV-ECG folder (with record_list.csv)")
    p.add_argument("--cxr-root", type=Path, help="MIMIC-CXR-JPG folder (with the "
                   "mimic-cxr-2.0.0-*.csv tables and files/)")
    p.add_argument("--ed-root", type=Path, help="MIMIC-IV-ED folder (with ed/edstays.csv)")
    p.add_argument("--ecg-icd-csv", type=Path, help="MIMIC-IV-ECG-Ext-ICD "
                   "records_w_diag_icd10.csv(.gz)")
    p.add_argument("--out", type=Path, required=True, help="COHORT directory to write")
    p.add_argument("--link", choices=("ed", "window"), default="ed",
                   help="ed: ECG and CXR in the same ED stay (the paper; default); "
                        "window: ECG within +-HOURS of the CXR")
    p.add_argument("--hours", type=float, default=None, help="window half-width for --link window")
    p.add_argument("--no-ext-icd", action="store_true", help="ignore the Ext-ICD table even if "
                   "found: tie ECGs to stays by ecg_time")
    p.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    p.add_argument("--workers", type=int, default=1,
                   help="processes reading and preprocessing files (default 1)")
    p.add_argument("--force", action="store_true", help="overwrite an existing COHORT")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if args.mimic_root is None and (args.ecg_root is None or args.cxr_root is None):
        p.error("give --mimic-root, or both --ecg-root and --cxr-root")
    if args.link == "window" and args.hours is None:
        p.error("--link window needs --hours H")
    if args.workers < 1:
        p.error("--workers must be >= 1")
    return args


def _git_sha() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _imap(func: Callable, jobs: Iterable, workers: int) -> Iterator:
    if workers <= 1:
        yield from map(func, jobs)
        return
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        yield from pool.imap(func, jobs, chunksize=4)


def _link(paths: mimic_tables.MimicPaths, records: pd.DataFrame,
          args: argparse.Namespace) -> link.LinkResult:
    metadata = mimic_tables.read_cxr_metadata(paths.cxr_metadata)
    chexpert = mimic_tables.read_chexpert(paths.cxr_chexpert)
    if args.link == "window":
        return link.link_window(metadata, chexpert, records, args.hours)
    if paths.edstays is None:
        raise MissingFileError(
            "No MIMIC-IV-ED edstays.csv(.gz) found, so ECGs and CXRs cannot be linked by ED "
            "stay. Point --ed-root at MIMIC-IV-ED, or use --link window --hours H.")
    edstays = mimic_tables.read_edstays(paths.edstays)
    icd = None
    if paths.ecg_icd is not None and not args.no_ext_icd:
        icd = mimic_tables.read_ecg_icd(paths.ecg_icd)
    return link.link_ed_stays(metadata, chexpert, records, edstays, icd)


class _Skips:
    """Unreadable files and what they cost."""

    def __init__(self) -> None:
        self.files: dict[str, dict] = {}
        self.pairs = 0
        self.ssl = 0

    def add(self, kind: str, file: str, reason: str) -> None:
        if file not in self.files:
            log.warning("skipping unreadable %s %s: %s", kind, file, reason)
            self.files[file] = {"kind": kind, "file": file, "reason": reason}

    def summary(self) -> dict:
        by_reason = Counter(f["reason"].split(":", 1)[0] for f in self.files.values())
        return {"files": len(self.files), "pairs_skipped": self.pairs, "ssl_skipped": self.ssl,
                "by_error": dict(sorted(by_reason.items())),
                "unexpected": sum(1 for f in self.files.values()
                                  if f["reason"].startswith("unexpected")),
                "list": sorted(self.files.values(), key=lambda f: f["file"])}


def _write_ssl(out: Path, ssl: pd.DataFrame, ecg_root: Path, skips: _Skips,
               args: argparse.Namespace) -> dict[int, int]:
    """Stream the SSL pool into ssl_ecg.npy / ssl.csv. Returns ECG study_id -> row."""
    rows: dict[int, int] = {}
    stream = NpyStream(out / "ssl_ecg.npy", len(ssl), ECG_ROW_SHAPE, np.float32)
    paths = [str(ecg_root / (p + ".hea")) for p in ssl["path"]]
    with open(out / "ssl.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(SSL_HEADER)
        bar = tqdm(total=len(ssl), desc="SSL ECGs", unit="ecg", file=sys.stderr,
                   disable=args.quiet)
        for rec, (row, err) in zip(ssl.itertuples(index=False), _imap(ecg_job, paths,
                                                                      args.workers)):
            bar.update()
            if err is not None:
                skips.add("ecg", rec.path, err)
                skips.ssl += 1
                continue
            i = stream.append(row)
            rows[int(rec.study_id)] = i
            writer.writerow([i, rec.subject_id, rec.split, rec.study_id, rec.path])
        bar.close()
    stream.close()
    return rows


class _PairEcgs:
    """The ECG rows of the pairs pass, each ECG read and preprocessed once.

    An ECG of the SSL pool comes from `ssl_ecg.npy`; an ECG shared by several pairs
    (a test-split ECG is in no SSL pool) is prepared for its first pair and reused,
    from `ecg.npy` when that pair was written, else from memory (its CXR failed).
    Rows are float32 `[12, 1000]`, bit-identical to a fresh `prepare_ecg`.
    """

    def __init__(self, ssl_mm: np.ndarray | None, ssl_rows: dict[int, int], stream: NpyStream) -> None:
        self._ssl_mm = ssl_mm
        self._ssl_rows = ssl_rows
        self._stream = stream
        self._written: dict[int, int] = {}
        self._dropped: dict[int, np.ndarray] = {}
        self.failed: set[int] = set()

    def jobs(self, pairs: pd.DataFrame, ecg_root: Path, ssl_failed: set[str]) -> list[str | None]:
        """Per pair, the ECG header to read, or None when the row is prepared elsewhere:
        in the SSL pass (or it failed there), or for an earlier pair of this pass."""
        first: set[int] = set()
        out: list[str | None] = []
        for rec in pairs.itertuples(index=False):
            sid = int(rec.ecg_study_id)
            cached = sid in self._ssl_rows or rec.ecg_path in ssl_failed or sid in first
            first.add(sid)
            out.append(None if cached else str(ecg_root / (rec.ecg_path + ".hea")))
        return out

    def known(self, study_id: int) -> np.ndarray | None:
        """The row prepared earlier for ECG `study_id`, or None (never prepared, or failed)."""
        if study_id in self._ssl_rows:
            return self._ssl_mm[self._ssl_rows[study_id]]
        if study_id in self._written:
            return self._stream.row(self._written[study_id])
        return self._dropped.get(study_id)

    def append(self, study_id: int, row: np.ndarray) -> int:
        """Write `row` as the next row of ecg.npy; returns its index."""
        i = self._stream.append(row)
        self._written.setdefault(study_id, i)
        return i

    def keep_dropped(self, study_id: int, row: np.ndarray) -> None:
        """Remember a row prepared in this pass for a pair that was not written."""
        if study_id not in self._ssl_rows and study_id not in self._written:
            self._dropped.setdefault(study_id, row)


def _write_pairs(out: Path, pairs: pd.DataFrame, paths: mimic_tables.MimicPaths,
                 ssl_rows: dict[int, int], skips: _Skips, args: argparse.Namespace) -> pd.DataFrame:
    """Stream the pairs into ecg.npy / cxr.npy / pairs.csv. Returns the pairs written."""
    ssl_mm = np.load(out / "ssl_ecg.npy", mmap_mode="r") if ssl_rows else None
    ecg = NpyStream(out / "ecg.npy", len(pairs), ECG_ROW_SHAPE, np.float32)
    cxr = NpyStream(out / "cxr.npy", len(pairs), CXR_ROW_SHAPE, np.int16)
    ecgs = _PairEcgs(ssl_mm, ssl_rows, ecg)
    cxr_files = [mimic_tables.cxr_image_path(s, st, d) for s, st, d in
                 zip(pairs["subject_id"], pairs["cxr_study_id"], pairs["dicom_id"])]
    ssl_failed = {f for f, v in skips.files.items() if v["kind"] == "ecg"}
    jobs = list(zip(ecgs.jobs(pairs, paths.ecg_root, ssl_failed),
                    (str(paths.cxr_root / f) for f in cxr_files)))
    kept = []
    with open(out / "pairs.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(PAIRS_HEADER)
        bar = tqdm(total=len(pairs), desc="pairs", unit="pair", file=sys.stderr,
                   disable=args.quiet)
        for k, (rec, cxr_file, result) in enumerate(zip(pairs.itertuples(index=False), cxr_files,
                                                        _imap(pair_job, jobs, args.workers))):
            bar.update()
            sid = int(rec.ecg_study_id)
            ecg_row, ecg_err, cxr_row, cxr_err = result
            if ecg_err is not None:
                skips.add("ecg", rec.ecg_path, ecg_err)
                ecgs.failed.add(sid)
            if cxr_err is not None and sid not in ecgs.failed:  # after an ECG error no CXR is read
                skips.add("cxr", cxr_file, cxr_err)
            if ecg_row is None and ecg_err is None:  # prepared earlier (or failed there)
                ecg_row = ecgs.known(sid)
            if ecg_row is None or cxr_row is None:
                if ecg_row is not None:
                    ecgs.keep_dropped(sid, ecg_row)
                skips.pairs += 1
                continue
            i = ecgs.append(sid, ecg_row)
            cxr.append(cxr_row)
            kept.append(k)
            writer.writerow([i, rec.subject_id, rec.split, rec.ecg_study_id, rec.ecg_path,
                             rec.ecg_time, rec.cxr_study_id, rec.dicom_id, cxr_file,
                             rec.view_position, rec.cxr_time,
                             "" if pd.isna(rec.stay_id) else int(rec.stay_id),
                             *(int(getattr(rec, name)) for name in PATHOLOGIES)])
        bar.close()
    del ecgs, ssl_mm
    ecg.close()
    cxr.close()
    return pairs.iloc[kept]


def _split_counts(linked: pd.DataFrame, written: pd.DataFrame, ssl: pd.DataFrame,
                  ssl_written: int) -> dict:
    out: dict = {}
    for split in SPLITS:
        w = written[written["split"] == split]
        out[split] = {
            "subjects": int(linked.loc[linked["split"] == split, "subject_id"].nunique()),
            "pairs": len(w),
            "positives": {name: int(w[name].sum()) for name in PATHOLOGIES},
            "ssl_ecgs": int((ssl["split"] == split).sum()),
        }
    out[UNLINKED] = {"ssl_ecgs": int((ssl["split"] == UNLINKED).sum())}
    out["ssl_ecgs_written"] = ssl_written
    return out


def build(args: argparse.Namespace) -> dict:
    """Build the COHORT described by `args` (see `parse_args`). Returns cohort.json's dict."""
    started = time.time()
    out: Path = args.out
    if (out / "cohort.json").exists() and not args.force:
        raise CromotexError(f"{out} already holds a cohort; pass --force to overwrite it.")
    out.mkdir(parents=True, exist_ok=True)
    paths = mimic_tables.locate(args.mimic_root, args.ecg_root, args.cxr_root, args.ed_root,
                                args.ecg_icd_csv)
    log.info("tables: %s", paths.as_dict())
    records = mimic_tables.read_record_list(paths.record_list)
    result = _link(paths, records, args)
    pairs = result.pairs.copy()
    split_of = assign_splits(pairs["subject_id"], seed=args.seed)
    pairs["split"] = pairs["subject_id"].map(split_of)
    records["split"] = records["subject_id"].map(split_of).fillna(UNLINKED)
    ssl = records[records["split"] != "test"].sort_values(["subject_id", "ecg_time", "study_id"],
                                                         na_position="last")
    counts = dict(result.counts)
    counts["ssl_candidates"] = len(ssl)

    skips = _Skips()
    t_ssl = time.time()
    ssl_rows = _write_ssl(out, ssl, paths.ecg_root, skips, args)
    t_pairs = time.time()
    written = _write_pairs(out, pairs, paths, ssl_rows, skips, args)
    t_end = time.time()
    counts["pairs_written"] = len(written)
    counts["ssl_written"] = len(ssl_rows)

    info = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "code_version": {"cromotex": engine.__version__, "git_sha": _git_sha()},
        "inputs": paths.as_dict(),
        "link": result.rule,
        "seed": args.seed,
        "split_fractions": dict(zip(SPLITS, SPLIT_FRACTIONS)),
        "split_method": "numpy default_rng(seed).permutation of the sorted linked subject ids, "
                        "cut at floor(0.7 n + 0.5) and floor(0.8 n + 0.5); subjects without a pair are "
                        "'unlinked' (in the SSL pool, never test)",
        "counts": counts,
        "splits": _split_counts(pairs, written, ssl, len(ssl_rows)),
        "skipped": skips.summary(),
        "preprocessing": preprocessing_constants(),
        "arrays": {"ecg": {"shape": [len(written), *ECG_ROW_SHAPE], "dtype": "float32"},
                   "cxr": {"shape": [len(written), *CXR_ROW_SHAPE], "dtype": "int16"},
                   "ssl_ecg": {"shape": [len(ssl_rows), *ECG_ROW_SHAPE], "dtype": "float32"}},
        "timing_s": {"tables_and_link": round(t_ssl - started, 2),
                     "ssl": round(t_pairs - t_ssl, 2), "pairs": round(t_end - t_pairs, 2),
                     "total": round(time.time() - started, 2)},
        "workers": args.workers,
    }
    write_json(out / "cohort.json", info, nan="literal", trailing_newline=False, default=str)
    return info


def format_summary(info: dict) -> str:
    """Human-readable summary of a cohort.json dict."""
    lines = [f"link rule: {info['link']['name']} ({info['link']['text']})", "counts:"]
    lines += [f"  {k:<36} {v}" for k, v in info["counts"].items()]
    lines.append("per split (subjects, pairs, positives " + "/".join(PATHOLOGIES) + ", SSL ECGs):")
    for split in SPLITS:
        s = info["splits"][split]
        pos = "/".join(str(s["positives"][n]) for n in PATHOLOGIES)
        lines.append(f"  {split:<6} {s['subjects']:>7} {s['pairs']:>8}  {pos:>17}  {s['ssl_ecgs']}")
    lines.append(f"  {UNLINKED} SSL ECGs: {info['splits'][UNLINKED]['ssl_ecgs']}")
    sk = info["skipped"]
    lines.append(f"skipped: {sk['files']} unreadable file(s) -> {sk['pairs_skipped']} pair(s), "
                 f"{sk['ssl_skipped']} SSL ECG(s) dropped"
                 + (f"; by error: {sk['by_error']}" if sk["files"] else ""))
    for f in sk["list"][:20]:
        lines.append(f"  {f['kind']} {f['file']}: {f['reason']}")
    if sk["unexpected"]:
        lines.append(f"WARNING: {sk['unexpected']} file(s) failed with an unexpected (untyped) "
                     "error: a reader bug; please report it.")
    t, c = info["timing_s"], info["counts"]
    rate = c["pairs_written"] / t["pairs"] if t["pairs"] > 0 else float("nan")
    ssl_rate = c["ssl_written"] / t["ssl"] if t["ssl"] > 0 else float("nan")
    lines.append(f"time: {t['total']} s (tables {t['tables_and_link']} s, SSL {t['ssl']} s = "
                 f"{ssl_rate:.1f} ECGs/s, pairs {t['pairs']} s = {rate:.1f} pairs/s)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        info = build(args)
    except CromotexError as exc:
        print(f"cromotex-train cohort: {exc}", file=sys.stderr)
        return 2
    print(format_summary(info))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
