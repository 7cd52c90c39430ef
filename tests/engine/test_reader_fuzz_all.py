"""Fuzzing every reader (issue 15), beside test_reader_fuzz.py's property test: seeded
mutants of every reader's real samples from tests/engine/fuzz_mutants.py (WFDB, DICOM ECG,
DICOM chest X-ray, PNG, a JPEG, and every sample under tests/data/formats/), with the app's
and the CLI's ECG reads required to agree; size bombs refused with little memory;
file-system oddities named; the regression corpus tests/data/fuzz_regressions/. A longer
run in child processes with time and memory limits: bench/fuzz_readers.py."""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

import fuzz_mutants as F
from engine.errors import CromotexError
from engine.io import read_ecg
from engine.records import CxrImage, EcgRecord

DATA = Path(__file__).resolve().parents[1] / "data"


def _check_result(result) -> None:
    """A well-formed record or image (as test_reader_fuzz.py checks)."""
    if isinstance(result, EcgRecord):
        assert result.signal.dtype == np.float32 and result.signal.ndim == 2
        assert result.signal.shape[0] == len(result.leads) >= 1
        assert result.fs > 0
    else:
        assert isinstance(result, CxrImage)
        assert result.pixels.dtype == np.float32 and result.pixels.ndim == 2
        assert np.all((result.pixels >= 0) & (result.pixels <= 1))


REGRESSIONS = DATA / "fuzz_regressions"
#: Mutants per case in CI (8 base cases and any tests/data/formats/ files; each mutant is read
#: by every reader of its case). bench/fuzz_readers.py runs thousands on demand.
MUTANTS_PER_CASE = 30


def _outcome(reader, path):
    """("ok", record) or ("typed", error); anything else fails the test."""
    start = time.perf_counter()
    try:
        result = reader(path)
    except CromotexError as exc:
        # the catch-all's own phrase (engine.io._guard); a library message may say "unexpected"
        assert str(exc) and "(unexpected " not in str(exc), f"caught only by the safety net: {exc}"
        outcome = ("typed", exc)
    else:
        _check_result(result)
        outcome = ("ok", result)
    assert time.perf_counter() - start < 10.0, f"a read of {path} took over 10 s"
    return outcome


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    return F.base_cases(tmp_path_factory.mktemp("jpeg"))


def test_every_reader_family_is_fuzzed(cases):
    families = {c.name for c in cases}
    assert {"wfdb", "dicom-ecg", "dicom-cxr", "png", "jpeg"} <= families
    if F.FORMATS.is_dir():  # the [formats] readers' samples join automatically
        assert any(name.startswith("formats/") for name in families)


def test_mutants_of_every_reader_typed_and_both_ecg_paths_agree(cases, tmp_path):
    """MUTANTS_PER_CASE deterministic mutants (seeded) of each case: every reader gives a
    well-formed result or a typed error, within 10 s; the app's ECG read and the CLI's
    signal-only read accept and refuse the same mutants, with the same signal."""
    tried = 0
    for c_index, case in enumerate(cases):
        for k in range(MUTANTS_PER_CASE):
            rng = random.Random(f"{case.name}:{c_index}:{k}")
            folder = tmp_path / f"{c_index}_{k}"
            folder.mkdir()
            path, kind = F.make_mutant(case, folder, rng)
            outcomes = {name: _outcome(F.READERS[name], path) for name in case.readers}
            tried += 1
            if "read_ecg" in outcomes:
                full, signal_only = outcomes["read_ecg"], outcomes["read_ecg_signal_only"]
                assert full[0] == signal_only[0], (case.name, kind, full, signal_only)
                if full[0] == "ok":
                    np.testing.assert_array_equal(full[1].signal, signal_only[1].signal)
                else:
                    assert type(full[1]) is type(signal_only[1]), (kind, full[1], signal_only[1])
            shutil.rmtree(folder)
    assert tried == len(cases) * MUTANTS_PER_CASE


def test_size_bombs_refused_before_allocation(tmp_path):
    """Small files declaring gigabytes are refused with a typed error naming the limit, and
    the process's peak memory grows by less than 300 MB (before: 0.7 to 6 GB, or read)."""
    bombs = [("png", REGRESSIONS / "png_13000x13000_bomb.png", "read_cxr", "100 megapixels"),
             ("dicom-cxr", F.dicom_cxr_bomb(tmp_path / "cxr.dcm", 12000, 12000), "read_cxr",
              "256 MiB"),
             ("dicom-ecg", REGRESSIONS / "dicom_ecg_deflate_42M_samples.dcm", "read_ecg",
              "40,000,000 in all"),
             ("dicom-ecg", REGRESSIONS / "dicom_ecg_deflate_42M_samples.dcm", "read_ecg_signal_only",
              "40,000,000 in all")]
    for family, path, reader, limit in bombs:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        kind, error = _outcome(F.READERS[reader], path)
        assert kind == "typed" and limit in str(error), (family, reader, error)
        grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        assert grown_kib < 300_000, (family, reader, grown_kib)


def test_file_system_oddities_named(tmp_path):
    """A symlink loop, a folder, a fifo, an empty, an unreadable or a missing file or folder:
    each reader names what is wrong (a symlink loop is not 'does not exist')."""
    expected = {"symlink-loop": "link loop", "folder": "is a folder", "empty": "is empty",
                "missing-folder": "folder", "dangling-symlink": "does not exist",
                "fifo": "device, pipe or socket", "unreadable": "not allowed"}
    for name, path in F.oddity_cases(tmp_path):
        if name == "unreadable" and os.access(path, os.R_OK):
            continue  # running as root: permissions are not enforced
        for reader in F.READERS.values():
            kind, error = _outcome(reader, path)
            assert kind == "typed" and expected[name] in str(error), (name, error)


def _regression_path(name: str, spec: dict, tmp_path: Path) -> Path:
    """The file to open for a regression entry (a patched copy for a *.patch.json)."""
    if name.endswith(".patch.json"):
        patch = json.loads((REGRESSIONS / name).read_text())
        data = bytearray((DATA / patch["base"]).read_bytes())
        for offset, old, new in patch["edits"]:
            assert data[offset] == old, "the base sample changed; the patch no longer applies"
            data[offset] = new
        out = tmp_path / Path(patch["base"]).name
        out.write_bytes(bytes(data))
        return out
    for f in REGRESSIONS.iterdir():
        shutil.copyfile(f, tmp_path / f.name)
    for sparse, size in spec.get("sparse", {}).items():
        with open(tmp_path / sparse, "wb") as fh:
            fh.truncate(size)
    return tmp_path / name


@pytest.mark.parametrize("name", sorted(k for k in json.loads((REGRESSIONS / "EXPECTED.json").read_text())
                                        if not k.startswith("_")))
def test_fuzz_regressions(name, tmp_path):
    """Each input of the regression corpus gives its expected typed error (or reads, for
    the ones that only disagreed between the read paths), in a child-free read here: the
    hangs and bombs of before are fixed, so a regression shows as a failure or a slow test."""
    spec = json.loads((REGRESSIONS / "EXPECTED.json").read_text())[name]
    path = _regression_path(name, spec, tmp_path)
    kind, result = _outcome(F.READERS[spec["reader"]], path)
    if spec.get("ok"):
        assert kind == "ok", result
        if spec.get("parity"):
            other = read_ecg(path, annotations=False)
            np.testing.assert_array_equal(result.signal, other.signal)
            assert result.meta.get("warnings"), "the damage is reported as a warning"
    else:
        assert kind == "typed" and type(result).__name__ == spec["error"], result
        assert spec["match"] in str(result)
