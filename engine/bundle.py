"""Load and verify a CroMoTEX model bundle (format: docs/bundle.md).

`load_bundle(directory)` reads `manifest.json`, checks its Ed25519 signature
(`manifest.json.sig`, `engine.signing`) against the trust list (`engine.trust`:
the project key shipped in the program plus the site's keys), its schema, the
sha256 of every file it lists, the preprocessing constants against
`engine.constants.preprocessing_constants()`, the embedding statistics, the ECG models'
optional calibration (`temperature`, `threshold_calibrated`: `engine.calibration`; an
inconsistent one raises `CalibrationError`, a `BundleError`) and the reference outputs,
and returns a `Bundle`: plain data, no inference sessions.

`check_session(bundle, spec, session)` checks an onnxruntime session opened on
one of the bundle's ONNX files: input/output names, shapes and element types,
and the `cromotex.*` metadata against the manifest. `engine.inference.Predictor`
calls it for every session it opens, so a bundle is fully verified before a
single prediction is made. `read_verified(bundle, name)` gives a file's bytes
checked again against the signed sha256, so what a session or the OOD check
uses is what was verified (no swap between the check and the use).

Every problem raises `BundleError` naming the bundle directory, the file and
what is wrong.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from engine.calibration import (THRESHOLD_TOLERANCE, calibrate_probability, calibrated_threshold,
                                temperature_problem)
from engine.constants import CXR_SIZE, ECG_SAMPLES, LEADS, PATHOLOGIES, preprocessing_constants
from engine.errors import BundleError, CalibrationError
from engine.resources import default_models_dir
from engine.signing import read_signature, signature_path, verify
from engine.trust import TRUST_FOLDER, TrustList, config_dir, load_trust

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
MODEL_CARD = "MODEL_CARD.md"
SIGNATURE = MANIFEST + ".sig"
#: A manifest is ~30 kB; one larger than this is not read.
MAX_MANIFEST_BYTES = 16 << 20
DATA_KINDS = ("phantom", "mimic")
#: Width of the ECG embedding (`embedding` output of every ECG model).
ECG_EMBEDDING_DIM = 256
#: Width of the CXR teacher embedding.
CXR_EMBEDDING_DIM = 1024
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class EmbeddingStats:
    """Training statistics of one model's embedding, for the OOD check.

    Attributes:
        mean: float64 `[D]`.
        precision: float64 `[D, D]`, inverse covariance (symmetric).
        cutoff: Mahalanobis distance above which an input is out of distribution.
    """

    mean: np.ndarray
    precision: np.ndarray
    cutoff: float

    def distance(self, embedding: np.ndarray) -> np.ndarray:
        """Mahalanobis distance(s) of float `[D]` or `[N, D]` embedding(s); float64 `[]` or `[N]`.

        `sqrt(d . (precision d))` with `d = embedding - mean`: two 2-operand einsums,
        3x faster than one 3-operand einsum, and no BLAS call (no BLAS threads competing
        with onnxruntime's); equal to `d @ precision @ d` within float64 round-off.
        """
        d = np.asarray(embedding, dtype=np.float64) - self.mean
        sq = np.einsum("...i,...i->...", np.einsum("ij,...j->...i", self.precision, d), d)
        return np.sqrt(np.maximum(sq, 0.0))


@dataclass(frozen=True)
class ModelSpec:
    """One pathology's model in one modality.

    Attributes:
        pathology: one of `PATHOLOGIES`.
        modality: "ecg" or "cxr".
        file: ONNX file name, relative to the bundle directory (fp32).
        int8_file: optional dynamic-int8 copy (ECG only).
        threshold: operating threshold on the raw probability `sigmoid(logit)`, in (0, 1)
            (the manifest's `threshold`, also in the ONNX metadata).
        output_index: column of the `logit` output that belongs to `pathology`.
        stats: embedding statistics for the OOD check, if the bundle has them.
        metrics: the manifest's metrics block, as written.
        band: (low, high) probabilities around `shown_threshold` within which a call is
            "borderline" (manifest `borderline.low` / `.high`), if the bundle has them; in the
            units of the shown probability (calibrated when `temperature` is set).
        temperature: the temperature T of the model's calibration (ECG only; manifest
            `temperature`), or None for an uncalibrated model (probabilities as `sigmoid(logit)`).
        threshold_calibrated: the manifest's threshold on `sigmoid(logit / T)`, or None.
        calibration: the manifest's `calibration` block (ECE before / after, rule), as written.
    """

    pathology: str
    modality: str
    file: str
    threshold: float
    output_index: int = 0
    int8_file: str | None = None
    stats: EmbeddingStats | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    band: tuple[float, float] | None = None
    temperature: float | None = None
    threshold_calibrated: float | None = None
    calibration: dict[str, Any] = field(default_factory=dict)

    @property
    def calibrated(self) -> bool:
        """True when the shown probabilities are temperature-scaled (`engine.calibration`)."""
        return self.temperature is not None

    @property
    def shown_threshold(self) -> float:
        """The threshold on the probability the engine shows: `threshold_calibrated` for a
        calibrated model, else `threshold`."""
        return self.threshold_calibrated if self.threshold_calibrated is not None else self.threshold


@dataclass(frozen=True)
class Bundle:
    """A verified model bundle (no sessions: see `engine.inference.Predictor`).

    Attributes:
        directory: the bundle directory (absolute).
        manifest: `manifest.json` as parsed.
        bundle_id, data, demo, disclaimer: from the manifest; `data` is "phantom" or "mimic".
        ecg: pathology -> ECG model spec, for every pathology in `PATHOLOGIES`.
        cxr: pathology -> CXR teacher spec, for the pathologies the bundle has a teacher for.
        reference: `reference_outputs.json` as parsed, or None if the bundle has none.
        signer: "label (key id)" of the trusted key whose signature the manifest carries.
    """

    directory: Path
    manifest: dict[str, Any]
    bundle_id: str
    data: str
    demo: bool
    disclaimer: str
    ecg: dict[str, ModelSpec]
    cxr: dict[str, ModelSpec]
    reference: dict[str, Any] | None
    signer: str = ""

    def path(self, name: str) -> Path:
        """Absolute path of a bundle file given by its manifest-relative name."""
        return self.directory / name

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary for outputs: bundle id, data provenance, demo flag, disclaimer."""
        return {"bundle_id": self.bundle_id, "data": self.data, "demo": self.demo,
                "disclaimer": self.disclaimer if self.demo else None}

    def calibration(self) -> dict[str, Any]:
        """JSON-ready: {"calibrated": every ECG model's probabilities are temperature-scaled,
        "temperature": {pathology: T or None}} (`ModelSpec.temperature`)."""
        temps = {p: s.temperature for p, s in self.ecg.items()}
        return {"calibrated": bool(temps) and all(t is not None for t in temps.values()),
                "temperature": temps}


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_HASH_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


class _Checker:
    """Builds BundleErrors that name the bundle directory and the file."""

    def __init__(self, directory: Path):
        self.directory = directory

    def fail(self, file: str, what: str, fix: str = "") -> BundleError:
        msg = f"Model bundle {self.directory}: {file}: {what}"
        if fix:
            msg += f". {fix}"
        return BundleError(msg)


_REINSTALL = ("Reinstall the bundle, or re-export it with `cromotex-train export`, "
              "or point --models at a complete bundle")


def _safe_relpath(ck: _Checker, name: Any, where: str) -> str:
    if not isinstance(name, str) or not name:
        raise ck.fail(MANIFEST, f"{where} must be a file name, got {name!r}", _REINSTALL)
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts or "\\" in name:
        raise ck.fail(MANIFEST, f"{where} {name!r} must be a path inside the bundle directory",
                      _REINSTALL)
    return name


def _require(ck: _Checker, obj: dict, key: str, kind: type | tuple, where: str) -> Any:
    if key not in obj:
        raise ck.fail(MANIFEST, f"missing field {where}{key!r}", _REINSTALL)
    value = obj[key]
    if not isinstance(value, kind) or (kind in (int, float, (int, float)) and isinstance(value, bool)):
        raise ck.fail(MANIFEST, f"field {where}{key!r} has the wrong type ({type(value).__name__})",
                      _REINSTALL)
    return value


def _threshold(ck: _Checker, entry: dict, where: str) -> float:
    t = float(_require(ck, entry, "threshold", (int, float), where))
    if not (0.0 < t < 1.0):
        raise ck.fail(MANIFEST, f"{where}'threshold' = {t} is not a probability in (0, 1)", _REINSTALL)
    return t


_SIGN_FIX = ("Use the bundle shipped with the application (reinstall it). For a bundle your site "
             "trained: sign it with your site's key (`cromotex-train sign-bundle DIR --key KEY.pem`) "
             "and add the matching .pub file to the trust list: the folder {folder}, or "
             "`cromotex predict --trusted-key KEY.pub` (or CROMOTEX_TRUSTED_KEYS)")


def _verify_signature(ck: _Checker, data: bytes, trust: TrustList) -> str:
    """Check `manifest.json.sig` over the manifest's exact bytes; returns "label (key id)"."""
    fix = _SIGN_FIX.format(folder=config_dir() / TRUST_FOLDER)
    sig_path = signature_path(ck.directory / MANIFEST)
    if not sig_path.exists():
        raise ck.fail(SIGNATURE, "missing: the bundle is not signed, so nothing shows who made it "
                      "or that it is unchanged", fix)
    try:
        kid, signature = read_signature(sig_path)
    except BundleError as exc:  # "manifest.json.sig: what is wrong"
        raise ck.fail(SIGNATURE, str(exc).split(": ", 1)[-1], fix) from None
    key = trust.keys.get(kid)
    if key is None:
        skipped = f" (trust entries skipped: {'; '.join(trust.problems)})" if trust.problems else ""
        raise ck.fail(SIGNATURE, f"signed with key {kid}, which is not in the trust list "
                      f"(trusted: {trust.describe()}){skipped}", fix)
    if not verify(key.public_key, signature, data):
        raise ck.fail(SIGNATURE, f"the signature of {key.label} ({kid}) does not match "
                      f"{MANIFEST}: the manifest was changed after it was signed",
                      "Do not use this bundle; reinstall it or get an intact copy from whoever "
                      "built it")
    return f"{key.label} ({kid})"


def _read_manifest(ck: _Checker, trust: TrustList) -> tuple[dict, str]:
    path = ck.directory / MANIFEST
    if not ck.directory.is_dir():
        raise BundleError(f"Model bundle directory {ck.directory} does not exist or is not a folder. "
                          "Point --models (or the app setting) at a bundle folder containing "
                          f"{MANIFEST}")
    if not path.is_file():
        raise ck.fail(MANIFEST, "not found: this folder is not a model bundle", _REINSTALL)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise ck.fail(MANIFEST, f"cannot be read ({exc.strerror or exc})", _REINSTALL) from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise ck.fail(MANIFEST, f"is larger than {MAX_MANIFEST_BYTES >> 20} MB, not a manifest",
                      _REINSTALL)
    signer = _verify_signature(ck, data, trust)
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ck.fail(MANIFEST, f"is not valid JSON ({exc})", _REINSTALL) from None
    if not isinstance(manifest, dict):
        raise ck.fail(MANIFEST, "must hold a JSON object", _REINSTALL)
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ck.fail(MANIFEST, f"schema_version is {version!r}; this program reads schema "
                      f"version {SCHEMA_VERSION}",
                      "Use a bundle exported by the same version of CroMoTEX Review")
    return manifest, signer


def _diff_constants(found: Any, expected: Any, prefix: str = "") -> list[str]:
    """Dotted paths where `found` differs from `expected` (JSON values)."""
    if isinstance(expected, dict) and isinstance(found, dict):
        out = []
        for key in sorted(set(expected) | set(found)):
            out += _diff_constants(found.get(key, "<missing>"), expected.get(key, "<absent>"),
                                   f"{prefix}{key}.")
        return out
    if isinstance(expected, float) and isinstance(found, (int, float)) and not isinstance(found, bool):
        return [] if math.isclose(float(found), expected, rel_tol=0, abs_tol=1e-9) else \
            [f"{prefix[:-1]} = {found!r} (expected {expected!r})"]
    return [] if found == expected else [f"{prefix[:-1]} = {found!r} (expected {expected!r})"]


def _check_preprocessing(ck: _Checker, found: Any, file: str) -> None:
    diffs = _diff_constants(found, preprocessing_constants())
    if diffs:
        raise ck.fail(file, "preprocessing constants do not match this program's ("
                      + "; ".join(diffs[:6]) + ")",
                      "The models were trained with different preprocessing and would give "
                      "wrong results; use a bundle exported for this version")


def _verify_files(ck: _Checker, files: dict[str, str]) -> None:
    for name, digest in files.items():
        _safe_relpath(ck, name, "files entry")
        path = ck.directory / name
        if not path.is_file():
            raise ck.fail(name, "listed in manifest.json but missing from the bundle", _REINSTALL)
        if not isinstance(digest, str) or len(digest) != 64:
            raise ck.fail(MANIFEST, f"sha256 of {name!r} is not a 64-digit hex string", _REINSTALL)
        found = sha256_file(path)
        if found != digest.lower():
            raise ck.fail(name, f"sha256 does not match manifest.json (expected {digest[:12]}..., "
                          f"found {found[:12]}...): the file was changed or damaged after export",
                          _REINSTALL)
    for path in sorted(ck.directory.rglob("*")):
        rel = path.relative_to(ck.directory).as_posix()
        if path.is_file() and rel not in (MANIFEST, SIGNATURE, *files) and not rel.startswith("."):
            log.warning("Model bundle %s: file %s is not listed in manifest.json and is ignored",
                        ck.directory, rel)


def _listed(ck: _Checker, files: dict, name: str, where: str) -> str:
    _safe_relpath(ck, name, where)
    if name not in files:
        raise ck.fail(name, f"referenced by {where} but has no sha256 in manifest.json 'files'",
                      _REINSTALL)
    return name


def _unpack_triu(packed: np.ndarray, dim: int) -> np.ndarray:
    """float64 `[dim, dim]` symmetric matrix from its row-major upper triangle `[dim (dim + 1) / 2]`
    (`m[np.triu_indices(dim)]`; half the size on disk); a wrong length gives an empty array,
    which the shape check reports."""
    packed = np.asarray(packed, dtype=np.float64).ravel()
    if packed.shape != (dim * (dim + 1) // 2,):
        return np.zeros((0, 0))
    out = np.zeros((dim, dim))
    iu = np.triu_indices(dim)
    out[iu] = packed
    out[(iu[1], iu[0])] = packed
    return out


def _read_listed(ck: _Checker, files: dict, name: str) -> bytes:
    """A listed file's bytes, checked against its sha256 in the (signed) manifest."""
    data = (ck.directory / name).read_bytes()
    if hashlib.sha256(data).hexdigest() != str(files.get(name, "")).lower():
        raise ck.fail(name, "sha256 does not match manifest.json: the file was changed while "
                      "the bundle was being loaded", _REINSTALL)
    return data


def read_verified(bundle: Bundle, name: str) -> bytes:
    """The bytes of bundle file `name`, checked against the signed manifest's sha256.

    Raises:
        BundleError: the file is not listed, cannot be read or does not match.
    """
    ck = _Checker(bundle.directory)
    files = bundle.manifest.get("files", {})
    if name not in files:
        raise ck.fail(name, "has no sha256 in manifest.json 'files'", _REINSTALL)
    try:
        return _read_listed(ck, files, name)
    except OSError as exc:
        raise ck.fail(name, f"cannot be read ({exc.strerror or exc})", _REINSTALL) from None


def _load_stats(ck: _Checker, files: dict, name: str, cutoff: Any, dim: int) -> EmbeddingStats:
    try:
        with np.load(io.BytesIO(_read_listed(ck, files, name)), allow_pickle=False) as npz:
            mean = np.asarray(npz["mean"], dtype=np.float64)
            precision = np.asarray(npz["precision"], dtype=np.float64) if "precision" in npz \
                else _unpack_triu(npz["precision_triu"], dim)
    except KeyError as exc:
        raise ck.fail(name, f"lacks array {exc}: it must hold 'mean' [{dim}] and "
                      f"'precision' [{dim}, {dim}] (or its upper triangle 'precision_triu')",
                      _REINSTALL) from None
    except (OSError, ValueError) as exc:
        raise ck.fail(name, f"is not a readable .npz file ({exc})", _REINSTALL) from None
    if mean.shape != (dim,) or precision.shape != (dim, dim):
        raise ck.fail(name, f"has mean {mean.shape} and precision {precision.shape}; expected "
                      f"({dim},) and ({dim}, {dim})", _REINSTALL)
    if not (np.isfinite(mean).all() and np.isfinite(precision).all()):
        raise ck.fail(name, "holds non-finite values", _REINSTALL)
    if not np.allclose(precision, precision.T, rtol=1e-6, atol=1e-9 * float(np.abs(precision).max() + 1)):
        raise ck.fail(name, "precision matrix is not symmetric", _REINSTALL)
    if isinstance(cutoff, bool) or not isinstance(cutoff, (int, float)) or not (
            math.isfinite(cutoff) and cutoff > 0):
        raise ck.fail(MANIFEST, f"ood_cutoff for {name} must be a positive number, got {cutoff!r}",
                      _REINSTALL)
    return EmbeddingStats(mean=mean, precision=precision, cutoff=float(cutoff))


def _parse_models(ck: _Checker, manifest: dict, files: dict) -> tuple[dict, dict]:
    paths = _require(ck, manifest, "pathologies", dict, "")
    ecg: dict[str, ModelSpec] = {}
    cxr: dict[str, ModelSpec] = {}
    for p in PATHOLOGIES:
        if p not in paths or not isinstance(paths[p], dict):
            raise ck.fail(MANIFEST, f"has no models for pathology {p!r}", _REINSTALL)
        entry = paths[p]
        e = _require(ck, entry, "ecg", dict, f"pathologies.{p}.")
        where = f"pathologies.{p}.ecg."
        file = _listed(ck, files, _require(ck, e, "file", str, where), where + "file")
        int8 = e.get("int8_file")
        if int8 is not None:
            int8 = _listed(ck, files, int8, where + "int8_file")
        threshold = _threshold(ck, e, where)
        temperature, t_cal, calibration = _optional_calibration(ck, e, where, threshold)
        ecg[p] = ModelSpec(pathology=p, modality="ecg", file=file, int8_file=int8,
                           threshold=threshold,
                           stats=_optional_stats(ck, files, e, where, ECG_EMBEDDING_DIM),
                           metrics=dict(e.get("metrics") or {}),
                           band=_optional_band(ck, e, where, temperature, t_cal),
                           temperature=temperature, threshold_calibrated=t_cal, calibration=calibration)
        c = entry.get("cxr")
        if c is None:
            continue
        where = f"pathologies.{p}.cxr."
        if not isinstance(c, dict):
            raise ck.fail(MANIFEST, f"{where[:-1]} must be an object", _REINSTALL)
        cfile = _listed(ck, files, _require(ck, c, "file", str, where), where + "file")
        index = _require(ck, c, "output_index", int, where)
        if index < 0:
            raise ck.fail(MANIFEST, f"{where}output_index must be >= 0", _REINSTALL)
        cxr[p] = ModelSpec(pathology=p, modality="cxr", file=cfile, output_index=index,
                           threshold=_threshold(ck, c, where),
                           stats=_optional_stats(ck, files, c, where, CXR_EMBEDDING_DIM),
                           metrics=dict(c.get("metrics") or {}), band=_optional_band(ck, c, where))
    return ecg, cxr


#: ECE fields of a manifest `calibration` block (each a number in [0, 1] or null).
_ECE_FIELDS = ("val_ece_raw", "val_ece_calibrated", "test_ece_raw", "test_ece_calibrated")
#: `borderline.scale` of a band computed on calibrated probabilities (absent: raw probabilities).
CALIBRATED_SCALE = "calibrated"


def _calibration_fail(ck: _Checker, what: str) -> CalibrationError:
    return CalibrationError(f"Model bundle {ck.directory}: {MANIFEST}: {what}. The bundle's "
                            "probability calibration is inconsistent; do not use it. Re-run "
                            "`cromotex-train build` (or reinstall the shipped bundle)")


def _optional_calibration(ck: _Checker, entry: dict, where: str,
                          threshold: float) -> tuple[float | None, float | None, dict]:
    """(temperature, threshold_calibrated, calibration block) of an ECG entry; (None, None, {})
    for an uncalibrated model (no `temperature`).

    Raises:
        CalibrationError: a temperature that is not a finite number in 0.05-20, a missing or
            inconsistent `threshold_calibrated` (more than 1e-6 from the threshold mapped with
            the temperature), calibration fields without a temperature, or a malformed block.
    """
    temperature = entry.get("temperature")
    if temperature is None:
        stray = [k for k in ("threshold_calibrated", "calibration") if entry.get(k) is not None]
        if stray:
            raise _calibration_fail(ck, f"{where}{stray[0]} is given but {where}temperature is not")
        return None, None, {}
    problem = temperature_problem(temperature)
    if problem:
        raise _calibration_fail(ck, f"{where}temperature {problem}")
    t_cal = entry.get("threshold_calibrated")
    if isinstance(t_cal, bool) or not isinstance(t_cal, (int, float)) or not math.isfinite(t_cal) \
            or not 0.0 < t_cal < 1.0:
        raise _calibration_fail(ck, f"{where}threshold_calibrated must be a probability in (0, 1) "
                                f"beside temperature {temperature}, got {t_cal!r}")
    expected = calibrated_threshold(threshold, float(temperature))
    if abs(float(t_cal) - expected) > THRESHOLD_TOLERANCE:
        raise _calibration_fail(ck, f"{where}threshold_calibrated {t_cal!r} disagrees with threshold "
                                f"{threshold!r} at temperature {temperature!r} (expected {expected!r}; "
                                "they would make different calls)")
    block = entry.get("calibration")
    if block is None:
        block = {}
    if not isinstance(block, dict):
        raise _calibration_fail(ck, f"{where}calibration must be an object")
    for k in _ECE_FIELDS:
        v = block.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))
                              or not (math.isfinite(v) and 0.0 <= v <= 1.0)):
            raise _calibration_fail(ck, f"{where}calibration.{k} must be a number in [0, 1], got {v!r}")
    return float(temperature), float(t_cal), dict(block)


def _optional_band(ck: _Checker, entry: dict, where: str, temperature: float | None = None,
                   threshold_calibrated: float | None = None) -> tuple[float, float] | None:
    """The entry's `borderline` {low, high} band around its threshold, or None; low <= threshold
    <= high, all in [0, 1]. For a calibrated model (`temperature`) the band is returned in
    calibrated probabilities: as written when `borderline.scale` is "calibrated", else (a band
    computed on the raw probabilities) mapped with the temperature (the same records inside).
    A band marked "calibrated" in an uncalibrated entry raises CalibrationError."""
    band = entry.get("borderline")
    if band is None:
        return None
    if not isinstance(band, dict):
        raise ck.fail(MANIFEST, f"{where}borderline must be an object with 'low' and 'high'", _REINSTALL)
    low = float(_require(ck, band, "low", (int, float), where + "borderline."))
    high = float(_require(ck, band, "high", (int, float), where + "borderline."))
    scale = band.get("scale", "raw")
    if scale not in ("raw", CALIBRATED_SCALE):
        raise _calibration_fail(ck, f"{where}borderline.scale is {scale!r}; expected 'raw' or "
                                f"{CALIBRATED_SCALE!r}")
    if temperature is not None and threshold_calibrated is not None:
        t = threshold_calibrated
        if scale == "raw":  # a band of the raw probabilities: map it (monotone)
            raw_t = float(entry["threshold"])
            if not (0.0 <= low <= raw_t <= high <= 1.0):
                raise ck.fail(MANIFEST, f"{where}borderline [{low}, {high}] must hold the threshold "
                              f"{raw_t} within [0, 1]", _REINSTALL)
            low, high = (float(v) for v in calibrate_probability(np.array([low, high]), temperature))
        elif not (0.0 <= low <= high <= 1.0
                  and low - THRESHOLD_TOLERANCE <= t <= high + THRESHOLD_TOLERANCE):
            raise _calibration_fail(ck, f"{where}borderline [{low}, {high}] (calibrated) does not "
                                    f"hold threshold_calibrated {t}")
        return (min(low, t), max(high, t))  # round-off at the edge: the band holds the threshold
    if scale == CALIBRATED_SCALE:
        raise _calibration_fail(ck, f"{where}borderline is on the calibrated scale but "
                                f"{where}temperature is not given")
    t = float(entry["threshold"])
    if not (0.0 <= low <= t <= high <= 1.0):
        raise ck.fail(MANIFEST, f"{where}borderline [{low}, {high}] must hold the threshold {t} "
                      "within [0, 1]", _REINSTALL)
    return (low, high)


def _optional_stats(ck: _Checker, files: dict, entry: dict, where: str,
                    dim: int) -> EmbeddingStats | None:
    """The embedding statistics a model entry names (with its `ood_cutoff`), or None."""
    if "embedding_stats" not in entry:
        return None
    stats_file = _listed(ck, files, entry["embedding_stats"], where + "embedding_stats")
    return _load_stats(ck, files, stats_file, entry.get("ood_cutoff"), dim)


def _load_reference(ck: _Checker, manifest: dict, files: dict) -> dict | None:
    name = manifest.get("reference")
    if name is None:
        return None
    _listed(ck, files, name, "reference")
    try:
        ref = json.loads(_read_listed(ck, files, name).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ck.fail(name, f"is not valid JSON ({exc})", _REINSTALL) from None
    if not isinstance(ref, dict) or not isinstance(ref.get("cases"), list):
        raise ck.fail(name, "must be an object with a 'cases' list", _REINSTALL)
    return ref


def load_bundle(directory: str | Path | None = None, trust: TrustList | None = None) -> Bundle:
    """Read and verify a bundle directory (default: the shipped `resources/models/`).

    Checks: the manifest's signature by a key of `trust` (default `engine.trust.load_trust()`:
    the project key and the site's trust list), manifest schema and version, the sha256 of
    every listed file, that every file the manifest refers to is listed, preprocessing
    constants, thresholds, embedding statistics and the reference outputs file. ONNX files
    are checked against the manifest when sessions are opened (`check_session`, on bytes
    from `read_verified`).

    Raises:
        BundleError: naming the file and what is wrong.
    """
    directory = Path(directory if directory is not None else default_models_dir()).resolve()
    ck = _Checker(directory)
    manifest, signer = _read_manifest(ck, trust if trust is not None else load_trust())
    bundle_id = _require(ck, manifest, "bundle_id", str, "")
    data = _require(ck, manifest, "data", str, "")
    if data not in DATA_KINDS:
        raise ck.fail(MANIFEST, f"'data' is {data!r}; expected one of {', '.join(DATA_KINDS)}",
                      _REINSTALL)
    demo = _require(ck, manifest, "demo", bool, "")
    if data == "phantom" and not demo:
        raise ck.fail(MANIFEST, "models trained on phantom (synthetic) data must have demo: true",
                      _REINSTALL)
    disclaimer = manifest.get("disclaimer") or ""
    if demo and not disclaimer:
        from engine.constants import DEMO_DISCLAIMER
        disclaimer = DEMO_DISCLAIMER
    _check_preprocessing(ck, _require(ck, manifest, "preprocessing", dict, ""), MANIFEST)
    files = _require(ck, manifest, "files", dict, "")
    if MODEL_CARD not in files:
        raise ck.fail(MODEL_CARD, "missing (every bundle carries its model card, listed in "
                      "manifest.json 'files')", _REINSTALL)
    _verify_files(ck, files)
    ecg, cxr = _parse_models(ck, manifest, files)
    reference = _load_reference(ck, manifest, files)
    log.info("Loaded model bundle %s (%s, data=%s, demo=%s, signed by %s)", directory, bundle_id,
             data, demo, signer)
    return Bundle(directory=directory, manifest=manifest, bundle_id=bundle_id, data=data,
                  demo=demo, disclaimer=disclaimer, ecg=ecg, cxr=cxr, reference=reference,
                  signer=signer)


# --------------------------------------------------------------------------- ONNX sessions

def _dims_ok(found: list, expected: list) -> bool:
    """`expected` entries None match any dim; int dims must equal; symbolic found dims match."""
    if len(found) != len(expected):
        return False
    return all(e is None or not isinstance(f, int) or f == e for f, e in zip(found, expected))


def _fmt(shape: list) -> str:
    return "[" + ", ".join("N" if d is None else str(d) for d in shape) + "]"


def _json_meta(ck: _Checker, file: str, meta: dict, key: str) -> Any:
    if key not in meta:
        raise ck.fail(file, f"ONNX metadata lacks {key!r}", _REINSTALL)
    if key == "cromotex.data" or key == "cromotex.bundle_id":
        return meta[key]
    try:
        return json.loads(meta[key])
    except json.JSONDecodeError:
        raise ck.fail(file, f"ONNX metadata {key!r} is not valid JSON", _REINSTALL) from None


def check_session(bundle: Bundle, spec: ModelSpec, session: Any, file: str) -> None:
    """Check an onnxruntime `InferenceSession` opened on bundle file `file` for `spec`.

    ECG: one input `ecg` float `[N, 12, 1000]`; outputs `logit` `[N, 1]` and
    `embedding` `[N, 256]`. CXR: input `cxr` float `[N, 1, 224, 224]`; outputs
    `logit` `[N, K]` (K > output_index) and `embedding` `[N, 1024]`. Metadata
    `cromotex.preprocessing`, `.pathologies`, `.threshold`, `.data`, `.bundle_id`
    must agree with the manifest.

    Raises:
        BundleError: naming `file` and the mismatch.
    """
    ck = _Checker(bundle.directory)
    if spec.modality == "ecg":
        in_name, in_shape = "ecg", [None, len(LEADS), ECG_SAMPLES]
        out_shapes = {"logit": [None, 1], "embedding": [None, ECG_EMBEDDING_DIM]}
    else:
        in_name, in_shape = "cxr", [None, 1, CXR_SIZE, CXR_SIZE]
        out_shapes = {"logit": [None, None], "embedding": [None, CXR_EMBEDDING_DIM]}
    inputs = session.get_inputs()
    if len(inputs) != 1 or inputs[0].name != in_name:
        raise ck.fail(file, f"model inputs are {[i.name for i in inputs]}; expected one input "
                      f"{in_name!r}", _REINSTALL)
    if inputs[0].type != "tensor(float)" or not _dims_ok(list(inputs[0].shape), in_shape):
        raise ck.fail(file, f"input {in_name!r} is {inputs[0].type} {inputs[0].shape}; expected "
                      f"float32 {_fmt(in_shape)}", _REINSTALL)
    outputs = {o.name: o for o in session.get_outputs()}
    for name, shape in out_shapes.items():
        if name not in outputs:
            raise ck.fail(file, f"model has no output {name!r} (outputs: {sorted(outputs)})",
                          _REINSTALL)
        o = outputs[name]
        if o.type != "tensor(float)" or not _dims_ok(list(o.shape), shape):
            raise ck.fail(file, f"output {name!r} is {o.type} {o.shape}; expected float32 "
                          f"{_fmt(shape)}", _REINSTALL)
    k = outputs["logit"].shape[1]
    if isinstance(k, int) and spec.output_index >= k:
        raise ck.fail(file, f"logit has {k} columns but the manifest says {spec.pathology} is "
                      f"column {spec.output_index}", _REINSTALL)

    meta = dict(session.get_modelmeta().custom_metadata_map)
    _check_preprocessing(ck, _json_meta(ck, file, meta, "cromotex.preprocessing"),
                         f"{file} (ONNX metadata)")
    paths = _json_meta(ck, file, meta, "cromotex.pathologies")
    if not isinstance(paths, list) or spec.output_index >= len(paths) \
            or paths[spec.output_index] != spec.pathology:
        raise ck.fail(file, f"ONNX metadata says its logit columns are {paths!r}, but the manifest "
                      f"puts {spec.pathology!r} in column {spec.output_index}", _REINSTALL)
    thresholds = _json_meta(ck, file, meta, "cromotex.threshold")
    if not isinstance(thresholds, list) or len(thresholds) != len(paths) or not math.isclose(
            float(thresholds[spec.output_index]), spec.threshold, abs_tol=1e-6):
        raise ck.fail(file, f"ONNX metadata thresholds {thresholds!r} disagree with the manifest's "
                      f"{spec.pathology} threshold {spec.threshold}", _REINSTALL)
    data = _json_meta(ck, file, meta, "cromotex.data")
    if data != bundle.data:
        raise ck.fail(file, f"ONNX metadata says the model was trained on {data!r} data, the "
                      f"manifest says {bundle.data!r}", _REINSTALL)
    bid = _json_meta(ck, file, meta, "cromotex.bundle_id")
    if bid != bundle.bundle_id:
        raise ck.fail(file, f"ONNX metadata bundle id {bid!r} differs from the manifest's "
                      f"{bundle.bundle_id!r}: the file belongs to another bundle", _REINSTALL)
