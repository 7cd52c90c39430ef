"""Property test: mutated versions of the real sample files (bit flips, truncation,
header and XML line / token edits, random bytes) either read into a well-formed record or raise a
typed engine error, never anything else, never the readers' catch-all, never a hang.

The catch-all is recognised by its own phrase, "(unexpected <ExceptionType>: ...)"
(`engine.io._guard`), not by the word alone: a reader may quote a library's message
that says "unexpected" (pydicom: "Found unexpected tag ...")."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scp_factory import fix_crcs

from engine.errors import CromotexError
from engine.io import read_cxr, read_ecg
from engine.records import CxrImage, EcgRecord

DATA = Path(__file__).resolve().parents[1] / "data"
# (files of one sample, index of the file to mutate options)
SAMPLES: list[tuple[Path, ...]] = [
    (DATA / "ecg/wfdb/ludb/1.hea", DATA / "ecg/wfdb/ludb/1.dat"),
    (DATA / "ecg/wfdb/ptbxl/00001_lr.hea", DATA / "ecg/wfdb/ptbxl/00001_lr.dat"),
    (DATA / "ecg/wfdb_mat/cinc2021/E07505.hea", DATA / "ecg/wfdb_mat/cinc2021/E07505.mat"),
    (DATA / "ecg/wfdb/ptb_diagnostic/s0010_re.hea", DATA / "ecg/wfdb/ptb_diagnostic/s0010_re.dat",
     DATA / "ecg/wfdb/ptb_diagnostic/s0010_re.xyz"),
    (DATA / "ecg/dicom/pydicom_waveform_ecg.dcm",),
    (DATA / "formats/muse_xml/musephi_muse_ecg1.xml",),
    (DATA / "formats/philips_xml/sierra_1-03_129DYPRG_HeartStartMRx.xml",),
    (DATA / "formats/philips_xml/philips_1-04_ad4d3d80-d165_PageWriterTouch.xml",),  # UTF-16
    (DATA / "formats/hl7_aecg/hl7_2003-12_ballot_Example_aECG_Mortara.xml",),
    (next((DATA / "cxr/dicom").glob("*.dcm")),),
    (DATA / "formats/scp_ecg/ecgtoolkit_Example.scp",),
    (DATA / "formats/scp_ecg/welchallyn_cardiocontrol_ECG_20060620_112352_ANON000002.SCP",),
    (DATA / "formats/edf/DERIVED_from_mortara_eli250_dicom.edf",),
    (DATA / "formats/edf/pyedflib_test_generator_SYNTHETIC.bdf",),
    (DATA / "cxr/png/nih/00000001_000.png",),
]
EDITS = ["", "-1", "0", "1", "1e12", "1000000000000", "x", "999", "nan", "inf", "16x0", "16x3",
         "212", "8", "1e400", "/", "(", "~", "0(0)/uV", "-5(3)/V", "#", "99999999999999999999"]


def _mutate(data: bytes, is_header: bool, draw) -> bytes:
    kind = draw(st.sampled_from(["flip", "truncate", "random", "edit"] if is_header
                                else ["flip", "truncate", "random", "splice"]))
    if kind == "flip":
        buf = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            if buf:
                pos = draw(st.integers(0, len(buf) - 1))
                buf[pos] ^= 1 << draw(st.integers(0, 7))
        return bytes(buf)
    if kind == "truncate":
        return data[:draw(st.integers(0, max(0, len(data) - 1)))]
    if kind == "random":
        return draw(st.binary(min_size=0, max_size=2048))
    if kind == "splice":  # overwrite a stretch in the middle with random bytes
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        chunk = draw(st.binary(min_size=1, max_size=64))
        return data[:pos] + chunk + data[pos + len(chunk):]
    lines = data.decode("latin-1").splitlines()
    index = draw(st.integers(0, len(lines) - 1))
    action = draw(st.sampled_from(["token", "delete", "duplicate"]))
    if action == "delete":
        del lines[index]
    elif action == "duplicate":
        lines.insert(index, lines[index])
    else:
        tokens = lines[index].split(" ")
        t = draw(st.integers(0, len(tokens) - 1))
        tokens[t] = draw(st.sampled_from(EDITS))
        lines[index] = " ".join(tokens)
    return ("\n".join(lines) + "\n").encode("latin-1")


def _check_result(result) -> None:
    if isinstance(result, EcgRecord):
        assert result.signal.dtype == np.float32 and result.signal.ndim == 2
        assert result.signal.shape[0] == len(result.leads) >= 1
        assert result.fs > 0
        if result.extra_signal is not None:
            assert result.extra_signal.shape == (len(result.extra_names), result.signal.shape[1])
    else:
        assert isinstance(result, CxrImage)
        assert result.pixels.dtype == np.float32 and result.pixels.ndim == 2
        assert np.all((result.pixels >= 0) & (result.pixels <= 1))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          derandomize=True)
@given(st.data())
def test_mutated_files_raise_only_typed_errors(data):
    sample = data.draw(st.sampled_from(SAMPLES))
    target = data.draw(st.integers(0, len(sample) - 1))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for f in sample:
            shutil.copy(f, folder / f.name)
            (folder / f.name).chmod(0o644)
        victim = folder / sample[target].name
        is_header = victim.suffix in (".hea", ".xml")  # text formats: also token and line edits
        victim.write_bytes(_mutate(victim.read_bytes(), is_header, data.draw))
        opened = folder / sample[0].name
        for reader in (read_ecg, lambda p: read_ecg(p, annotations=False), read_cxr):  # both ECG paths
            start = time.perf_counter()
            try:
                _check_result(reader(opened))
            except CromotexError as exc:
                assert str(exc), "typed errors carry a message"
                assert "(unexpected " not in str(exc), f"caught only by the safety net: {exc}"
            assert time.perf_counter() - start < 10.0, "a reader took over 10 s"


SCP_FILES = [DATA / "formats/scp_ecg/ecgtoolkit_Example.scp",
             DATA / "formats/scp_ecg/welchallyn_cardiocontrol_ECG_20060620_112352_ANON000002.SCP"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          derandomize=True)
@given(st.data())
def test_mutated_scp_with_valid_crcs_raise_only_typed_errors(data):
    """SCP-ECG mutations with the CRCs recomputed, so that the damage reaches the section
    parsers and the Huffman decoder instead of stopping at the checksum."""
    source = data.draw(st.sampled_from(SCP_FILES))
    buf = bytearray(_mutate(source.read_bytes(), False, data.draw))
    fix_crcs(buf)
    with tempfile.TemporaryDirectory() as tmp:
        victim = Path(tmp) / source.name
        victim.write_bytes(bytes(buf))
        for annotations in (True, False):
            start = time.perf_counter()
            try:
                _check_result(read_ecg(victim, annotations=annotations))
            except CromotexError as exc:
                assert str(exc) and "(unexpected " not in str(exc), f"caught only by the safety net: {exc}"
            assert time.perf_counter() - start < 10.0, "a reader took over 10 s"
