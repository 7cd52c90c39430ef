"""Plan the phantom's subjects, stays and studies, render them, and write the MIMIC layout.

The exact tree and CSV columns are in docs/phantom.md (the contract with the cohort
builder). Determinism: subject `k` draws its plan from ``default_rng([seed, k, 0])`` and
its signals from ``default_rng([seed, k, 1])``; ids come from ``default_rng([seed, 7])``.
Subjects are independent, so rendering them in worker processes gives the same bytes.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from engine.constants import LEADS

from training.phantom.cxr import IMAGE_SIZE, render_frontal, render_lateral
from training.phantom.dicom_out import write_cxr_dicom, write_ecg_dicom
from training.phantom.ecg import FS_HZ, MIMIC_LEADS, N_SAMPLES, subject_geometry, synthesize_ecg, to_mimic_order
from training.phantom.wfdb_out import write_record
from training.phantom.latent import (EpisodeState, SubjectTraits, chexpert_value, draw_episode, draw_traits,
                                     icd_codes, other_chexpert)

log = logging.getLogger(__name__)

ECG_DIR = "mimic-iv-ecg"
CXR_DIR = "mimic-cxr-jpg"
ED_DIR = "mimic-iv-ed"
ICD_DIR = "mimic-iv-ecg-ext-icd"
ICD_PREFIX = "mimic-iv-ecg-diagnostic-electrocardiogram-matched-subset-1.0/"
ADC_GAIN: float = 200.0  #: adc units per mV (5 uV resolution), as MIMIC-IV-ECG

CHEXPERT_COLUMNS = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Enlarged Cardiomediastinum",
                    "Fracture", "Lung Lesion", "Lung Opacity", "No Finding", "Pleural Effusion",
                    "Pleural Other", "Pneumonia", "Pneumothorax", "Support Devices")
COLUMNS = {
    "record_list": ("subject_id", "study_id", "file_name", "ecg_time", "path"),
    "chexpert": ("subject_id", "study_id") + CHEXPERT_COLUMNS,
    "metadata": ("dicom_id", "subject_id", "study_id", "PerformedProcedureStepDescription", "ViewPosition",
                 "Rows", "Columns", "StudyDate", "StudyTime", "ProcedureCodeSequence_CodeMeaning",
                 "ViewCodeSequence_CodeMeaning", "PatientOrientationCodeSequence_CodeMeaning"),
    "split": ("dicom_id", "study_id", "subject_id", "split"),
    "edstays": ("subject_id", "hadm_id", "stay_id", "intime", "outtime", "gender", "race",
                "arrival_transport", "disposition"),
    "icd": ("file_name", "study_id", "subject_id", "ecg_time", "ed_stay_id", "ed_hadm_id", "hosp_hadm_id",
            "ed_diag_ed", "ed_diag_hosp", "hosp_diag_hosp", "all_diag_hosp", "all_diag_all", "gender", "age",
            "anchor_year", "anchor_age", "dod"),
    "truth": ("subject_id", "stay_id", "episode", "age", "sex", "bmi", "hf_severity", "heart_size_z", "ctr",
              "congestion_z", "fluid_z", "effusion_side", "af", "heart_rate_bpm", "qrs_ms",
              "cardiomegaly", "edema", "pleural_effusion", "lbbb", "alternans"),
    "studies": ("modality", "subject_id", "study_id", "dicom_id", "view_position", "time", "stay_id",
                "episode", "path"),
}
_TIME = "%Y-%m-%d %H:%M:%S"


@dataclass
class Stay:
    intime: dt.datetime
    outtime: dt.datetime
    admitted: bool
    arrival: str
    disposition: str
    stay_id: int = 0
    hadm_id: int = 0


@dataclass
class CxrStudy:
    episode: int            #: index into SubjectPlan.episodes (0 = baseline)
    time: dt.datetime
    views: list[str]        #: e.g. ["AP"], ["PA", "LATERAL"]
    study_id: int = 0
    dicom_ids: list[str] = field(default_factory=list)


@dataclass
class EcgStudy:
    episode: int
    time: dt.datetime
    study_id: int = 0


@dataclass
class SubjectPlan:
    index: int
    traits: SubjectTraits
    episodes: list[EpisodeState]   #: [baseline, stay 1, stay 2, ...]
    stays: list[Stay]
    ecgs: list[EcgStudy]
    cxrs: list[CxrStudy]
    anchor_year: int
    subject_id: int = 0


def _minutes(rng: np.random.Generator, lo: float, hi: float) -> dt.timedelta:
    return dt.timedelta(minutes=int(rng.integers(int(lo), int(hi) + 1)))


def plan_subject(seed: int, index: int) -> SubjectPlan:
    """Draw subject `index`'s traits, episodes, ED stays and study times (no ids yet)."""
    rng = np.random.default_rng([seed, index, 0])
    traits = draw_traits(rng)
    n_stays = int(rng.choice(4, p=[0.06, 0.64, 0.22, 0.08]))
    episodes = [draw_episode(rng, traits) for _ in range(n_stays + 1)]
    first = dt.datetime(int(rng.integers(2111, 2206)), 1, 1) + dt.timedelta(
        days=int(rng.integers(0, 365)), minutes=int(rng.integers(0, 1440)))
    stays: list[Stay] = []
    t = first
    for k in range(n_stays):
        sev = episodes[k + 1].hf_severity
        admitted = bool(rng.random() < 0.35 + 0.25 * np.tanh(sev))
        dur = _minutes(rng, 180, 900 if admitted else 600)
        arrival = str(rng.choice(["WALK IN", "AMBULANCE", "UNKNOWN", "OTHER"], p=[0.55, 0.38, 0.04, 0.03]))
        disp = "ADMITTED" if admitted else str(rng.choice(
            ["HOME", "TRANSFER", "LEFT WITHOUT BEING SEEN", "OTHER"], p=[0.88, 0.05, 0.04, 0.03]))
        stays.append(Stay(t, t + dur, admitted, arrival, disp))
        t = t + dt.timedelta(days=int(rng.integers(30, 700)), minutes=int(rng.integers(0, 1440)))
    ecgs: list[EcgStudy] = []
    cxrs: list[CxrStudy] = []
    for k, stay in enumerate(stays, start=1):
        span = (stay.outtime - stay.intime).total_seconds() / 60.0
        n_ecg = int(rng.choice(4, p=[0.10, 0.60, 0.22, 0.08]))
        for _ in range(n_ecg):
            ecgs.append(EcgStudy(k, stay.intime + _minutes(rng, 0.05 * span, 0.95 * span)))
        if rng.random() < 0.88:
            p_ap = 1.0 / (1.0 + np.exp(-(0.4 + 0.6 * episodes[k].hf_severity)))
            front = "AP" if rng.random() < p_ap else "PA"
            views = [front]
            if rng.random() < 0.08:
                views.append(front)
            if rng.random() < (0.75 if front == "PA" else 0.12):
                views.append("LATERAL" if rng.random() < 0.8 else "LL")
            cxrs.append(CxrStudy(k, stay.intime + _minutes(rng, 0.05 * span, 0.95 * span), views))
    n_out = int(rng.poisson(0.6)) + (1 if n_stays == 0 else 0)
    for _ in range(n_out):  # outpatient ECGs: 10-400 days before the first stay
        ecgs.append(EcgStudy(0, first - dt.timedelta(days=int(rng.integers(10, 400)),
                                                     minutes=int(rng.integers(0, 1440)))))
    if n_stays and rng.random() < 0.15:  # an outpatient PA + lateral, 5-300 days after the last stay
        last = stays[-1].outtime
        cxrs.append(CxrStudy(0, last + dt.timedelta(days=int(rng.integers(5, 300)),
                                                    minutes=int(rng.integers(0, 1440))), ["PA", "LATERAL"]))
    ecgs.sort(key=lambda e: e.time)
    cxrs.sort(key=lambda c: c.time)
    all_times = [e.time for e in ecgs] + [c.time for c in cxrs] + [s.intime for s in stays]
    return SubjectPlan(index, traits, episodes, stays, ecgs, cxrs, min(all_times).year)


def _unique_ids(rng: np.random.Generator, n: int, base: int) -> list[int]:
    ids = rng.choice(9_000_000, size=n, replace=False) + base
    return [int(i) for i in ids]


def _dicom_id(rng: np.random.Generator) -> str:
    return "-".join(f"{int(v):08x}" for v in rng.integers(0, 2**32, size=5, dtype=np.uint64))


def assign_ids(seed: int, plans: list[SubjectPlan]) -> None:
    """Give every subject, stay, admission and study a unique MIMIC-style id (in place)."""
    rng = np.random.default_rng([seed, 7])
    subj = sorted(_unique_ids(rng, len(plans), 10_000_000))
    stays = _unique_ids(rng, sum(len(p.stays) for p in plans), 30_000_000)
    hadms = _unique_ids(rng, sum(len(p.stays) for p in plans), 20_000_000)
    ecgs = _unique_ids(rng, sum(len(p.ecgs) for p in plans), 40_000_000)
    cxrs = _unique_ids(rng, sum(len(p.cxrs) for p in plans), 50_000_000)
    i_stay = i_ecg = i_cxr = 0
    for plan, sid in zip(plans, subj):
        plan.subject_id = sid
        for stay in plan.stays:
            stay.stay_id, stay.hadm_id = stays[i_stay], hadms[i_stay]
            i_stay += 1
        for e in plan.ecgs:
            e.study_id = ecgs[i_ecg]
            i_ecg += 1
        for c in plan.cxrs:
            c.study_id = cxrs[i_cxr]
            c.dicom_ids = [_dicom_id(rng) for _ in c.views]
            i_cxr += 1


def ecg_rel_path(subject_id: int, study_id: int) -> str:
    """MIMIC-IV-ECG record path relative to the mimic-iv-ecg folder, without extension."""
    s = str(subject_id)
    return f"files/p{s[:4]}/p{s}/s{study_id}/{study_id}"


def cxr_rel_path(subject_id: int, study_id: int, dicom_id: str) -> str:
    """MIMIC-CXR-JPG image path relative to the mimic-cxr-jpg folder."""
    s = str(subject_id)
    return f"files/p{s[:2]}/p{s}/s{study_id}/{dicom_id}.jpg"


def _write_wfdb(folder: Path, study_id: int, leads_mv: np.ndarray, when: dt.datetime) -> None:
    """Write `[12, 5000]` mV (canonical order) as a MIMIC-style WFDB record in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    mimic = to_mimic_order(leads_mv)
    digital = np.clip(np.round(mimic * ADC_GAIN), -32767, 32767).astype(np.int16).T
    write_record(folder, str(study_id), digital, FS_HZ, ADC_GAIN, MIMIC_LEADS, when)


def _stay_of(plan: SubjectPlan, episode: int) -> Stay | None:
    return plan.stays[episode - 1] if episode > 0 else None


def render_subject(seed: int, plan: SubjectPlan, out: Path, write_dicom: bool = False) -> dict[str, list]:
    """Render and write one subject's ECGs and CXRs; return its CSV rows by table name.

    With `write_dicom`, the subject's first in-stay ECG and first in-stay frontal CXR are
    also written as DICOM under ``out/dicom/``.
    """
    dicom_budget = {"ecg": 1, "cxr": 1} if write_dicom else {}
    rng = np.random.default_rng([seed, plan.index, 1])
    tr = plan.traits
    geometry = subject_geometry(rng, tr)
    rows: dict[str, list] = {k: [] for k in COLUMNS}
    sid = plan.subject_id
    anchor_age = int(tr.age)
    for k, stay in enumerate(plan.stays, start=1):
        rows["edstays"].append((sid, stay.hadm_id if stay.admitted else "", stay.stay_id,
                                stay.intime.strftime(_TIME), stay.outtime.strftime(_TIME), tr.sex, tr.race,
                                stay.arrival, stay.disposition))
    for k, ep in enumerate(plan.episodes):
        stay = _stay_of(plan, k)
        rows["truth"].append((sid, stay.stay_id if stay else "", "baseline" if k == 0 else f"stay{k}",
                              f"{tr.age:.1f}", tr.sex, f"{tr.bmi:.1f}", f"{ep.hf_severity:.4f}",
                              f"{ep.heart_size_z:.4f}", f"{ep.ctr:.4f}", f"{ep.congestion_z:.4f}",
                              f"{ep.fluid_z:.4f}", ep.effusion_side, int(ep.af), f"{ep.heart_rate_bpm:.1f}",
                              f"{ep.qrs_ms:.1f}", ep.cardiomegaly, ep.edema, ep.pleural_effusion,
                              int(ep.lbbb), int(ep.alternans)))
    for e in plan.ecgs:
        ep = plan.episodes[e.episode]
        leads = synthesize_ecg(rng, tr, ep, geometry)
        rel = ecg_rel_path(sid, e.study_id)
        _write_wfdb(out / ECG_DIR / Path(rel).parent, e.study_id, leads, e.time)
        t = e.time.strftime(_TIME)
        rows["record_list"].append((sid, e.study_id, e.study_id, t, rel))
        stay = _stay_of(plan, e.episode)
        if stay is not None:
            ed = icd_codes(rng, ep)
            hosp = icd_codes(rng, ep) if stay.admitted else []
            allc = list(dict.fromkeys(ed + hosp))
            rows["icd"].append((ICD_PREFIX + rel, e.study_id, sid, t, stay.stay_id,
                                stay.hadm_id if stay.admitted else "", stay.hadm_id if stay.admitted else "",
                                repr(ed), repr(hosp if stay.admitted else []), repr(hosp), repr(hosp), repr(allc),
                                tr.sex, anchor_age + e.time.year - plan.anchor_year, plan.anchor_year,
                                anchor_age, ""))
        else:
            rows["icd"].append((ICD_PREFIX + rel, e.study_id, sid, t, "", "", "", "[]", "[]", "[]", "[]", "[]",
                                tr.sex, anchor_age + e.time.year - plan.anchor_year, plan.anchor_year,
                                anchor_age, ""))
        rows["studies"].append(("ecg", sid, e.study_id, "", "", t, stay.stay_id if stay else "",
                                e.episode, f"{ECG_DIR}/{rel}"))
        if dicom_budget.get("ecg", 0) > 0 and stay is not None:
            dicom_budget["ecg"] -= 1
            write_ecg_dicom(out / "dicom" / "ecg" / f"{e.study_id}.dcm", leads, LEADS, FS_HZ,
                            sid, tr.sex, e.study_id, e.time)
    split = str(rng.choice(["train", "validate", "test"], p=[0.95, 0.02, 0.03]))
    for c in plan.cxrs:
        ep = plan.episodes[c.episode]
        stay = _stay_of(plan, c.episode)
        front = c.views[0]
        m = ep.margins
        labels = {"Cardiomegaly": chexpert_value(rng, ep.cardiomegaly, m["cardiomegaly"]),
                  "Edema": chexpert_value(rng, ep.edema, m["edema"]),
                  "Pleural Effusion": chexpert_value(rng, ep.pleural_effusion, m["pleural_effusion"])}
        labels.update(other_chexpert(rng, ep, front))
        labels["No Finding"] = "" if any(v == "1.0" for v in labels.values()) else "1.0"
        rows["chexpert"].append((sid, c.study_id) + tuple(labels[k] for k in CHEXPERT_COLUMNS))
        desc = "CHEST (PORTABLE AP)" if front == "AP" else (
            "CHEST (PA AND LAT)" if len(c.views) > 1 else "CHEST (PA)")
        for n, (view, did) in enumerate(zip(c.views, c.dicom_ids)):
            lateral = view in ("LATERAL", "LL")
            img = render_lateral(rng, tr, ep) if lateral else render_frontal(rng, tr, ep, view)
            rel = cxr_rel_path(sid, c.study_id, did)
            path = out / CXR_DIR / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img, mode="L").save(path, format="JPEG", quality=90)
            when = c.time + dt.timedelta(seconds=20 * n, milliseconds=int(rng.integers(0, 1000)))
            view_meaning = {"PA": "postero-anterior", "AP": "antero-posterior", "LATERAL": "lateral",
                            "LL": "left lateral"}[view]
            orient = "Recumbent" if front == "AP" and rng.random() < 0.6 else "Erect"
            rows["metadata"].append((did, sid, c.study_id, desc, view, IMAGE_SIZE, IMAGE_SIZE,
                                     when.strftime("%Y%m%d"), when.strftime("%H%M%S.") + f"{when.microsecond // 1000:03d}",
                                     desc, view_meaning, orient))
            rows["split"].append((did, c.study_id, sid, split))
            rows["studies"].append(("cxr", sid, c.study_id, did, view, when.strftime(_TIME),
                                    stay.stay_id if stay else "", c.episode, f"{CXR_DIR}/{rel}"))
            if not lateral and stay is not None and dicom_budget.get("cxr", 0) > 0:
                dicom_budget["cxr"] -= 1
                write_cxr_dicom(out / "dicom" / "cxr" / f"{did}.dcm", img, view, sid, tr.sex, c.study_id, did, when)
    return rows


def write_tables(out: Path, rows: dict[str, list]) -> None:
    """Write every CSV (rows already in subject order) to its place under `out`."""
    places = {
        "record_list": out / ECG_DIR / "record_list.csv",
        "chexpert": out / CXR_DIR / "mimic-cxr-2.0.0-chexpert.csv",
        "metadata": out / CXR_DIR / "mimic-cxr-2.0.0-metadata.csv",
        "split": out / CXR_DIR / "mimic-cxr-2.0.0-split.csv",
        "edstays": out / ED_DIR / "ed" / "edstays.csv",
        "icd": out / ICD_DIR / "records_w_diag_icd10.csv",
        "truth": out / "phantom_truth.csv",
        "studies": out / "phantom_studies.csv",
    }
    for name, path in places.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(COLUMNS[name])
            w.writerows(rows[name])
