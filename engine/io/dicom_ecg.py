"""Read a DICOM waveform (12-lead ECG, General ECG, Hemodynamic ...) into an `EcgRecord`.

The rhythm multiplex group gives the signal: the group labelled "RHYTHM", else
the longest original group that is not labelled as a median/average beat. The
median-beat group, device measurements, interpretation statements, patient and
acquisition fields go to `meta`.

Samples are converted as pydicom's `waveform_array(as_raw=False)` does:
`raw * ChannelSensitivity * ChannelSensitivityCorrectionFactor + ChannelBaseline`,
in ChannelSensitivityUnits, then to mV (uV / 1000). Sizes are checked against the
bytes present before any array is made. A sensitivity, correction factor or baseline
that is not a finite number is a CorruptFileError (it would turn every sample into NaN).

WaveformPaddingValue: samples equal to the padding value become gaps (NaN) only when
that value is outside the data's plausible use, i.e. the most negative or most
positive value of the sample type other than 0 (-32768 / 32767 for 16-bit signed, 65535
for 16-bit unsigned). A padding value of 0, or any other value inside the range, is a
value real samples take (a 0 uV sample is common), so it is ignored: reading it as a
gap would punch holes in a normal ECG. The count of gap samples goes to
`meta["padded_samples"]`.

Several multiplex groups: the rhythm group as above; a median-beat group that cannot be
decoded (an unsupported sample type, damaged definitions) costs only the median beats
(noted in `meta["warnings"]`), never the file. Invalid UIDs are not checked: nothing
here depends on them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import CorruptFileError, LeadError, ReadError, UnsupportedFormatError
from engine.io.dicom_common import dicom_kind, element_text, open_dicom, sop_class_name
from engine.io.guard import corrupt_file_errors
from engine.io.dicom_ecg_meta import PATIENT_KEYWORDS, annotations_meta, device_measurements_of, patient_meta
from engine.io.leadnames import canonical_lead, order_leads
from engine.io.limits import WAVEFORM_MAX_CHANNELS, WAVEFORM_MAX_GROUPS, check_waveform_size
from engine.io.units import mv_factor
from engine.records import EcgRecord, Source

log = logging.getLogger(__name__)

_DTYPES = {(8, "SB"): "i1", (8, "UB"): "u1", (16, "SS"): "<i2", (16, "US"): "<u2",
           (32, "SL"): "<i4", (32, "UL"): "<u4", (64, "SV"): "<i8", (64, "UV"): "<u8"}
#: Most channels a multiplex group may declare (`engine.io.limits`).
_MAX_CHANNELS = WAVEFORM_MAX_CHANNELS
#: Top-level keywords a signal-only read (`annotations=False`) parses: what `dicom_kind` and the
#: error messages look at, the character set, the waveform and the patient fields.
SIGNAL_ONLY_KEYWORDS: tuple[str, ...] = (
    "SpecificCharacterSet", "SOPClassUID", "Modality", "WaveformSequence", "PixelData", "FloatPixelData",
    "DoubleFloatPixelData", "EncapsulatedDocument") + PATIENT_KEYWORDS


def read_dicom_ecg(path: Path, annotations: bool = True) -> EcgRecord:
    """Read a DICOM waveform file.

    Args:
        path: the DICOM file.
        annotations: False for a signal-only read (batch scoring): only the top-level
            elements of SIGNAL_ONLY_KEYWORDS are parsed (the others, e.g. the waveform
            annotation sequence, are cut out of the bytes first: `engine.io.dicom_skim`)
            and the median-beat group is not decoded; the signal is identical. On
            tests/data's sample (77 annotations) it takes 4.1 ms, 8.5 ms before the cut
            (medians of 60 reads).

    Returns:
        EcgRecord: `signal` float32 `[n_leads, n_samples]` in mV from the rhythm
        group; `meta["median_beats"]` = {"signal": float32 `[n, m]` mV, "fs": Hz,
        "leads": tuple}; `meta["measurements"]` list of {"name", "value",
        "units", "group"}; `meta["statements"]` list of str; patient and
        acquisition fields (see `engine.io.dicom_ecg_meta.patient_meta`).

    Raises:
        UnsupportedFormatError: the DICOM holds an image, a PDF or something else.
        CorruptFileError: waveform data shorter than declared, bad channel definitions.
        LeadError: no standard ECG lead among the channels.
    """
    ds = open_dicom(path, "ECG", None if annotations else SIGNAL_ONLY_KEYWORDS)
    kind = dicom_kind(ds)
    if kind == "image":
        raise UnsupportedFormatError(
            f"{path} is a DICOM image ({sop_class_name(ds)}, modality "
            f"{element_text(ds, 'Modality')}), not an ECG waveform. If it is a chest X-ray, open it "
            f"as a chest X-ray.")
    if kind == "pdf":
        raise UnsupportedFormatError(
            f"{path} is a DICOM encapsulated PDF (a printed ECG report), which holds no samples. "
            f"Export the ECG from the ECG system as a DICOM waveform or WFDB record instead.")
    if kind != "waveform":
        raise UnsupportedFormatError(
            f"{path} is a DICOM {sop_class_name(ds)} object with no waveform data. Open a "
            f"DICOM 12-lead ECG waveform file.")
    return decode_dicom_ecg(ds, path, annotations)


def decode_dicom_ecg(ds, path: Path, annotations: bool = True) -> EcgRecord:
    """The `EcgRecord` of an already parsed DICOM waveform data set `ds` (`pydicom.Dataset`
    whose `dicom_kind` is "waveform") read from `path`; as `read_dicom_ecg` (same errors)."""
    with corrupt_file_errors(  # damaged element values make pydicom raise many types
            path, lambda error: f"The DICOM ECG {path} is damaged ({error}). Export the ECG again.",
            f"The DICOM ECG {path} claims more data than can be read."):
        return _read(ds, path, annotations)


def _read(ds, path: Path, annotations: bool) -> EcgRecord:
    groups = list(ds.get("WaveformSequence", None) or [])
    if not groups:
        raise CorruptFileError(f"The DICOM ECG {path} has an empty waveform sequence.")
    if len(groups) > WAVEFORM_MAX_GROUPS:
        raise CorruptFileError(f"The DICOM ECG {path} has {len(groups)} multiplex groups; at most "
                               f"{WAVEFORM_MAX_GROUPS} are read. The file is probably damaged.")
    rhythm = _pick_rhythm(groups)
    signal, fs, labels, units = _decode_group(groups[rhythm], path)
    padded = int(np.isnan(signal).sum())
    lead_rows, extra_rows = order_leads(
        [label if mv_factor(unit) is not None else None for label, unit in zip(labels, units)])
    if not lead_rows:
        raise LeadError(f"The DICOM waveform {path} has none of the 12 standard ECG leads "
                        f"(channels: {', '.join(labels)}). Open a 12-lead ECG.")
    leads_mv = _to_mv(signal, units, lead_rows)
    meta: dict[str, Any] = {"sop_class": sop_class_name(ds), "rhythm_group": rhythm,
                            "original_lead_names": [labels[i] for i in lead_rows]}
    if padded:
        meta["padded_samples"] = padded
    meta.update(patient_meta(ds))
    if annotations:
        meta.update(annotations_meta(ds))
        if "measurements" in meta and (device := device_measurements_of(meta["measurements"])):
            meta["device_measurements"] = device
    median = _pick_median(groups, rhythm) if annotations else None
    if median is not None:
        try:
            with corrupt_file_errors(path, lambda error: f"damaged median-beat group ({error})", "too large"):
                m_signal, m_fs, m_labels, m_units = _decode_group(groups[median], path)
            m_rows, _ = order_leads([lb if mv_factor(u) is not None else None
                                     for lb, u in zip(m_labels, m_units)])
            if m_rows:
                meta["median_beats"] = {"signal": _to_mv(m_signal, m_units, m_rows), "fs": m_fs,
                                        "leads": tuple(canonical_lead(m_labels[i]) for i in m_rows)}
        except ReadError as exc:  # the rhythm is still usable (also for an unsupported sample type)
            log.warning("median beats of %s not read: %s", path, exc)
            meta.setdefault("warnings", []).append(f"median beats not read: {exc}")
    return EcgRecord(
        signal=leads_mv, fs=fs, leads=tuple(canonical_lead(labels[i]) for i in lead_rows),
        meta=meta, source=Source(path=str(path), format="dicom-ecg"),
        extra_signal=(np.ascontiguousarray(signal[extra_rows], dtype=np.float32)
                      if extra_rows else None),
        extra_names=tuple(labels[i] for i in extra_rows),
        extra_units=tuple(units[i] for i in extra_rows))


def _label(group) -> str:
    return str(group.get("MultiplexGroupLabel", "") or "").upper()


def _is_median(group) -> bool:
    label = _label(group)
    return "MEDIAN" in label or "BEAT" in label or "AVERAGE" in label or "TEMPLATE" in label


def _duration(group) -> float:
    try:
        return float(group.NumberOfWaveformSamples) / float(group.SamplingFrequency)
    except Exception:
        return -1.0


def _pick_rhythm(groups: list) -> int:
    """Index of the rhythm group: labelled RHYTHM, else the longest non-median group."""
    for i, g in enumerate(groups):
        if "RHYTHM" in _label(g):
            return i
    candidates = [i for i, g in enumerate(groups) if not _is_median(g)] or list(range(len(groups)))
    return max(candidates, key=lambda i: _duration(groups[i]))


def _pick_median(groups: list, rhythm: int) -> int | None:
    for i, g in enumerate(groups):
        if i != rhythm and _is_median(g):
            return i
    return None


def _channel_units(ch) -> str:
    """The channel's unit: the code value ("uV", "mV": UCUM); under a coding scheme other
    than UCUM whose code value is not a voltage unit this program knows, the code meaning
    when that is one ("microvolt"); "uV" when the file gives no unit."""
    seq = ch.get("ChannelSensitivityUnitsSequence", None)
    if seq:
        value = str(seq[0].get("CodeValue", "") or "").strip()
        meaning = str(seq[0].get("CodeMeaning", "") or "").strip()
        scheme = str(seq[0].get("CodingSchemeDesignator", "") or "").strip().upper()
        if (scheme != "UCUM" and value and mv_factor(value) is None and meaning
                and mv_factor(meaning) is not None):
            return meaning
        return value or meaning or "uV"
    return "uV"  # DICOM ECG sensitivity is in uV when the unit is not given (CID 3082 default)


def _channel_label(ch, index: int) -> str:
    seq = ch.get("ChannelSourceSequence", None)
    if seq:
        item = seq[0]
        meaning = str(item.get("CodeMeaning", "") or "")
        if canonical_lead(meaning) is not None:
            return meaning
        value = str(item.get("CodeValue", "") or "")
        if canonical_lead(value) is not None:
            return canonical_lead(value)
        if meaning:
            return meaning
    return str(ch.get("ChannelLabel", "") or f"channel {index + 1}")


def _decode_group(group, path: Path) -> tuple[np.ndarray, float, list[str], list[str]]:
    """(physical float64 `[n_channels, n_samples]` in each channel's units, fs Hz,
    labels, units) of one multiplex group."""
    n_ch = int(group.NumberOfWaveformChannels)
    n_s = int(group.NumberOfWaveformSamples)
    fs = float(group.SamplingFrequency)
    bits = int(group.WaveformBitsAllocated)
    interp = str(group.WaveformSampleInterpretation)
    if not (0 < n_ch <= _MAX_CHANNELS and n_s > 0 and np.isfinite(fs) and 0 < fs <= 1e6):
        raise CorruptFileError(f"The DICOM waveform {path} declares impossible sizes "
                               f"({n_ch} channels, {n_s} samples, {fs} Hz).")
    check_waveform_size(n_ch, n_s, f"The DICOM waveform {path}")
    dtype = _DTYPES.get((bits, interp))
    if dtype is None:
        raise UnsupportedFormatError(f"The DICOM waveform {path} stores samples as {bits}-bit "
                                     f"{interp!r}, which is not supported.")
    data = group.get("WaveformData", None)
    data = b"" if data is None else bytes(data) if not isinstance(data, bytes) else data
    need = n_ch * n_s * (bits // 8)
    if len(data) < need:
        raise CorruptFileError(f"The DICOM waveform {path} is truncated: {n_ch} channels x "
                               f"{n_s} samples need {need} bytes, the file has {len(data)}.")
    channels = list(group.get("ChannelDefinitionSequence", None) or [])
    if len(channels) != n_ch:
        raise CorruptFileError(f"The DICOM waveform {path} defines {len(channels)} channels but "
                               f"declares {n_ch}.")
    raw = np.frombuffer(data, dtype=dtype, count=n_ch * n_s).reshape(n_s, n_ch)
    physical = raw.T.astype(np.float64, order="C")  # rows contiguous for the per-channel scaling
    gap = _padding_gap_value(group, dtype)
    if gap is not None:
        physical[raw.T == gap] = np.nan
    labels, units = [], []
    for i, ch in enumerate(channels):
        sensitivity = _number(ch, "ChannelSensitivity", 1.0, path, i)
        correction = _number(ch, "ChannelSensitivityCorrectionFactor", 1.0, path, i)
        baseline = _number(ch, "ChannelBaseline", 0.0, path, i)
        physical[i] *= sensitivity * correction
        physical[i] += baseline
        labels.append(_channel_label(ch, i))
        units.append(_channel_units(ch))
    return physical, fs, labels, units


def _number(ch, keyword: str, default: float, path: Path, index: int) -> float:
    """A channel's DS value as a float (`default` when absent or empty); not finite -> CorruptFileError."""
    value = ch.get(keyword, None)
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    number = float(value)
    if not np.isfinite(number):
        raise CorruptFileError(f"The DICOM waveform {path} gives channel {index + 1} a {keyword} of "
                               f"{value!s}, which is not a number; the file is damaged. Export it again.")
    return number


def _padding_gap_value(group, dtype: str) -> int | None:
    """The raw value that marks gaps (see the module docstring), or None."""
    value = group.get("WaveformPaddingValue", None)
    if value is None:
        return None
    raw = bytes(value) if not isinstance(value, int) else None
    if raw is not None:
        size = np.dtype(dtype).itemsize
        if len(raw) < size:
            return None
        padding = int(np.frombuffer(raw[:size], dtype=dtype)[0])
    else:
        padding = int(value)
    info = np.iinfo(np.dtype(dtype))
    return padding if padding != 0 and padding in (info.min, info.max) else None


def _to_mv(physical: np.ndarray, units: list[str], rows: list[int]) -> np.ndarray:
    """float32 `[len(rows), n]` in mV of rows `rows` of `physical` (float64, each row in its
    `units`): the float64 product rounded once to float32."""
    picked = physical[:len(rows)] if rows == list(range(len(rows))) else physical[rows]
    out = np.empty(picked.shape, dtype=np.float32)
    np.multiply(picked, np.array([[mv_factor(units[i])] for i in rows]), out=out, casting="same_kind")
    return out
