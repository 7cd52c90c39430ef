"""Phantom generator: MIMIC layout and columns, determinism, WFDB/DICOM round trips,
Einthoven, labels versus latents."""

from __future__ import annotations

import csv
import datetime as dt
import filecmp
import hashlib
import re
from pathlib import Path

import numpy as np
import pydicom
import pytest
import wfdb
from PIL import Image

from engine.errors import OutputExistsError
from training.phantom import generate
from training.phantom.cli import main as cli_main
from training.phantom.layout import COLUMNS
from training.phantom.wfdb_out import write_record

N = 30
SEED = 3


@pytest.fixture(scope="module")
def phantom(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("phantom") / "root"
    generate(out, N, SEED, progress=False)
    return out


def _rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def test_tables_have_mimic_columns(phantom):
    expected = {
        "mimic-iv-ecg/record_list.csv": ["subject_id", "study_id", "file_name", "ecg_time", "path"],
        "mimic-cxr-jpg/mimic-cxr-2.0.0-chexpert.csv": [
            "subject_id", "study_id", "Atelectasis", "Cardiomegaly", "Consolidation", "Edema",
            "Enlarged Cardiomediastinum", "Fracture", "Lung Lesion", "Lung Opacity", "No Finding",
            "Pleural Effusion", "Pleural Other", "Pneumonia", "Pneumothorax", "Support Devices"],
        "mimic-cxr-jpg/mimic-cxr-2.0.0-metadata.csv": [
            "dicom_id", "subject_id", "study_id", "PerformedProcedureStepDescription", "ViewPosition",
            "Rows", "Columns", "StudyDate", "StudyTime", "ProcedureCodeSequence_CodeMeaning",
            "ViewCodeSequence_CodeMeaning", "PatientOrientationCodeSequence_CodeMeaning"],
        "mimic-cxr-jpg/mimic-cxr-2.0.0-split.csv": ["dicom_id", "study_id", "subject_id", "split"],
        "mimic-iv-ed/ed/edstays.csv": ["subject_id", "hadm_id", "stay_id", "intime", "outtime", "gender",
                                       "race", "arrival_transport", "disposition"],
    }
    for rel, cols in expected.items():
        header, rows = _rows(phantom / rel)
        assert header == cols, rel
        assert rows, rel
    header, _ = _rows(phantom / "mimic-iv-ecg-ext-icd/records_w_diag_icd10.csv")
    assert header[:7] == ["file_name", "study_id", "subject_id", "ecg_time", "ed_stay_id", "ed_hadm_id",
                          "hosp_hadm_id"]
    assert "all_diag_all" in header


def test_paths_ids_and_values_follow_mimic(phantom):
    _, records = _rows(phantom / "mimic-iv-ecg/record_list.csv")
    for r in records:
        s, st = r["subject_id"], r["study_id"]
        assert r["path"] == f"files/p{s[:4]}/p{s}/s{st}/{st}" and r["file_name"] == st
        assert (phantom / "mimic-iv-ecg" / (r["path"] + ".hea")).is_file()
        assert 2110 <= int(r["ecg_time"][:4]) <= 2210
    _, meta = _rows(phantom / "mimic-cxr-jpg/mimic-cxr-2.0.0-metadata.csv")
    views = {m["ViewPosition"] for m in meta}
    assert {"AP", "PA"} <= views and views & {"LATERAL", "LL"}
    for m in meta:
        assert re.fullmatch(r"([0-9a-f]{8}-){4}[0-9a-f]{8}", m["dicom_id"])
        assert re.fullmatch(r"\d{8}", m["StudyDate"]) and re.fullmatch(r"\d{6}\.\d{3}", m["StudyTime"])
        s = m["subject_id"]
        img = phantom / "mimic-cxr-jpg" / f"files/p{s[:2]}/p{s}/s{m['study_id']}/{m['dicom_id']}.jpg"
        with Image.open(img) as im:
            assert im.mode == "L" and im.size == (int(m["Columns"]), int(m["Rows"]))
    _, chex = _rows(phantom / "mimic-cxr-jpg/mimic-cxr-2.0.0-chexpert.csv")
    values = {row[c] for row in chex for c in COLUMNS["chexpert"][2:]}
    assert values <= {"1.0", "0.0", "-1.0", ""} and {"1.0", ""} <= values
    _, icd = _rows(phantom / "mimic-iv-ecg-ext-icd/records_w_diag_icd10.csv")
    assert {r["study_id"] for r in icd} == {r["study_id"] for r in records}
    assert all(r["file_name"].startswith("mimic-iv-ecg-diagnostic-electrocardiogram-matched-subset-1.0/files/")
               for r in icd)
    assert any(r["ed_stay_id"] == "" for r in icd) and any(r["ed_stay_id"] for r in icd)


def test_in_stay_studies_lie_inside_their_stay(phantom):
    _, stays = _rows(phantom / "mimic-iv-ed/ed/edstays.csv")
    span = {s["stay_id"]: (s["intime"], s["outtime"]) for s in stays}
    _, studies = _rows(phantom / "phantom_studies.csv")
    fmt = "%Y-%m-%d %H:%M:%S"
    for s in studies:
        t = dt.datetime.strptime(s["time"], fmt)
        if s["stay_id"]:
            lo, hi = (dt.datetime.strptime(v, fmt) for v in span[s["stay_id"]])
            assert lo <= t <= hi
        else:  # outside every stay of the subject by at least 3 days
            for st in stays:
                if st["subject_id"] == s["subject_id"]:
                    lo = dt.datetime.strptime(st["intime"], fmt)
                    hi = dt.datetime.strptime(st["outtime"], fmt)
                    assert t < lo - dt.timedelta(days=3) or t > hi + dt.timedelta(days=3)


def test_wfdb_records_read_back_and_satisfy_einthoven(phantom):
    _, records = _rows(phantom / "mimic-iv-ecg/record_list.csv")
    for r in records[:8]:
        rec = wfdb.rdrecord(str(phantom / "mimic-iv-ecg" / r["path"]))
        assert rec.fs == 500 and rec.sig_len == 5000 and rec.n_sig == 12
        assert rec.sig_name == ["I", "II", "III", "aVR", "aVF", "aVL", "V1", "V2", "V3", "V4", "V5", "V6"]
        assert rec.units == ["mV"] * 12 and rec.fmt == ["16"] * 12
        x = {n: rec.p_signal[:, i] for i, n in enumerate(rec.sig_name)}
        q = 1.5 / 200.0  # three rounding errors of half an adc unit
        assert np.max(np.abs(x["III"] - (x["II"] - x["I"]))) <= q
        assert np.max(np.abs(x["aVR"] + x["aVL"] + x["aVF"])) <= q
        assert 0.3 < np.ptp(x["II"]) < 8.0  # plausible mV range


def test_engine_reader_accepts_records(phantom):
    from engine.io.wfdb_reader import read_wfdb

    _, records = _rows(phantom / "mimic-iv-ecg/record_list.csv")
    rec = read_wfdb(phantom / "mimic-iv-ecg" / (records[0]["path"] + ".hea"))
    assert rec.signal.shape == (12, 5000) and rec.fs == 500


def test_fast_wfdb_writer_matches_wfdb_wrsamp(tmp_path):
    x = np.random.default_rng(0).integers(-3000, 3000, (5000, 12)).astype(np.int16)
    names = ["I", "II", "III", "aVR", "aVF", "aVL", "V1", "V2", "V3", "V4", "V5", "V6"]
    when = dt.datetime(2180, 7, 23, 8, 44, 0)
    (tmp_path / "a").mkdir()
    wfdb.wrsamp("40000001", fs=500, units=["mV"] * 12, sig_name=names, d_signal=x, fmt=["16"] * 12,
                adc_gain=[200.0] * 12, baseline=[0] * 12, base_time=when.time(), base_date=when.date(),
                write_dir=str(tmp_path / "a"))
    write_record(tmp_path / "b", "40000001", x, 500, 200.0, names, when)
    for ext in ("hea", "dat"):
        assert filecmp.cmp(tmp_path / "a" / f"40000001.{ext}", tmp_path / "b" / f"40000001.{ext}", shallow=False)


def test_dicom_copies_read_back(phantom):
    ecgs = sorted((phantom / "dicom" / "ecg").glob("*.dcm"))
    cxrs = sorted((phantom / "dicom" / "cxr").glob("*.dcm"))
    assert ecgs and cxrs
    ds = pydicom.dcmread(ecgs[0])
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.9.1.1"
    group = ds.WaveformSequence[0]
    assert group.MultiplexGroupLabel == "RHYTHM" and group.NumberOfWaveformChannels == 12
    assert float(group.SamplingFrequency) == 500 and group.NumberOfWaveformSamples == 5000
    meanings = [c.ChannelSourceSequence[0].CodeMeaning for c in group.ChannelDefinitionSequence]
    assert meanings[:3] == ["MDC_ECG_LEAD_I", "MDC_ECG_LEAD_II", "MDC_ECG_LEAD_III"]
    arr = ds.waveform_array(0)  # applies sensitivity: microvolts
    lead = {m.rsplit("_", 1)[1]: arr[:, i] for i, m in enumerate(meanings)}
    assert np.max(np.abs(lead["III"] - (lead["II"] - lead["I"]))) <= 3 * 5.0
    from engine.io.dicom_ecg import read_dicom_ecg
    assert read_dicom_ecg(ecgs[0]).signal.shape == (12, 5000)
    img = pydicom.dcmread(cxrs[0])
    assert img.Modality == "DX" and img.PhotometricInterpretation == "MONOCHROME2"
    assert img.ViewPosition in ("AP", "PA") and len(img.PixelSpacing) == 2
    assert img.pixel_array.shape == (512, 512) and img.pixel_array.dtype == np.uint8


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix in (".csv", ".hea", ".dat", ".jpg", ".json"):
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_deterministic_and_independent_of_workers(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    generate(a, 6, 11, progress=False, workers=1)
    generate(b, 6, 11, progress=False, workers=2)
    assert _digest(a) == _digest(b)
    c = tmp_path / "c"
    generate(c, 6, 12, progress=False)
    assert _digest(a) != _digest(c)


def test_refuses_non_empty_out_unless_forced(tmp_path, capsys):
    (tmp_path / "junk.txt").write_text("x")
    with pytest.raises(OutputExistsError):
        generate(tmp_path, 2, 0, progress=False)
    assert cli_main(["--subjects", "2", "--out", str(tmp_path), "--quiet"]) == 2
    assert "--force" in capsys.readouterr().err
    assert cli_main(["--subjects", "2", "--out", str(tmp_path), "--quiet", "--force"]) == 0
    assert (tmp_path / "mimic-iv-ecg" / "record_list.csv").is_file()


def test_labels_agree_with_latents(phantom):
    _, truth = _rows(phantom / "phantom_truth.csv")
    ctr = np.array([float(r["ctr"]) for r in truth])
    card = np.array([int(r["cardiomegaly"]) for r in truth])
    assert np.all((ctr > 0.5) == (card == 1))
    for label, z in (("edema", "congestion_z"), ("pleural_effusion", "fluid_z")):
        y = np.array([int(r[label]) for r in truth])
        v = np.array([float(r[z]) for r in truth])
        assert 0 < y.sum() < len(y) and v[y == 1].min() > v[y == 0].max()
    # observed CheXpert labels of in-stay studies agree with the stay's truth up to label noise
    by_stay = {r["stay_id"]: r for r in truth if r["stay_id"]}
    _, studies = _rows(phantom / "phantom_studies.csv")
    stay_of = {s["study_id"]: s["stay_id"] for s in studies if s["modality"] == "cxr" and s["stay_id"]}
    _, chex = _rows(phantom / "mimic-cxr-jpg/mimic-cxr-2.0.0-chexpert.csv")
    agree = total = 0
    for row in chex:
        if row["study_id"] in stay_of:
            t = by_stay[stay_of[row["study_id"]]]
            for col, lab in (("Cardiomegaly", "cardiomegaly"), ("Edema", "edema"),
                             ("Pleural Effusion", "pleural_effusion")):
                agree += int((row[col] == "1.0") == (t[lab] == "1"))
                total += 1
    assert total > 50 and 0.85 <= agree / total < 1.0


def test_prevalence_and_correlation_of_latents():
    from training.phantom.layout import plan_subject

    eps = [e for k in range(600) for e in plan_subject(1, k).episodes[1:]]
    prev = np.mean([[e.cardiomegaly, e.edema, e.pleural_effusion] for e in eps], axis=0)
    assert 0.20 < prev[0] < 0.36 and 0.15 < prev[1] < 0.30 and 0.19 < prev[2] < 0.35
    z = np.array([[e.heart_size_z, e.congestion_z, e.fluid_z] for e in eps])
    corr = np.corrcoef(z.T)
    assert np.all(corr[np.triu_indices(3, 1)] > 0.2)


def test_ecg_signs_follow_the_latents():
    """Tachycardia with congestion/fluid, wider QRS with heart size (population trends)."""
    from training.phantom.layout import plan_subject

    eps = [e for k in range(400) for e in plan_subject(2, k).episodes]
    hr = np.array([e.heart_rate_bpm for e in eps])
    qrs = np.array([e.qrs_ms for e in eps])
    sick = np.array([e.edema or e.pleural_effusion for e in eps], dtype=bool)
    card = np.array([e.cardiomegaly for e in eps], dtype=bool)
    assert hr[sick].mean() > hr[~sick].mean() + 5
    assert qrs[card].mean() > qrs[~card].mean() + 1.5


def test_cardiomegaly_widens_heart_on_cxr():
    from training.phantom.cxr import render_frontal
    from training.phantom.latent import draw_episode, draw_traits
    import dataclasses

    rng = np.random.default_rng(0)
    traits = draw_traits(rng)
    base = draw_episode(rng, traits)
    rows = []
    for ctr in (0.42, 0.60):
        st = dataclasses.replace(base, ctr=ctr, fluid_z=-2.0, congestion_z=-1.0)
        img = render_frontal(np.random.default_rng(5), traits, st, "PA").astype(float)
        rows.append(img[300:330].mean(axis=0))  # a band through the heart
    # the bright heart band is wider for the larger heart
    width = [int(np.sum(r > r.max() * 0.8)) for r in rows]
    assert width[1] > width[0] + 20
