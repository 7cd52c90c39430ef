"""De-identified export: copies of ECG / chest X-ray files with identifiers removed.

`deidentify(paths, out_dir, *, key=None, keep_characteristics=False, store=None, user=None)
-> DeidReport` writes one de-identified copy per input file into `out_dir` and
`out_dir/deid_report.json`, a report of what was changed per file. Formats:

- DICOM (ECG waveforms, chest X-rays): PS3.15 Basic Application Level
  Confidentiality Profile with the Modified Dates Option (`engine.deid.dicom`).
- WFDB: comments stripped, base date removed, record renamed (`engine.deid.wfdb`).
- GE MUSE / Philips / HL7 aECG XML: patient, staff and site fields blanked, the
  patient ID replaced by a pseudonym, dates shifted (`engine.deid.xml_ecg`).
- EDF / EDF+ / BDF: header patient / recording fields, start date shifted (`engine.deid.edf`).
- SCP-ECG: section 1 patient tags overwritten in place, CRCs recomputed (`engine.deid.scp`).

Consistency: one secret key (`key`; random per export when None) gives each
patient one date offset and one pseudonym, and each DICOM UID one replacement,
across all files of the export (pass the same key to keep them across exports).
Originals are never modified (each source's sha256 is checked before and after);
`out_dir` must not lie inside a source folder, and must be empty or new. Output
file names are keyed tokens (original names may carry identifiers); the report
names sources only by their sha256, so it can travel with the data.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from engine.deid.keys import DeidKeys
from engine.errors import CromotexError, DeidError

log = logging.getLogger(__name__)

REPORT_NAME = "deid_report.json"
#: Formats `deidentify` exports.
SUPPORTED = ("dicom", "wfdb", "muse-xml", "philips-xml", "hl7-aecg", "edf", "scp-ecg")


@dataclass(frozen=True)
class DeidFileReport:
    """What was done to one input.

    Attributes:
        source_sha256: the original's content hash (None when it could not be read).
        format: "dicom", "wfdb", "muse-xml", "philips-xml", "hl7-aecg", "edf", "scp-ecg".
        outputs: names of the files written in the output folder.
        ok: the copy was written; error: why not.
        patient_pseudonym: the patient's replacement ID in this export.
        changes: attribute / element / field -> action ("X", "Z", "U", "date shifted", ...).
        source_unchanged: the original's hash was the same after the export.
    """

    source_sha256: str | None
    format: str | None
    outputs: tuple[str, ...]
    ok: bool
    error: str | None = None
    patient_pseudonym: str | None = None
    changes: dict[str, Any] = field(default_factory=dict)
    source_unchanged: bool = True


@dataclass(frozen=True)
class DeidReport:
    """The export: the output folder, the report file and one DeidFileReport per input."""

    out_dir: str
    report_path: str
    files: tuple[DeidFileReport, ...]

    @property
    def n_ok(self) -> int:
        return sum(f.ok for f in self.files)

    @property
    def n_failed(self) -> int:
        return sum(not f.ok for f in self.files)


def _inside(child: Path, parent: Path) -> bool:
    try:
        child.relative_to(parent)
        return True
    except ValueError:
        return False


def check_out_dir(paths: list[str], out_dir: Path) -> None:
    """Refuse an output folder inside (or equal to) a source folder, or one holding files.

    Raises:
        DeidError.
    """
    out = out_dir.resolve()
    for p in paths:
        src = Path(p).resolve()
        folder = src if src.is_dir() else src.parent
        if _inside(out, folder):
            raise DeidError(f"The output folder {out_dir} is inside the source folder {folder}; choose "
                            f"a folder outside the originals (de-identified copies must never mix with "
                            f"them).")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DeidError(f"The output folder {out_dir} already holds files; choose an empty or new folder.")


def _kind(path: Path) -> str:
    from engine.io.sniff import sniff

    with open(path, "rb") as fh:
        head = fh.read(8)
    if head in (b"0       ", b"\xffBIOSEMI"):
        return "edf"
    if path.suffix.lower() == ".scp":
        return "scp-ecg"
    kind = sniff(path)
    return "wfdb" if kind == "wfdb-header" else kind


def _xml_patient(path: Path, fallback: str) -> str:
    from engine.io import read_ecg
    from engine.store.fields import patient_key

    try:
        return patient_key(read_ecg(path, annotations=False).meta) or fallback
    except CromotexError:
        return fallback


def _one(path: Path, out: Path, keys: DeidKeys, keep: bool) -> DeidFileReport:
    from engine.store.scan import content_files, content_sha256

    files = content_files(str(path))
    try:
        sha = content_sha256(files)
    except OSError as exc:
        return DeidFileReport(None, None, (), False, f"{path} cannot be read ({exc.strerror}).")
    fallback = f"file:{sha}"
    token = keys.token(sha)
    try:
        kind = _kind(path)
        if kind == "dicom":
            from engine.deid.dicom import deid_dicom

            name = f"{token}.dcm"
            res = deid_dicom(path, out / name, keys, fallback, keep_characteristics=keep)
            outputs = (name,)
        elif kind == "wfdb":
            from engine.deid.wfdb import deid_wfdb

            res = deid_wfdb(path, out, f"r{token}", keep_characteristics=keep)
            res["patient_pseudonym"] = keys.pseudonym(fallback)
            outputs = tuple(res.pop("outputs"))
        elif kind in ("muse-xml", "philips-xml", "hl7-aecg"):  # the patient from the reader's meta
            from engine.deid.xml_ecg import deid_xml

            name = f"{token}.xml"
            res = deid_xml(path, out / name, keys, _xml_patient(path, fallback), keep_characteristics=keep)
            outputs = (name,)
        elif kind == "edf":
            from engine.deid.edf import deid_edf, edf_patient

            name = f"{token}{path.suffix.lower() or '.edf'}"
            res = deid_edf(path, out / name, keys, edf_patient(path) or fallback, keep_characteristics=keep)
            outputs = (name,)
        elif kind == "scp-ecg":
            from engine.deid.scp import deid_scp

            name = f"{token}.scp"
            res = deid_scp(path, out / name, keys, _xml_patient(path, fallback), keep_characteristics=keep)
            outputs = (name,)
        else:
            raise DeidError(f"{path} is not a format the de-identified export handles "
                            f"({', '.join(SUPPORTED)}); it was not exported.")
    except (DeidError, CromotexError) as exc:
        return DeidFileReport(sha, None, (), False, str(exc), source_unchanged=_same(files, sha))
    except Exception as exc:  # a library bug on one file must not stop the export
        log.exception("de-identification failed on %s", path)
        return DeidFileReport(sha, None, (), False, f"{path} could not be de-identified "
                                                    f"({type(exc).__name__}: {exc}).",
                              source_unchanged=_same(files, sha))
    return DeidFileReport(sha, kind, outputs, True, None, res.get("patient_pseudonym"),
                          res.get("changes", {}), _same(files, sha))


def _same(files: list[str], sha: str) -> bool:
    from engine.store.scan import content_sha256

    try:
        return content_sha256(files) == sha
    except OSError:
        return False


def deidentify(paths: list[str | os.PathLike], out_dir: str | os.PathLike, *, key: bytes | None = None,
               keep_characteristics: bool = False, store: Any = None,
               user: str | None = None) -> DeidReport:
    """Write de-identified copies of `paths` (files, folders searched recursively, DICOMDIRs)
    into `out_dir` (see the module docstring).

    Args:
        key: the secret for offsets, pseudonyms and UIDs (random when None).
        keep_characteristics: keep age and sex (PS3.15 Retain Patient Characteristics Option).
        store: an `engine.store.Store`: each exported file is logged ("deid_export") with `user`.

    Raises:
        DeidError: the output folder is not allowed. A file that cannot be exported is
        reported (ok False) and the export goes on.
    """
    from engine.store.scan import iter_scan_inputs

    srcs = [os.fspath(p) for p in paths]
    out = Path(out_dir)
    check_out_dir(srcs, out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DeidError(f"Cannot create the output folder {out} ({exc.strerror}).") from exc
    keys = DeidKeys(key)
    reports = []
    for path, error in _inputs(srcs, iter_scan_inputs):
        if error is not None:
            reports.append(DeidFileReport(None, None, (), False, error))
            continue
        r = _one(Path(path), out, keys, keep_characteristics)
        reports.append(r)
        if store is not None and r.ok:
            from engine.store.audit import log_event

            log_event(store, "deid_export", user or "unknown", file_sha256=r.source_sha256,
                      details={"format": r.format, "outputs": list(r.outputs), "out_dir": str(out)})
    report_path = out / REPORT_NAME
    body = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "profile": "DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile, Retain "
                       "Longitudinal Temporal Information Modified Dates Option"
                       + (", Retain Patient Characteristics Option" if keep_characteristics else ""),
            "keep_characteristics": keep_characteristics,
            "files": [asdict(r) for r in reports]}
    report_path.write_text(json.dumps(body, indent=1, ensure_ascii=False), encoding="utf-8")
    return DeidReport(str(out), str(report_path), tuple(reports))


def _inputs(srcs: list[str], expand) -> list[tuple[str, str | None]]:
    """Files named by the arguments; a folder also yields EDF / SCP files."""
    out: list[tuple[str, str | None]] = []
    seen: set[str] = set()
    for s in srcs:
        found = list(expand([s]))
        if os.path.isdir(s):
            for root, _dirs, names in os.walk(s):
                found.extend((os.path.join(root, n), None) for n in sorted(names)
                             if n.lower().endswith((".edf", ".bdf", ".scp")))
        for path, error in found:
            key = os.path.abspath(path)
            if key not in seen:
                seen.add(key)
                out.append((path, error))
    return out


__all__ = ["DeidFileReport", "DeidReport", "REPORT_NAME", "SUPPORTED", "check_out_dir", "deidentify"]
