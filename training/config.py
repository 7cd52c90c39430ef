"""Configuration of the four training stages: dataclasses and presets.

One `Config` holds everything a stage needs; it is resolved once
(`resolve(preset, overrides)`), saved as JSON beside every stage's outputs and
inside every checkpoint (nanoGPT style), and never read from a global.

Presets:
- `paper`: every hyper-parameter of METHOD.md (the paper, §3.3 and Table 3).
  Values the paper does not state are marked "not in the paper" in the field's
  documentation.
- `cpu`: the paper preset, changed only where a 2-core CPU and the 60 MB bundle
  budget force it; every difference has a `why` in `CPU_DIFFERENCES`. It was sized
  (issue 18) for a ~150 min build on 2 idle cores from v1's stage times, and that
  estimate was wrong: measured on the shared 2-core machine (2026-12-03, build of the
  4,000-subject phantom v2), this encoder trains at ~12 ECG windows/s forward + backward
  with one torch thread and 4.6-6.7/s with two threads under load (OpenMP threads stall
  when another process takes a core), so the full preset is ~41k SSL views + 3 x (43.5k
  align + 34.8k fine-tune) windows = ~4-6 h. The 2026-12-03 phantom-v2 build used a
  shorter schedule (`--set` overrides: SSL 60 steps, align 3 and fine-tune 2 epochs of at
  most 30 steps, one thread; ~92 min in all), whose validation curves were still rising
  (docs/results/phantom_v2/build_2026-12-03/; not shipped).
- `tiny`: for tests only (a few steps on a handful of samples).

Every field carries its documentation in `dataclasses.field(metadata={"doc": ...})`;
`describe()` lists them.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from engine.constants import PATHOLOGIES
from engine.errors import CromotexError
from training.jsonio import write_json


class ConfigError(CromotexError):
    """A preset name or an override is not valid."""


def _f(default: Any, doc: str) -> Any:
    """A dataclass field with a documentation string (mutable defaults copied)."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: copy.deepcopy(d), metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})


@dataclass
class EcgModelConfig:
    """ECG encoder f_ecg and classifier head (METHOD.md 'Networks')."""

    ff_dim: int = _f(2048, "Transformer feed-forward width. Not in the paper; 2048 is PyTorch's default.")
    classifier_hidden: int = _f(256, "Hidden width of the 4-layer MLP classifier (paper: 256).")
    classifier_layers: int = _f(4, "Number of layers of the MLP classifier (paper: 4).")
    classifier_dropout: float = _f(0.1, "Dropout of the MLP classifier (paper: 0.1).")


@dataclass
class TeacherConfig:
    """Stage 1: DenseNet-121 CXR teacher f_cxr (Adam, warm-up + cosine)."""

    multi_label: bool = _f(False, "True: one backbone with one head per pathology (all of PATHOLOGIES); "
                                  "False: one single-label model per pathology, as the paper.")
    image_size: int = _f(224, "Side of the CXR input in pixels; 224 everywhere except the tiny test preset.")
    weights: str = _f("", "Optional local TorchXRayVision DenseNet-121 state dict (.pt) to start from; "
                          "empty: train from scratch (no download is possible here).")
    epochs: int = _f(50, "Maximum epochs. Not in the paper.")
    batch_size: int = _f(64, "Batch size (paper: 64).")
    peak_lr: float = _f(1e-4, "Peak learning rate (paper: 1e-4).")
    start_lr: float = _f(1e-5, "Warm-up start learning rate (paper: 1e-5).")
    end_lr: float = _f(1e-5, "Learning rate at the end of the cosine decay (paper: 1e-5).")
    warmup_epochs: float = _f(10.0, "Linear warm-up length in epochs (paper: 10).")
    backbone_lr_mult: float = _f(0.05, "LR multiplier of the DenseNet backbone vs the head (paper: 0.05).")
    weight_decay: float = _f(0.0, "Weight decay (Adam; paper: none stated).")
    optimizer: str = _f("adam", "Optimiser: adam | adamw (paper: Adam).")
    grad_clip: float = _f(0.0, "Gradient-norm clipping; 0 disables (paper: none stated for stage 1).")
    patience: int = _f(10, "Early stopping: epochs without validation-AUROC improvement. Not in the paper.")
    balanced_sampling: bool = _f(True, "Weighted sampling of the training split with half of each batch "
                                       "positive (for any teacher pathology); not in the paper.")


@dataclass
class SslConfig:
    """Stage 2: SimCLR pretraining of f_ecg on two VCG-augmented views."""

    epochs: int = _f(100, "Maximum epochs. Not in the paper.")
    batch_size: int = _f(256, "Batch size. Not in the paper; same as alignment.")
    proj_dim: int = _f(128, "Width of the discarded projection head h_ecg. Not in the paper (SimCLR: 128).")
    tau: float = _f(0.1, "NT-Xent temperature. Not in the paper (SimCLR default 0.1).")
    peak_lr: float = _f(1e-4, "Peak learning rate. Not in the paper; same as alignment.")
    start_lr: float = _f(1e-5, "Warm-up start learning rate.")
    end_lr: float = _f(1e-5, "End learning rate of the cosine decay.")
    warmup_epochs: float = _f(10.0, "Linear warm-up length in epochs.")
    weight_decay: float = _f(1e-5, "AdamW weight decay.")
    optimizer: str = _f("adamw", "Optimiser: adam | adamw.")
    grad_clip: float = _f(2.5, "Gradient-norm clipping; 0 disables.")
    patience: int = _f(10, "Early stopping: epochs without validation-loss improvement.")
    max_rotation_deg: float = _f(45.0, "VCG augmentation: maximum rotation about each axis (paper: 45).")
    scale_range: list = _f([1.0, 1.5], "VCG augmentation: per-axis scaling range (paper: 1 to 1.5).")
    mask_fraction: float = _f(0.25, "VCG augmentation: fraction of each lead masked in time (paper: 25%).")


@dataclass
class AlignConfig:
    """Stage 3: cross-modal alignment of f_ecg to the frozen teacher."""

    loss: str = _f("ahnp_supcma", "Alignment loss: ahnp_supcma | supcma | cma | supcon (ablations).")
    weighting: str = _f("topk", "AHNP weighting: topk | linear | exp (paper default: topk).")
    tau: float = _f(0.01, "Temperature (paper: 0.01).")
    alpha: float = _f(4.5, "AHNP hard-negative weight alpha (paper: 4.5).")
    beta: float = _f(3.0, "AHNP within-sample positive weight beta: the paper says 2 in §3.3.3 and 3 in "
                          "Table 3; the presets use 3 (Table 3).")
    beta_mode: str = _f("log_weight", "How beta enters AHNP-SupCMA: 'log_weight' (default) = beta weights the "
                                      "within-sample positive term (1 + beta) against the other same-label terms, "
                                      "normalised by |P(i)| + beta, as the authors' code and as Table 3 intends; "
                                      "'equation' = Eq. 3 as printed, where (1 + beta) sits inside the log and only "
                                      "adds a constant: the gradient is identical for any beta (measured for 0, 2, 3, "
                                      "100). Presets use log_weight.")
    k: float = _f(0.075, "AHNP top-k fraction of the batch (paper: 7.5%).")
    proj_dim: int = _f(256, "Width D of the shared space of g_ecg and g_cxr. Not in the paper.")
    epochs: int = _f(100, "Maximum epochs. Not in the paper.")
    batch_size: int = _f(256, "Batch size (paper: 256).")
    peak_lr: float = _f(1e-4, "Peak learning rate (paper: 1e-4).")
    start_lr: float = _f(1e-5, "Warm-up start learning rate (paper: 1e-5).")
    end_lr: float = _f(1e-5, "End learning rate of the cosine decay (paper: 1e-5).")
    warmup_epochs: float = _f(10.0, "Linear warm-up length in epochs (paper: 10).")
    weight_decay: float = _f(1e-5, "AdamW weight decay (paper: 1e-5).")
    optimizer: str = _f("adamw", "Optimiser (paper: AdamW).")
    grad_clip: float = _f(2.5, "Gradient-norm clipping (paper: 2.5).")
    head_lr_mult: float = _f(0.1, "LR multiplier of the projection heads g_ecg, g_cxr (paper: 0.1).")
    positive_fraction: float = _f(0.275, "Expected share of positives per batch of the weighted sampler "
                                         "(paper: 25-30%).")
    time_augment: bool = _f(True, "Apply the time-domain augmentations (Raghu et al. 2022) to ECGs.")
    patience: int = _f(10, "Early stopping: epochs without improvement of the validation centroid AUROC.")


@dataclass
class FinetuneConfig:
    """Stage 4: f_ecg + MLP classifier with BCE (projection heads dropped)."""

    epochs: int = _f(50, "Maximum epochs. Not in the paper.")
    batch_size: int = _f(256, "Batch size (paper: 256).")
    peak_lr: float = _f(1e-5, "Peak learning rate (paper: 1e-5).")
    start_lr: float = _f(1e-6, "Warm-up start learning rate (paper: 1e-6).")
    end_lr: float = _f(1e-6, "End learning rate of the cosine decay (paper: 1e-6).")
    warmup_epochs: float = _f(10.0, "Linear warm-up length in epochs (paper: 10).")
    weight_decay: float = _f(0.0, "Weight decay (Adam; paper: none stated).")
    optimizer: str = _f("adam", "Optimiser (paper: Adam).")
    grad_clip: float = _f(0.0, "Gradient-norm clipping; 0 disables (paper: none stated for stage 4).")
    positive_fraction: float = _f(0.275, "Expected share of positives per batch (paper: 25-30%).")
    time_augment: bool = _f(True, "Apply the time-domain augmentations to ECGs.")
    patience: int = _f(10, "Early stopping: epochs without validation-AUROC improvement. Not in the paper.")


@dataclass
class Config:
    """Everything the four stages need. `resolve()` builds one from a preset."""

    preset: str = _f("paper", "Name of the preset this config was resolved from.")
    pathology: str = _f("cardiomegaly", f"Target pathology, one of {', '.join(PATHOLOGIES)}.")
    seed: int = _f(0, "Seed of every random generator (torch, numpy, samplers, augmentations).")
    device: str = _f("cpu", "cpu | cuda (cuda:N accepted).")
    max_steps_per_epoch: int = _f(0, "Cap of optimiser steps per epoch; 0: one pass over the training set.")
    eval_batch_size: int = _f(256, "Batch size of validation, feature caching and prediction.")
    progress: bool = _f(True, "Show tqdm progress bars (rank 0 only).")
    threads: int = _f(0, "torch CPU threads; 0: leave torch's default.")
    val_smooth_epochs: int = _f(3, "Early stopping and the best checkpoint use the validation metric averaged over "
                                   "the last this many epochs (1: raw). Not in the paper.")
    ecg: EcgModelConfig = field(default_factory=EcgModelConfig, metadata={"doc": "ECG networks."})
    teacher: TeacherConfig = field(default_factory=TeacherConfig, metadata={"doc": "Stage 1."})
    ssl: SslConfig = field(default_factory=SslConfig, metadata={"doc": "Stage 2."})
    align: AlignConfig = field(default_factory=AlignConfig, metadata={"doc": "Stage 3."})
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig, metadata={"doc": "Stage 4."})


#: Where the cpu preset differs from the paper preset, and why (dotted key -> (value, why)).
CPU_DIFFERENCES: dict[str, tuple[Any, str]] = {
    "ecg.ff_dim": (512, "Not in the paper; 512 makes an ECG model ~2.1 M parameters (8 MB fp32) instead of "
                        "5.2 M (21 MB), so three models fit the 60 MB bundle, and is ~2x faster on CPU."),
    "teacher.multi_label": (True, "One DenseNet backbone with three heads instead of three models: "
                                  "a third of the CPU time (DenseNet is ~5 CXR/s here) and of the bundle size."),
    "teacher.epochs": (5, "CPU time: the whole bundle build must fit 150 min on 2 shared cores (issue 18)."),
    "teacher.image_size": (64, "CPU time: DenseNet-121 at 64 px is ~12x cheaper than at 224 (the phantom's "
                               "radiographs are schematic; a 32 px logistic baseline already reaches AUROC "
                               "0.87-0.95). The exported teacher still takes 224 x 224 and resizes inside."),
    "teacher.backbone_lr_mult": (1.0, "No pretrained weights can be loaded here, so the backbone is trained from "
                                      "scratch at the full LR (x0.05 assumes a pretrained backbone)."),
    "teacher.peak_lr": (1e-3, "From scratch with ~140 steps: 1e-4 leaves the randomly initialised backbone "
                              "barely trained (pilot: val AUROC 0.92 after 3 short epochs at 1e-3)."),
    "teacher.start_lr": (1e-4, "Scaled with peak_lr."),
    "teacher.batch_size": (32, "CPU memory and steps per epoch on a small phantom cohort."),
    "teacher.warmup_epochs": (0.5, "Scaled with the shorter schedule (10 of 4 epochs would never peak)."),
    "teacher.patience": (3, "Scaled with the shorter schedule."),
    "ssl.epochs": (3, "CPU time budget: three passes over the SSL pool (a 4,000-subject phantom v2: ~6,800 "
                      "ECGs, 3 x 107 steps of 64 pairs of views; measured 10-28 s per step on the shared 2 cores, "
                      "i.e. 55-150 min, not the ~35-40 min first estimated; v1's one pass of ~40 steps left the "
                      "encoder no better than a random one in a linear probe)."),
    "ssl.batch_size": (64, "CPU time per step; the NT-Xent needs only a few dozen negatives here."),
    "ssl.warmup_epochs": (0.3, "Scaled with the shorter schedule (10% of it)."),
    "ssl.patience": (3, "Scaled with the shorter schedule."),
    "align.epochs": (15, "CPU time budget: 15 epochs of ~2,900 train pairs of a 4,000-subject phantom, ~680 steps "
                         "of 64 (v1 had ~160 steps and stopped inside warm-up). Measured 2026-12-03: ~12 ECG/s "
                         "forward + backward with one thread, so ~60 min per pathology on this machine, not the "
                         "~18 min first estimated from a ~30-40 ECG/s figure that was not reproduced."),
    "align.batch_size": (64, "CPU time per step; with k = 7.5% a batch of 64 still has ~5 hard negatives."),
    "align.warmup_epochs": (1.5, "Scaled with the shorter schedule (10% of it, as the paper's 10 of 100)."),
    "align.patience": (5, "Scaled with the shorter schedule; on the 3-epoch smoothed metric (val_smooth_epochs)."),
    "finetune.epochs": (12, "CPU time budget: ~550 steps per pathology on a 4,000-subject phantom; ~48 min each at the "
                            "measured ~12 ECG/s (first estimated at ~14 min)."),
    "finetune.batch_size": (64, "CPU time per step."),
    "finetune.peak_lr": (1e-4, "With ~10x fewer steps than the paper, 1e-5 barely moves the classifier "
                               "head from its initialisation."),
    "finetune.start_lr": (1e-5, "Scaled with peak_lr."),
    "finetune.end_lr": (1e-5, "Scaled with peak_lr."),
    "finetune.warmup_epochs": (1.0, "Scaled with the shorter schedule."),
    "finetune.patience": (5, "Scaled with the shorter schedule; on the 3-epoch smoothed metric."),
    "eval_batch_size": (64, "CPU memory."),
}

#: The tiny test preset (on top of cpu): seconds per stage on a handful of samples.
TINY_OVERRIDES: dict[str, Any] = {
    "ecg.ff_dim": 32,
    "ecg.classifier_hidden": 16,
    "teacher.image_size": 32,
    "teacher.epochs": 2, "teacher.batch_size": 4, "teacher.patience": 1,
    "ssl.epochs": 2, "ssl.batch_size": 4, "ssl.proj_dim": 8,
    "align.epochs": 2, "align.batch_size": 8, "align.proj_dim": 16,
    "finetune.epochs": 2, "finetune.batch_size": 8,
    "max_steps_per_epoch": 2,
    "val_smooth_epochs": 1,
    "eval_batch_size": 16,
    "progress": False,
}

PRESETS: tuple[str, ...] = ("paper", "cpu", "tiny")


def _set(cfg: Config, key: str, value: Any) -> None:
    """Set dotted `key` of `cfg` to `value`, converting strings to the field's type."""
    parts = key.split(".")
    target: Any = cfg
    for p in parts[:-1]:
        if not dataclasses.is_dataclass(target) or not hasattr(target, p):
            raise ConfigError(f"Unknown config section {key!r}; see `describe()` for valid keys.")
        target = getattr(target, p)
    name = parts[-1]
    fields = {f.name: f for f in dataclasses.fields(target)} if dataclasses.is_dataclass(target) else {}
    if name not in fields or dataclasses.is_dataclass(getattr(target, name)):
        raise ConfigError(f"Unknown config key {key!r}; see `describe()` for valid keys.")
    current = getattr(target, name)
    if isinstance(value, str) and not isinstance(current, str):
        try:
            value = json.loads(value) if not isinstance(current, bool) else value.lower() in {"1", "true", "yes"}
        except json.JSONDecodeError as exc:
            raise ConfigError(f"Config key {key!r}: cannot parse {value!r} as {type(current).__name__}.") from exc
    if isinstance(current, bool):
        value = bool(value)
    elif isinstance(current, int) and not isinstance(value, bool):
        if float(value) != int(value):
            raise ConfigError(f"Config key {key!r} needs an integer, got {value!r}.")
        value = int(value)
    elif isinstance(current, float):
        value = float(value)
    setattr(target, name, value)


def resolve(preset: str = "paper", overrides: dict[str, Any] | None = None) -> Config:
    """A `Config` from a preset name plus dotted overrides ({"align.epochs": 3, "seed": 1}).

    String values are parsed as JSON for non-string fields (so CLI `key=value` works).
    Raises ConfigError on an unknown preset or key, or a value of the wrong kind.
    """
    if preset not in PRESETS:
        raise ConfigError(f"Unknown preset {preset!r}; choose one of {', '.join(PRESETS)}.")
    cfg = Config(preset=preset)
    if preset in ("cpu", "tiny"):
        for key, (value, _why) in CPU_DIFFERENCES.items():
            _set(cfg, key, value)
    if preset == "tiny":
        for key, value in TINY_OVERRIDES.items():
            _set(cfg, key, value)
    for key, value in (overrides or {}).items():
        _set(cfg, key, value)
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    """Check choices and ranges; raise ConfigError with the offending key."""
    if cfg.pathology not in PATHOLOGIES:
        raise ConfigError(f"pathology {cfg.pathology!r} is not one of {', '.join(PATHOLOGIES)}.")
    if cfg.align.loss not in ("ahnp_supcma", "supcma", "cma", "supcon"):
        raise ConfigError(f"align.loss {cfg.align.loss!r}: use ahnp_supcma, supcma, cma or supcon.")
    if cfg.align.beta_mode not in ("equation", "log_weight"):
        raise ConfigError(f"align.beta_mode {cfg.align.beta_mode!r}: use equation or log_weight.")
    if cfg.align.weighting not in ("topk", "linear", "exp"):
        raise ConfigError(f"align.weighting {cfg.align.weighting!r}: use topk, linear or exp.")
    for section in (cfg.teacher, cfg.ssl, cfg.align, cfg.finetune):
        if section.optimizer not in ("adam", "adamw"):
            raise ConfigError(f"optimizer {section.optimizer!r}: use adam or adamw.")
        if section.batch_size < 1 or section.epochs < 1:
            raise ConfigError("batch_size and epochs must be at least 1.")
    if cfg.val_smooth_epochs < 1:
        raise ConfigError("val_smooth_epochs must be at least 1 (1: no smoothing).")
    if not (0.0 < cfg.align.positive_fraction < 1.0 and 0.0 < cfg.finetune.positive_fraction < 1.0):
        raise ConfigError("positive_fraction must be between 0 and 1.")


def to_dict(cfg: Config) -> dict:
    """JSON-ready nested dict of a Config."""
    return dataclasses.asdict(cfg)


def from_dict(data: dict) -> Config:
    """Rebuild a Config from `to_dict` output (e.g. from a checkpoint)."""
    cfg = Config()
    sections = {f.name for f in dataclasses.fields(Config) if dataclasses.is_dataclass(getattr(cfg, f.name))}
    for key, value in data.items():
        if key in sections:
            for sub, v in value.items():
                setattr(getattr(cfg, key), sub, v)
        elif hasattr(cfg, key):
            setattr(cfg, key, value)
    return cfg


def save_json(cfg: Config, path) -> None:
    """Write the resolved config as indented JSON (sorted keys, no trailing newline), atomically."""
    write_json(path, to_dict(cfg), nan="literal", sort_keys=True, trailing_newline=False)


def describe() -> dict[str, str]:
    """Every dotted key -> its documentation string."""
    out: dict[str, str] = {}

    def walk(obj: Any, prefix: str) -> None:
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                walk(value, prefix + f.name + ".")
            else:
                out[prefix + f.name] = f.metadata.get("doc", "")

    walk(Config(), "")
    return out


def parse_overrides(items: list[str] | None) -> dict[str, str]:
    """CLI `--set key=value` items -> dict; raise ConfigError on a malformed item."""
    out: dict[str, str] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: write it as key=value, e.g. align.epochs=3.")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out
