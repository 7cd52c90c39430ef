"""Build the CroMoTEX Review installer with PyInstaller (one-folder build).

    python3 build_installer.py                  # dist/CroMoTEX-Review/ and, on Linux, a tarball
    python3 build_installer.py --self-test      # ... then run the frozen app's --self-test offscreen
    python3 build_installer.py --self-test --models DIR --demo-dir DIR   # another bundle / demo folder
    python3 build_installer.py --allow-missing-bundle ...   # test build while resources/models/ is empty

One-folder, not one-file: a one-file build unpacks itself on every start (slow)
and trips antivirus heuristics. The build bundles resources/ (models, demo
cases, icons) and Qt's platform plugins (offscreen, minimal, xcb, wayland,
windows, cocoa: whichever the platform has), and excludes torch, the training
package, matplotlib, tkinter, QtWebEngine and every other Qt binding: the app
depends on the PySide6-Essentials wheel only. After PyInstaller it trims what
the app never loads (Qt translations, unused Qt plugins and libraries) and fails
if an excluded package leaked in.

Per platform:
- Linux (tested here): dist/CroMoTEX-Review/ + dist/CroMoTEX-Review-<version>-linux-<arch>.tar.gz.
  An AppImage is not built: appimagetool and its runtime are neither on PyPI nor
  in Debian; `--appdir` writes the AppDir that appimagetool turns into one.
- Windows (NOT tested here; no Windows machine): run this script on Windows, then
  compile packaging/windows/cromotex-review.iss with Inno Setup 6 (`iscc`).
- macOS (NOT tested here; no Mac): run this script on macOS (it adds --windowed,
  which makes dist/CroMoTEX-Review.app), then `bash packaging/macos/make_dmg.sh`.

Prints the build time, the unpacked size and the 10 biggest items, and writes
them to dist/build-info.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
NAME = "CroMoTEX-Review"
INTERNAL = "_internal"

#: Modules that must never be in the installer.
EXCLUDES = [
    "torch", "torchvision", "torchaudio", "training", "matplotlib", "tkinter", "_tkinter",
    "PyQt5", "PyQt6", "PySide2", "shiboken2", "IPython", "jupyter", "notebook", "ipykernel",
    "pytest", "pytestqt", "hypothesis", "sklearn", "onnx", "onnxscript", "PyInstaller",
    "tests", "sympy", "numba", "cupy", "OpenGL", "pyqtgraph.opengl", "pyqtgraph.jupyter",
    "pyqtgraph.examples", "onnxruntime.quantization",
    "onnxruntime.transformers", "onnxruntime.tools",
    # optional extras of fsspec/pandas/requests the app never imports (checked with the
    # modules loaded after a full self-test): cloud storage, async HTTP, parsers. Not
    # `cryptography`: engine.signing verifies the bundle's Ed25519 signature with it.
    "botocore", "boto3", "s3fs", "aiobotocore", "aiohttp", "gcsfs", "adlfs",
    "pydantic", "pydantic_core", "yaml", "pyarrow", "openpyxl", "xlsxwriter", "sqlalchemy",
    "tables", "numexpr", "bottleneck", "jinja2", "lxml", "bs4", "fastparquet", "xarray",
    "PIL._avif", "PIL.AvifImagePlugin",  # AVIF (libavif, 5 MB): Pillow skips it when absent
    # `cromotex archive` (engine.archive, extra .[cluster]) is a command-line tool for servers,
    # never part of the desktop app: Dask and its dependencies stay out of the installer.
    "engine.archive", "dask", "distributed", "msgpack", "zict", "tblib", "partd", "locket",
    "zmq", "tornado", "docutils", "sphinx", "setuptools", "pkg_resources", "pip",
    # not `sqlite3`: the worklist's study store (engine.store) is an SQLite database
    "multidict", "yarl", "frozenlist", "aiosignal", "propcache", "aiohappyeyeballs",
    "PySide6.QtWebEngineCore", "PySide6.QtWebEngineWidgets", "PySide6.QtWebEngineQuick",
    "PySide6.QtWebChannel", "PySide6.QtWebSockets", "PySide6.Qt3DCore", "PySide6.QtQuick",
    "PySide6.QtQuickWidgets", "PySide6.QtQml", "PySide6.QtMultimedia", "PySide6.QtCharts",
    "PySide6.QtDataVisualization", "PySide6.QtPdf", "PySide6.QtPdfWidgets", "PySide6.QtNetwork", "PySide6.QtSql", "PySide6.QtTest",
    "PySide6.QtDesigner", "PySide6.QtUiTools", "PySide6.QtXml", "PySide6.QtDBus",
    "PySide6.QtConcurrent", "PySide6.QtHelp", "PySide6.QtSvgWidgets",
]

#: Modules found only at run time (entry points, dynamic imports).
HIDDEN_IMPORTS = [
    "pydicom.pixels.decoders.pylibjpeg", "pydicom.pixels.decoders.pillow",
    "pydicom.pixels.decoders.rle", "pydicom.pixels.decoders.base",
    "libjpeg", "openjpeg", "rle", "pylibjpeg", "pylibjpeg.utils",
    "PySide6.QtPrintSupport", "PySide6.QtSvg", "appdirs",
]

#: Distributions whose metadata (entry points: pylibjpeg finds its decoders through
#: them; pydicom's plugin lookup too) must travel with the code.
COPY_METADATA = ["pylibjpeg", "pylibjpeg-libjpeg", "pylibjpeg-openjpeg", "pylibjpeg-rle",
                 "pydicom", "wfdb", "onnxruntime", "numpy", "scipy", "pyqtgraph",
                 "PySide6-Essentials", "cromotex-review"]

#: Qt plugin folders the app needs (everything else under plugins/ is removed):
#: platforms (offscreen for the self-test, xcb/wayland on Linux desktops, windows,
#: cocoa), image formats (PNG/JPEG read by Qt), styles, platform themes, print support.
QT_PLUGIN_DIRS_KEEP = {"platforms", "platformthemes", "imageformats", "styles", "iconengines",
                       "printsupport", "xcbglintegrations", "wayland-shell-integration",
                       "wayland-decoration-client", "wayland-graphics-integration-client",
                       "generic"}

#: Qt platform plugins dropped on Linux (embedded/remote back ends a workstation never
#: uses); offscreen, minimal, xcb and wayland stay.
QT_PLATFORMS_DROP = ("eglfs", "linuxfb", "minimalegl", "vkkhrdisplay", "vnc")
#: Qt plugins dropped on Linux by file-name fragment: TUIO network touch input; the GTK3
#: platform theme (it would mix the bundled glib/cairo with the desktop's GTK; Qt's own
#: Fusion style is used instead); CUPS printing (the app prints through PDF export).
QT_PLUGINS_DROP = ("qtuiotouch", "libqgtk3", "cupsprintersupport")
#: Top-level system libraries (name prefixes) that PyInstaller collects for the dropped
#: plugins; each is removed only when no remaining binary of the build links it.
ORPHAN_LIB_PREFIXES = (
    "libcups", "libgnutls", "libp11-kit", "libunistring", "libidn2", "libtasn1", "libnettle",
    "libhogweed", "libgmp", "libavahi", "libcairo", "libpango", "libgdk", "libgtk", "libatk",
    "libepoxy", "libgio-2", "libgobject-2", "libglib-2", "libgmodule-2", "libharfbuzz",
    "libfribidi", "libthai", "libdatrie", "libpixman", "libXrender", "libXcomposite",
    "libXcursor", "libXdamage", "libXfixes", "libXi.", "libXinerama", "libXrandr", "libXext",
    "libgcrypt", "libgpg-error", "libsystemd", "liblz4", "libcap", "libsqlite3", "libgraphite2",
    "libmount", "libblkid", "libselinux", "libpcre2", "libwayland-cursor", "libwayland-egl",
    "libcloudproviders", "libtracker", "libcolord", "libjson-glib", "liblcms2", "libkrb5",
    "libk5crypto", "libgssapi", "libcom_err", "libkeyutils", "libbrotli", "libdbus-1")
#: Qt libraries removed when, after the plugin trim, no remaining binary links them.
QT_LIBS_MAYBE_UNUSED = ("libQt6Network", "libQt6EglFSDeviceIntegration", "libQt6EglFsKmsSupport")

#: Packages that must not be found in the build (directory names under _internal/).
FORBIDDEN = ("torch", "training", "matplotlib", "tkinter", "PyQt5", "PyQt6", "PySide2",
             "sklearn", "QtWebEngineCore", "dask")


def _version() -> str:
    sys.path.insert(0, str(ROOT))
    from engine import __version__
    return __version__


def dir_size(path: Path) -> int:
    """Bytes of every regular file under `path` (symlinks not followed)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def biggest(app_dir: Path, n: int = 10) -> list[tuple[str, int]]:
    """The `n` biggest top-level items of the app (folders under _internal/ counted whole)."""
    base = app_dir / INTERNAL if (app_dir / INTERNAL).is_dir() else app_dir
    items = []
    for p in base.iterdir():
        if p.is_symlink():
            continue
        size = dir_size(p) if p.is_dir() else p.stat().st_size
        items.append((p.relative_to(app_dir).as_posix(), size))
    for sub in ("PySide6", "PySide6/Qt/lib", "PySide6/Qt/plugins"):  # the usual heavyweights
        d = base / sub
        if d.is_dir():
            items += [(p.relative_to(app_dir).as_posix(), dir_size(p) if p.is_dir()
                       else p.stat().st_size) for p in d.iterdir() if not p.is_symlink()]
    items = [i for i in items if i[0] not in {f"{INTERNAL}/PySide6", f"{INTERNAL}/PySide6/Qt"}]
    return sorted(items, key=lambda i: -i[1])[:n]


def pyinstaller_args(dist: Path, work: Path) -> list[str]:
    """The PyInstaller command line for this platform (list of arguments)."""
    sep = os.pathsep
    args = [
        str(ROOT / "packaging" / "cromotex_review_entry.py"),
        "--name", NAME, "--onedir", "--noconfirm", "--clean", "--log-level", "WARN",
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


def trim(app_dir: Path) -> int:
    """Remove what the app never loads; return the bytes freed.

    Qt translations (the UI is English), Qt plugin folders outside
    `QT_PLUGIN_DIRS_KEEP`, QML, and `__pycache__` folders from resources/; on Linux
    also unused Qt platform plugins and the libraries only they linked, and debug
    symbols (`strip_symbols`).
    """
    freed = 0
    qt = next((p for p in (app_dir / INTERNAL / "PySide6" / "Qt",
                           app_dir / "Contents" / "Frameworks" / "PySide6" / "Qt") if p.is_dir()), None)
    doomed: list[Path] = []
    if qt is not None:
        doomed += [qt / "translations", qt / "qml"]
        plugins = qt / "plugins"
        if plugins.is_dir():
            doomed += [p for p in plugins.iterdir() if p.is_dir() and p.name not in QT_PLUGIN_DIRS_KEEP]
        if sys.platform.startswith("linux") and plugins.is_dir():
            doomed += [p for p in (plugins / "platforms").glob("*.so")
                       if any(p.name == f"libq{n}.so" for n in QT_PLATFORMS_DROP)]
            doomed += [p for p in plugins.rglob("*.so") if any(n in p.name for n in QT_PLUGINS_DROP)]
    doomed += list((app_dir / INTERNAL / "resources").rglob("__pycache__"))
    for p in doomed:
        if p.exists():
            freed += dir_size(p) if p.is_dir() else p.stat().st_size
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    if qt is not None and sys.platform.startswith("linux"):
        freed += _drop_unlinked_libs(app_dir, qt / "lib")
        freed += _drop_orphans(app_dir)
        freed += strip_symbols(app_dir)
    return freed


def _has_rpath(path: Path) -> bool:
    out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True).stdout
    return "(RPATH)" in out or "(RUNPATH)" in out


def strip_symbols(app_dir: Path) -> int:
    """Strip debug symbols (`strip --strip-unneeded`, Linux) from the binaries that are safe to
    strip; return the bytes freed.

    Safe here means: the Python interpreter library and its stdlib extension modules
    (built with symbols), and binaries without RPATH/RUNPATH. Wheel libraries rewritten
    by auditwheel/patchelf (`*.libs/` folders, hashed names, an RPATH) are left alone:
    strip corrupts them ("ELF load command address/offset not page-aligned").
    """
    if shutil.which("strip") is None or shutil.which("readelf") is None:
        return 0
    freed = 0
    for p in sorted(app_dir.rglob("*.so*")):
        if not p.is_file() or p.is_symlink() or any(part.endswith(".libs") for part in p.parts):
            continue
        interpreter = p.name.startswith("libpython") or p.parent.name == "lib-dynload"
        if not interpreter and (re.search(r"-[0-9a-f]{8}", p.name) or _has_rpath(p)):
            continue
        before = p.stat().st_size
        if subprocess.run(["strip", "--strip-unneeded", str(p)], capture_output=True).returncode == 0:
            freed += before - p.stat().st_size
    return freed


def _drop_orphans(app_dir: Path) -> int:
    """Remove top-level libraries matching `ORPHAN_LIB_PREFIXES` that no remaining binary
    links (repeated until nothing changes: a removed library may orphan another)."""
    if shutil.which("readelf") is None:
        return 0
    internal = app_dir / INTERNAL
    freed = 0
    while True:
        files = [p for p in app_dir.rglob("*") if p.is_file() and not p.is_symlink()
                 and (".so" in p.name or p.name == NAME)]
        needed: set[str] = set()
        for f in files:
            needed |= _needed(f)
        orphans = [p for p in internal.iterdir() if p.name.startswith(ORPHAN_LIB_PREFIXES)
                   and ".so" in p.name and p.name not in needed]
        if not orphans:
            return freed
        for p in orphans:
            freed += 0 if p.is_symlink() else p.stat().st_size
            p.unlink()


def _needed(path: Path) -> set[str]:
    """DT_NEEDED entries of an ELF file (`readelf -d`); empty if it is not ELF."""
    out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True).stdout
    return {line.split("[", 1)[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line}


def _drop_unlinked_libs(app_dir: Path, qt_lib: Path) -> int:
    """Remove `QT_LIBS_MAYBE_UNUSED` that no other binary of the build links (Linux,
    needs binutils' readelf; skipped without it), with their top-level symlinks."""
    if shutil.which("readelf") is None:
        return 0
    binaries = [p for p in app_dir.rglob("*") if p.is_file() and not p.is_symlink()
                and (".so" in p.name or p.name == NAME)]
    candidates = {p for p in qt_lib.glob("*.so*") if p.name.startswith(QT_LIBS_MAYBE_UNUSED)}
    needed: set[str] = set()
    for b in binaries:
        if b not in candidates:
            needed |= _needed(b)
    kept: set[Path] = set()
    while True:  # a kept candidate keeps what it links, too
        more = {c for c in candidates - kept if c.name in needed}
        if not more:
            break
        kept |= more
        for c in more:
            needed |= _needed(c)
    freed = 0
    for lib in sorted(candidates - kept):
        freed += lib.stat().st_size
        lib.unlink()
        link = app_dir / INTERNAL / lib.name
        if link.is_symlink():
            link.unlink()
    return freed


def check_contents(app_dir: Path) -> list[str]:
    """Problems with the build: forbidden packages present, Qt platform plugins missing."""
    problems = []
    internal = app_dir / INTERNAL
    for name in FORBIDDEN:
        hits = [p for p in internal.rglob(name) if p.is_dir()]
        if hits:
            problems.append(f"excluded package {name} leaked into the build: {hits[0]}")
    platforms = next(iter(internal.rglob("plugins/platforms")), None)
    wanted = {"linux": ("offscreen", "xcb"), "win32": ("offscreen", "windows"),
              "darwin": ("offscreen", "cocoa")}.get(sys.platform, ("offscreen",))
    found = sorted(p.name for p in platforms.iterdir()) if platforms else []
    for w in wanted:
        if not any(w in f for f in found):
            problems.append(f"Qt platform plugin {w!r} missing (platforms/: {found})")
    if not (internal / "resources" / "icons").is_dir():
        problems.append("resources/icons missing from the build")
    return problems


def write_desktop_file(app_dir: Path) -> Path:
    """A freedesktop launcher beside the executable (Linux), pointing at the bundled icon."""
    path = app_dir / "cromotex-review.desktop"
    path.write_text("[Desktop Entry]\nType=Application\nName=CroMoTEX Review\n"
                    "Comment=12-lead ECG review with CroMoTEX AI findings (not for diagnosis)\n"
                    f"Exec={NAME} %f\nIcon=cromotex\nCategories=Science;MedicalSoftware;\n"
                    "Terminal=false\n")
    return path


def build(dist: Path, work: Path) -> tuple[Path, dict]:
    """Run PyInstaller and trim; return (the one-folder app directory, build info)."""
    import PyInstaller.__main__

    t0 = time.perf_counter()
    PyInstaller.__main__.run(pyinstaller_args(dist, work))
    seconds = time.perf_counter() - t0
    app_dir = dist / NAME
    before = dir_size(app_dir)
    freed = trim(app_dir)
    if (dist / f"{NAME}.app").is_dir():  # macOS --windowed: the .app holds its own copy
        trim(dist / f"{NAME}.app")
    if sys.platform.startswith("linux"):
        write_desktop_file(app_dir)
    size = dir_size(app_dir)
    info = {"app_dir": str(app_dir), "build_seconds": round(seconds, 1),
            "size_bytes_before_trim": before, "size_bytes": size, "trimmed_bytes": freed,
            "biggest": biggest(app_dir), "platform": sys.platform, "machine": platform.machine(),
            "python": platform.python_version(), "version": _version()}
    print(f"built {app_dir} in {seconds:.0f} s; unpacked size {size / 2**20:.0f} MiB "
          f"(trimmed {freed / 2**20:.0f} MiB)")
    print("biggest items:")
    for name, n in info["biggest"]:
        print(f"  {n / 2**20:8.1f} MiB  {name}")
    problems = check_contents(app_dir)
    if problems:
        raise SystemExit("build check failed:\n  " + "\n  ".join(problems))
    return app_dir, info


def make_tarball(app_dir: Path) -> Path:
    """Wrap the one-folder build as dist/<name>-<version>-linux-<arch>.tar.gz."""
    out = app_dir.parent / f"{NAME}-{_version()}-linux-{platform.machine()}.tar.gz"
    t0 = time.perf_counter()
    with tarfile.open(out, "w:gz", compresslevel=6) as tar:
        tar.add(app_dir, arcname=NAME)
    print(f"wrote {out} ({out.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t0:.0f} s")
    return out


def make_appdir(app_dir: Path) -> Path:
    """dist/CroMoTEX-Review.AppDir (AppRun, .desktop, icon, the app in usr/lib): the input of
    `appimagetool` (not available here: neither on PyPI nor in Debian)."""
    appdir = app_dir.parent / f"{NAME}.AppDir"
    if appdir.exists():
        shutil.rmtree(appdir)
    shutil.copytree(app_dir, appdir / "usr" / "lib" / NAME, symlinks=True)
    shutil.copy(ROOT / "resources" / "icons" / "cromotex.png", appdir / "cromotex.png")
    shutil.copy(app_dir / "cromotex-review.desktop", appdir / "cromotex-review.desktop")
    run = appdir / "AppRun"
    run.write_text('#!/bin/sh\nHERE="$(dirname "$(readlink -f "$0")")"\n'
                   f'exec "$HERE/usr/lib/{NAME}/{NAME}" "$@"\n')
    run.chmod(0o755)
    print(f"wrote {appdir} (run `appimagetool {appdir}` where appimagetool is available)")
    return appdir


def check_shipped_bundle(allow_missing: bool) -> dict:
    """Verify resources/models/ (engine.bundle.load_bundle) before freezing it.

    Raises:
        SystemExit: no bundle (unless `allow_missing`), or a bundle that fails verification.
    """
    models = ROOT / "resources" / "models"
    if not (models / "manifest.json").is_file():
        if allow_missing:
            print(f"WARNING: {models} holds no model bundle; the installer will ship without "
                  "models (the app shows no AI findings until one is chosen in settings)")
            return {"shipped_bundle": None}
        raise SystemExit(f"{models} holds no model bundle (manifest.json): build or copy the "
                         "bundle first, or pass --allow-missing-bundle for a test build")
    sys.path.insert(0, str(ROOT))
    from engine.bundle import load_bundle
    from engine.errors import BundleError
    try:
        bundle = load_bundle(models)
    except BundleError as exc:
        raise SystemExit(f"the shipped bundle fails verification: {exc}") from None
    print(f"shipping model bundle {bundle.bundle_id} (data={bundle.data}, demo={bundle.demo})")
    return {"shipped_bundle": bundle.bundle_id, "bundle_bytes": dir_size(models)}


def frozen_executable(app_dir: Path) -> Path:
    """The app's executable inside the one-folder build."""
    if sys.platform == "win32":
        return app_dir / f"{NAME}.exe"
    return app_dir / NAME


def run_self_test(app_dir: Path, report: Path, models: Path | None = None,
                  demo_dir: Path | None = None, timeout: float = 600) -> dict:
    """Run the frozen app's --self-test offscreen, from `/` with no PYTHONPATH (so it cannot
    import the source tree); return its JSON report plus `_exit_code` and `_seconds`."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["QT_QPA_PLATFORM"] = "offscreen"
    cmd = [str(frozen_executable(app_dir)), "--self-test", "--report", str(report)]
    if models:
        cmd += ["--models", str(models)]
    if demo_dir:
        cmd += ["--demo-dir", str(demo_dir)]
    report.unlink(missing_ok=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=Path(app_dir.anchor))
    elapsed = time.perf_counter() - t0
    result = json.loads(report.read_text()) if report.exists() else {}
    print(proc.stdout.strip())
    print(f"frozen self-test exit {proc.returncode} in {elapsed:.1f} s; report {report}")
    if proc.returncode != 0:
        print(proc.stderr[-4000:])
    result["_exit_code"] = proc.returncode
    result["_seconds"] = round(elapsed, 2)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="output folder (default dist/)")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "pyinstaller", help="PyInstaller work folder")
    parser.add_argument("--no-archive", action="store_true", help="skip the Linux tarball")
    parser.add_argument("--appdir", action="store_true", help="also write an AppDir (Linux) for appimagetool")
    parser.add_argument("--self-test", action="store_true", help="run the frozen app's --self-test after building")
    parser.add_argument("--models", type=Path, help="self-test: bundle folder (default: the shipped one)")
    parser.add_argument("--demo-dir", type=Path, help="self-test: demo cases folder (default: the shipped one)")
    parser.add_argument("--allow-missing-bundle", action="store_true",
                        help="build even when resources/models/ holds no bundle (test builds)")
    args = parser.parse_args(argv)
    dist = args.dist.resolve()
    shipped = check_shipped_bundle(args.allow_missing_bundle)
    app_dir, info = build(dist, args.work.resolve())
    info.update(shipped)
    if sys.platform.startswith("linux") and not args.no_archive:
        tarball = make_tarball(app_dir)
        info["tarball"], info["tarball_bytes"] = str(tarball), tarball.stat().st_size
    if sys.platform.startswith("linux") and args.appdir:
        make_appdir(app_dir)
    code = 0
    if args.self_test:
        result = run_self_test(app_dir, dist / "self-test.json", args.models, args.demo_dir)
        code = int(result.get("_exit_code", 1))
        info["self_test"] = {"exit_code": code, "seconds": result.get("_seconds"),
                             "checks": {c["name"]: c["ok"] for c in result.get("checks", [])}}
    (dist / "build-info.json").write_text(json.dumps(info, indent=1))
    return code


if __name__ == "__main__":
    sys.exit(main())
