"""Per-subject traits and per-episode latent state of the phantom (v2), and the labels.

One *subject* has traits that change the signals but not the labels (age, sex, body
mass index, heart axis, electrode placement, mains frequency, right bundle branch block).
One *episode* (an ED stay, or the subject's baseline state for studies outside any stay)
has a disease state:

- ``hf_severity``: a shared heart-failure factor, standard normal; older subjects drift higher.
- ``heart_size_z``, ``congestion_z``, ``fluid_z``: standard-normal latents, each
  ``HF_LOADING * hf_severity + sqrt(1 - HF_LOADING^2) * own noise`` (v2: loading 0.45,
  pairwise correlation about 0.2; v1 had 0.62 / 0.4, so one shared factor carried most of
  what the ECG showed). Heart size is mostly chronic (shared across a subject's episodes);
  congestion and fluid vary more between episodes.
- True labels: a latent above a threshold chosen for MIMIC-like prevalence in the linked
  cohort (cardiomegaly 28%, edema 22%, pleural effusion 27%). ``ctr`` (cardiothoracic
  ratio) is ``0.50 + 0.06 * (heart_size_z - CARDIOMEGALY_Z)``, so cardiomegaly <=> ctr > 0.5.
- Conduction and rhythm of the episode (drawn here so the truth table records them):
  ``lbbb`` (left bundle branch block, rising with heart size: ~1% at heart_size_z = 0,
  ~15% at 2.5), ``af`` (atrial fibrillation, driven by congestion, age and heart size),
  ``alternans`` (electrical alternans, only in the largest effusions), ``heart_rate_bpm``
  (each of congestion and fluid adds its own tachycardia; the shared factor adds little),
  ``qrs_ms`` (graded widening with heart size; LBBB >= 125 ms; RBBB label-independent).
  The ECG signs themselves are made in `training.phantom.ecg` (see docs/phantom.md for
  every sign and its clinical source).

Observed CheXpert labels (`chexpert_value`), v2: the reader sees the latent with error
(``N(0, READ_SD)``), so findings near the threshold are called either way; a read within
``UNCERTAIN_BAND`` of the threshold is reported uncertain (``-1.0``) with probability 0.5
(CheXpert's labeller marks hedged reports "uncertain"); on top, 3% of true positives are
missed and 2% of negatives are reported positive. A negative read is blank (55%) or
``0.0``. The cohort builder counts -1 and blank as negative, so roughly 15-20% of true
positives and 3-5% of true negatives flip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Latent thresholds: P(N(0,1) > z) = 0.28, 0.22, 0.27.
CARDIOMEGALY_Z: float = 0.583
EDEMA_Z: float = 0.772
EFFUSION_Z: float = 0.613
#: Loading of each finding on the shared heart-failure factor (v1: 0.62).
HF_LOADING: float = 0.45
#: Reader error (latent s.d. units) and the band around the threshold reported uncertain.
READ_SD: float = 0.25
UNCERTAIN_BAND: float = 0.25
#: Threshold on fluid_z above which an effusion is "large" (electrical alternans possible).
LARGE_EFFUSION_Z: float = 2.0


@dataclass(frozen=True)
class SubjectTraits:
    """Traits that shape the signals but not the labels."""

    age: float            #: years
    sex: str              #: "F" or "M"
    bmi: float            #: kg/m^2; attenuates ECG voltage, widens the CXR soft tissue
    axis_deg: float       #: personal frontal QRS axis offset, degrees
    mains_hz: int         #: 50 or 60
    hf_propensity: float  #: subject part of hf_severity (standard normal)
    heart_size_trait: float  #: subject part of heart size (standard normal)
    race: str
    rbbb: bool            #: right bundle branch block: wide QRS unrelated to the labels


@dataclass(frozen=True)
class EpisodeState:
    """Disease state of one episode (ED stay or baseline) and its true labels."""

    hf_severity: float
    heart_size_z: float
    congestion_z: float
    fluid_z: float
    ctr: float               #: cardiothoracic ratio (PA geometry)
    effusion_side: str       #: "right", "left" or "bilateral" (where fluid goes when present)
    af: bool                 #: atrial fibrillation during this episode
    heart_rate_bpm: float    #: mean ventricular rate
    qrs_ms: float            #: QRS duration
    cardiomegaly: int
    edema: int
    pleural_effusion: int
    lbbb: bool = False       #: left bundle branch block during this episode
    alternans: bool = False  #: electrical alternans (large effusion)

    @property
    def margins(self) -> dict[str, float]:
        """Latent minus label threshold per label (> 0 <=> true positive)."""
        return {"cardiomegaly": self.heart_size_z - CARDIOMEGALY_Z,
                "edema": self.congestion_z - EDEMA_Z,
                "pleural_effusion": self.fluid_z - EFFUSION_Z}

    @property
    def labels(self) -> dict[str, int]:
        return {"cardiomegaly": self.cardiomegaly, "edema": self.edema,
                "pleural_effusion": self.pleural_effusion}


RACES = ("WHITE", "BLACK/AFRICAN AMERICAN", "HISPANIC/LATINO - PUERTO RICAN", "ASIAN",
         "OTHER", "UNKNOWN", "WHITE - OTHER EUROPEAN", "BLACK/CAPE VERDEAN")
RACE_P = (0.55, 0.18, 0.06, 0.04, 0.05, 0.05, 0.04, 0.03)


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


def draw_traits(rng: np.random.Generator) -> SubjectTraits:
    """Draw one subject's traits (ED population: adults, median age ~62)."""
    age = float(np.clip(rng.normal(62.0, 17.0), 18.0, 97.0))
    sex = "F" if rng.random() < 0.52 else "M"
    bmi = float(np.clip(rng.lognormal(np.log(27.5), 0.2), 16.0, 55.0))
    return SubjectTraits(
        age=age, sex=sex, bmi=bmi,
        axis_deg=float(rng.normal(0.0, 18.0)),
        mains_hz=60 if rng.random() < 0.8 else 50,
        hf_propensity=float(rng.normal()),
        heart_size_trait=float(rng.normal()),
        race=str(RACES[rng.choice(len(RACES), p=RACE_P)]),
        rbbb=bool(rng.random() < 0.05),
    )


def draw_episode(rng: np.random.Generator, traits: SubjectTraits) -> EpisodeState:
    """Draw one episode's disease state given the subject's traits."""
    age_z = (traits.age - 62.0) / 17.0
    sev = 0.8 * traits.hf_propensity + 0.45 * rng.normal() + 0.35 * age_z
    sev /= np.sqrt(0.8**2 + 0.45**2 + 0.35**2)
    own = np.sqrt(1.0 - HF_LOADING**2)
    heart = HF_LOADING * sev + own * (0.85 * traits.heart_size_trait + 0.527 * rng.normal())
    cong = HF_LOADING * sev + own * rng.normal()
    fluid = HF_LOADING * sev + own * rng.normal()
    ctr = float(np.clip(0.50 + 0.06 * (heart - CARDIOMEGALY_Z), 0.36, 0.74))
    side = str(rng.choice(["bilateral", "right", "left"], p=[0.5, 0.3, 0.2]))
    p_af = _sigmoid(-3.4 + 0.8 * age_z + 0.9 * cong + 0.3 * heart)
    af = bool(rng.random() < p_af)
    # LBBB: ~1% at normal heart size, up to ~15-25% in marked LV dilatation (Baldasseroni 2002:
    # ~25% of heart-failure outpatients); excludes the subject's RBBB.
    lbbb = bool(not traits.rbbb and rng.random() < _sigmoid(-4.5 + 1.1 * heart))
    # large effusions: electrical alternans in a fraction (swinging heart in co-existing
    # pericardial fluid, see docs/phantom.md)
    alternans = bool(fluid > LARGE_EFFUSION_Z and rng.random() < 0.35)
    hr = (76.0 + (4.0 if traits.sex == "F" else 0.0) + 5.0 * max(cong, 0.0)
          + 5.0 * max(fluid - 0.3, 0.0) + 1.0 * sev + rng.normal(0.0, 11.0))
    if af:
        hr += 12.0
    hr = float(np.clip(hr, 42.0, 150.0))
    # LV mass / dilatation prolongs the QRS (graded), about 6 ms per s.d. above average
    qrs = (92.0 - (6.0 if traits.sex == "F" else 0.0) + 3.0 * age_z
           + 6.0 * max(heart, 0.0) + rng.normal(0.0, 7.0))
    if traits.rbbb:
        qrs += 38.0
    if lbbb:
        qrs = max(qrs + 40.0, 125.0 + abs(rng.normal(0.0, 8.0)))
    qrs = float(np.clip(qrs, 70.0, 180.0))
    return EpisodeState(
        hf_severity=float(sev), heart_size_z=float(heart), congestion_z=float(cong),
        fluid_z=float(fluid), ctr=ctr, effusion_side=side, af=af, heart_rate_bpm=hr,
        qrs_ms=qrs, cardiomegaly=int(heart > CARDIOMEGALY_Z), edema=int(cong > EDEMA_Z),
        pleural_effusion=int(fluid > EFFUSION_Z), lbbb=lbbb, alternans=alternans,
    )


def chexpert_value(rng: np.random.Generator, truth: int, margin: float | None = None) -> str:
    """Observed CheXpert cell for a finding: '1.0', '0.0', '-1.0' or ''.

    `truth` is the true label (0/1), `margin` the latent minus the label threshold
    (`EpisodeState.margins`; None: far from the threshold). The read is
    ``margin + N(0, READ_SD)``; positive reads are '1.0', or '-1.0' (p 0.5) within
    `UNCERTAIN_BAND`; negative reads are '' (55%) or '0.0', or '-1.0' (p 0.5) within the
    band; then 3% of true positives are missed and 2% of true negatives reported '1.0'.
    """
    if margin is None:
        margin = 3.0 if truth else -3.0
    read = margin + rng.normal(0.0, READ_SD)
    u = rng.random()
    if truth and u < 0.03:
        return "0.0" if rng.random() < 0.5 else ""
    if not truth and u < 0.02:
        return "1.0"
    if abs(read) < UNCERTAIN_BAND and rng.random() < 0.5:
        return "-1.0"
    if read > 0:
        return "1.0"
    return "" if rng.random() < 0.55 else "0.0"


def other_chexpert(rng: np.random.Generator, state: EpisodeState, view: str) -> dict[str, str]:
    """The 11 CheXpert columns the paper does not use, loosely correlated with the state."""
    def draw(p_pos: float, p_unc: float = 0.03) -> str:
        u = rng.random()
        if u < p_pos:
            return "1.0"
        if u < p_pos + p_unc:
            return "-1.0"
        return "0.0" if u < p_pos + p_unc + 0.15 else ""

    any_fluid = state.edema or state.pleural_effusion
    return {
        "Atelectasis": draw(0.35 if state.pleural_effusion else 0.12, 0.06),
        "Consolidation": draw(0.05, 0.03),
        "Enlarged Cardiomediastinum": draw(0.25 if state.cardiomegaly else 0.03, 0.05),
        "Fracture": draw(0.02, 0.01),
        "Lung Lesion": draw(0.03, 0.01),
        "Lung Opacity": draw(0.45 if any_fluid else 0.15, 0.03),
        "Pleural Other": draw(0.01, 0.005),
        "Pneumonia": draw(0.06, 0.08),
        "Pneumothorax": draw(0.02, 0.01),
        "Support Devices": draw(0.35 if view == "AP" else 0.08, 0.0),
    }


def icd_codes(rng: np.random.Generator, state: EpisodeState | None) -> list[str]:
    """ICD-10 codes (MIMIC style, no dots) consistent with an episode; `None` = no diagnoses."""
    if state is None:
        return []
    codes: list[str] = []
    if state.hf_severity > 0.9 or (state.edema and state.cardiomegaly):
        codes.append(str(rng.choice(["I509", "I5023", "I5033", "I5043", "I110"])))
    if state.cardiomegaly and rng.random() < 0.4:
        codes.append("I517")
    if state.edema and rng.random() < 0.5:
        codes.append("J810")
    if state.pleural_effusion and rng.random() < 0.5:
        codes.append(str(rng.choice(["J90", "J918"])))
    if state.af:
        codes.append(str(rng.choice(["I480", "I4891", "I4820"])))
    filler = ["R0789", "R0602", "E119", "I10", "N179", "E785", "Z7901", "J449", "R55", "K219"]
    for _ in range(int(rng.integers(0, 4))):
        codes.append(str(rng.choice(filler)))
    return list(dict.fromkeys(codes))
