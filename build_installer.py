"""Build the CroMoTEX Review installer with PyInstaller (one-folder build).

    python build_installer.py                # build dist/CroMoTEX-Review/ and, on Linux, a tarball
    python build_installer.py --self-test    # ... then run the frozen app's --self-test offscreen

One-folder, not one-file: a one-file build unpacks itself on every start (slow)
and trips antivirus heuristics. The build bundles resources/ (models, demo
cases, icons) and Qt's platform plugins, and excludes torch, the training
package, matplotlib, tkinter, QtWebEngine and every other Qt binding: the app
depends on the PySide6-Essentials wheel only.

Per platform:
- Linux (tested here): dist/CroMoTEX-Review/ + dist/CroMoTEX-Review-<version>-linux-<arch>.tar.gz.
- Windows (not tested here; no Windows machine): run this script on Windows, then
  compile packaging/windows/cromotex-review.iss with Inno Setup 6 (`iscc`).
- macOS (not tested here; no Mac): run this script on macOS (it adds
  --windowed, which makes a .app bundle), then packaging/macos/make_dmg.sh.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
NAME = "CroMoTEX-Review"

#: Modules that must never be in the installer.
EXCLUDES = [
    "torch", "torchvision", "torchaudio", "training", "matplotlib", "tkinter", "_tkinter",
    "PyQt5", "PyQt6", "PySide2", "IPython", "jupyter", "notebook", "pytest", "hypothesis",
    "sklearn", "onnx", "onnxscript", "PyInstaller",
    "PySide6.QtWebEngineCore", "PySide6.QtWebEngineWidgets", "PySide6.QtWebEngineQuick",
    "PySide6.Qt3DCore", "PySide6.QtQuick", "PySide6.QtQml", "PySide6.QtMultimedia",
    "PySide6.QtCharts", "PySide6.QtDataVisualization", "PySide6.QtPdf",
]

#: Packages discovered at run time through entry points or dynamic imports.
HIDDEN_IMPORTS = [
    "pydicom.pixels.decoders.pylibjpeg", "pydicom.pixels.decoders.pillow",
    "pydicom.pixels.decoders.rle", "pydicom.pixels.decoders.gdcm",
    "libjpeg", "openjpeg", "rle", "pylibjpeg",
    "PySide6.QtPrintSupport", "PySide6.QtSvg",
]

#: Distributions whose metadata (entry points) must travel with the code.
COPY_METADATA = ["pylibjpeg", "pylibjpeg-libjpeg", "pylibjpeg-openjpeg", "pylibjpeg-rle",
                 "pydicom", "wfdb", "onnxruntime"]


def _version() -> str:
    sys.path.insert(0, str(ROOT))
    from engine import __version__
    return __version__


def _dir_size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6


def pyinstaller_args(dist: Path, work: Path) -> list[str]:
    """The PyInstaller command line for this platform (list of arguments)."""
    sep = os.pathsep
    args = [
        str(ROOT / "packaging" / "cromotex_review_entry.py"),
        "--name", NAME, "--onedir", "--noconfirm", "--clean",
        "--distpath", str(dist), "--workpath", str(work), "--specpath", str(work),
        "--add-data", f"{ROOT / 'resources'}{sep}resources",
        "--paths", str(ROOT),
    ]
    for mod in EXCLUDES:
        args += ["--exclude-module", mod]
    for mod in HIDDEN_IMPORTS:
        args += ["--hidden-import", mod]
    for dist_name in COPY_METADATA:
        args += ["--copy-metadata", dist_name]
    for pkg in ("libjpeg", "openjpeg", "rle"):
        args += ["--collect-binaries", pkg]
    if sys.platform == "darwin":
        args += ["--windowed", "--osx-bundle-identifier", "org.cromotex.review"]
    elif sys.platform == "win32":
        args += ["--windowed"]
    icon = ROOT / "resources" / "icons" / ("cromotex.ico" if sys.platform == "win32" else "cromotex.icns")
    if icon.exists() and sys.platform in {"win32", "darwin"}:
        args += ["--icon", str(icon)]
    return args


def build(dist: Path, work: Path) -> Path:
    """Run PyInstaller; return the one-folder app directory."""
    import PyInstaller.__main__

    t0 = time.perf_counter()
    PyInstaller.__main__.run(pyinstaller_args(dist, work))
    app_dir = dist / NAME
    print(f"built {app_dir} in {time.perf_counter() - t0:.0f} s; "
          f"unpacked size {_dir_size_mb(app_dir):.0f} MB")
    forbidden = [p for p in ("torch", "training", "matplotlib", "tkinter", "PyQt5", "PyQt6")
                 if any(app_dir.rglob(p)) and any(q.is_dir() for q in app_dir.rglob(p))]
    if forbidden:
        raise SystemExit(f"excluded packages leaked into the build: {forbidden}")
    return app_dir


def make_tarball(app_dir: Path) -> Path:
    """Wrap the one-folder build as dist/<name>-<version>-linux-<arch>.tar.gz."""
    out = app_dir.parent / f"{NAME}-{_version()}-linux-{platform.machine()}.tar.gz"
    with tarfile.open(out, "w:gz", compresslevel=6) as tar:
        tar.add(app_dir, arcname=NAME)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.0f} MB)")
    return out


def frozen_executable(app_dir: Path) -> Path:
    if sys.platform == "win32":
        return app_dir / f"{NAME}.exe"
    return app_dir / NAME


def run_self_test(app_dir: Path, report: Path) -> dict:
    """Run the frozen app's --self-test offscreen; return its JSON report."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    env.pop("PYTHONPATH", None)
    t0 = time.perf_counter()
    proc = subprocess.run([str(frozen_executable(app_dir)), "--self-test", "--report", str(report)],
                          env=env, capture_output=True, text=True, timeout=600, cwd="/")
    elapsed = time.perf_counter() - t0
    result = json.loads(report.read_text()) if report.exists() else {}
    print(f"frozen self-test exit {proc.returncode} in {elapsed:.1f} s")
    if proc.returncode != 0:
        print(proc.stdout[-4000:], proc.stderr[-4000:], sep="\n")
    result["_exit_code"] = proc.returncode
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="output folder (default dist/)")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "pyinstaller", help="PyInstaller work folder")
    parser.add_argument("--no-archive", action="store_true", help="skip the Linux tarball")
    parser.add_argument("--self-test", action="store_true", help="run the frozen app's --self-test after building")
    args = parser.parse_args(argv)
    app_dir = build(args.dist, args.work)
    if sys.platform.startswith("linux") and not args.no_archive:
        make_tarball(app_dir)
    if args.self_test:
        result = run_self_test(app_dir, args.dist / "self-test.json")
        return int(result.get("_exit_code", 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
