"""Link ECGs to chest X-rays, as the paper does, with counts at every step.

Pairing rule (docs/cohort.md): one pair per frontal CXR *study*. The study's
image is its first PA image (else first AP) by `dicom_id`; its ECG is, among
the subject's ECGs that the rule admits, the one nearest in time to the CXR
(ties: the earlier ECG, then the smaller ECG study_id). A study inside two
overlapping ED stays keeps the stay of its nearest ECG.

Rules:
- ``ed-icd``: the ECG's stay is its `ed_stay_id` in MIMIC-IV-ECG-Ext-ICD, and
  the CXR's time lies within that stay's `intime..outtime` (the paper's link).
- ``ed-time``: without the Ext-ICD table, an ECG belongs to a stay when its
  `ecg_time` lies within the stay.
- ``window``: no ED tables; the ECG lies within +-H hours of the CXR.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pandas as pd

from training.cohort.mimic_tables import FRONTAL_VIEWS

log = logging.getLogger(__name__)

PAIR_COLUMNS = ["subject_id", "ecg_study_id", "ecg_path", "ecg_time", "cxr_study_id",
                "dicom_id", "view_position", "cxr_time", "stay_id",
                "cardiomegaly", "edema", "pleural_effusion"]


@dataclass
class LinkResult:
    """Linked pairs (columns `PAIR_COLUMNS`, sorted by subject, CXR time, study),
    the counts at every step (ordered, JSON-ready) and the rule as a dict."""

    pairs: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)
    rule: dict = field(default_factory=dict)


def frontal_studies(metadata: pd.DataFrame, chexpert: pd.DataFrame,
                    counts: dict[str, int]) -> pd.DataFrame:
    """One frontal image per labelled CXR study (PA preferred, then dicom_id).

    Fills counts `cxr_images`, `cxr_studies`, `frontal_images`, `frontal_studies`,
    `frontal_studies_labelled`. Returns columns `subject_id, cxr_study_id,
    dicom_id, view_position, cxr_time` + the three labels.
    """
    counts["cxr_images"] = len(metadata)
    counts["cxr_studies"] = int(metadata[["subject_id", "study_id"]].drop_duplicates().shape[0])
    frontal = metadata[metadata["view_position"].isin(FRONTAL_VIEWS)].copy()
    counts["frontal_images"] = len(frontal)
    frontal["_not_pa"] = frontal["view_position"] != "PA"
    frontal = frontal.sort_values(["subject_id", "study_id", "_not_pa", "dicom_id"])
    studies = frontal.drop_duplicates(["subject_id", "study_id"]).drop(columns="_not_pa")
    counts["frontal_studies"] = len(studies)
    studies = studies.merge(chexpert, on=["subject_id", "study_id"], how="inner")
    counts["frontal_studies_labelled"] = len(studies)
    without_time = int(studies["cxr_time"].isna().sum())
    if without_time:
        log.warning("%d frontal studies have no usable StudyDate/StudyTime; not linkable",
                    without_time)
    studies = studies.dropna(subset=["cxr_time"])
    return studies.rename(columns={"study_id": "cxr_study_id"})


def _nearest(candidates: pd.DataFrame) -> pd.DataFrame:
    """Keep, per CXR study, the candidate ECG nearest in time."""
    c = candidates.copy()
    c["_dt"] = (c["ecg_time"] - c["cxr_time"]).abs()
    c = c.sort_values(["subject_id", "cxr_study_id", "_dt", "ecg_time", "ecg_study_id"])
    return c.drop_duplicates(["subject_id", "cxr_study_id"]).drop(columns="_dt")


def _finish(pairs: pd.DataFrame, counts: dict[str, int]) -> pd.DataFrame:
    pairs = pairs.sort_values(["subject_id", "cxr_time", "cxr_study_id"]).reset_index(drop=True)
    counts["pairs"] = len(pairs)
    counts["pair_subjects"] = int(pairs["subject_id"].nunique())
    return pairs[PAIR_COLUMNS]


def _ecgs(records: pd.DataFrame) -> pd.DataFrame:
    return records.rename(columns={"study_id": "ecg_study_id", "path": "ecg_path"}).dropna(
        subset=["ecg_time"])


def link_ed_stays(metadata: pd.DataFrame, chexpert: pd.DataFrame, records: pd.DataFrame,
                  edstays: pd.DataFrame, ecg_icd: pd.DataFrame | None = None) -> LinkResult:
    """Pairs of an ECG and a frontal CXR of one subject in one ED stay.

    Args:
        metadata, chexpert, records, edstays, ecg_icd: tables as read by
            `training.cohort.mimic_tables`. With `ecg_icd`, the ECG's stay is its
            `ed_stay_id` (rule "ed-icd"); without, any stay containing `ecg_time`
            (rule "ed-time").
    """
    counts: dict[str, int] = {"ecgs": len(records)}
    studies = frontal_studies(metadata, chexpert, counts)
    stays = edstays[["subject_id", "stay_id", "intime", "outtime"]]
    counts["ed_stays"] = len(stays)
    in_stay = studies.merge(stays, on="subject_id")
    in_stay = in_stay[(in_stay["cxr_time"] >= in_stay["intime"])
                      & (in_stay["cxr_time"] <= in_stay["outtime"])]
    counts["frontal_studies_in_ed_stay"] = int(
        in_stay[["subject_id", "cxr_study_id"]].drop_duplicates().shape[0])

    ecgs = _ecgs(records)
    if ecg_icd is not None:
        tied = ecg_icd.dropna(subset=["ed_stay_id"]).rename(
            columns={"study_id": "ecg_study_id", "ed_stay_id": "stay_id"})
        tied["stay_id"] = tied["stay_id"].astype("int64")
        ecg_stay = ecgs.merge(tied[["subject_id", "ecg_study_id", "stay_id"]],
                              on=["subject_id", "ecg_study_id"])
        rule = {"name": "ed-icd", "text": "ECG tied to the ED stay by MIMIC-IV-ECG-Ext-ICD "
                "ed_stay_id; CXR time within the stay's intime..outtime"}
    else:
        ecg_stay = ecgs.merge(stays, on="subject_id")
        ecg_stay = ecg_stay[(ecg_stay["ecg_time"] >= ecg_stay["intime"])
                            & (ecg_stay["ecg_time"] <= ecg_stay["outtime"])]
        ecg_stay = ecg_stay.drop(columns=["intime", "outtime"])
        rule = {"name": "ed-time", "text": "ECG time and CXR time both within one ED stay's "
                "intime..outtime (no Ext-ICD table)"}
    counts["ecgs_in_ed_stay"] = int(ecg_stay["ecg_study_id"].nunique())
    rule["pairing"] = ("one pair per frontal CXR study; its ECG is the stay's ECG nearest "
                       "in time to the CXR")
    candidates = in_stay.drop(columns=["intime", "outtime"]).merge(
        ecg_stay, on=["subject_id", "stay_id"])
    counts["frontal_studies_with_ecg_in_stay"] = int(
        candidates[["subject_id", "cxr_study_id"]].drop_duplicates().shape[0])
    pairs = _finish(_nearest(candidates), counts)
    return LinkResult(pairs=pairs, counts=counts, rule=rule)


def link_window(metadata: pd.DataFrame, chexpert: pd.DataFrame, records: pd.DataFrame,
                hours: float) -> LinkResult:
    """Pairs of an ECG and a frontal CXR of one subject taken within +-`hours`
    of each other (rule "window", for sites without the ED tables)."""
    if not hours > 0:
        raise ValueError(f"--hours must be positive, got {hours}")
    counts: dict[str, int] = {"ecgs": len(records)}
    studies = frontal_studies(metadata, chexpert, counts)
    candidates = studies.merge(_ecgs(records), on="subject_id")
    window = pd.Timedelta(hours=hours)
    candidates = candidates[(candidates["ecg_time"] - candidates["cxr_time"]).abs() <= window]
    counts["frontal_studies_with_ecg_in_window"] = int(
        candidates[["subject_id", "cxr_study_id"]].drop_duplicates().shape[0])
    candidates = candidates.assign(stay_id=pd.NA)
    pairs = _finish(_nearest(candidates), counts)
    rule = {"name": "window", "hours": hours,
            "text": f"ECG within +-{hours:g} h of the CXR (no ED tables)",
            "pairing": "one pair per frontal CXR study; its ECG is the subject's ECG "
                       "nearest in time to the CXR"}
    return LinkResult(pairs=pairs, counts=counts, rule=rule)
