"""The bundle forgeries of issue 15 (item 6), made on a copy of a real bundle.

Each forgery edits the copy and then re-computes the sha256 of every file in
manifest.json (`rehash_unsigned`), as a forger would, so the bundle is consistent
with itself and only the signature can tell. Used by tests/engine/test_bundle_signing.py
and bench/bundle_forgeries.py.

`shallow_copy` hard-links the (large) unchanged files; every forgery therefore replaces a
file (unlink, then write) instead of writing into it, so the original is never touched.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
from onnx import numpy_helper

OWN_COPY = ("manifest.json", "manifest.json.sig")


def shallow_copy(src: Path, dst: Path) -> Path:
    """Copy bundle `src` to `dst`: manifest and signature copied, other files hard-linked
    (copied when linking is not possible)."""
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if not f.is_file():
            continue
        if f.name in OWN_COPY:
            shutil.copyfile(f, dst / f.name)
            continue
        try:
            os.link(f, dst / f.name)
        except OSError:
            shutil.copyfile(f, dst / f.name)
    return dst


def replace_bytes(path: Path, data: bytes) -> None:
    """Write `data` as a new file at `path` (never through a hard link)."""
    path.unlink(missing_ok=True)
    path.write_bytes(data)


def _manifest(d: Path) -> dict:
    return json.loads((d / "manifest.json").read_text(encoding="utf-8"))


def _write_manifest(d: Path, m: dict) -> None:
    replace_bytes(d / "manifest.json", (json.dumps(m, indent=2) + "\n").encode("utf-8"))


def rehash_unsigned(d: Path) -> None:
    """Re-compute every listed file's sha256 in manifest.json; the signature file is left
    as it was (now over other bytes)."""
    m = _manifest(d)
    m["files"] = {n: hashlib.sha256((d / n).read_bytes()).hexdigest() for n in m["files"]}
    _write_manifest(d, m)


def _ecg_files(m: dict, p: str) -> list[str]:
    e = m["pathologies"][p]["ecg"]
    return [e["file"]] + ([e["int8_file"]] if e.get("int8_file") else [])


def _save_model(model: onnx.ModelProto, path: Path) -> None:
    replace_bytes(path, model.SerializeToString())


def _set_meta(model: onnx.ModelProto, **values: str) -> None:
    for prop in model.metadata_props:
        key = prop.key.removeprefix("cromotex.")
        if key in values:
            prop.value = values[key]


def flip_weights(d: Path, p: str = "edema") -> str:
    """Negate the last weight matrix of pathology `p`'s ECG model(s): the probability flips."""
    for name in _ecg_files(_manifest(d), p):
        model = onnx.load_from_string((d / name).read_bytes())
        inits = [i for i in model.graph.initializer if "weight" in i.name and
                 i.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.INT8)
                 and np.prod(i.dims) > 1]
        last = inits[-1]
        arr = numpy_helper.to_array(last)
        flipped = (-arr.astype(np.int16)).clip(-128, 127).astype(np.int8) if arr.dtype == np.int8 else -arr
        last.CopyFrom(numpy_helper.from_array(flipped, last.name))
        _save_model(model, d / name)
    return f"weights of {p}'s ECG model negated"


def ood_cutoffs_huge(d: Path) -> str:
    m = _manifest(d)
    for p in m["pathologies"]:
        m["pathologies"][p]["ecg"]["ood_cutoff"] = 1e9
    _write_manifest(d, m)
    return "every OOD cut-off 1e9 (nothing is ever out of distribution)"


def disclaimer_changed(d: Path) -> str:
    m = _manifest(d)
    m["disclaimer"] = "Clinically validated; suitable for diagnosis"
    _write_manifest(d, m)
    return "disclaimer 'Clinically validated; suitable for diagnosis'"


def threshold_changed(d: Path, p: str = "edema", value: float = 0.01) -> str:
    """The threshold changed in the manifest and in the ONNX metadata alike (a borderline band
    that no longer holds it dropped, as a careful forger would)."""
    m = _manifest(d)
    m["pathologies"][p]["ecg"]["threshold"] = value
    m["pathologies"][p]["ecg"].pop("borderline", None)
    for name in _ecg_files(m, p):
        model = onnx.load_from_string((d / name).read_bytes())
        _set_meta(model, threshold=json.dumps([value]))
        _save_model(model, d / name)
    _write_manifest(d, m)
    return f"{p} threshold {value} in manifest and ONNX metadata"


def model_swapped(d: Path, p: str = "edema", other: str = "cardiomegaly") -> str:
    """`other`'s ECG model put in `p`'s place, its metadata forged to say `p`."""
    m = _manifest(d)
    thr = m["pathologies"][p]["ecg"]["threshold"]
    for mine, theirs in zip(_ecg_files(m, p), _ecg_files(m, other)):
        model = onnx.load_from_string((d / theirs).read_bytes())
        _set_meta(model, pathologies=json.dumps([p]), threshold=json.dumps([thr]))
        _save_model(model, d / mine)
    return f"{other}'s ECG model in {p}'s place, metadata forged"


def stats_swapped(d: Path, p: str = "edema", other: str = "cardiomegaly") -> str:
    m = _manifest(d)
    a = d / m["pathologies"][p]["ecg"]["embedding_stats"]
    b = d / m["pathologies"][other]["ecg"]["embedding_stats"]
    da, db = a.read_bytes(), b.read_bytes()
    replace_bytes(a, db)
    replace_bytes(b, da)
    return f"embedding statistics of {p} and {other} swapped"


def stats_replaced(d: Path, p: str = "edema") -> str:
    """`p`'s embedding statistics replaced by a wide distribution (precision / 1e6)."""
    m = _manifest(d)
    path = d / m["pathologies"][p]["ecg"]["embedding_stats"]
    with np.load(io.BytesIO(path.read_bytes())) as npz:
        mean, precision = npz["mean"], npz["precision"]
    buf = io.BytesIO()
    np.savez(buf, mean=mean, precision=precision / 1e6)
    replace_bytes(path, buf.getvalue())
    return f"{p}'s embedding statistics widened 1000x"


#: name -> forgery(bundle_dir) -> description; the six of the issue, then one more.
FORGERIES: dict[str, Callable[[Path], str]] = {
    "flipped_weights": flip_weights,
    "ood_cutoff_1e9": ood_cutoffs_huge,
    "disclaimer": disclaimer_changed,
    "threshold_manifest_and_onnx": threshold_changed,
    "model_swapped": model_swapped,
    "stats_swapped": stats_swapped,
    "stats_replaced": stats_replaced,
}
