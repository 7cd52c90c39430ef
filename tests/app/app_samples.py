"""Sample files and screen constants shared by the app tests."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
#: Every real sample ECG (one entry per record).
SAMPLE_ECGS = [
    DATA / "ecg/wfdb/ludb/1.hea", DATA / "ecg/wfdb/ludb/2.hea", DATA / "ecg/wfdb/ludb/8.hea",
    DATA / "ecg/wfdb/ludb/17.hea", DATA / "ecg/wfdb/ptb_diagnostic/s0010_re.hea",
    DATA / "ecg/wfdb/ptbxl/00001_lr.hea", DATA / "ecg/wfdb_mat/cinc2021/HR06000.hea",
    DATA / "ecg/wfdb_mat/cinc2021/E07505.hea", DATA / "ecg/dicom/pydicom_waveform_ecg.dcm",
]
PTBXL = DATA / "ecg/wfdb/ptbxl/00001_lr.hea"
NIH_CXR = DATA / "cxr/png/nih/00000001_000.png"
#: ECG-resolution px/mm used by tests that need a fixed screen (96 dpi).
PPM = 96 / 25.4
