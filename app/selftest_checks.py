"""The checks of `cromotex-review --self-test` (see `app.selftest` for the runner and report).

Each `check_*` function takes a `Context` (what earlier checks found) and the `Check`
it fills with details; it raises on failure (`SelfTestFailure` when an expectation
does not hold, the library's own error otherwise). Imports happen inside the checks,
engine and onnxruntime before Qt.
"""

from __future__ import annotations

import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Seconds the window check waits for the ECG to be drawn and scored.
WINDOW_TIMEOUT_S = 60.0


@dataclass
class Check:
    """One self-test step. `error` is a message (with the exception type) when not ok."""

    name: str
    ok: bool = False
    error: str | None = None
    duration_s: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)


class SelfTestFailure(Exception):
    """A check's expectation did not hold (the message says which and by how much)."""


@dataclass
class Context:
    """What the checks share: the inputs, and the bundle / predictor once loaded."""

    models_dir: Path | None
    demo_dir: Path
    predictor: Any = None
    bundle: Any = None
    #: Headless ECG probabilities (pathology -> probability) by file, each ECG scored once.
    ecg_probabilities: dict[Path, dict[str, float]] = field(default_factory=dict)


def check_imports(check: Check) -> None:
    """engine, numpy, onnxruntime, pydicom, cryptography, then PySide6 and pyqtgraph; records
    versions."""
    import cryptography
    import numpy
    import onnxruntime
    import pydicom
    import engine
    import engine.inference  # noqa: F401  (engine and onnxruntime before Qt)
    import engine.io  # noqa: F401
    from app.qt import QtCore, pg
    check.details = {"engine": engine.__version__, "numpy": numpy.__version__,
                     "onnxruntime": onnxruntime.__version__, "cryptography": cryptography.__version__,
                     "onnxruntime_providers": onnxruntime.get_available_providers(),
                     "pydicom": pydicom.__version__, "qt": QtCore.qVersion(),
                     "pyqtgraph": pg.__version__, "python": platform.python_version()}


def check_resources(ctx: Context, check: Check) -> None:
    """`resources/` and the demo folder exist; records where (frozen or source) and what."""
    from engine.resources import resource_root
    root = resource_root()
    check.details = {"frozen": bool(getattr(sys, "frozen", False)), "resource_root": str(root),
                     "demo_dir": str(ctx.demo_dir),
                     "demo_files": sorted(p.name for p in ctx.demo_dir.iterdir())
                     if ctx.demo_dir.is_dir() else []}
    if not root.is_dir():
        raise SelfTestFailure(f"resources folder {root} is missing: the installation is incomplete")
    if not ctx.demo_dir.is_dir():
        raise SelfTestFailure(f"demo folder {ctx.demo_dir} is missing")


def _encapsulated(pixels: Any, uid: Any, fmt: str, **save_kw: Any) -> Any:
    """A minimal DICOM dataset holding `pixels` (uint8 `[H, W]`) compressed by Pillow."""
    import io
    from PIL import Image
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt, **save_kw)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = uid
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = encapsulate([buf.getvalue()])
    ds["PixelData"].VR = "OB"
    return ds


def check_dicom_decoders(ctx: Context, check: Check) -> None:
    """pydicom finds pylibjpeg for JPEG, JPEG 2000, RLE; Pillow-made JPEG / JPEG 2000
    images (uint8 `[32, 32]`) decode through it; compressed demo DICOMs read."""
    import numpy as np
    import pydicom
    from pydicom.pixels import get_decoder, pixel_array
    from pydicom.uid import JPEG2000Lossless, JPEGBaseline8Bit, RLELossless
    plugins = {}
    for uid in (JPEGBaseline8Bit, JPEG2000Lossless, RLELossless):
        plugins[uid.name] = list(get_decoder(uid).available_plugins)
    check.details["plugins"] = plugins
    missing = [name for name, found in plugins.items() if "pylibjpeg" not in found]
    if missing:
        raise SelfTestFailure(f"pydicom finds no pylibjpeg decoder for {', '.join(missing)}: the "
                              "pylibjpeg plugins (or their entry-point metadata) are not installed")
    ramp = (np.add.outer(np.arange(32), np.arange(32)) * 4).astype(np.uint8)  # [32, 32], 0..248
    for uid, fmt, kw in ((JPEGBaseline8Bit, "JPEG", {"quality": 95}),
                         (JPEG2000Lossless, "JPEG2000", {"irreversible": False})):
        decoded = pixel_array(_encapsulated(ramp, uid, fmt, **kw), decoding_plugin="pylibjpeg")
        err = int(np.abs(decoded.astype(np.int32) - ramp).max())
        check.details[f"max_error_{fmt}"] = err
        if decoded.shape != ramp.shape or err > 2:
            raise SelfTestFailure(f"pylibjpeg decoded a {fmt} image to shape {decoded.shape} with "
                                  f"max error {err} (expected {ramp.shape}, <= 2)")
    demo_compressed = []
    if ctx.demo_dir.is_dir():
        from engine.io import read_cxr
        for path in sorted(ctx.demo_dir.rglob("*.dcm")):
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            syntax = ds.file_meta.get("TransferSyntaxUID")
            if syntax is None or not syntax.is_compressed or "waveform" in str(
                    ds.get("SOPClassUID", "")).lower():
                continue
            image = read_cxr(path)
            demo_compressed.append({"file": path.name, "shape": list(image.pixels.shape),
                                    "transfer_syntax": syntax.name})
    check.details["demo_compressed_dicoms"] = demo_compressed


def check_bundle(ctx: Context, check: Check) -> None:
    """`engine.bundle.load_bundle` on the bundle (signature, hashes, schema); it must carry
    reference outputs."""
    from engine.bundle import load_bundle
    ctx.bundle = load_bundle(ctx.models_dir)
    ref = ctx.bundle.reference
    check.details = {**ctx.bundle.describe(), "directory": str(ctx.bundle.directory),
                     "signed_by": ctx.bundle.signer,
                     "reference_cases": len(ref["cases"]) if ref else 0}
    if not ref or not ref["cases"]:
        raise SelfTestFailure(f"the bundle {ctx.bundle.directory} has no reference outputs "
                              "(reference_outputs.json) to check inference against")


def resolve_case_file(rel: str, demo_dir: Path) -> Path:
    """The file a reference case names (docs/bundle.md: e.g. "resources/demo/x.hea").

    Looked up, in order: as an absolute path; below `demo_dir` at the path it has
    below `resources/demo/`; in `demo_dir` by file name; relative to the folder
    holding `resources/` (source checkout or frozen app); relative to the working
    directory; anywhere under `demo_dir` by file name.

    Raises:
        FileNotFoundError: none exists.
    """
    from engine.resources import resource_root
    p = Path(rel)
    if p.is_absolute():
        candidates = [p]
    else:
        below_demo = Path(*p.parts[2:]) if p.parts[:2] == ("resources", "demo") else None
        candidates = ([demo_dir / below_demo] if below_demo else []) + [
            demo_dir / p.name, resource_root().parent / p, Path.cwd() / p]
    for c in candidates:
        if c.is_file():
            return c
    if demo_dir.is_dir():  # a demo folder holding the cases in sub-folders
        found = sorted(demo_dir.rglob(p.name))
        if found:
            return found[0]
    raise FileNotFoundError(f"reference case file {rel!r} not found (looked in "
                            f"{', '.join(str(c.parent) for c in candidates)})")


def _compare(found: dict[str, float], expected: dict[str, float], atol: float,
             what: str) -> dict[str, float]:
    diffs = {}
    for p, want in expected.items():
        if p not in found:
            raise SelfTestFailure(f"{what}: no prediction for {p}")
        diffs[p] = abs(float(found[p]) - float(want))
    bad = {p: d for p, d in diffs.items() if not d <= atol}
    if bad:
        raise SelfTestFailure(f"{what}: probabilities differ from the reference outputs by "
                              + ", ".join(f"{p} {d:.2e}" for p, d in bad.items())
                              + f" (tolerance {atol:g})")
    return diffs


def _cases(ctx: Context, key: str) -> list[dict]:
    return [c for c in ctx.bundle.reference["cases"] if c.get(key)]


def _predictor(ctx: Context) -> Any:
    if ctx.predictor is None:
        from engine.inference import Predictor
        ctx.predictor = Predictor(ctx.bundle)
    return ctx.predictor


def _probabilities(predictions: dict) -> dict[str, float]:
    """pathology -> probability of a `Predictor` result (pathology -> Prediction)."""
    return {p: pred.probability for p, pred in predictions.items()}


def _ecg_probabilities(ctx: Context, path: Path) -> dict[str, float]:
    """Headless probabilities of the ECG at `path`, scored once per self-test (kept in `ctx`)."""
    from engine.io import read_ecg
    key = path.resolve()
    if key not in ctx.ecg_probabilities:
        ctx.ecg_probabilities[key] = _probabilities(_predictor(ctx).predict_ecg(read_ecg(path)))
    return ctx.ecg_probabilities[key]


def check_inference(ctx: Context, check: Check, modality: str) -> None:
    """Score every reference case of `modality` ("ecg" or "cxr"); compare within atol."""
    from engine.io import read_cxr
    key, probs_key = (("ecg", "probabilities") if modality == "ecg"
                      else ("cxr", "cxr_probabilities"))
    cases = _cases(ctx, key)
    atol = float(ctx.bundle.reference.get("atol", 1e-5))
    if not cases:
        raise SelfTestFailure(f"reference_outputs.json has no {key.upper()} case")
    predictor = _predictor(ctx)
    results = []
    for case in cases:
        path = resolve_case_file(case[key], ctx.demo_dir)
        found = (_ecg_probabilities(ctx, path) if modality == "ecg"
                 else _probabilities(predictor.predict_cxr(read_cxr(path))))
        diffs = _compare(found, case[probs_key], atol, path.name)
        results.append({"file": path.name, "probabilities": found,
                        "max_abs_diff": max(diffs.values()) if diffs else 0.0})
    check.details = {"atol": atol, "cases": results, "precision": predictor.precision}


def _window_ecg(ctx: Context) -> Path:
    if ctx.bundle is not None and ctx.bundle.reference:
        for case in _cases(ctx, "ecg"):
            return resolve_case_file(case["ecg"], ctx.demo_dir)
    hea = sorted(ctx.demo_dir.glob("*.hea")) if ctx.demo_dir.is_dir() else []
    if not hea:
        raise SelfTestFailure(f"no demo ECG to open in {ctx.demo_dir}")
    return hea[0]


def check_window(ctx: Context, check: Check) -> None:
    """Main window offscreen on the first reference ECG: 12 leads plotted with the record's
    samples, the headless probabilities, a PDF export."""
    import numpy as np
    from app.qt import QtCore, QtWidgets, quiet_offscreen_noise
    from app.controller import Controller
    from app.main_window import MainWindow
    from app.settings import Settings
    from engine.constants import LEADS
    ecg = _window_ecg(ctx)
    quiet_offscreen_noise()
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    check.details["qt_platform"] = app.platformName()
    errors: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="cromotex-selftest-") as tmp:
        window = MainWindow()
        models = str(ctx.bundle.directory) if ctx.bundle is not None else (
            str(ctx.models_dir) if ctx.models_dir else None)
        # fresh settings in a temporary folder: the user's own settings stay untouched
        ctl = Controller(window, settings=Settings(), models_dir=models,
                         error_presenter=lambda t, m: errors.append((t, m)),
                         settings_dir=Path(tmp))
        loop = QtCore.QEventLoop()
        state = {"ready": False}

        def on_ready() -> None:
            state["ready"] = True
            loop.quit()

        ctl.ready.connect(on_ready)
        ctl.error_shown.connect(lambda *_: loop.quit())
        QtCore.QTimer.singleShot(int(WINDOW_TIMEOUT_S * 1000), loop.quit)
        t0 = time.perf_counter()
        window.resize(1400, 860)
        window.show()
        ctl.load_models()
        ctl.open_ecg(ecg)
        loop.exec()
        check.details["seconds_to_ready"] = round(time.perf_counter() - t0, 3)
        try:
            if errors:
                raise SelfTestFailure(f"the window showed an error: {errors[0][0]}: {errors[0][1]}")
            if not state["ready"]:
                raise SelfTestFailure(f"the ECG {ecg.name} was not drawn and scored within "
                                      f"{WINDOW_TIMEOUT_S:.0f} s")
            app.processEvents()
            window.ecg_view.grab()  # a real paint of the ECG paper
            record = ctl.record
            traces = window.ecg_view.traces()
            drawn = set()
            for panel, trace in traces:
                x, y = trace.getData()
                t_orig, y_orig = trace.original()
                if x is None or len(x) < 2 or not np.isfinite(y).all():
                    raise SelfTestFailure(f"lead {panel.lead}: the plotted curve holds "
                                          f"{0 if x is None else len(x)} points or non-finite values")
                i0 = int(round(t_orig[0] * record.fs))
                want = record.lead(panel.lead)[i0:i0 + len(y_orig)]
                if panel.invert:
                    want = -want
                if not np.allclose(y_orig, want, atol=1e-6):
                    raise SelfTestFailure(f"lead {panel.lead}: plotted samples differ from the record")
                drawn.add(panel.lead)
            check.details.update({"ecg": ecg.name, "traces": len(traces),
                                  "leads_drawn": [lead for lead in LEADS if lead in drawn]})
            missing = [lead for lead in LEADS if lead not in drawn]
            if missing:
                raise SelfTestFailure(f"leads not drawn: {', '.join(missing)}")
            if ctl.predictor is None:
                raise SelfTestFailure(f"the window could not load the models: {ctl.models_error}")
            window_probs = _probabilities(ctl.ecg_predictions)
            check.details["probabilities"] = window_probs
            if not window_probs:
                raise SelfTestFailure("the window shows no ECG predictions")
            if ctx.bundle is not None:
                _compare(window_probs, _ecg_probabilities(ctx, ecg), 1e-6, "window vs headless")
            pdf = ctl.export_pdf(Path(tmp) / "review.pdf")  # QPdfWriter, fonts, paper
            head = pdf.read_bytes()[:5]
            check.details["pdf_bytes"] = pdf.stat().st_size
            if head != b"%PDF-" or pdf.stat().st_size < 10_000:
                raise SelfTestFailure(f"the PDF export wrote {pdf.stat().st_size} bytes "
                                      f"starting {head!r}, not a review PDF")
        finally:
            ctl.pool.waitForDone(10000)
            window.close()
            window.deleteLater()
            app.processEvents()
