"""`cromotex-review --self-test`: a passing run on a tiny real bundle and real sample
files, and failing runs (tampered bundle, wrong reference outputs, missing demo file,
crashing runner) that exit non-zero and name the failing check in the JSON report."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app import selftest
from engine.constants import LEADS, PATHOLOGIES

from app_samples import REPO

sys.path.insert(0, str(REPO / "tests" / "engine"))
from bundle_factory import make_bundle, rehash  # noqa: E402

sys.path.pop(0)

ECG = "tests/data/ecg/wfdb/ptbxl/00001_lr.hea"
SIIM = "tests/data/cxr/dicom/siim_1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"
NIH = "tests/data/cxr/png/nih/00000001_000.png"
CHECKS = ["imports", "resources", "dicom_decoders", "bundle", "inference_ecg", "inference_cxr",
          "window"]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    """A flat demo folder like resources/demo/: the PTB-XL ECG, the JPEG-compressed
    SIIM DICOM and an NIH PNG, copied unchanged."""
    d = tmp_path_factory.mktemp("demo")
    for rel in (ECG, ECG.replace(".hea", ".dat"), SIIM, NIH):
        shutil.copy(REPO / rel, d)
    return d


@pytest.fixture
def bundle(tmp_path) -> Path:
    return make_bundle(tmp_path / "models", reference_ecgs=(ECG,), reference_cxrs=(SIIM, NIH))


def _by_name(report: dict) -> dict[str, dict]:
    return {c["name"]: c for c in report["checks"]}


def test_cli_self_test_passes_and_reports_every_check(bundle, demo_dir, tmp_path):
    report_path = tmp_path / "out" / "report.json"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, "-c", "import sys; from app.main import main; "
                           "sys.exit(main(sys.argv[1:]))", "--self-test", "--models", str(bundle),
                           "--demo-dir", str(demo_dir), "--report", str(report_path)],
                          env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "self-test passed" in proc.stdout
    report = json.loads(report_path.read_text())
    assert report["ok"] is True and report["exit_code"] == 0 and report["failed"] == []
    assert [c["name"] for c in report["checks"]] == CHECKS
    checks = _by_name(report)
    assert all(c["ok"] and c["error"] is None and c["duration_s"] >= 0 for c in checks.values())
    assert checks["imports"]["details"]["qt"].startswith("6.")
    assert "CPUExecutionProvider" in checks["imports"]["details"]["onnxruntime_providers"]
    dec = checks["dicom_decoders"]["details"]
    assert all("pylibjpeg" in plugins for plugins in dec["plugins"].values())
    assert dec["max_error_JPEG"] <= 2 and dec["max_error_JPEG2000"] == 0
    assert dec["demo_compressed_dicoms"] == [{"file": Path(SIIM).name, "shape": [1024, 1024],
                                              "transfer_syntax": "JPEG Baseline (Process 1)"}]
    assert checks["bundle"]["details"]["bundle_id"] == "test-tiny-0"
    assert checks["bundle"]["details"]["reference_cases"] == 3
    ecg = checks["inference_ecg"]["details"]
    assert [c["file"] for c in ecg["cases"]] == ["00001_lr.hea"]
    assert ecg["cases"][0]["max_abs_diff"] <= ecg["atol"] == 1e-5
    assert set(ecg["cases"][0]["probabilities"]) == set(PATHOLOGIES)
    cxr = checks["inference_cxr"]["details"]
    assert sorted(c["file"] for c in cxr["cases"]) == sorted([Path(SIIM).name, Path(NIH).name])
    assert all(c["max_abs_diff"] <= 1e-5 for c in cxr["cases"])
    win = checks["window"]["details"]
    assert win["qt_platform"] == "offscreen"
    assert win["leads_drawn"] == list(LEADS) and win["traces"] == 13  # 3x4 + rhythm strip
    assert win["probabilities"] == pytest.approx(ecg["cases"][0]["probabilities"], abs=1e-6)
    assert win["pdf_bytes"] > 10_000


def test_tampered_model_fails_the_bundle_check_and_skips_what_depends_on_it(
        bundle, demo_dir, tmp_path, qapp):
    onnx_file = bundle / "ecg_edema.onnx"
    data = bytearray(onnx_file.read_bytes())
    data[-10] ^= 0xFF
    onnx_file.write_bytes(bytes(data))
    code, report, path = selftest.run_self_test(bundle, demo_dir, tmp_path / "r.json")
    assert code == 1 and path == tmp_path / "r.json"
    on_disk = json.loads(path.read_text())
    assert on_disk["ok"] is False and on_disk["exit_code"] == 1
    assert on_disk["failed"] == ["bundle", "inference_ecg", "inference_cxr", "window"]
    checks = _by_name(on_disk)
    assert checks["bundle"]["error"].startswith("BundleError: ")
    assert "ecg_edema.onnx: sha256 does not match" in checks["bundle"]["error"]
    assert checks["inference_ecg"]["error"] == "skipped: depends on failed check(s) bundle"
    assert checks["imports"]["ok"] and checks["dicom_decoders"]["ok"]
    assert not (tmp_path / "r.json.crash.txt").exists()


def test_wrong_reference_output_fails_inference_with_the_difference(bundle, demo_dir, tmp_path,
                                                                    qapp):
    ref_path = bundle / "reference_outputs.json"
    ref = json.loads(ref_path.read_text())
    ref["cases"][0]["probabilities"]["edema"] += 0.01
    ref_path.write_text(json.dumps(ref))
    rehash(bundle)
    code, report, _ = selftest.run_self_test(bundle, demo_dir, tmp_path / "r.json")
    assert code == 1 and report["failed"] == ["inference_ecg"]
    err = _by_name(report)["inference_ecg"]["error"]
    assert err.startswith("SelfTestFailure: 00001_lr.hea: probabilities differ")
    assert "edema 1.00e-02" in err and "tolerance 1e-05" in err
    assert _by_name(report)["window"]["ok"] and _by_name(report)["inference_cxr"]["ok"]


def test_the_reference_ecg_is_scored_once_headless_and_once_by_the_window(
        bundle, demo_dir, tmp_path, qapp, monkeypatch):
    from engine.inference import Predictor
    predict_ecg, scored = Predictor.predict_ecg, []
    monkeypatch.setattr(Predictor, "predict_ecg",
                        lambda self, record: scored.append(record) or predict_ecg(self, record))
    code, report, _ = selftest.run_self_test(bundle, demo_dir, tmp_path / "r.json")
    assert code == 0, report.get("failed")
    assert len(scored) == 2


def test_missing_demo_case_is_a_report_entry(bundle, tmp_path, qapp):
    empty = tmp_path / "empty-demo"
    empty.mkdir()
    ref = json.loads((bundle / "reference_outputs.json").read_text())
    for case in ref["cases"]:  # paths a frozen app cannot resolve without its demo folder
        for key in ("ecg", "cxr"):
            if key in case:
                case[key] = "resources/demo/not-installed-" + Path(case[key]).name
    (bundle / "reference_outputs.json").write_text(json.dumps(ref))
    rehash(bundle)
    code, report, _ = selftest.run_self_test(bundle, empty, tmp_path / "r.json")
    assert code == 1
    assert report["failed"] == ["inference_ecg", "inference_cxr", "window"]
    err = _by_name(report)["inference_ecg"]["error"]
    assert err.startswith("FileNotFoundError: reference case file 'resources/demo/not-installed-00001_lr.hea'")


def test_runner_crash_still_writes_a_report(monkeypatch, tmp_path):
    def boom(*_a, **_k):
        raise RuntimeError("simulated crash")
    monkeypatch.setattr(selftest, "run_checks", boom)
    code, report, path = selftest.run_self_test(None, None, tmp_path / "r.json")
    assert code == 2
    on_disk = json.loads(path.read_text())
    assert on_disk["error"] == "RuntimeError: simulated crash" and on_disk["ok"] is False
    assert "simulated crash" in on_disk["traceback"]


def test_default_report_goes_to_the_user_log_dir(monkeypatch, tmp_path):
    import appdirs
    monkeypatch.setattr(appdirs, "user_log_dir",
                        lambda app, appauthor=None: str(tmp_path / "logs" / app))
    assert selftest.default_report_path() == tmp_path / "logs" / "cromotex-review" / "self-test.json"


def test_reference_paths_resolve_below_the_demo_folder(tmp_path):
    """docs/bundle.md: case paths are repository-relative ("resources/demo/..."); a demo
    folder (shipped or given) with sub-folders per case resolves them exactly."""
    demo = tmp_path / "demo"
    for case in ("case1", "case2"):
        (demo / case).mkdir(parents=True)
        (demo / case / "ecg.hea").write_text(case)
    found = selftest.resolve_case_file("resources/demo/case2/ecg.hea", demo)
    assert found == demo / "case2" / "ecg.hea" and found.read_text() == "case2"
    assert selftest.resolve_case_file(ECG, demo) == REPO / ECG  # source checkout
    with pytest.raises(FileNotFoundError, match="resources/demo/case3/ecg.hea"):
        selftest.resolve_case_file("resources/demo/case3/ecg.hea", tmp_path / "nothing")
