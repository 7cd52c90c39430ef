"""Cohort builder: a hand-built MIMIC layout whose answer is known by construction,
and a generated phantom whose counts are recomputed here straight from its CSVs."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.constants import PATHOLOGIES
from training.cohort import build, mimic_tables

MIMIC_LEADS = ["I", "II", "III", "aVR", "aVF", "aVL", "V1", "V2", "V3", "V4", "V5", "V6"]
T0 = datetime(2150, 3, 1, 8, 0, 0)
CHEXPERT_COLS = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema",
                 "Enlarged Cardiomediastinum", "Fracture", "Lung Lesion", "Lung Opacity",
                 "No Finding", "Pleural Effusion", "Pleural Other", "Pneumonia",
                 "Pneumothorax", "Support Devices"]


# --------------------------------------------------------------------------- tiny MIMIC
def _ecg_signal(seed: int) -> np.ndarray:
    """[5000, 12] mV in MIMIC file order, limb leads consistent (III = II - I)."""
    rng = np.random.default_rng(seed)
    t = np.arange(5000) / 500.0
    rr = 60.0 / rng.uniform(55, 110)
    phase = (t % rr) / rr
    beat = np.exp(-((phase - 0.3) / 0.012) ** 2) - 0.15 * np.exp(-((phase - 0.33) / 0.01) ** 2) \
        + 0.25 * np.exp(-((phase - 0.6) / 0.05) ** 2) + 0.1 * np.exp(-((phase - 0.15) / 0.03) ** 2)
    lead_i = 0.6 * beat + 0.02 * rng.standard_normal(5000)
    lead_ii = 1.1 * beat + 0.02 * rng.standard_normal(5000)
    leads = {"I": lead_i, "II": lead_ii, "III": lead_ii - lead_i, "aVR": -(lead_i + lead_ii) / 2,
             "aVL": lead_i - lead_ii / 2, "aVF": lead_ii - lead_i / 2}
    for k, g in enumerate([-0.8, -0.3, 0.4, 1.2, 1.4, 1.0]):
        leads[f"V{k + 1}"] = g * beat + 0.02 * rng.standard_normal(5000)
    return np.stack([leads[n] for n in MIMIC_LEADS], axis=1)


def _write_ecg(root: Path, subject: int, study: int, seed: int) -> str:
    import wfdb

    rel = f"files/p{str(subject)[:4]}/p{subject}/s{study}/{study}"
    folder = root / Path(rel).parent
    folder.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(str(study), fs=500, units=["mV"] * 12, sig_name=MIMIC_LEADS,
                p_signal=_ecg_signal(seed), fmt=["16"] * 12, adc_gain=[200.0] * 12,
                baseline=[0] * 12, write_dir=str(folder))
    return rel


def _write_jpg(root: Path, subject: int, study: int, dicom: str, seed: int) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:96, 0:80]
    img = 60 + 120 * np.exp(-(((xx - 40) / 25.0) ** 2 + ((yy - 50) / 30.0) ** 2)) \
        + 10 * rng.standard_normal((96, 80))
    path = root / mimic_tables.cxr_image_path(subject, study, dicom)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path, quality=90)
    return path


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def make_tiny_mimic(root: Path) -> dict:
    """A MIMIC root whose linking is known by construction (see `expected`).

    Special subjects: 1 (two CXR studies in one stay, two ECGs: each study takes the
    nearer ECG; a lateral image too), 2 (lateral only), 3 (ECG in the stay by time but
    not tied by Ext-ICD), 4 (CXR two days after the stay), 5 (plus an outpatient ECG
    a month away), 6 (ECGs only), 7 (one study with an AP and a PA image: the PA is
    used), 8 (CXR study without a CheXpert row); 101-112 plain one-pair subjects.
    """
    ecg_root, cxr_root = root / "mimic-iv-ecg", root / "mimic-cxr-jpg"
    records, icd, stays, meta, chex = [], [], [], [], []
    seed = [0]

    def ecg(subject, study, when, stay):
        seed[0] += 1
        rel = _write_ecg(ecg_root, subject, study, seed[0])
        ts = when.strftime("%Y-%m-%d %H:%M:%S")
        records.append([subject, study, study, ts, rel])
        icd.append([f"mimic-iv-ecg-diagnostic-electrocardiogram-matched-subset-1.0/{rel}",
                    study, subject, ts, stay or "", "", "", "[]"])

    def cxr(subject, study, dicom, view, when, labels):
        seed[0] += 1
        _write_jpg(cxr_root, subject, study, dicom, seed[0])
        meta.append([dicom, subject, study, view, when.strftime("%Y%m%d"),
                     f"{int(when.strftime('%H%M%S'))}.000"])  # leading zero dropped
        if labels is not None and [subject, study] not in [r[:2] for r in chex]:
            row = {c: "" for c in CHEXPERT_COLS}
            row.update(zip(["Cardiomegaly", "Edema", "Pleural Effusion"], labels))
            chex.append([subject, study, *[row[c] for c in CHEXPERT_COLS]])

    def stay(subject, stay_id, start, hours):
        stays.append([subject, "", stay_id, start.strftime("%Y-%m-%d %H:%M:%S"),
                      (start + timedelta(hours=hours)).strftime("%Y-%m-%d %H:%M:%S"),
                      "F", "WHITE", "AMBULANCE", "ADMITTED"])

    h = lambda x: T0 + timedelta(hours=x)  # noqa: E731
    stay(10000001, 30000001, h(0), 10)
    ecg(10000001, 40000011, h(0.5), 30000001)
    ecg(10000001, 40000012, h(8), 30000001)
    cxr(10000001, 50000011, "d011a", "PA", h(2), ["1.0", "-1.0", ""])
    cxr(10000001, 50000011, "d011b", "LATERAL", h(2), ["1.0", "-1.0", ""])
    cxr(10000001, 50000012, "d012a", "AP", h(7), ["0.0", "1.0", "1.0"])
    stay(10000002, 30000002, h(0), 6)
    ecg(10000002, 40000021, h(1), 30000002)
    cxr(10000002, 50000021, "d021a", "LATERAL", h(2), ["1.0", "1.0", "1.0"])
    stay(10000003, 30000003, h(0), 6)
    ecg(10000003, 40000031, h(1), None)
    cxr(10000003, 50000031, "d031a", "AP", h(2), ["1.0", "0.0", "0.0"])
    stay(10000004, 30000004, h(0), 6)
    ecg(10000004, 40000041, h(1), 30000004)
    cxr(10000004, 50000041, "d041a", "AP", h(50), ["0.0", "0.0", "1.0"])
    stay(10000005, 30000005, h(0), 6)
    ecg(10000005, 40000051, h(3), 30000005)
    ecg(10000005, 40000052, h(24 * 30), None)
    cxr(10000005, 50000051, "d051a", "PA", h(4), ["", "", "1.0"])
    ecg(10000006, 40000061, h(1), None)
    stay(10000007, 30000007, h(0), 6)
    ecg(10000007, 40000071, h(1), 30000007)
    cxr(10000007, 50000071, "d071b", "AP", h(2), ["0.0", "1.0", "0.0"])
    cxr(10000007, 50000071, "d071a", "PA", h(2), ["0.0", "1.0", "0.0"])
    stay(10000008, 30000008, h(0), 6)
    ecg(10000008, 40000081, h(1), 30000008)
    cxr(10000008, 50000081, "d081a", "PA", h(2), None)
    for k in range(12):
        s = 10000101 + k
        stay(s, 30000101 + k, h(k), 5)
        ecg(s, 40000101 + k, h(k + 1), 30000101 + k)
        cxr(s, 50000101 + k, f"d{101 + k}a", "AP" if k % 3 else "PA", h(k + 2),
            [str(float(k % 2)), str(float(k % 3 == 0)), "-1.0" if k % 4 else "1.0"])

    _write_csv(ecg_root / "record_list.csv",
               ["subject_id", "study_id", "file_name", "ecg_time", "path"], records)
    _write_csv(root / "mimic-iv-ecg-ext-icd" / "records_w_diag_icd10.csv",
               ["file_name", "study_id", "subject_id", "ecg_time", "ed_stay_id", "ed_hadm_id",
                "hosp_hadm_id", "all_diag_all"], icd)
    _write_csv(root / "mimic-iv-ed" / "ed" / "edstays.csv",
               ["subject_id", "hadm_id", "stay_id", "intime", "outtime", "gender", "race",
                "arrival_transport", "disposition"], stays)
    _write_csv(cxr_root / "mimic-cxr-2.0.0-metadata.csv",
               ["dicom_id", "subject_id", "study_id", "ViewPosition", "StudyDate", "StudyTime"],
               meta)
    _write_csv(cxr_root / "mimic-cxr-2.0.0-chexpert.csv", ["subject_id", "study_id",
                                                            *CHEXPERT_COLS], chex)
    plain = [(10000101 + k, 40000101 + k, 50000101 + k, f"d{101 + k}a") for k in range(12)]
    ed_icd = [(10000001, 40000011, 50000011, "d011a"), (10000001, 40000012, 50000012, "d012a"),
              (10000005, 40000051, 50000051, "d051a"), (10000007, 40000071, 50000071, "d071a"),
              *plain]
    return {"ed-icd": ed_icd,
            "ed-time": ed_icd + [(10000003, 40000031, 50000031, "d031a")],
            "window": ed_icd + [(10000003, 40000031, 50000031, "d031a"),
                                (10000004, 40000041, 50000041, "d041a")],
            "n_ecgs": len(records), "n_images": len(meta)}


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _build(argv: list[str]) -> dict:
    assert build.main([*argv, "--quiet"]) == 0
    out = Path(argv[argv.index("--out") + 1])
    return json.loads((out / "cohort.json").read_text())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_mimic")
    return root, make_tiny_mimic(root)


@pytest.mark.parametrize("mode", ["ed-icd", "ed-time", "window"])
def test_tiny_mimic_links_as_constructed(tiny, tmp_path, mode):
    root, expected = tiny
    argv = ["--mimic-root", str(root), "--out", str(tmp_path / "c")]
    if mode == "ed-time":
        argv.append("--no-ext-icd")
    if mode == "window":
        argv += ["--link", "window", "--hours", "72"]
    info = _build(argv)
    pairs = _read_csv(tmp_path / "c" / "pairs.csv")
    got = sorted((int(r["subject_id"]), int(r["ecg_study_id"]), int(r["cxr_study_id"]),
                  r["dicom_id"]) for r in pairs)
    assert got == sorted(expected[mode])
    assert info["link"]["name"] == mode
    c = info["counts"]
    assert (c["cxr_images"], c["frontal_images"], c["ecgs"]) == (
        expected["n_images"], expected["n_images"] - 2, expected["n_ecgs"])
    assert c["frontal_studies"] == 19 and c["frontal_studies_labelled"] == 18
    if mode != "window":
        assert c["frontal_studies_in_ed_stay"] == 17  # all but subject 4 and the unlabelled one
    by_study = {int(r["cxr_study_id"]): r for r in pairs}
    s1 = by_study[50000011]
    assert [int(s1[p]) for p in PATHOLOGIES] == [1, 0, 0]  # -1 and blank -> 0
    assert [int(by_study[50000012][p]) for p in PATHOLOGIES] == [0, 1, 1]
    assert s1["cxr_time"] == "2150-03-01 10:00:00" and s1["view_position"] == "PA"
    assert s1["cxr_file"] == "files/p10/p10000001/s50000011/d011a.jpg"


def test_tiny_mimic_arrays_splits_and_ssl(tiny, tmp_path):
    from engine.io import read_cxr, read_ecg
    from engine.preprocess import preprocess_cxr, preprocess_ecg

    root, expected = tiny
    out = tmp_path / "c"
    info = _build(["--mimic-root", str(root), "--out", str(out), "--seed", "3"])
    pairs = _read_csv(out / "pairs.csv")
    ssl = _read_csv(out / "ssl.csv")
    n = len(pairs)
    ecg = np.load(out / "ecg.npy", mmap_mode="r")
    cxr = np.load(out / "cxr.npy", mmap_mode="r")
    ssl_ecg = np.load(out / "ssl_ecg.npy", mmap_mode="r")
    assert ecg.shape == (n, 12, 1000) and ecg.dtype == np.float32
    assert cxr.shape == (n, 1, 224, 224) and cxr.dtype == np.int16
    assert ssl_ecg.shape == (len(ssl), 12, 1000) and ssl_ecg.dtype == np.float32
    for r in pairs[:3]:
        i = int(r["index"])
        ref = preprocess_ecg(read_ecg(str(root / "mimic-iv-ecg" / (r["ecg_file"] + ".hea"))))
        np.testing.assert_array_equal(ecg[i], ref.windows[0])
        ref_cxr = preprocess_cxr(read_cxr(str(root / "mimic-cxr-jpg" / r["cxr_file"])))
        assert np.abs(cxr[i].astype(np.float32) - ref_cxr).max() <= 0.5
    # splits: 15 linked subjects -> 11 / 1 / 3 by the documented rule
    split_of = {int(r["subject_id"]): r["split"] for r in pairs}
    subjects = sorted(split_of)
    perm = np.random.default_rng(3).permutation(len(subjects))
    mine = {subjects[j]: ("train" if rank < 11 else "val" if rank < 12 else "test")
            for rank, j in enumerate(perm)}
    assert split_of == mine
    # SSL: every ECG of a non-test subject, unlinked subjects included
    with open(root / "mimic-iv-ecg" / "record_list.csv") as fh:
        all_ecgs = [(int(r["subject_id"]), int(r["study_id"])) for r in csv.DictReader(fh)]
    want = sorted(st for s, st in all_ecgs if split_of.get(s) != "test")
    assert sorted(int(r["ecg_study_id"]) for r in ssl) == want
    assert {r["split"] for r in ssl if int(r["subject_id"]) not in split_of} == {"unlinked"}
    assert info["splits"]["test"]["pairs"] == sum(r["split"] == "test" for r in pairs)
    # an SSL row equals the pair row of the same ECG
    row_of = {int(r["ecg_study_id"]): int(r["index"]) for r in ssl}
    for r in pairs:
        if r["split"] != "test":
            np.testing.assert_array_equal(ssl_ecg[row_of[int(r["ecg_study_id"])]],
                                          ecg[int(r["index"])])
    assert info["skipped"]["files"] == 0
    assert info["preprocessing"]["ecg"]["samples"] == 1000


def test_tiny_mimic_tables_found_gzipped_and_explicit(tiny, tmp_path):
    import gzip
    import shutil

    root, expected = tiny
    cxr = tmp_path / "cxr"
    cxr.mkdir()
    for name in ("mimic-cxr-2.0.0-metadata.csv", "mimic-cxr-2.0.0-chexpert.csv"):
        with open(root / "mimic-cxr-jpg" / name, "rb") as src, gzip.open(cxr / (name + ".gz"),
                                                                         "wb") as dst:
            shutil.copyfileobj(src, dst)
    (cxr / "files").symlink_to(root / "mimic-cxr-jpg" / "files")
    paths = mimic_tables.locate(ecg_root=root / "mimic-iv-ecg", cxr_root=cxr,
                                ed_root=root / "mimic-iv-ed")
    assert paths.cxr_metadata.name.endswith(".csv.gz") and paths.ecg_icd is None
    assert paths.edstays == root / "mimic-iv-ed" / "ed" / "edstays.csv"
    info = _build(["--ecg-root", str(root / "mimic-iv-ecg"), "--cxr-root", str(cxr),
                   "--ed-root", str(root / "mimic-iv-ed"), "--out", str(tmp_path / "c")])
    assert info["link"]["name"] == "ed-time"
    assert info["counts"]["pairs_written"] == len(expected["ed-time"])


def test_missing_tables_give_actionable_errors(tmp_path, capsys):
    from engine.errors import MissingFileError

    with pytest.raises(MissingFileError, match="record_list.csv"):
        mimic_tables.locate(tmp_path)
    assert build.main(["--mimic-root", str(tmp_path / "nope"), "--out", str(tmp_path / "c")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_corrupt_files_are_skipped_and_reported(tmp_path, capsys):
    root = tmp_path / "mimic"
    expected = make_tiny_mimic(root)
    dat = root / "mimic-iv-ecg" / "files/p1000/p10000101/s40000101/40000101.dat"
    dat.write_bytes(dat.read_bytes()[:3000])  # truncated signal file
    jpg = root / "mimic-cxr-jpg" / mimic_tables.cxr_image_path(10000105, 50000105, "d105a")
    raw = jpg.read_bytes()
    jpg.write_bytes(raw[:len(raw) // 2])  # JPEG headers intact, entropy-coded data cut
    out = tmp_path / "c"
    info = _build(["--mimic-root", str(root), "--out", str(out)])
    printed = capsys.readouterr().out
    sk = info["skipped"]
    assert sk["files"] == 2 and sk["pairs_skipped"] == 2 and sk["unexpected"] == 0
    assert sk["by_error"] == {"CorruptFileError": 2}
    assert {f["file"] for f in sk["list"]} == {
        "files/p1000/p10000101/s40000101/40000101",
        "files/p10/p10000105/s50000105/d105a.jpg"}
    assert "2 unreadable file(s) -> 2 pair(s)" in printed
    pairs = _read_csv(out / "pairs.csv")
    assert info["counts"]["pairs"] == len(expected["ed-icd"])
    assert len(pairs) == info["counts"]["pairs_written"] == len(expected["ed-icd"]) - 2
    assert not {"50000101", "50000105"} & {r["cxr_study_id"] for r in pairs}
    assert [int(r["index"]) for r in pairs] == list(range(len(pairs)))
    ssl = _read_csv(out / "ssl.csv")
    assert "40000101" not in {r["ecg_study_id"] for r in ssl}
    assert sk["ssl_skipped"] == (0 if _split_of_subject(10000101, 0) == "test" else 1)
    assert np.load(out / "ecg.npy", mmap_mode="r").shape[0] == len(pairs)


def _split_of_subject(subject: int, seed: int) -> str:
    """The split of `subject` among the 15 linked subjects of the tiny layout."""
    subjects = sorted([10000001, 10000005, 10000007] + [10000101 + k for k in range(12)])
    rank = list(np.random.default_rng(seed).permutation(15)).index(subjects.index(subject))
    return "train" if rank < 11 else "val" if rank < 12 else "test"


def test_load_cohort_reads_what_was_built(tiny, tmp_path):
    from engine.errors import MissingFileError
    from training.data import cxr_float, load_cohort

    root, expected = tiny
    out = tmp_path / "c"
    _build(["--mimic-root", str(root), "--out", str(out)])
    cohort = load_cohort(out)
    pairs = _read_csv(out / "pairs.csv")
    assert len(cohort) == len(pairs) == len(expected["ed-icd"])
    assert isinstance(cohort.ecg, np.memmap) and cohort.ecg.dtype == np.float32
    assert list(cohort.split) == [r["split"] for r in pairs]
    assert cohort.label_matrix().shape == (len(pairs), 3)
    assert cohort.labels["pleural_effusion"].tolist() == [int(r["pleural_effusion"]) for r in pairs]
    assert sum(len(cohort.indices(s)) for s in ("train", "val", "test")) == len(pairs)
    assert not set(cohort.ssl_subject_id) & set(cohort.subject_id[cohort.mask("test")])
    x = cxr_float(cohort.cxr[:2])
    assert x.dtype == np.float32 and x.shape == (2, 1, 224, 224) and np.abs(x).max() <= 1024
    (out / "cohort.json").unlink()
    with pytest.raises(MissingFileError, match="cohort.json"):
        load_cohort(out)


# --------------------------------------------------------------------------- phantom
def _hand_counts(root: Path) -> dict:
    """The paper's link recomputed from the phantom's CSVs with the csv module only."""
    def rows(rel):
        return _read_csv(root / rel)

    def when(text):
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S")

    meta = rows("mimic-cxr-jpg/mimic-cxr-2.0.0-metadata.csv")
    labels = {(r["subject_id"], r["study_id"]): r for r in
              rows("mimic-cxr-jpg/mimic-cxr-2.0.0-chexpert.csv")}
    stays = {r["stay_id"]: (r["subject_id"], when(r["intime"]), when(r["outtime"]))
             for r in rows("mimic-iv-ed/ed/edstays.csv")}
    ecg_time = {r["study_id"]: when(r["ecg_time"]) for r in rows("mimic-iv-ecg/record_list.csv")}
    tied = [(r["subject_id"], r["study_id"], r["ed_stay_id"]) for r in
            rows("mimic-iv-ecg-ext-icd/records_w_diag_icd10.csv") if r["ed_stay_id"]]
    frontal = [r for r in meta if r["ViewPosition"] in ("AP", "PA")]
    studies = {}
    for r in frontal:
        t = datetime.strptime(r["StudyDate"] + r["StudyTime"].split(".")[0].zfill(6),
                              "%Y%m%d%H%M%S")
        studies[(r["subject_id"], r["study_id"])] = t
    pairs = {}
    for (subject, study), t in studies.items():
        if (subject, study) not in labels:
            continue
        cands = [(abs(ecg_time[e] - t), ecg_time[e], int(e)) for s, e, stay in tied
                 if s == subject and stays[stay][0] == subject
                 and stays[stay][1] <= t <= stays[stay][2]]
        if cands:
            pairs[int(study)] = min(cands)[2]
    return {"cxr_images": len(meta), "frontal_images": len(frontal),
            "frontal_studies": len(studies), "pairs": pairs, "labels": labels}


def test_phantom_counts_splits_and_ssl_match_hand_computation(tmp_path):
    from training.phantom import cli as phantom_cli
    root = tmp_path / "phantom"
    assert phantom_cli.main(["--subjects", "40", "--seed", "5", "--out", str(root)]) == 0
    out = tmp_path / "c"
    info = _build(["--mimic-root", str(root), "--out", str(out), "--workers", "2"])
    hand = _hand_counts(root)
    c = info["counts"]
    assert (c["cxr_images"], c["frontal_images"], c["frontal_studies"]) == (
        hand["cxr_images"], hand["frontal_images"], hand["frontal_studies"])
    pairs = _read_csv(out / "pairs.csv")
    assert c["pairs"] == c["pairs_written"] == len(hand["pairs"]) > 10
    assert {int(r["cxr_study_id"]): int(r["ecg_study_id"]) for r in pairs} == hand["pairs"]
    for r in pairs:
        lab = hand["labels"][(r["subject_id"], r["cxr_study_id"])]
        assert int(r["edema"]) == (lab["Edema"] == "1.0")
        assert int(r["pleural_effusion"]) == (lab["Pleural Effusion"] == "1.0")
    split_sets = {s: {r["subject_id"] for r in pairs if r["split"] == s}
                  for s in ("train", "val", "test")}
    assert not (split_sets["train"] & split_sets["val"] or split_sets["train"] & split_sets["test"]
                or split_sets["val"] & split_sets["test"])
    ssl = _read_csv(out / "ssl.csv")
    assert not {r["subject_id"] for r in ssl} & split_sets["test"]
    n_test_ecgs = sum(r["subject_id"] in split_sets["test"]
                      for r in _read_csv(root / "mimic-iv-ecg/record_list.csv"))
    assert len(ssl) == c["ecgs"] - n_test_ecgs
    assert info["skipped"]["files"] == 0


def test_without_ed_tables_only_the_window_link_works(tiny, tmp_path, capsys):
    root, expected = tiny
    argv = ["--ecg-root", str(root / "mimic-iv-ecg"), "--cxr-root", str(root / "mimic-cxr-jpg")]
    assert build.main([*argv, "--out", str(tmp_path / "a"), "-q"]) == 2
    assert "--link window" in capsys.readouterr().err
    info = _build([*argv, "--out", str(tmp_path / "b"), "--link", "window", "--hours", "72"])
    assert info["inputs"]["edstays"] is None
    assert info["counts"]["pairs_written"] == len(expected["window"])
    assert {r["stay_id"] for r in _read_csv(tmp_path / "b" / "pairs.csv")} == {""}


def test_load_cohort_refuses_other_preprocessing(tiny, tmp_path):
    from engine.errors import PreprocessError
    from training.data import load_cohort

    root, _ = tiny
    out = tmp_path / "c"
    info = _build(["--mimic-root", str(root), "--out", str(out)])
    info["preprocessing"]["ecg"]["fs_hz"] = 500
    (out / "cohort.json").write_text(json.dumps(info))
    with pytest.raises(PreprocessError, match="rebuild"):
        load_cohort(out)
    assert len(load_cohort(out, check_preprocessing=False)) == len(_read_csv(out / "pairs.csv"))


def test_an_ecg_shared_by_several_pairs_is_read_once(tiny, tmp_path, monkeypatch):
    """Each test pair is preceded by a copy with a missing CXR and followed by an exact copy:
    the shared ECG is read once, its row reused (bit-identical), the missing CXR skipped."""
    from training.cohort import prepare

    root, _ = tiny
    link_pairs = build._link

    def shared(paths, records, args):
        res = link_pairs(paths, records, args)
        rows = []
        for _, r in res.pairs.iterrows():
            if _split_of_subject(int(r["subject_id"]), 0) == "test":
                missing = r.copy()
                missing["dicom_id"] = "missing"
                rows += [missing, r, r]
            else:
                rows.append(r)
        res.pairs = pd.DataFrame(rows).reset_index(drop=True)
        return res

    reads: list[str] = []
    prepare_ecg = prepare.prepare_ecg
    monkeypatch.setattr(build, "_link", shared)
    monkeypatch.setattr(prepare, "prepare_ecg", lambda path: reads.append(path) or prepare_ecg(path))
    info = _build(["--mimic-root", str(root), "--out", str(tmp_path / "c")])
    pairs = _read_csv(tmp_path / "c" / "pairs.csv")
    ecg = np.load(tmp_path / "c" / "ecg.npy")
    test = [r for r in pairs if r["split"] == "test"]
    assert test and len(test) == 2 * info["skipped"]["files"] == 2 * info["skipped"]["pairs_skipped"]
    assert len(reads) == len(set(reads))
    for a, b in zip(test[::2], test[1::2]):
        assert a["ecg_study_id"] == b["ecg_study_id"]
        np.testing.assert_array_equal(ecg[int(a["index"])], ecg[int(b["index"])])
