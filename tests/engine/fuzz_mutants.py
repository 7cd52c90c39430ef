"""Mutants of the real sample files for fuzzing every reader (shared by
tests/engine/test_reader_fuzz_all.py, a small deterministic budget in CI, and
bench/fuzz_readers.py, a longer run on demand in child processes with time and memory
limits).

A *case* is one reader and the files of one sample (a WFDB record's header and signal
files, or one file); a *mutant* is a copy of a case in a fresh folder with one file
changed. Mutations: truncation, bit flips, byte insertion / deletion, spliced random
bytes, absurd lengths and dimensions (numbers in the file's structure replaced with
huge or negative ones), header field edits, and size bombs (small files declaring
huge dimensions, deflate bombs). File-system oddities (symlink loop, folder, fifo,
empty file, unreadable file, missing folder) are separate cases.

The readers of the [formats] work (XML, SCP, EDF) are included by `format_cases`:
every file under tests/data/formats/ is a case of `read_ecg`.
"""

from __future__ import annotations

import os
import random
import shutil
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.io import read_cxr, read_ecg

DATA = Path(__file__).resolve().parents[1] / "data"
FORMATS = DATA / "formats"
CXR_DICOM = next((DATA / "cxr/dicom").glob("*.dcm"))


def _read_ecg_signal_only(path):
    return read_ecg(path, annotations=False)


#: Reader name -> the function (the CLI's signal-only ECG read is a reader of its own).
READERS: dict[str, Callable] = {"read_ecg": read_ecg, "read_ecg_signal_only": _read_ecg_signal_only,
                                "read_cxr": read_cxr}


@dataclass(frozen=True)
class Case:
    """One sample: `files` copied together, `opened` (index) is the path given to the readers,
    `name` the family (wfdb, dicom-ecg, dicom-cxr, png, jpeg, or formats/<suffix>)."""

    name: str
    files: tuple[Path, ...]
    readers: tuple[str, ...]
    opened: int = 0


ECG_READERS = ("read_ecg", "read_ecg_signal_only")


def base_cases(jpeg_dir: Path) -> list[Case]:
    """The real samples of every reader. A JPEG is made (once, into `jpeg_dir`) from the
    DICOM chest X-ray's own JPEG Baseline frame: the same real image, no new file committed."""
    wfdb = DATA / "ecg"
    cases = [
        Case("wfdb", (wfdb / "wfdb/ludb/1.hea", wfdb / "wfdb/ludb/1.dat"), ECG_READERS),
        Case("wfdb", (wfdb / "wfdb/ptbxl/00001_lr.hea", wfdb / "wfdb/ptbxl/00001_lr.dat"), ECG_READERS),
        Case("wfdb", (wfdb / "wfdb_mat/cinc2021/E07505.hea", wfdb / "wfdb_mat/cinc2021/E07505.mat"),
             ECG_READERS),
        Case("wfdb", (wfdb / "wfdb/ptb_diagnostic/s0010_re.hea", wfdb / "wfdb/ptb_diagnostic/s0010_re.dat",
                      wfdb / "wfdb/ptb_diagnostic/s0010_re.xyz"), ECG_READERS),
        Case("dicom-ecg", (wfdb / "dicom/pydicom_waveform_ecg.dcm",), ECG_READERS),
        Case("dicom-cxr", (CXR_DICOM,), ("read_cxr",)),
        Case("png", (DATA / "cxr/png/nih/00000001_000.png",), ("read_cxr",)),
        Case("jpeg", (jpeg_from_dicom(jpeg_dir / "siim_frame.jpg"),), ("read_cxr",)),
    ]
    return cases + format_cases()


def format_cases() -> list[Case]:
    """Every sample file under tests/data/formats/ (the [formats] readers: XML, SCP, EDF ...),
    read as an ECG; a file named like a WFDB header keeps its siblings of the same stem."""
    if not FORMATS.is_dir():
        return []
    cases = []
    for path in sorted(p for p in FORMATS.rglob("*") if p.is_file()):
        if path.suffix.lower() in (".md", ".txt", ".csv", ".json") or path.name.startswith("."):
            continue
        cases.append(Case(f"formats/{path.parent.name}", (path,), ECG_READERS))
    return cases


def jpeg_from_dicom(out: Path) -> Path:
    """Write the first JPEG Baseline frame of the DICOM chest X-ray sample to `out`."""
    if not out.exists():
        import pydicom
        from pydicom.encaps import generate_frames

        ds = pydicom.dcmread(CXR_DICOM)
        out.write_bytes(next(generate_frames(ds.PixelData, number_of_frames=1)))
    return out


# --- mutations --------------------------------------------------------------------------

HEADER_EDITS = ["", "-1", "0", "1", "1e12", "1000000000000", "x", "999", "nan", "inf", "16x0", "16x3",
                "212", "8", "1e400", "/", "(", "~", "0(0)/uV", "-5(3)/V", "#", "99999999999999999999",
                "1" * 40 + "!", "a" * 300]
ABSURD = [0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFF, 0x7FFF, 0x8000, 0, 1 << 20]


def mutate(data: bytes, rng: random.Random, is_text: bool) -> tuple[str, bytes]:
    """(kind, mutated bytes) of one random mutation of `data`."""
    kinds = ["truncate", "flip", "insert", "delete", "splice", "absurd"]
    if is_text:
        kinds += ["edit", "edit", "longline"]
    kind = rng.choice(kinds)
    n = len(data)
    if kind == "truncate":
        return kind, data[:rng.randrange(max(n, 1))]
    if kind == "flip":
        buf = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            if buf:
                buf[rng.randrange(n)] ^= 1 << rng.randrange(8)
        return kind, bytes(buf)
    if kind == "insert":
        pos = rng.randrange(n + 1)
        return kind, data[:pos] + rng.randbytes(rng.randint(1, 64)) + data[pos:]
    if kind == "delete":
        pos = rng.randrange(max(n, 1))
        return kind, data[:pos] + data[pos + rng.randint(1, 64):]
    if kind == "splice":
        pos = rng.randrange(max(n, 1))
        chunk = rng.randbytes(rng.randint(1, 64))
        return kind, data[:pos] + chunk + data[pos + len(chunk):]
    if kind == "absurd":  # a length / dimension / count somewhere becomes huge, zero or negative
        buf = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            if n >= 4:
                pos = rng.randrange(n - 3)
                width = rng.choice((2, 4))
                value = rng.choice(ABSURD) & ((1 << (8 * width)) - 1)
                buf[pos:pos + width] = value.to_bytes(width, rng.choice(("little", "big")))
        return kind, bytes(buf)
    lines = data.decode("latin-1").splitlines() or [""]
    index = rng.randrange(len(lines))
    if kind == "longline":  # a long run ending in a character that fails the line's grammar
        run = rng.choice(("1", "a", " ", "(")) * rng.choice((25, 5_000, 20_000)) + rng.choice(("!", ""))
        lines[index] = run if rng.random() < 0.3 else lines[index] + run
    else:
        action = rng.choice(("token", "delete", "duplicate"))
        if action == "delete":
            del lines[index]
        elif action == "duplicate":
            lines.insert(index, lines[index])
        else:
            tokens = lines[index].split(" ")
            tokens[rng.randrange(len(tokens))] = rng.choice(HEADER_EDITS)
            lines[index] = " ".join(tokens)
    return kind, ("\n".join(lines) + "\n").encode("latin-1")


def make_mutant(case: Case, folder: Path, rng: random.Random) -> tuple[Path, str]:
    """Copy `case` into `folder` with one of its files mutated; (path to open, mutation kind)."""
    for f in case.files:
        shutil.copyfile(f, folder / f.name)
    victim = folder / case.files[rng.randrange(len(case.files))].name
    is_text = victim.suffix.lower() in (".hea", ".xml", ".txt")
    kind, data = mutate(victim.read_bytes(), rng, is_text)
    victim.write_bytes(data)
    return folder / case.files[case.opened].name, f"{victim.suffix.lstrip('.') or 'file'}:{kind}"


# --- size bombs -------------------------------------------------------------------------

def png_bomb(path: Path, width: int = 16384, height: int = 16383) -> Path:
    """A valid 8-bit grey PNG of `width` x `height` black pixels (268 megapixels: a ~260 KB
    file that decodes to 268 MB, and to gigabytes as floats), written in streamed pieces."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    comp = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte 0 + pixels
    idat = bytearray()
    for _ in range(height):
        idat += comp.compress(row)
    idat += comp.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", bytes(idat)) + chunk(b"IEND", b""))
    return path


def _deflated_dicom(path: Path, ds, big_keyword_tag: int, big_length: int) -> Path:
    """Write `ds` (a pydicom Dataset whose element `big_keyword_tag` holds 8 marker bytes)
    as a deflated DICOM in which that element holds `big_length` zero bytes, streamed
    through zlib so that neither this process nor the file holds them."""
    import io

    import pydicom
    from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian

    marker = b"\xfe\xedBOMB\xfa\xce"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    body = io.BytesIO()
    pydicom.dcmwrite(body, ds, enforce_file_format=True)
    raw = body.getvalue()
    meta_end = 132 + 12 + int.from_bytes(raw[140:144], "little")
    data = raw[meta_end:]
    group, elem = big_keyword_tag >> 16, big_keyword_tag & 0xFFFF
    head = struct.pack("<HH", group, elem) + b"OW\x00\x00" + struct.pack("<I", len(marker))
    at = data.index(head + marker)
    prefix = data[:at] + struct.pack("<HH", group, elem) + b"OW\x00\x00" + struct.pack("<I", big_length)
    suffix = data[at + len(head) + len(marker):]
    meta = pydicom.dataset.FileMetaDataset(ds.file_meta)
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    meta_buf = io.BytesIO()
    pydicom.filewriter.write_file_meta_info(pydicom.filebase.DicomFileLike(meta_buf), meta)
    comp = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    out = bytearray(comp.compress(prefix))
    zeros, left = bytes(1 << 20), big_length
    while left:
        out += comp.compress(zeros[:min(left, len(zeros))])
        left -= min(left, len(zeros))
    out += comp.compress(suffix) + comp.flush()
    path.write_bytes(b"\x00" * 128 + b"DICM" + meta_buf.getvalue() + bytes(out))
    return path


def dicom_cxr_bomb(path: Path, rows: int = 16384, cols: int = 16384) -> Path:
    """The DICOM chest X-ray sample as uncompressed 16-bit pixels of `rows` x `cols` (512 MB
    at the default), deflated into a file of about 0.5 MB."""
    import pydicom

    ds = pydicom.dcmread(CXR_DICOM)
    ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored, ds.HighBit = rows, cols, 16, 12, 11
    ds.PixelData = b"\xfe\xedBOMB\xfa\xce"
    ds["PixelData"].VR = "OW"
    ds["PixelData"].is_undefined_length = False
    return _deflated_dicom(path, ds, 0x7FE00010, rows * cols * 2)


def dicom_ecg_bomb(path: Path, samples: int = 3_500_000) -> Path:
    """The DICOM ECG sample with its rhythm group declaring `samples` samples per channel (12
    channels, 16 bits: 84 MB at the default, over the 40-million-sample limit but under the
    inflate limit), deflated into a file of about 0.1 MB."""
    import pydicom

    ds = pydicom.dcmread(DATA / "ecg/dicom/pydicom_waveform_ecg.dcm")
    group = ds.WaveformSequence[0]
    group.NumberOfWaveformSamples = samples
    group.WaveformData = b"\xfe\xedBOMB\xfa\xce"
    group["WaveformData"].VR = "OW"
    n_ch = int(group.NumberOfWaveformChannels)
    return _deflated_dicom(path, ds, 0x54001010, n_ch * samples * 2)


def bomb_cases(folder: Path, small: bool = True) -> list[tuple[str, Path, str]]:
    """(family, path, reader) of each size bomb, written into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    out = [("png", png_bomb(folder / "bomb.png", 13000, 13000), "read_cxr"),  # under Pillow's own limit
           ("dicom-cxr", dicom_cxr_bomb(folder / "bomb_cxr.dcm"), "read_cxr"),
           ("dicom-ecg", dicom_ecg_bomb(folder / "bomb_ecg.dcm"), "read_ecg"),
           ("dicom-ecg", folder / "bomb_ecg.dcm", "read_ecg_signal_only")]
    n = 24 * 3600 * 500  # a day at 500 Hz, 12 leads, in a sparse file
    (folder / "day.hea").write_text("\n".join([f"day 12 500 {n}"] + [
        f"day.dat 16 200/mV 16 0 0 0 0 {lead}" for lead in
        ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")]) + "\n")
    with open(folder / "day.dat", "wb") as fh:
        fh.truncate(n * 12 * 2)
    out.append(("wfdb", folder / "day.hea", "read_ecg"))
    if not small:
        out.append(("dicom-cxr", dicom_cxr_bomb(folder / "bomb_cxr_4g.dcm", 32768, 32768), "read_cxr"))
    return out


# --- file-system oddities ---------------------------------------------------------------

def oddity_cases(folder: Path) -> list[tuple[str, Path]]:
    """(name, path) of paths that are not plain readable files, made in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    loop_a, loop_b = folder / "loop_a.hea", folder / "loop_b.hea"
    os.symlink(loop_b, loop_a)
    os.symlink(loop_a, loop_b)
    (folder / "a_folder.hea").mkdir()
    (folder / "empty.dcm").write_bytes(b"")
    unreadable = folder / "unreadable.dcm"
    shutil.copyfile(DATA / "ecg/dicom/pydicom_waveform_ecg.dcm", unreadable)
    unreadable.chmod(0)
    out = [("symlink-loop", loop_a), ("folder", folder / "a_folder.hea"), ("empty", folder / "empty.dcm"),
           ("unreadable", unreadable), ("missing-folder", folder / "no_such_folder" / "x.hea"),
           ("dangling-symlink", folder / "dangling.hea")]
    os.symlink(folder / "nothing_here.hea", folder / "dangling.hea")
    if hasattr(os, "mkfifo"):
        os.mkfifo(folder / "fifo.hea")
        out.append(("fifo", folder / "fifo.hea"))
    return out
