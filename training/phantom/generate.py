"""Entry point of the phantom generator: plan, render (optionally in worker processes), write."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from engine.errors import OutputExistsError
from training.jsonio import write_json
from training.phantom.cxr import IMAGE_SIZE
from training.phantom.layout import COLUMNS, assign_ids, plan_subject, render_subject, write_tables

log = logging.getLogger(__name__)

GENERATOR_VERSION = "2"
#: Subjects (lowest indices with an in-stay ECG/CXR) that also get DICOM copies.
DICOM_SUBJECTS: int = 3


@dataclass
class GenerationSummary:
    """Counts of what was written (also stored in phantom.json)."""

    subjects: int
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def lines(self) -> list[str]:
        rate = self.subjects / self.seconds if self.seconds else float("nan")
        out = [f"phantom: {self.subjects} subjects in {self.seconds:.1f} s ({rate:.1f} subjects/s)"]
        out += [f"  {k}: {v}" for k, v in self.counts.items()]
        return out


def _render_chunk(args: tuple) -> list[dict[str, list]]:
    seed, plans, out, dicom_idx = args
    return [render_subject(seed, p, Path(out), p.index in dicom_idx) for p in plans]


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out} is a file; give a directory path for --out.")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise OutputExistsError(
            f"{out} is not empty; choose an empty or new directory, or pass --force to write over it.")


def generate(out: str | Path, subjects: int, seed: int = 0, force: bool = False, workers: int = 1,
             progress: bool = True) -> GenerationSummary:
    """Write a phantom cohort of `subjects` subjects under `out` (see docs/phantom.md).

    Deterministic for (`subjects`, `seed`) whatever `workers` is. Raises
    `OutputExistsError` if `out` is non-empty and `force` is false, `ValueError` if
    `subjects` < 1.
    """
    if subjects < 1:
        raise ValueError("subjects must be >= 1")
    out = Path(out)
    _check_out(out, force)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    plans = [plan_subject(seed, k) for k in range(subjects)]
    assign_ids(seed, plans)
    dicom_idx = {p.index for p in plans if p.stays and p.ecgs and any(c.episode > 0 for c in p.cxrs)}
    dicom_idx = set(sorted(dicom_idx)[:DICOM_SUBJECTS])
    chunk = 8
    jobs = [(seed, plans[i:i + chunk], str(out), dicom_idx) for i in range(0, subjects, chunk)]
    rows: dict[str, list] = {k: [] for k in COLUMNS}
    bar = tqdm(total=subjects, desc="phantom", unit="subject", disable=not progress)
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = pool.map(_render_chunk, jobs)
            for res in results:
                _merge(rows, res)
                bar.update(len(res))
    else:
        for job in jobs:
            res = _render_chunk(job)
            _merge(rows, res)
            bar.update(len(res))
    bar.close()
    write_tables(out, rows)
    summary = GenerationSummary(subjects=subjects, seconds=time.perf_counter() - t0)
    views = [r[4] for r in rows["metadata"]]
    truth_stays = [r for r in rows["truth"] if r[1] != ""]
    summary.counts = {
        "ed_stays": len(rows["edstays"]),
        "ecg_records": len(rows["record_list"]),
        "ecg_in_stays": sum(1 for r in rows["icd"] if r[4] != ""),
        "cxr_studies": len(rows["chexpert"]),
        "cxr_images": len(rows["metadata"]),
        "cxr_frontal": sum(v in ("AP", "PA") for v in views),
        "cxr_lateral": sum(v in ("LATERAL", "LL") for v in views),
        "dicom_files": len(list((out / "dicom").rglob("*.dcm"))) if (out / "dicom").exists() else 0,
        "stays_cardiomegaly": sum(int(r[15]) for r in truth_stays),
        "stays_edema": sum(int(r[16]) for r in truth_stays),
        "stays_pleural_effusion": sum(int(r[17]) for r in truth_stays),
    }
    meta = {"generator": "cromotex phantom", "version": GENERATOR_VERSION, "seed": seed,
            "subjects": subjects, "image_size": IMAGE_SIZE, "counts": summary.counts}
    write_json(out / "phantom.json", meta, nan="literal")
    log.info("phantom written to %s: %s", out, summary.counts)
    return summary


def _merge(rows: dict[str, list], results: list[dict[str, list]]) -> None:
    for res in results:
        for k, v in res.items():
            rows[k].extend(v)
