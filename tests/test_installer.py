"""The PyInstaller build (slow: several minutes; deselected by default).

    python3 -m pytest -m slow tests/test_installer.py

Builds the one-folder app and the Linux tarball into a temporary folder with
`build_installer.py`, unpacks the tarball somewhere else (as a user would) and runs
the frozen `--self-test` offscreen from there, with no PYTHONPATH and `/` as the
working directory, so nothing can come from the source tree. Uses the shipped
bundle and demo cases when resources/models/ holds a bundle, otherwise a tiny real
bundle (tests/engine/bundle_factory.py) and sample files from tests/data.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NAME = "CroMoTEX-Review"
ECG = "tests/data/ecg/wfdb/ptbxl/00001_lr.hea"
SIIM = "tests/data/cxr/dicom/siim_1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"
NIH = "tests/data/cxr/png/nih/00000001_000.png"
MAX_UNPACKED_MIB = 400
SHIPPED = (REPO / "resources" / "models" / "manifest.json").is_file()

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sys.platform.startswith("linux"),
                                 reason="the tarball build is tested on Linux only")]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    """Build into a temp folder, unpack the tarball elsewhere; build-info + unpacked path."""
    out = tmp_path_factory.mktemp("installer")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(REPO / "build_installer.py"), "--dist",
                           str(out / "dist"), "--work", str(out / "work")]
                          + ([] if SHIPPED else ["--allow-missing-bundle"]),
                          capture_output=True, text=True, timeout=1800, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    info = json.loads((out / "dist" / "build-info.json").read_text())
    assert (info["shipped_bundle"] is not None) == SHIPPED
    info["wall_seconds"] = time.perf_counter() - t0
    unpacked = out / "unpacked"
    with tarfile.open(info["tarball"]) as tar:
        tar.extractall(unpacked, filter="tar")
    shutil.rmtree(out / "dist" / NAME)  # the self-test must run from the unpacked copy
    info["app"] = unpacked / NAME
    sys.stderr.write(f"\ninstaller: build {info['build_seconds']} s, total {info['wall_seconds']:.0f} s, "
                     f"unpacked {info['size_bytes'] / 2**20:.0f} MiB, tarball "
                     f"{info['tarball_bytes'] / 2**20:.0f} MiB\n")
    return info


@pytest.fixture(scope="module")
def self_test_inputs(tmp_path_factory) -> list[str]:
    """Extra --models/--demo-dir arguments: none for the shipped bundle, else a tiny one."""
    if SHIPPED:
        return []
    sys.path.insert(0, str(REPO / "tests" / "engine"))
    try:
        from bundle_factory import make_bundle
    finally:
        sys.path.pop(0)
    d = tmp_path_factory.mktemp("selftest-inputs")
    make_bundle(d / "models", reference_ecgs=(ECG,), reference_cxrs=(SIIM, NIH))
    demo = d / "demo"
    demo.mkdir()
    for rel in (ECG, ECG.replace(".hea", ".dat"), SIIM, NIH):
        shutil.copy(REPO / rel, demo)
    return ["--models", str(d / "models"), "--demo-dir", str(demo)]


def run_frozen(app: Path, report: Path, extra: list[str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["QT_QPA_PLATFORM"] = "offscreen"
    return subprocess.run([str(app / NAME), "--self-test", "--report", str(report), *extra],
                          env=env, capture_output=True, text=True, timeout=300, cwd="/")


def test_build_is_small_and_has_no_torch(built):
    app = built["app"]
    assert built["size_bytes"] < MAX_UNPACKED_MIB * 2**20
    internal = app / "_internal"
    for forbidden in ("torch", "training", "matplotlib", "tkinter", "PyQt5", "PyQt6", "sklearn"):
        assert not (internal / forbidden).exists(), forbidden
    platforms = {p.name for p in (internal / "PySide6" / "Qt" / "plugins" / "platforms").iterdir()}
    assert {"libqoffscreen.so", "libqxcb.so"} <= platforms
    assert (internal / "resources" / "icons" / "cromotex.png").is_file()
    assert (app / "cromotex-review.desktop").is_file()
    assert not (internal / "PySide6" / "Qt" / "translations").exists()


def test_frozen_self_test_passes_offscreen(built, self_test_inputs, tmp_path):
    app = built["app"]
    report_path = tmp_path / "report.json"
    t0 = time.perf_counter()
    proc = run_frozen(app, report_path, self_test_inputs)
    seconds = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    report = json.loads(report_path.read_text())
    assert report["ok"] is True and report["exit_code"] == 0 and report["frozen"] is True
    assert Path(report["executable"]).resolve() == (app / NAME).resolve()
    checks = {c["name"]: c for c in report["checks"]}
    assert list(checks) == ["imports", "resources", "dicom_decoders", "bundle", "inference_ecg",
                            "inference_cxr", "window"]
    assert all(c["ok"] for c in checks.values()), [c["error"] for c in checks.values()]
    res = checks["resources"]["details"]
    assert res["frozen"] is True
    assert Path(res["resource_root"]).resolve() == (app / "_internal" / "resources").resolve()
    assert "onnxruntime" not in str(checks["imports"]["details"].get("error", ""))
    dec = checks["dicom_decoders"]["details"]
    assert all("pylibjpeg" in p for p in dec["plugins"].values())
    assert dec["max_error_JPEG2000"] == 0 and dec["max_error_JPEG"] <= 2
    if not SHIPPED:
        assert [d["file"] for d in dec["demo_compressed_dicoms"]] == [Path(SIIM).name]
    for modality in ("inference_ecg", "inference_cxr"):
        d = checks[modality]["details"]
        assert d["cases"] and all(c["max_abs_diff"] <= d["atol"] for c in d["cases"])
    win = checks["window"]["details"]
    assert win["qt_platform"] == "offscreen"
    assert win["leads_drawn"] == ["I", "II", "III", "aVR", "aVL", "aVF",
                                  "V1", "V2", "V3", "V4", "V5", "V6"]
    assert win["pdf_bytes"] > 10_000  # QPdfWriter and fonts work frozen
    sys.stderr.write(f"\nfrozen self-test: {seconds:.1f} s\n")


def test_frozen_self_test_fails_on_a_tampered_bundle(built, self_test_inputs, tmp_path):
    src = Path(self_test_inputs[1]) if self_test_inputs else REPO / "resources" / "models"
    bundle = shutil.copytree(src, tmp_path / "models")
    victim = sorted(bundle.glob("*.onnx"))[0]
    data = bytearray(victim.read_bytes())
    data[-10] ^= 0xFF
    victim.write_bytes(bytes(data))
    extra = ["--models", str(bundle)] + self_test_inputs[2:]
    report_path = tmp_path / "report.json"
    proc = run_frozen(built["app"], report_path, extra)
    assert proc.returncode == 1
    report = json.loads(report_path.read_text())
    assert report["failed"][0] == "bundle"
    bundle_check = next(c for c in report["checks"] if c["name"] == "bundle")
    assert f"{victim.name}: sha256 does not match" in bundle_check["error"]


@pytest.mark.skipif(not (SHIPPED and (REPO / "resources" / "demo" / "README.md").is_file()),
                    reason="needs the shipped bundle and demo cases")
def test_frozen_demo_opens_case_1_scored_and_quits_cleanly(built, tmp_path):
    """The frozen `--demo` opens the bundled case 1 (ECG and its CXR) from its own
    resources (no tests/data), scores it with the shipped bundle, and quits while the
    CXR worker may still run without any warning."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(QT_QPA_PLATFORM="offscreen", CROMOTEX_REVIEW_CONFIG_DIR=str(tmp_path / "cfg"))
    t0 = time.perf_counter()
    proc = subprocess.run([str(built["app"] / NAME), "--demo", "--quit-when-ready"], env=env,
                          capture_output=True, text=True, timeout=300, cwd="/")
    seconds = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("READY") and "traces=13 predictions=3" in proc.stdout
    assert proc.stderr == ""
    sys.stderr.write(f"\nfrozen --demo to READY and exit: {seconds:.1f} s\n")
