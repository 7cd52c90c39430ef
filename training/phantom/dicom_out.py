"""DICOM copies of a few phantom studies, so demos and reader tests see DICOM as well.

- CXR: Digital X-Ray (DX) Image Storage - For Presentation, MONOCHROME2, 8-bit unsigned,
  explicit VR little endian, uncompressed, with ViewPosition and PixelSpacing.
- ECG: 12-Lead ECG Waveform Storage, one RHYTHM multiplex group, 12 channels x 5000 samples
  at 500 Hz, signed 16-bit, ChannelSensitivity in uV per unit, channel sources coded with
  MDC (ISO/IEEE 11073) lead codes (``2:1`` ... ``2:64``, meanings ``MDC_ECG_LEAD_*``).
UIDs are derived deterministically from the MIMIC ids, so output is reproducible.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

DX_STORAGE = "1.2.840.10008.5.1.4.1.1.1.1"
ECG_12LEAD_STORAGE = "1.2.840.10008.5.1.4.1.1.9.1.1"
_MDC_CODE = {"I": 1, "II": 2, "V1": 3, "V2": 4, "V3": 5, "V4": 6, "V5": 7, "V6": 8,
             "III": 61, "aVR": 62, "aVL": 63, "aVF": 64}
_PREFIX = "1.2.826.0.1.3680043.8.498."  # pydicom's UID root


def _uid(*parts: object) -> str:
    return generate_uid(prefix=_PREFIX, entropy_srcs=[str(p) for p in parts])


def _base(sop_class: str, sop_uid: str, modality: str, subject_id: int, sex: str,
          study_uid: str, series_uid: str, when: dt.datetime) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = _PREFIX + "1"
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.Modality = modality
    ds.PatientID = str(subject_id)
    ds.PatientName = f"PHANTOM^{subject_id}"
    ds.PatientSex = sex
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyDate = ds.ContentDate = when.strftime("%Y%m%d")
    ds.StudyTime = ds.ContentTime = when.strftime("%H%M%S")
    ds.Manufacturer = "CroMoTEX phantom"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    return ds


def write_cxr_dicom(path: Path, image: np.ndarray, view: str, subject_id: int, sex: str,
                    study_id: int, dicom_id: str, when: dt.datetime,
                    pixel_spacing_mm: float = 0.7) -> None:
    """Write uint8 `[rows, cols]` `image` as a DX DICOM file at `path`."""
    ds = _base(DX_STORAGE, _uid("cxr", dicom_id), "DX", subject_id, sex,
               _uid("cxr-study", study_id), _uid("cxr-series", study_id), when)
    ds.AccessionNumber = str(study_id)
    ds.ViewPosition = view
    ds.BodyPartExamined = "CHEST"
    ds.PatientOrientation = ["R", "F"] if view != "AP" else ["L", "F"]
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.PixelSpacing = [f"{pixel_spacing_mm:.3f}", f"{pixel_spacing_mm:.3f}"]
    ds.ImagerPixelSpacing = ds.PixelSpacing
    ds.Rows, ds.Columns = int(image.shape[0]), int(image.shape[1])
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = np.ascontiguousarray(image, dtype=np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def write_ecg_dicom(path: Path, leads_mv: np.ndarray, lead_names: tuple[str, ...], fs: int,
                    subject_id: int, sex: str, study_id: int, when: dt.datetime,
                    sensitivity_uv: float = 5.0) -> None:
    """Write `leads_mv` float `[12, T]` (mV, rows named by `lead_names`) as 12-lead ECG DICOM."""
    ds = _base(ECG_12LEAD_STORAGE, _uid("ecg", study_id), "ECG", subject_id, sex,
               _uid("ecg-study", study_id), _uid("ecg-series", study_id), when)
    ds.AcquisitionDateTime = when.strftime("%Y%m%d%H%M%S")
    counts = np.clip(np.round(leads_mv * 1000.0 / sensitivity_uv), -32768, 32767).astype("<i2")
    group = Dataset()
    group.MultiplexGroupTimeOffset = 0
    group.TriggerTimeOffset = 0
    group.WaveformOriginality = "ORIGINAL"
    group.NumberOfWaveformChannels = int(counts.shape[0])
    group.NumberOfWaveformSamples = int(counts.shape[1])
    group.SamplingFrequency = fs
    group.MultiplexGroupLabel = "RHYTHM"
    channels = []
    for name in lead_names:
        src = Dataset()
        src.CodeValue = f"2:{_MDC_CODE[name]}"
        src.CodingSchemeDesignator = "MDC"
        src.CodeMeaning = f"MDC_ECG_LEAD_{name}"
        unit = Dataset()
        unit.CodeValue = "uV"
        unit.CodingSchemeDesignator = "UCUM"
        unit.CodeMeaning = "microvolt"
        ch = Dataset()
        ch.ChannelSourceSequence = [src]
        ch.ChannelSensitivity = f"{sensitivity_uv:g}"
        ch.ChannelSensitivityUnitsSequence = [unit]
        ch.ChannelSensitivityCorrectionFactor = "1"
        ch.ChannelBaseline = "0"
        ch.ChannelSampleSkew = "0"
        ch.WaveformBitsStored = 16
        ch.FilterLowFrequency = "0.05"
        ch.FilterHighFrequency = "150"
        channels.append(ch)
    group.ChannelDefinitionSequence = channels
    group.WaveformBitsAllocated = 16
    group.WaveformSampleInterpretation = "SS"
    group.WaveformData = np.ascontiguousarray(counts.T).tobytes()  # sample-major interleave
    ds.WaveformSequence = [group]
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
