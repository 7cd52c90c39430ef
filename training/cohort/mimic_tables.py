"""Find and read the MIMIC tables the cohort builder needs.

The releases may sit as sub-folders of one root (as PhysioNet lays them out,
e.g. ``ROOT/mimic-iv-ecg/record_list.csv``, ``ROOT/mimic-cxr-jpg/mimic-cxr-2.0.0-
metadata.csv.gz``, ``ROOT/mimic-iv-ed/ed/edstays.csv.gz``,
``ROOT/mimic-iv-ecg-ext-icd/records_w_diag_icd10.csv``) or be given one by one.
Tables are found by file name, plain or ``.gz``. Each reader returns a pandas
DataFrame with the columns it documents, typed, and raises
`engine.errors.MissingFileError` / `CorruptFileError` on a missing file or a
missing column.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from engine.errors import CorruptFileError, MissingFileError

log = logging.getLogger(__name__)

RECORD_LIST = "record_list.csv"
CXR_METADATA = "mimic-cxr-2.0.0-metadata.csv"
CXR_CHEXPERT = "mimic-cxr-2.0.0-chexpert.csv"
CXR_SPLIT = "mimic-cxr-2.0.0-split.csv"
EDSTAYS = "edstays.csv"
ECG_ICD = "records_w_diag_icd10.csv"

#: CheXpert column -> our pathology name (engine.constants.PATHOLOGIES order).
CHEXPERT_LABELS: dict[str, str] = {
    "Cardiomegaly": "cardiomegaly",
    "Edema": "edema",
    "Pleural Effusion": "pleural_effusion",
}
#: Views the paper keeps (frontal).
FRONTAL_VIEWS: tuple[str, ...] = ("PA", "AP")

#: Folders never descended into while searching (the image / record trees).
_SKIP_DIRS = {"files", ".git", "__pycache__"}
_MAX_DEPTH = 4


@dataclass(frozen=True)
class MimicPaths:
    """Where each table and file tree is.

    Attributes:
        ecg_root: MIMIC-IV-ECG folder; `record_list.csv` paths are relative to it.
        record_list: MIMIC-IV-ECG `record_list.csv(.gz)`.
        cxr_root: MIMIC-CXR-JPG folder; images are under `cxr_root/files/`.
        cxr_metadata / cxr_chexpert: the MIMIC-CXR-JPG tables.
        cxr_split: the official MIMIC-CXR split table, if present (recorded only;
            the cohort uses its own subject split as the paper does).
        edstays: MIMIC-IV-ED `edstays.csv(.gz)`, if present.
        ecg_icd: MIMIC-IV-ECG-Ext-ICD `records_w_diag_icd10.csv(.gz)`, if present.
    """

    ecg_root: Path
    record_list: Path
    cxr_root: Path
    cxr_metadata: Path
    cxr_chexpert: Path
    cxr_split: Path | None = None
    edstays: Path | None = None
    ecg_icd: Path | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {k: (str(v) if v is not None else None) for k, v in self.__dict__.items()}


def find_table(root: Path, name: str, max_depth: int = _MAX_DEPTH) -> Path | None:
    """First file called `name` or `name + ".gz"` under `root` (breadth-first,
    sorted, at most `max_depth` folders down, never inside a `files/` tree)."""
    root = Path(root)
    wanted = (name, name + ".gz")
    level = [root]
    for _ in range(max_depth + 1):
        next_level: list[Path] = []
        for folder in level:
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError:
                continue
            for want in wanted:
                for entry in entries:
                    if entry.name == want and entry.is_file():
                        return Path(entry.path)
            next_level += [Path(e.path) for e in entries
                           if e.is_dir() and e.name not in _SKIP_DIRS]
        level = next_level
    return None


def _require(root: Path | None, name: str, what: str, option: str) -> Path:
    found = find_table(root, name) if root is not None else None
    if found is None:
        where = f"under {root}" if root is not None else "(no folder given)"
        raise MissingFileError(
            f"{what}: no {name} or {name}.gz found {where}. Point {option} (or --mimic-root) "
            f"at the folder of the MIMIC release that contains it.")
    return found


def locate(mimic_root: Path | None = None, ecg_root: Path | None = None,
           cxr_root: Path | None = None, ed_root: Path | None = None,
           ecg_icd_csv: Path | None = None) -> MimicPaths:
    """Find every table. Explicit per-release folders win over `mimic_root`.

    Raises:
        MissingFileError: a required table (record_list, CXR metadata, CheXpert)
            is nowhere to be found, or an explicitly given path does not exist.
    """
    for given, option in ((mimic_root, "--mimic-root"), (ecg_root, "--ecg-root"),
                          (cxr_root, "--cxr-root"), (ed_root, "--ed-root"),
                          (ecg_icd_csv, "--ecg-icd-csv")):
        if given is not None and not Path(given).exists():
            raise MissingFileError(f"{option} {given} does not exist.")
    record_list = _require(ecg_root or mimic_root, RECORD_LIST, "MIMIC-IV-ECG", "--ecg-root")
    metadata = _require(cxr_root or mimic_root, CXR_METADATA, "MIMIC-CXR-JPG", "--cxr-root")
    cxr_dir = metadata.parent
    chexpert = find_table(cxr_dir, CXR_CHEXPERT, 0) or _require(
        cxr_root or mimic_root, CXR_CHEXPERT, "MIMIC-CXR-JPG", "--cxr-root")
    split = find_table(cxr_dir, CXR_SPLIT, 0)
    ed_search = ed_root or mimic_root
    edstays = find_table(Path(ed_search), EDSTAYS) if ed_search is not None else None
    if ed_root is not None and edstays is None:
        raise MissingFileError(f"--ed-root {ed_root}: no {EDSTAYS}(.gz) in it or its ed/ folder.")
    if ecg_icd_csv is not None:
        ecg_icd = Path(ecg_icd_csv)
    else:
        ecg_icd = find_table(Path(mimic_root), ECG_ICD) if mimic_root is not None else None
    return MimicPaths(ecg_root=record_list.parent, record_list=record_list, cxr_root=cxr_dir,
                      cxr_metadata=metadata, cxr_chexpert=chexpert, cxr_split=split,
                      edstays=edstays, ecg_icd=ecg_icd)


def _read(path: Path, required: list[str], dtype: dict | None = None) -> pd.DataFrame:
    """Read the `required` columns of a CSV(.gz); typed errors on failure."""
    try:
        header = pd.read_csv(path, nrows=0)
    except FileNotFoundError:
        raise MissingFileError(f"{path} does not exist.") from None
    except Exception as exc:  # pandas raises many types on a malformed file
        raise CorruptFileError(f"{path} is not a readable CSV table ({exc}).") from exc
    missing = [c for c in required if c not in header.columns]
    if missing:
        raise CorruptFileError(
            f"{path} lacks the column(s) {', '.join(missing)} (has {', '.join(header.columns)}). "
            f"Is it the right MIMIC table and release?")
    try:
        return pd.read_csv(path, usecols=required, dtype=dtype or {})
    except Exception as exc:
        raise CorruptFileError(f"{path} could not be parsed ({exc}).") from exc


def _datetime(series: pd.Series, path: Path, column: str) -> pd.Series:
    out = pd.to_datetime(series, errors="coerce")
    bad = int(out.isna().sum() - series.isna().sum())
    if bad:
        log.warning("%s: %d value(s) of %s are not date-times; those rows are unlinkable",
                    path.name, bad, column)
    return out


def read_record_list(path: Path) -> pd.DataFrame:
    """MIMIC-IV-ECG record list.

    Returns columns: `subject_id` int64, `study_id` int64, `ecg_time` datetime64,
    `path` str (record path relative to the ECG root, without extension).
    """
    df = _read(path, ["subject_id", "study_id", "ecg_time", "path"],
               {"subject_id": "int64", "study_id": "int64", "path": str})
    df["ecg_time"] = _datetime(df["ecg_time"], path, "ecg_time")
    return df


def _study_time(date: pd.Series, time: pd.Series) -> pd.Series:
    """MIMIC-CXR StudyDate (YYYYMMDD) + StudyTime (HHMMSS.fff, leading zeros
    may be lost in the CSV) -> datetime64 (NaT where unparsable)."""
    t = pd.to_numeric(time, errors="coerce")
    whole = t.fillna(-1).astype("int64")
    frac = (t - t.fillna(0).astype("int64")).fillna(0.0)
    hhmmss = whole.astype(str).str.zfill(6)
    text = date.astype(str).str.slice(0, 8) + hhmmss
    stamp = pd.to_datetime(text, format="%Y%m%d%H%M%S", errors="coerce")
    stamp = stamp + pd.to_timedelta((frac * 1e6).round().astype("int64"), unit="us")
    return stamp.where(t.notna())


def read_cxr_metadata(path: Path) -> pd.DataFrame:
    """MIMIC-CXR-JPG metadata, one row per image.

    Returns columns: `dicom_id` str, `subject_id` int64, `study_id` int64,
    `view_position` str ("" when blank), `cxr_time` datetime64 (StudyDate+StudyTime).
    """
    df = _read(path, ["dicom_id", "subject_id", "study_id", "ViewPosition", "StudyDate",
                      "StudyTime"],
               {"dicom_id": str, "subject_id": "int64", "study_id": "int64",
                "ViewPosition": str, "StudyDate": str, "StudyTime": str})
    df["cxr_time"] = _study_time(df["StudyDate"], df["StudyTime"])
    df["view_position"] = df["ViewPosition"].fillna("").str.strip().str.upper()
    return df[["dicom_id", "subject_id", "study_id", "view_position", "cxr_time"]]


def read_chexpert(path: Path) -> pd.DataFrame:
    """MIMIC-CXR-JPG CheXpert labels, one row per study.

    Returns columns: `subject_id`, `study_id` int64 and `cardiomegaly`, `edema`,
    `pleural_effusion` int8 in {0, 1}: 1.0 -> 1; 0.0, -1.0 (uncertain) and
    blank -> 0, as the paper counts them.
    """
    df = _read(path, ["subject_id", "study_id", *CHEXPERT_LABELS],
               {"subject_id": "int64", "study_id": "int64"})
    for column, name in CHEXPERT_LABELS.items():
        value = pd.to_numeric(df.pop(column), errors="coerce")
        df[name] = (value == 1.0).astype("int8")
    return df.drop_duplicates(["subject_id", "study_id"])


def read_edstays(path: Path) -> pd.DataFrame:
    """MIMIC-IV-ED stays. Returns `subject_id`, `stay_id` int64, `intime`,
    `outtime` datetime64 (rows without both times dropped, with a warning)."""
    df = _read(path, ["subject_id", "stay_id", "intime", "outtime"],
               {"subject_id": "int64", "stay_id": "int64"})
    df["intime"] = _datetime(df["intime"], path, "intime")
    df["outtime"] = _datetime(df["outtime"], path, "outtime")
    return df.dropna(subset=["intime", "outtime"])


def read_ecg_icd(path: Path) -> pd.DataFrame:
    """MIMIC-IV-ECG-Ext-ICD records. Returns `subject_id`, `study_id` int64 and
    `ed_stay_id` Int64 (nullable; blank when the ECG is not tied to an ED stay)."""
    df = _read(path, ["subject_id", "study_id", "ed_stay_id"],
               {"subject_id": "int64", "study_id": "int64"})
    df["ed_stay_id"] = pd.to_numeric(df["ed_stay_id"], errors="coerce").astype("Int64")
    return df


def cxr_image_path(subject_id: int, study_id: int, dicom_id: str) -> str:
    """Image path relative to the MIMIC-CXR-JPG root:
    `files/p{first two digits}/p{subject_id}/s{study_id}/{dicom_id}.jpg`."""
    sid = str(int(subject_id))
    return f"files/p{sid[:2]}/p{sid}/s{int(study_id)}/{dicom_id}.jpg"
