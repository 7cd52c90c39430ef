"""Named constants shared by readers, preprocessing, training and inference.

These are written into every exported model's metadata and into the bundle
manifest, and checked when a bundle is loaded (see `engine.bundle`).
"""

from __future__ import annotations

#: Canonical 12-lead order of every model input, `[12, T]` arrays and displays.
#: Note: MIMIC-IV-ECG files store aVF *before* aVL; readers reorder by name.
LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF",
                          "V1", "V2", "V3", "V4", "V5", "V6")
#: The 8 independent leads (Dower transform inputs).
INDEPENDENT_LEADS: tuple[str, ...] = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
#: Limb leads that can be derived from I and II (Einthoven / Goldberger).
DERIVABLE_LEADS: tuple[str, ...] = ("III", "aVR", "aVL", "aVF")

#: Model sampling rate in Hz (paper §4.1).
ECG_FS_HZ: int = 100
#: Window length in seconds.
ECG_SECONDS: int = 10
#: Samples per lead of one model window: ECG_FS_HZ * ECG_SECONDS.
ECG_SAMPLES: int = ECG_FS_HZ * ECG_SECONDS
#: Per-lead min-max normalisation range.
ECG_SCALE: tuple[float, float] = (-1.0, 1.0)
#: Baseline-wander removal: two successive median filters, lengths in seconds.
ECG_BASELINE_MEDIAN_S: tuple[float, float] = (0.2, 0.6)

#: CXR model input side in pixels (square).
CXR_SIZE: int = 224
#: CXR model input value range (TorchXRayVision convention).
CXR_RANGE: tuple[float, float] = (-1024.0, 1024.0)

#: Pathologies, in the order used everywhere (manifest, CLI, tables).
PATHOLOGIES: tuple[str, ...] = ("cardiomegaly", "edema", "pleural_effusion")
#: Human-readable names.
PATHOLOGY_NAMES: dict[str, str] = {
    "cardiomegaly": "Cardiomegaly",
    "edema": "Pulmonary edema",
    "pleural_effusion": "Pleural effusion",
}

#: Statement shown wherever a demo (phantom-trained) model's output appears.
DEMO_DISCLAIMER: str = ("Demonstration models trained on synthetic data, "
                        "not for diagnosis")


def preprocessing_constants() -> dict:
    """The preprocessing constants as a JSON-ready dict (manifest / ONNX metadata)."""
    return {
        "ecg": {
            "leads": list(LEADS),
            "fs_hz": ECG_FS_HZ,
            "seconds": ECG_SECONDS,
            "samples": ECG_SAMPLES,
            "scale": list(ECG_SCALE),
            "baseline_median_s": list(ECG_BASELINE_MEDIAN_S),
        },
        "cxr": {
            "size": CXR_SIZE,
            "range": list(CXR_RANGE),
        },
    }
