"""Shared helpers of the study store tests: sample folders built from the real files."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
MUSE = DATA / "formats" / "muse_xml" / "egm_muse-sinus.xml"
MUSE2 = DATA / "formats" / "muse_xml" / "musephi_muse_ecg1.xml"
PHILIPS = DATA / "formats" / "philips_xml" / "philips_1-04_ad4d3d80-d165_PageWriterTouch.xml"
HL7 = DATA / "formats" / "hl7_aecg" / "hl7_2003-12_ballot_Example_aECG_Mortara.xml"
DICOM_ECG = DATA / "ecg" / "dicom" / "pydicom_waveform_ecg.dcm"
DICOM_CXR = next((DATA / "cxr" / "dicom").glob("*.dcm"))
PTBXL = DATA / "ecg" / "wfdb" / "ptbxl" / "00001_lr.hea"
PTB = DATA / "ecg" / "wfdb" / "ptb_diagnostic" / "s0010_re.hea"


def copy_wfdb(header: Path, dst_dir: Path, name: str | None = None) -> Path:
    """Copy a WFDB record (header and its signal files) into `dst_dir`, optionally renamed."""
    dst_dir.mkdir(parents=True, exist_ok=True)
    old = header.stem
    new = name or old
    text = header.read_text(encoding="latin-1")
    for f in header.parent.glob(old + ".*"):
        if f.suffix != ".hea":
            shutil.copyfile(f, dst_dir / (new + f.suffix))
    lines = text.splitlines()
    out = []
    for i, ln in enumerate(lines):
        if not ln.startswith("#") and ln.strip() and ln.split()[0].startswith(old):
            ln = new + ln[len(old):]
        out.append(ln)
    (dst_dir / (new + ".hea")).write_text("\n".join(out) + "\n", encoding="latin-1")
    return dst_dir / (new + ".hea")


def muse_visit(dst: Path, date_mdy: str, rate: int) -> Path:
    """A copy of the MUSE sample (same patient) acquired on `date_mdy` (MM-DD-YYYY) with the
    ventricular rate `rate` written in its measurements: a later / earlier ECG of that patient."""
    text = MUSE.read_text(encoding="latin-1")
    text = text.replace("<AcquisitionDate>04-29-2023</AcquisitionDate>",
                        f"<AcquisitionDate>{date_mdy}</AcquisitionDate>")
    text = text.replace("<VentricularRate>90</VentricularRate>", f"<VentricularRate>{rate}</VentricularRate>")
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(text, encoding="latin-1")
    return dst


def sample_folder(root: Path) -> Path:
    """A folder with real files of every ECG format, a chest X-ray DICOM (not an ECG) and a
    second MUSE ECG of the first MUSE patient (a year earlier, rate 72)."""
    folder = root / "ecgs"
    (folder / "xml").mkdir(parents=True)
    (folder / "dicom").mkdir()
    for f in (MUSE, MUSE2, PHILIPS, HL7):
        shutil.copyfile(f, folder / "xml" / f.name)
    shutil.copyfile(DICOM_ECG, folder / "dicom" / "ecg.dcm")
    shutil.copyfile(DICOM_CXR, folder / "dicom" / "cxr.dcm")
    copy_wfdb(PTBXL, folder / "wfdb")
    copy_wfdb(PTB, folder / "wfdb")
    muse_visit(folder / "xml" / "prior" / "muse_prior.xml", "04-29-2022", 72)
    return folder
