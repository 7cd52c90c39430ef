"""Read a WFDB record (header + signal files) into an `EcgRecord`.

Fast path: formats 16 (including PhysioNet/CinC `.mat` files, written `16x1+24`)
and 212, one sample per frame, no skew: the header is parsed by
`engine.io.wfdb_header` and the samples are read with numpy, which is about 20x
faster than `wfdb.rdrecord` and gives bit-identical digital samples (tested).
Every other format goes through `wfdb.rdrecord(physical=False)`.
Both paths then apply the same conversion: (digital - baseline) / gain in float64,
NaN for the format's invalid-sample value, times the unit factor to mV, float32.

File sizes are checked against the header, and the samples it declares against
`engine.io.limits` (WAVEFORM_MAX_SAMPLES_PER_CHANNEL, WAVEFORM_MAX_TOTAL_SAMPLES), before
anything is allocated: a sparse file declaring 24 hours is refused, not read into 8 GB.
The header's checksum field is verified for every signal.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.errors import CorruptFileError, LeadError, MissingFileError, ReadError, UnsupportedFormatError
from engine.io.files import check_file, file_size, read_bytes
from engine.io.guard import corrupt_file_errors
from engine.io.leadnames import canonical_lead, order_leads
from engine.io.limits import HEADER_MAX_BYTES, check_waveform_size
from engine.io.units import mv_factor
from engine.io.wfdb_header import WfdbHeader, WfdbSignal, parse_header
from engine.io.wfdb_meta import header_meta
from engine.records import EcgRecord, Source

#: Largest header file accepted, bytes (`engine.io.limits.HEADER_MAX_BYTES`).
MAX_HEADER_BYTES = HEADER_MAX_BYTES
#: Bits per sample of the uncompressed WFDB formats (for size checks).
_BITS = {"8": 8, "16": 16, "24": 24, "32": 32, "61": 16, "80": 8, "160": 16,
         "212": 12, "310": 32 / 3, "311": 32 / 3}
#: Compressed (FLAC) formats: at least this many bits per sample are assumed
#: when checking a claimed length against the file size.
_FLAC = {"508", "516", "524"}
#: Digital value meaning "no sample" in each format (as wfdb uses).
_INVALID = {"80": -(2**7), "508": -(2**7), "310": -(2**9), "311": -(2**9), "212": -(2**11),
            "16": -(2**15), "61": -(2**15), "160": -(2**15), "516": -(2**15),
            "24": -(2**23), "524": -(2**23), "32": -(2**31)}
_FAST_FORMATS = {"16", "212"}
#: Stands for "no invalid-sample value" (formats absent from _INVALID): below any sample.
_NO_INVALID = np.iinfo(np.int64).min


def read_wfdb(header_path: Path) -> EcgRecord:
    """Read the WFDB record whose header is `header_path`.

    Returns:
        EcgRecord: `signal` float32 `[n_leads, n_samples]` mV (standard leads in
        canonical order), other channels in `extra_signal` in their own units;
        meta from the header comments (see `engine.io.wfdb_meta`).

    Raises:
        MissingFileError: a signal file named by the header does not exist.
        CorruptFileError: malformed header, truncated signal file, checksum mismatch.
        UnsupportedFormatError: multi-segment records, unknown formats.
        LeadError: none of the 12 standard leads is in the record.
    """
    raw = read_bytes(header_path, MAX_HEADER_BYTES + 1, "WFDB header")
    if len(raw) > MAX_HEADER_BYTES:
        raise CorruptFileError(f"{header_path} is too large to be a WFDB header "
                               f"(over {MAX_HEADER_BYTES // 1024} KiB).")
    header = parse_header(raw.decode("latin-1"), str(header_path))
    if not header.signals:
        raise LeadError(f"The WFDB record {header_path} has no signals, so it has no ECG "
                        f"leads to show. Check that this is the right header file.")
    n_samples = _check_sizes(header, header_path.parent)
    check_waveform_size(sum(s.samps_per_frame for s in header.signals), n_samples,
                        f"The WFDB record {header_path}")
    if all(s.fmt in _FAST_FORMATS and s.samps_per_frame == 1 and s.skew == 0
           for s in header.signals):
        digital = _read_fast(header, header_path.parent, n_samples)
    else:
        digital = _read_with_wfdb(header, header_path, n_samples)
    _verify_checksums(header, digital, header_path)
    return _build_record(header, digital, header_path)


def _files(header: WfdbHeader) -> dict[str, list[int]]:
    """Signal file name -> indices of its signals, in header order."""
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(header.signals):
        groups.setdefault(s.file_name, []).append(i)
    return groups


def _check_sizes(header: WfdbHeader, folder: Path) -> int:
    """Check every signal file exists and holds the samples the header claims.

    Returns the number of samples per signal (from the header, or from the file
    size when the header omits it)."""
    available: list[int] = []
    for name, idx in _files(header).items():
        if not name or name.startswith("~"):
            raise UnsupportedFormatError(f"The WFDB header {header.record_name} names no signal "
                                         f"file for some signals ('~'); it has no samples to read.")
        sigs = [header.signals[i] for i in idx]
        fmt = sigs[0].fmt
        if any(s.fmt != fmt for s in sigs) or fmt not in _BITS and fmt not in _FLAC:
            raise UnsupportedFormatError(
                f"WFDB signal file {name}: format {fmt!r} (or a mix of formats in one file) is "
                f"not supported. Supported: {', '.join(sorted(_BITS))}. Convert the record with "
                f"wfdb's wrsamp to format 16.")
        path = check_file(folder / name, "WFDB signal file")
        size = file_size(path, "WFDB signal file") - sigs[0].byte_offset
        if size < 0:
            raise CorruptFileError(f"WFDB signal file {path} is shorter than its byte offset "
                                   f"({sigs[0].byte_offset}); it is truncated.")
        frame = sum(s.samps_per_frame for s in sigs)
        bits = _BITS.get(fmt, 1.0)  # FLAC: generous bound, no format below 1 bit/sample
        fit = int(size * 8 // (bits * frame))
        available.append(fit)
        if header.n_samples is not None and header.n_samples > fit and fmt not in _FLAC:
            raise CorruptFileError(
                f"WFDB signal file {path} is truncated: the header says {header.n_samples} "
                f"samples per signal but the file holds only {fit}. Copy the record again.")
    if header.n_samples is not None:
        if header.n_samples > min(available):  # only reachable for FLAC files
            raise CorruptFileError(f"The WFDB header {header.record_name} claims "
                                   f"{header.n_samples} samples, more than its files can hold.")
        return header.n_samples
    n = min(available)
    if n == 0:
        raise CorruptFileError(f"The signal files of WFDB record {header.record_name} are empty.")
    return n


def _read_fast(header: WfdbHeader, folder: Path, n: int) -> np.ndarray:
    """Digital samples int32 `[n_sig, n]` of formats 16 / 212 read with numpy."""
    out = np.empty((len(header.signals), n), dtype=np.int32)
    for name, idx in _files(header).items():
        sig0 = header.signals[idx[0]]
        k = len(idx)
        path = folder / name
        try:
            if sig0.fmt == "16":
                data = np.fromfile(path, dtype="<i2", count=n * k, offset=sig0.byte_offset)
            else:
                n_bytes = (n * k * 3 + 1) // 2
                packed = np.fromfile(path, dtype=np.uint8, count=n_bytes, offset=sig0.byte_offset)
                data = _unpack_212(packed, n * k)
        except OSError as exc:
            raise ReadError(f"Cannot read the WFDB signal file {path}: {exc.strerror or exc}.") from exc
        if data.size != n * k:
            raise CorruptFileError(f"WFDB signal file {path} is truncated: expected {n * k} "
                                   f"samples, read {data.size}. Copy the record again.")
        out[idx] = data.reshape(n, k).T
    return out


def _unpack_212(packed: np.ndarray, count: int) -> np.ndarray:
    """Format 212: two 12-bit two's-complement samples in three bytes -> int16 `[count]`."""
    if packed.size % 3:
        packed = np.concatenate([packed, np.zeros(3 - packed.size % 3, np.uint8)])
    b = packed.reshape(-1, 3).astype(np.int16)
    pairs = np.empty((b.shape[0], 2), dtype=np.int16)
    pairs[:, 0] = b[:, 0] | ((b[:, 1] & 0x0F) << 8)
    pairs[:, 1] = b[:, 2] | ((b[:, 1] & 0xF0) << 4)
    pairs[pairs > 2047] -= 4096
    return pairs.reshape(-1)[:count]


def _read_with_wfdb(header: WfdbHeader, header_path: Path, n: int) -> np.ndarray:
    """Digital samples int64 `[n_sig, n]` of any other format, read by wfdb-python."""
    import wfdb  # imported here: it is slow to import and needed only for rare formats

    record_base = str(header_path.with_suffix("")) if header_path.suffix == ".hea" else str(header_path)
    with corrupt_file_errors(  # wfdb raises bare ValueError/IndexError/... on damaged files
            header_path, lambda error: f"wfdb could not read the signal of {header_path}: {error}. "
                                       f"The record is damaged or in an unusual variant; convert "
                                       f"it to format 16.",
            f"WFDB record {header_path} claims more data than can be read.",
            too_large_types=(MemoryError, OverflowError)):
        try:
            rec = wfdb.rdrecord(record_base, physical=False, sampto=n, return_res=64)
        except FileNotFoundError as exc:
            raise MissingFileError(f"A signal file of WFDB record {header_path} is missing: {exc}.") from exc
    digital = rec.d_signal
    if digital is None or digital.ndim != 2 or digital.shape[1] != len(header.signals):
        raise CorruptFileError(f"wfdb returned no usable samples for {header_path}.")
    return np.ascontiguousarray(digital.T)


def _verify_checksums(header: WfdbHeader, digital: np.ndarray, where: Path) -> None:
    """Compare each signal's 16-bit sample sum with the header's checksum field.

    `digital`: integer `[n_sig, n]`. Only the sums modulo 2**16 matter, so they are taken in
    the samples' own integer type, at least 32-bit (wrapping modulo 2**32 or 2**64 keeps
    them; int32 sums are 3x faster than int64 ones)."""
    want = [(i, s.checksum) for i, s in enumerate(header.signals) if s.checksum is not None]
    if not want or header.n_samples is None or digital.shape[1] != header.n_samples:
        return
    sums = digital.sum(axis=1, dtype=np.result_type(digital.dtype, np.int32))
    bad = [header.signals[i].description or str(i) for i, c in want
           if (int(sums[i]) - c) % 65536 != 0]
    if bad:
        raise CorruptFileError(f"WFDB record {where}: the samples of signal(s) {', '.join(bad)} "
                               f"do not match the header's checksum, so the signal file is "
                               f"damaged or belongs to another header. Copy the record again.")


def _mark_invalid(physical: np.ndarray, digital: np.ndarray, sigs: tuple[WfdbSignal, ...]) -> None:
    """Set NaN in `physical` (float64 `[n_sig, n]`) where `digital` (integer `[n_sig, n]`)
    holds its format's invalid-sample value; only signals whose minimum reaches that
    value are searched (the value is the format's most negative one)."""
    invalid = np.array([_INVALID.get(s.fmt, _NO_INVALID) for s in sigs], dtype=np.int64)
    for i in np.flatnonzero(digital.min(axis=1) <= invalid):
        physical[i, digital[i] == invalid[i]] = np.nan


def _build_record(header: WfdbHeader, digital: np.ndarray, header_path: Path) -> EcgRecord:
    """The record from digital samples (integer `[n_sig, n]`): physical units, mV leads."""
    sigs = header.signals
    factors = [mv_factor(s.units) for s in sigs]  # to mV; None: not a voltage
    labels = [s.description if f is not None else None for s, f in zip(sigs, factors)]
    lead_rows, extra_rows = order_leads(labels)
    if not lead_rows:
        names = ", ".join(s.description or "(unnamed)" for s in sigs)
        raise LeadError(f"The WFDB record {header_path} has none of the 12 standard ECG leads "
                        f"(its signals are: {names}). Open a 12-lead ECG record.")
    gain = np.array([[s.gain] for s in sigs], dtype=np.float64)
    baseline = np.array([[s.baseline] for s in sigs], dtype=np.float64)
    physical = np.subtract(digital, baseline)  # float64 [n_sig, n]
    np.divide(physical, gain, out=physical)
    _mark_invalid(physical, digital, sigs)
    for i in lead_rows:
        if factors[i] != 1.0:
            physical[i] *= factors[i]
    if lead_rows == list(range(len(lead_rows))):  # common case: leads are the first rows
        signal = physical[:len(lead_rows)].astype(np.float32)
    else:
        signal = physical[lead_rows].astype(np.float32)
    extra = physical[extra_rows].astype(np.float32) if extra_rows else None
    leads = tuple(canonical_lead(sigs[i].description) for i in lead_rows)
    meta = header_meta(header)
    meta["formats"] = sorted({s.fmt for s in sigs})
    meta["original_lead_names"] = [sigs[i].description for i in lead_rows]
    meta["original_units"] = [sigs[i].units for i in lead_rows]
    mat = any(s.file_name.lower().endswith(".mat") for s in sigs)
    return EcgRecord(signal=signal, fs=float(header.fs), leads=leads, meta=meta,
                     source=Source(path=str(header_path), format="wfdb-mat" if mat else "wfdb"),
                     extra_signal=extra,
                     extra_names=tuple(sigs[i].description for i in extra_rows),
                     extra_units=tuple(sigs[i].units for i in extra_rows))
