"""Plain, immutable data objects passed between engine, app and CLI.

Widgets and the CLI receive these, never file paths or inference sessions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Source:
    """Where a record came from: `path` (str) and `format` (e.g. "wfdb", "dicom-ecg",
    "dicom-cxr", "png", "jpeg")."""

    path: str
    format: str


@dataclass(frozen=True)
class EcgRecord:
    """An ECG as read from a file.

    Attributes:
        signal: float32 `[n_leads, n_samples]`, millivolts. Rows follow `leads`.
            The 12 standard leads present come first in canonical order
            (`engine.constants.LEADS`); leads absent from the file are absent here.
        fs: sampling rate in Hz.
        leads: canonical lead names, one per row of `signal`.
        meta: patient / acquisition fields the file carries (keys such as
            "patient_id", "age", "sex", "acquired", "device", "statements",
            "measurements", "device_measurements", "median_beats", "derived_leads",
            "comments"; see `engine.io.ecg_common` and docs/formats.md).
        source: where the record came from.
        extra_signal: float32 `[n_extra, n_samples]`: non-ECG or non-standard
            channels (e.g. Frank vx vy vz, respiration), in their own units.
        extra_names: names of the rows of `extra_signal`.
        extra_units: units of the rows of `extra_signal`.
    """

    signal: np.ndarray
    fs: float
    leads: tuple[str, ...]
    meta: dict[str, Any] = field(default_factory=dict)
    source: Source | None = None
    extra_signal: np.ndarray | None = None
    extra_names: tuple[str, ...] = ()
    extra_units: tuple[str, ...] = ()

    @property
    def n_samples(self) -> int:
        return int(self.signal.shape[1])

    @property
    def duration_s(self) -> float:
        return self.n_samples / float(self.fs)

    def lead(self, name: str) -> np.ndarray:
        """Samples of lead `name` (canonical), float32 `[n_samples]` in mV."""
        try:
            return self.signal[self.leads.index(name)]
        except ValueError:
            raise KeyError(f"lead {name!r} not in record (has {', '.join(self.leads)})") from None


@dataclass(frozen=True)
class CxrImage:
    """A chest X-ray image.

    Attributes:
        pixels: float32 `[H, W]` display-ready grey levels, larger = brighter
            (MONOCHROME1 inverted, modality and VOI LUT / window applied),
            scaled to [0, 1].
        pixel_spacing_mm: (row, column) spacing in mm, if the file says.
        view_position: "PA", "AP", "LATERAL", ... if the file says, else None.
        meta: patient / study fields the file carries.
        source: where the image came from.
    """

    pixels: np.ndarray
    pixel_spacing_mm: tuple[float, float] | None = None
    view_position: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    source: Source | None = None


@dataclass(frozen=True)
class EcgInput:
    """Model-ready ECG windows plus a report of what preprocessing did.

    Attributes:
        windows: float32 `[W, 12, 1000]`, W >= 1, leads in `LEADS` order,
            each lead min-max scaled to [-1, 1] (a flat lead is all 0).
        report: JSON-ready dict: "original_fs", "original_seconds",
            "leads_found", "leads_derived", "leads_missing", "padded_seconds",
            "window_starts_s", "seconds_used", "rule".
    """

    windows: np.ndarray
    report: dict[str, Any]


@dataclass(frozen=True)
class QualityFlags:
    """Signal-quality findings for one ECG (all lists of canonical lead names)."""

    flat_leads: tuple[str, ...] = ()
    saturated_leads: tuple[str, ...] = ()
    noisy_leads: tuple[str, ...] = ()
    derived_leads: tuple[str, ...] = ()
    missing_leads: tuple[str, ...] = ()
    short_record: bool = False

    @property
    def ok(self) -> bool:
        return not (self.flat_leads or self.saturated_leads or self.noisy_leads
                    or self.missing_leads or self.short_record)

    def lead_problems(self, derived: bool = False) -> list[tuple[str, tuple[str, ...]]]:
        """(label, leads) of every non-empty lead finding, in report order: flat, saturated,
        noisy, derived (only with `derived`: derived leads are information, not a problem),
        missing. The one list every wording of the flags (engine.calls, engine.explain,
        app.findings) is built from."""
        groups = [("flat", self.flat_leads), ("saturated", self.saturated_leads),
                  ("noisy", self.noisy_leads)]
        if derived:
            groups.append(("derived", self.derived_leads))
        groups.append(("missing", self.missing_leads))
        return [(label, leads) for label, leads in groups if leads]


@dataclass(frozen=True)
class Prediction:
    """One model's output for one pathology.

    Attributes:
        pathology: one of `engine.constants.PATHOLOGIES`.
        modality: "ecg" or "cxr".
        probability: sigmoid of the logit, in [0, 1] (mean over windows).
        threshold: operating threshold chosen on validation data.
        positive: probability >= threshold (for a calibrated model: the raw probability >=
            the raw threshold, the same decision up to rounding; `engine.inference`).
        embedding: float32 `[D]` (256 for ECG), mean over windows.
        model_name: ONNX file / model id.
        provenance: training data, "phantom" or "mimic".
        demo: True when the model was trained on synthetic data.
        quality: signal-quality flags (ECG only).
        ood: True when the embedding is out of the training distribution.
        ood_distance: Mahalanobis distance of the embedding to training statistics.
        ood_cutoff: the distance above which `ood` is set.
        window_probabilities: per-window probabilities (ECG only).
        band: (low, high) probabilities around `threshold` within which the call is
            "borderline" (the bundle's stated uncertainty of the threshold), or None.
        temperature: the temperature T when `probability`, `threshold`, `band` and
            `window_probabilities` are calibrated (`sigmoid(logit / T)`, `engine.calibration`);
            None: uncalibrated (`sigmoid(logit)`).
        call: "positive", "negative", "borderline" or "not_assessable" (see
            `engine.calls.CALLS`); derived from the fields above when not given.
        call_reason: why, in words a clinician can act on.
    """

    pathology: str
    modality: str
    probability: float
    threshold: float
    positive: bool
    embedding: np.ndarray
    model_name: str
    provenance: str
    demo: bool
    quality: QualityFlags | None = None
    ood: bool = False
    ood_distance: float = float("nan")
    ood_cutoff: float = float("nan")
    window_probabilities: tuple[float, ...] = ()
    band: tuple[float, float] | None = None
    temperature: float | None = None
    call: str = ""
    call_reason: str = ""

    def __post_init__(self) -> None:
        from engine.calls import decide_call, CALLS
        if not self.call:
            call, reason = decide_call(self)
            object.__setattr__(self, "call", call)
            object.__setattr__(self, "call_reason", reason)
        elif self.call not in CALLS:
            raise ValueError(f"call must be one of {', '.join(CALLS)}, got {self.call!r}")
