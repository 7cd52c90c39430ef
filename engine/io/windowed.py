"""Windowed ECG reads of any length: `open_ecg(path) -> EcgSource`.

`engine.io.read_ecg` holds the whole signal in memory and so refuses records over the
sample limits of `engine.io.limits` (a 24-hour 12-lead 500 Hz Holter declares 43.2 M
samples per channel). `open_ecg` reads only the header at open and then any window
on demand, so memory is bounded by the window, not the record:

- WFDB formats 16 and 212 (one sample per frame, no skew): a window is read as the
  byte range of the signal files that holds it (`np.fromfile` with an offset; not a
  memmap, whose touched pages would count in the app's resident memory while the
  overview scans a 1 GB file); a window's digital samples are converted with the
  same code as the full read (`wfdb_reader._build_record`), so a window equals the
  same samples of the full read bit for bit (tested).
- EDF / EDF+C: `edfio` opened lazily; a window reads only the data records it
  overlaps (`EdfSignal.get_data_slice`) and goes through the full read's lead
  assembly (`edf._record`) on a view of the file cut to the window.
- Every other format (DICOM, XML, SCP, BDF (edfio 0.4 has no lazy BDF read), other
  WFDB formats) is read whole by
  `read_ecg`, under its limits: those files are 10 s to a few minutes by nature
  (a DICOM waveform's 32-bit value length caps it at 4 GiB anyway).

What a windowed read does not do: verify the WFDB header's checksums (that needs
every sample; the full read does it), read EDF+ annotations, or return the extra
(non-lead) channels. `overview()` reads the whole record once, in bounded chunks.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import CorruptFileError, LeadError
from engine.io.limits import WAVEFORM_MAX_CHANNELS
from engine.records import EcgRecord, Source

__all__ = ["EcgSource", "Overview", "open_ecg", "probe_duration_s", "OVERVIEW_CHUNK_SAMPLES"]

log = logging.getLogger(__name__)

#: Samples per channel read at a time by `EcgSource.overview` (about 1 MB per lead
#: as float32 at 250 k samples; the float64 conversion doubles it briefly).
OVERVIEW_CHUNK_SAMPLES = 250_000


@dataclass(frozen=True)
class Overview:
    """Downsampled min/max envelope of a whole record.

    Attributes:
        t_s: float64 `[n_points]`, start time (s) of each bin.
        lo, hi: float32 `[n_leads, n_points]`, minimum / maximum (mV) of each bin
            (NaN samples ignored; a bin of only NaN is NaN).
        bin_samples: samples per bin (the last bin may hold fewer).
    """

    t_s: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    bin_samples: int


@dataclass
class EcgSource:
    """An open ECG record read window by window.

    Attributes:
        fs: sampling rate, Hz.
        leads: canonical lead names of the rows `read` returns (as `EcgRecord.leads`).
        n_samples: samples per lead of the whole record.
        meta: the header's patient / acquisition fields (as `EcgRecord.meta`).
        source: path and format.
        windowed: True when reads touch only the window (memory-mapped / record-wise);
            False when the record was read whole (small formats).
    """

    fs: float
    leads: tuple[str, ...]
    n_samples: int
    meta: dict[str, Any] = field(default_factory=dict)
    source: Source | None = None
    windowed: bool = False
    _reader: Any = None  # callable (start, stop) -> EcgRecord of that window

    @property
    def duration_s(self) -> float:
        """Length of the record, seconds."""
        return self.n_samples / float(self.fs)

    def _clip(self, start: int, stop: int) -> tuple[int, int]:
        start, stop = max(0, int(start)), min(self.n_samples, int(stop))
        if stop <= start:
            raise ValueError(f"empty window {start}:{stop} of a record of {self.n_samples} samples")
        return start, stop

    def record(self, start_sample: int, stop_sample: int) -> EcgRecord:
        """Samples `start_sample:stop_sample` (clipped to the record) as an `EcgRecord`:
        signal float32 `[n_leads, n]` mV, the same leads / fs / meta as the source."""
        start, stop = self._clip(start_sample, stop_sample)
        return self._reader(start, stop)

    def read(self, start_sample: int, stop_sample: int) -> np.ndarray:
        """Signal float32 `[n_leads, n]` in mV of samples `start_sample:stop_sample`
        (clipped to the record), equal to the same columns of `read_ecg(path).signal`."""
        return self.record(start_sample, stop_sample).signal

    def overview(self, n_points: int, chunk_samples: int = OVERVIEW_CHUNK_SAMPLES) -> Overview:
        """Min/max envelope of the whole record in `n_points` bins, read in chunks of
        about `chunk_samples` samples (whole bins), so memory is bounded for any length."""
        n_points = max(1, min(int(n_points), self.n_samples))
        bin_samples = math.ceil(self.n_samples / n_points)
        n_points = math.ceil(self.n_samples / bin_samples)
        lo = np.full((len(self.leads), n_points), np.nan, dtype=np.float32)
        hi = np.full_like(lo, np.nan)
        bins_per_chunk = max(1, chunk_samples // bin_samples)
        for b0 in range(0, n_points, bins_per_chunk):
            b1 = min(n_points, b0 + bins_per_chunk)
            x = self.read(b0 * bin_samples, b1 * bin_samples)
            pad = (b1 - b0) * bin_samples - x.shape[1]
            if pad:
                x = np.concatenate([x, np.full((x.shape[0], pad), np.nan, np.float32)], axis=1)
            x = x.reshape(x.shape[0], b1 - b0, bin_samples)
            with np.errstate(invalid="ignore"), _quiet_all_nan():
                lo[:, b0:b1] = np.nanmin(x, axis=2)
                hi[:, b0:b1] = np.nanmax(x, axis=2)
        t_s = np.arange(n_points, dtype=np.float64) * bin_samples / self.fs
        return Overview(t_s=t_s, lo=lo, hi=hi, bin_samples=bin_samples)


class _quiet_all_nan:
    """Silence numpy's "All-NaN slice" RuntimeWarning (an all-NaN bin is NaN, on purpose)."""

    def __enter__(self):
        import warnings
        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


def open_ecg(path: str | os.PathLike, *, annotations: bool = True,
             windowed_only: bool = False) -> EcgSource | None:
    """Open an ECG file for windowed reads (see the module doc for which formats are
    windowed and which are read whole).

    `windowed_only`: return None, without reading the file, where it would be read whole
    (a caller that reads such files itself then reads them once, not twice). Otherwise
    the result is never None.

    Raises:
        the `engine.errors.ReadError` subclasses `read_ecg` raises, with the same
        messages; a windowed file is checked (header against file sizes, leads) at open.
    """
    from engine.io import _guard, _resolve, _sibling_header
    from engine.io.sniff import sniff

    def _open(p0: str | os.PathLike) -> EcgSource | None:
        p = _resolve(p0, "ECG file")
        kind = sniff(p)
        header = p if kind == "wfdb-header" else (_sibling_header(p) if kind not in (
            "dicom", "edf", "bdf", "scp-ecg", "muse-xml", "philips-xml", "hl7-aecg", "xml") else None)
        if header is not None:
            src = _open_wfdb(header)
            if src is not None:
                return src
        if kind == "edf":  # edfio 0.4 reads BDF only whole: BDF goes to read_ecg
            return _open_edf(p)
        return None if windowed_only else _whole(p, annotations)

    return _guard(_open, path, "ECG")


def probe_duration_s(path: str | os.PathLike) -> float | None:
    """Duration (s) a windowed-format file declares, from its header alone (WFDB: the
    record line; EDF: data records x record duration), in well under a millisecond; None
    for other formats, a header without the length, or any error (the reader then gives
    the message). Lets a caller choose the windowed path without opening every file twice."""
    from engine.io import _resolve, _sibling_header
    from engine.io.files import read_bytes
    from engine.io.sniff import sniff

    try:
        p = _resolve(path, "ECG file")
        kind = sniff(p)
        if kind == "edf":
            head = read_bytes(p, 256, "EDF file")
            return int(head[236:244].decode("latin-1")) * float(head[244:252].decode("latin-1"))
        header = p if kind == "wfdb-header" else (None if kind in _NOT_WFDB else _sibling_header(p))
        if header is None:
            return None
        from engine.io import wfdb_reader as wr
        from engine.io.wfdb_header import parse_header

        raw = read_bytes(header, wr.MAX_HEADER_BYTES + 1, "WFDB header")
        h = parse_header(raw.decode("latin-1"), str(header))
        return None if h.n_samples is None or not h.fs else h.n_samples / float(h.fs)
    except Exception as exc:  # a probe: any problem is the reader's to report
        log.debug("probe_duration_s(%s): %s", path, exc)
        return None


_NOT_WFDB = ("dicom", "edf", "bdf", "scp-ecg", "muse-xml", "philips-xml", "hl7-aecg", "xml", "png", "jpeg")


def _whole(p: Path, annotations: bool) -> EcgSource:
    """A source over a record read whole by `read_ecg` (under its limits)."""
    from engine.io import read_ecg

    rec = read_ecg(p, annotations=annotations)

    def reader(start: int, stop: int) -> EcgRecord:
        return EcgRecord(signal=rec.signal[:, start:stop], fs=rec.fs, leads=rec.leads, meta=rec.meta,
                         source=rec.source,
                         extra_signal=None if rec.extra_signal is None else rec.extra_signal[:, start:stop],
                         extra_names=rec.extra_names, extra_units=rec.extra_units)

    return EcgSource(fs=float(rec.fs), leads=rec.leads, n_samples=rec.n_samples, meta=rec.meta,
                     source=rec.source, windowed=False, _reader=reader)


# --- WFDB -------------------------------------------------------------------------------

def _open_wfdb(header_path: Path) -> EcgSource | None:
    """A windowed (byte-range) source for a WFDB record in formats 16 / 212, else None."""
    from engine.io import wfdb_reader as wr
    from engine.io.wfdb_header import parse_header

    raw = wr.read_bytes(header_path, wr.MAX_HEADER_BYTES + 1, "WFDB header")
    if len(raw) > wr.MAX_HEADER_BYTES:
        return None  # the full read gives the message
    header = parse_header(raw.decode("latin-1"), str(header_path))
    if not header.signals or len(header.signals) > WAVEFORM_MAX_CHANNELS or not all(
            s.fmt in wr._FAST_FORMATS and s.samps_per_frame == 1 and s.skew == 0
            for s in header.signals):
        return None
    n = wr._check_sizes(header, header_path.parent)
    folder = header_path.parent
    files = [(idx, header.signals[idx[0]].fmt, folder / name, header.signals[idx[0]].byte_offset)
             for name, idx in wr._files(header).items()]

    def digital(start: int, stop: int) -> np.ndarray:
        """Digital samples int32 `[n_sig, stop - start]`, read as byte ranges of the files."""
        out = np.empty((len(header.signals), stop - start), dtype=np.int32)
        for idx, fmt, path, offset in files:
            k = len(idx)
            first, last = start * k, stop * k  # sample indices in the file's frame order
            if fmt == "16":
                data = np.fromfile(path, dtype="<i2", count=last - first, offset=offset + 2 * first)
            else:  # 212: samples 2j and 2j+1 share bytes 3j..3j+2
                pair0, pair1 = first // 2, (last + 1) // 2
                packed = np.fromfile(path, dtype=np.uint8, count=3 * (pair1 - pair0),
                                     offset=offset + 3 * pair0)
                data = wr._unpack_212(packed, 2 * (pair1 - pair0))
                data = data[first - 2 * pair0:first - 2 * pair0 + (last - first)]
            if data.size != last - first:
                raise CorruptFileError(f"WFDB signal file {path} is shorter than its header says; "
                                       f"copy the record again.")
            out[idx] = data.reshape(stop - start, k).T
        return out

    def reader(start: int, stop: int) -> EcgRecord:
        try:
            return wr._build_record(header, digital(start, stop), header_path)
        except OSError as exc:
            raise wr.ReadError(f"Cannot read the WFDB record {header_path}: "
                               f"{exc.strerror or exc}.") from exc

    first = reader(0, 1)  # leads, meta, and a LeadError now rather than at the first window
    return EcgSource(fs=first.fs, leads=first.leads, n_samples=n, meta=first.meta,
                     source=first.source, windowed=True, _reader=reader)


# --- EDF / BDF ----------------------------------------------------------------------------

class _SliceSignal:
    """An edfio signal seen through a window [start_s, stop_s): `.data` reads only that."""

    def __init__(self, signal: Any, start_s: float, stop_s: float):
        self._signal, self._start_s, self._stop_s = signal, start_s, stop_s

    def __getattr__(self, name: str) -> Any:
        return getattr(self._signal, name)

    @property
    def data(self) -> np.ndarray:
        return self._signal.get_data_slice(self._start_s, self._stop_s)


class _SliceEdf:
    """An edfio `Edf` cut to a window: its signals are `_SliceSignal`s, its duration the window's."""

    def __init__(self, edf: Any, start_s: float, stop_s: float, annotation_labels: tuple[str, ...]):
        self._edf = edf
        self.duration = stop_s - start_s
        self.signals = [_SliceSignal(s, start_s, stop_s) for s in edf.signals
                        if s.label not in annotation_labels]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._edf, name)


def _open_edf(path: Path) -> EcgSource:
    """A record-wise source for an EDF / EDF+C file (edfio, lazily loaded)."""
    from engine.io import edf as edf_mod
    from engine.io.files import file_size, read_bytes
    from engine.io.guard import corrupt_file_errors

    size = file_size(path, "EDF file")
    head = read_bytes(path, 256 * (edf_mod._MAX_SIGNALS + 1), "EDF file")
    bdf, _ = edf_mod._check_header(path, head, size, max_values=np.iinfo(np.int64).max)
    labels = (edf_mod._ANNOTATION_LABEL, edf_mod._BDF_ANNOTATION_LABEL)
    what = f"The {'BDF' if bdf else 'EDF'} file {path}"
    with corrupt_file_errors(path, lambda error: f"{what} is damaged ({error}). Export the ECG again.",
                             f"{what} claims more data than can be read."):
        import edfio
        edf = edfio.read_edf(path, lazy_load_data=True, header_encoding="latin-1")
    signals = [s for s in edf.signals if s.label not in labels]
    leads = [s for s in signals if edf_mod.ecg_lead_of_label(s.label) is not None]
    if not leads:
        raise LeadError(f"{what} has no channel labelled as one of the 12 standard ECG leads.")
    rates = [float(s.sampling_frequency) for s in leads]
    fs = max(set(rates), key=lambda r: (rates.count(r), r))
    n = int(round(float(edf.duration) * fs))
    if n <= 0:
        raise CorruptFileError(f"{what} holds no samples.")

    lock = threading.Lock()  # edfio's lazy loader may share one file position between threads

    def reader(start: int, stop: int) -> EcgRecord:
        with lock, corrupt_file_errors(path, lambda error: f"{what} is damaged ({error}). Export the ECG again.",
                                 f"{what} claims more data than can be read."):
            return edf_mod._record(_SliceEdf(edf, start / fs, stop / fs, labels), path, bdf, False)

    rec = reader(0, min(n, max(1, int(fs))))
    return EcgSource(fs=fs, leads=rec.leads, n_samples=n, meta=rec.meta, source=rec.source,
                     windowed=True, _reader=reader)
