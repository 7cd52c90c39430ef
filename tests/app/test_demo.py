"""The shipped demo cases (resources/demo/): which files each case opens, the File >
Open demo case menu, `--demo` on the command line (no fallback to tests/data), and
quitting while workers run (no "Signal source has been deleted")."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from app.controller import Controller
from app.demo import DemoCaseError, demo_case, list_cases
from engine.io import read_cxr, read_ecg
from engine.resources import demo_dir

from app_samples import REPO

TIMEOUT = 20000
SHIPPED = demo_dir()
needs_demo = pytest.mark.skipif(not (SHIPPED / "README.md").is_file(),
                                reason="no demo cases installed in resources/demo/")


@needs_demo
def test_shipped_cases_pair_each_ecg_with_its_cxr():
    cases = list_cases()
    assert [c.number for c in cases] == [1, 2, 3]
    for c in cases:
        prefix = f"case{c.number}_{c.label}_"
        assert c.ecg.name.startswith(prefix) and c.cxr.name.startswith(prefix)
        assert c.ecg.name.startswith(prefix + "ecg") and c.cxr.name.startswith(prefix + "cxr")
        rec, img = read_ecg(c.ecg), read_cxr(c.cxr)
        assert rec.signal.shape == (12, 5000) and rec.fs == 500
        assert img.pixels.ndim == 2
    assert cases[0].ecg.suffix == ".hea" and cases[0].cxr.suffix == ".jpg"
    assert cases[2].ecg.suffix == ".dcm" and cases[2].cxr.suffix == ".dcm"  # the DICOM case
    assert cases[0].title == "Case 1: cardiomegaly, edema, pleural effusion"
    assert cases[2].title == "Case 3: cardiomegaly, pleural effusion (DICOM)"
    assert demo_case() == cases[0]


def test_missing_folder_or_case_is_a_typed_error(tmp_path):
    with pytest.raises(DemoCaseError, match="not installed"):
        list_cases(tmp_path / "absent")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DemoCaseError, match="No demo case"):
        list_cases(tmp_path)
    (tmp_path / "case4_no_finding_ecg.hea").write_text("x")
    assert [c.number for c in list_cases(tmp_path)] == [4]
    assert list_cases(tmp_path)[0].cxr is None
    with pytest.raises(DemoCaseError, match="no demo case 1; installed: 4"):
        demo_case(1, tmp_path)


@needs_demo
def test_demo_menu_opens_case_with_its_cxr(window, errors, qtbot, tmp_path):
    ctl = Controller(window, models_dir=str(tmp_path / "none"), settings_dir=tmp_path / "cfg",
                     error_presenter=lambda t, m: errors.append((t, m)))
    titles = [a.text() for a in window.demo_menu.actions()]
    assert titles[0].startswith("Case 1:") and len(titles) == 3
    with qtbot.waitSignals([ctl.ecg_shown, ctl.cxr_shown], timeout=TIMEOUT):
        window.demo_menu.actions()[1].trigger()
    assert ctl.record.source.path.endswith("case2_no_finding_ecg.hea")
    assert ctl.cxr.source.path.endswith("case2_no_finding_cxr.jpg")
    assert errors == []
    ctl.shutdown()


def test_demo_menu_without_cases_is_disabled_and_open_demo_shows_error(window, errors, tmp_path):
    ctl = Controller(window, models_dir=str(tmp_path / "none"), settings_dir=tmp_path / "cfg",
                     error_presenter=lambda t, m: errors.append((t, m)),
                     demo_dir=tmp_path / "no-demo")
    acts = window.demo_menu.actions()
    assert len(acts) == 1 and not acts[0].isEnabled()
    assert ctl.open_demo(1) is False
    assert errors and errors[0][0] == "No demo case" and "not installed" in errors[0][1]
    assert ctl.record is None


def _run_app(*args: str, resources: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen",
           "CROMOTEX_REVIEW_CONFIG_DIR": os.environ["CROMOTEX_REVIEW_CONFIG_DIR"]}
    code = ("import sys, engine.resources as r, pathlib;"
            + (f"r.demo_dir = lambda: pathlib.Path({resources!r});" if resources else "")
            + "from app.main import main; sys.exit(main(sys.argv[1:]))")
    return subprocess.run([sys.executable, "-c", code, *args, "--quit-when-ready"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)


@needs_demo
@pytest.mark.skipif(not (REPO / "resources/models/manifest.json").is_file(),
                    reason="no shipped bundle")
def test_command_line_demo_with_cxr_quits_cleanly():
    """`--demo` opens case 1 (ECG and CXR, scored by the shipped bundle); quitting as
    soon as the ECG is ready, with the CXR worker possibly still running, is silent."""
    cxr = str(SHIPPED / "case3_dicom_cardiomegaly_pleural_effusion_cxr.dcm")
    res = _run_app("--demo", "--cxr", cxr)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("READY") and "traces=13 predictions=3" in res.stdout
    assert res.stderr == ""


def test_command_line_demo_missing_is_an_error_not_a_substitute(tmp_path):
    res = _run_app("--demo", resources=str(tmp_path / "no-demo"))
    assert res.returncode == 2
    assert "READY" not in res.stdout
    assert "ERROR No demo case" in res.stderr and "not installed" in res.stderr
    assert "00001_lr" not in res.stdout + res.stderr  # no tests/data fallback


def test_offscreen_noise_is_dropped_and_other_qt_messages_logged(qapp, caplog):
    from app.qt import QtCore, quiet_offscreen_noise
    previous = quiet_offscreen_noise()
    try:
        with caplog.at_level("DEBUG", logger="qt"):
            QtCore.qWarning("This plugin does not support propagateSizeHints()")
            QtCore.qWarning("something real")
    finally:
        QtCore.qInstallMessageHandler(previous)
    assert [r.getMessage() for r in caplog.records if r.name == "qt"] == ["something real"]
