"""The shipped demo cases (`resources/demo/`, see its README.md): which files make a case.

Naming rule of the demo folder (written by `cromotex-train build`):
``case<N>_<findings>_ecg.hea`` (+ ``.dat``) is the ECG, ``case<N>_<findings>_cxr.jpg``
its paired chest X-ray; a case whose name contains ``dicom`` also carries
``..._ecg.dcm`` and ``..._cxr.dcm`` (the same data as DICOM), which are the files
that case opens, since showing the DICOM path is what it is there for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from engine.errors import CromotexError

_STEM = re.compile(r"^case(?P<num>\d+)_(?P<label>.+)_(?P<kind>ecg|cxr)$", re.IGNORECASE)
_ECG_ORDER = (".hea", ".dcm")
_CXR_ORDER = (".jpg", ".jpeg", ".png", ".dcm")


class DemoCaseError(CromotexError):
    """The demo case asked for is not installed (missing folder, case or file)."""


@dataclass(frozen=True)
class DemoCase:
    """One demo case: its number, a readable title, and the files to open."""

    number: int
    label: str
    ecg: Path
    cxr: Path | None

    @property
    def title(self) -> str:
        """E.g. "Case 1: cardiomegaly, edema, pleural effusion"."""
        words = self.label.replace("dicom_", "").replace("_", " ")
        for name in ("cardiomegaly", "edema", "pleural effusion"):
            words = words.replace(f"{name} ", f"{name}, ")
        fmt = " (DICOM)" if "dicom" in self.label.lower() else ""
        return f"Case {self.number}: {words}{fmt}"


def _pick(files: dict[str, Path], order: tuple[str, ...], prefer_dicom: bool) -> Path | None:
    if prefer_dicom and ".dcm" in files:
        return files[".dcm"]
    return next((files[s] for s in order if s in files), None)


def list_cases(folder: Path | None = None) -> list[DemoCase]:
    """The complete cases (an ECG, and its CXR when present) in `folder`, by number.

    Args:
        folder: the demo folder; default the shipped `resources/demo/`.

    Raises:
        DemoCaseError: the folder does not exist or holds no case.
    """
    if folder is None:
        from engine.resources import demo_dir
        folder = demo_dir()
    if not folder.is_dir():
        raise DemoCaseError(f"The demo cases are not installed: {folder} does not exist. "
                            "Reinstall CroMoTEX Review, or open an ECG with File > Open ECG.")
    found: dict[tuple[int, str], dict[str, dict[str, Path]]] = {}
    for f in folder.iterdir():
        m = _STEM.match(f.stem)
        if m is None or not f.is_file():
            continue
        key = (int(m["num"]), m["label"])
        found.setdefault(key, {"ecg": {}, "cxr": {}})[m["kind"].lower()][f.suffix.lower()] = f
    cases = []
    for (num, label), files in sorted(found.items()):
        dicom = "dicom" in label.lower()
        ecg = _pick(files["ecg"], _ECG_ORDER, dicom)
        if ecg is None:
            continue
        cases.append(DemoCase(num, label, ecg, _pick(files["cxr"], _CXR_ORDER, dicom)))
    if not cases:
        raise DemoCaseError(f"No demo case in {folder} (expected case<N>_<findings>_ecg.hea "
                            "files, see its README.md).")
    return cases


def demo_case(number: int = 1, folder: Path | None = None) -> DemoCase:
    """Demo case `number` (default 1, the case with every finding).

    Raises:
        DemoCaseError: not installed, or no such case (the message lists those there are).
    """
    cases = list_cases(folder)
    for case in cases:
        if case.number == number:
            return case
    raise DemoCaseError(f"There is no demo case {number}; installed: "
                        + ", ".join(str(c.number) for c in cases) + ".")
