"""`cromotex-train build`: train, evaluate and export a complete model bundle (docs/bundle.md).

Stages, each run once and marked done in the work directory (`WORK/<stage>.done`,
JSON with its wall time), so an interrupted build resumes where it stopped (a
stage that was interrupted itself resumes from its `last.pt`):

1. `teacher`: stage 1, the CXR teacher (multi-label with the cpu preset); its
   pooled features are cached once for every cohort pair (`teacher_features.npy`).
2. `ssl`: stage 2, one SimCLR-pretrained ECG encoder shared by all pathologies.
3. `align_<p>`, `finetune_<p>` for every pathology p: stage 3 on the cached teacher
   features from the shared SSL encoder, then stage 4 from the aligned encoder.
4. `export`: ONNX of every fine-tuned ECG model (parity-checked against torch) with
   a dynamic-int8 copy, and of the teacher (weights stored as float16 unless
   `--teacher-fp32`).
5. `evaluate`: onnxruntime outputs of the exported models on the cohort; the
   int8 copies are kept only when every pathology's test AUROC moves by <= 0.005;
   thresholds maximise F1 on validation; test AUROC / AUPRC / F1 with bootstrap
   95% CIs; embedding statistics of the training split (Ledoit-Wolf covariance)
   and the OOD cut-off.
6. `bundle` (always redone, seconds): copies the models into `--out` with the final
   thresholds in their metadata, the embedding statistics, demo cases and their
   reference outputs (computed with `engine.inference.Predictor` on the finished
   bundle), `MODEL_CARD.md` and `manifest.json` (sha256 of every file); then
   `training.calibrate.calibrate_bundle` adds the teacher's embedding statistics and
   every model's borderline band, and the manifest is signed with `--signing-key`
   (`manifest.json.sig`, engine.signing); result tables and plots into `--results`.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from engine.constants import DEMO_DISCLAIMER, PATHOLOGIES, preprocessing_constants
from engine.errors import CromotexError
from training import config as config_mod
from training.calibration import calibrated_threshold
from training.config import Config
from training.jsonio import write_json

log = logging.getLogger(__name__)

VERSION = "0.1.0"
#: Largest AUROC change (test split) for which int8 copies are shipped (docs/bundle.md).
INT8_MAX_AUROC_CHANGE = 0.005
#: Percentile of the training Mahalanobis distances used for the OOD cut-off.
OOD_PERCENTILE = 99.5
N_BOOT = 1000
BOOT_SEED = 0


class BuildError(CromotexError):
    """The build cannot go on (missing inputs, a stage's outputs absent, bad options)."""


# ----------------------------------------------------------------------------- stage markers

@dataclass
class StageRunner:
    """Runs named stages once: a finished stage leaves `WORK/<name>.done` (JSON) and is skipped."""

    work: Path
    timings: dict[str, dict[str, Any]] = field(default_factory=dict)

    def done(self, name: str) -> bool:
        return (self.work / f"{name}.done").is_file()

    def run(self, name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """`fn()` unless `name` is done; returns (and records) the stage's info dict."""
        marker = self.work / f"{name}.done"
        if marker.is_file():
            info = json.loads(marker.read_text())
            log.info("stage %s: done before (%.0f s), skipped", name, info.get("wall_s", float("nan")))
        else:
            log.info("stage %s: starting", name)
            t0 = time.perf_counter()
            info = dict(fn() or {})
            info["wall_s"] = round(time.perf_counter() - t0, 1)
            info["finished_utc"] = _utc_now()
            write_json(marker, info, nan="literal", trailing_newline=False)
            log.info("stage %s: finished in %.0f s", name, info["wall_s"])
        self.timings[name] = info
        return info


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# ----------------------------------------------------------------------------- configs

def resolve_configs(preset: str, overrides: dict[str, Any], pathologies: tuple[str, ...]) -> dict[str, Config]:
    """One resolved Config per pathology (they differ only in `pathology`); the teacher
    and SSL stages use the first one's sections (they do not depend on the pathology)."""
    return {p: config_mod.resolve(preset, {**overrides, "pathology": p}) for p in pathologies}


def code_version() -> str:
    """`0.1.0+git<sha>` (`.dirty` when the checkout has uncommitted changes), or `0.1.0`."""
    repo = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=repo, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "training",
                                "engine"], cwd=repo, capture_output=True, text=True, timeout=10).stdout.strip()
        return f"{VERSION}+git{sha}" + (".dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return VERSION


# ----------------------------------------------------------------------------- training stages

def teacher_dirs(cfgs: dict[str, Config]) -> dict[str, list[str]]:
    """Work sub-directory of each teacher -> the pathologies it serves: one multi-label teacher
    (`teacher`, cpu preset) or one single-label teacher per pathology (`teacher_<p>`, paper)."""
    first = next(iter(cfgs.values()))
    if first.teacher.multi_label:
        return {"teacher": list(PATHOLOGIES)}
    return {f"teacher_{p}": [p] for p in cfgs}


def teacher_dir_of(cfg: Config) -> str:
    """The work sub-directory of the teacher whose features `cfg.pathology` is aligned to."""
    return "teacher" if cfg.teacher.multi_label else f"teacher_{cfg.pathology}"


def shipped_teacher_name(dir_name: str) -> str:
    """File name in the bundle of the teacher trained in WORK/<dir_name>."""
    return "cxr_teacher.onnx" if dir_name == "teacher" else f"cxr_{dir_name}.onnx"


def train_shared(runner: StageRunner, cfgs: dict[str, Config], cohort: Path) -> None:
    """Stages 1 and 2: the teacher(s) with cached features; the shared SSL encoder."""
    from training.stages import pretrain_cxr, pretrain_ecg
    for name, paths in teacher_dirs(cfgs).items():
        cfg = cfgs[paths[0]] if paths[0] in cfgs else next(iter(cfgs.values()))

        def teacher(cfg: Config = cfg, name: str = name) -> dict:
            pretrain_cxr.run(cfg, cohort, runner.work / name, resume=True)
            return _fit_summary(runner.work / name)

        runner.run(name, teacher)

    def ssl() -> dict:
        pretrain_ecg.run(next(iter(cfgs.values())), cohort, runner.work / "ssl", resume=True)
        return _fit_summary(runner.work / "ssl")

    runner.run("ssl", ssl)


def train_pathology(runner: StageRunner, cfg: Config, cohort: Path, prefix: str = "",
                    init: Path | None | str = "ssl", align_stage: bool = True) -> Path:
    """Stages 3 and 4 for `cfg.pathology` under `WORK/<prefix>align_<p>` and
    `WORK/<prefix>finetune_<p>`. `init`: "ssl" (the shared SSL encoder), None (from
    scratch) or a checkpoint path; `align_stage=False` fine-tunes directly from `init`.
    Returns the finetune directory."""
    from training.stages import align, finetune
    p = cfg.pathology
    start = runner.work / "ssl" / "best.pt" if init == "ssl" else init
    a_dir, f_dir = runner.work / f"{prefix}align_{p}", runner.work / f"{prefix}finetune_{p}"

    if align_stage:
        def run_align() -> dict:
            align.run(cfg, cohort, a_dir, teacher=runner.work / teacher_dir_of(cfg), init=start, resume=True)
            return _fit_summary(a_dir)
        runner.run(f"{prefix}align_{p}", run_align)
        start = a_dir / "best.pt"

    def run_finetune() -> dict:
        finetune.run(cfg, cohort, f_dir, init=start, resume=True)
        return _fit_summary(f_dir)

    runner.run(f"{prefix}finetune_{p}", run_finetune)
    return f_dir


def _fit_summary(stage_dir: Path) -> dict[str, Any]:
    """Epochs run, best epoch and metric, throughput, from a stage's last checkpoint/history."""
    hist = json.loads((stage_dir / "history.json").read_text()) if (stage_dir / "history.json").is_file() else []
    from training.checkpoint import load_checkpoint
    last = load_checkpoint(stage_dir / "last.pt")
    sps = [h.get("samples_per_s", float("nan")) for h in hist]
    return {"epochs_run": int(last["epoch"]), "steps": int(last["step"]), "best_epoch": int(last["best_epoch"]),
            "best_val_metric": float(last["best_metric"]), "stopped_early": bool(last["bad_epochs"] > 0
                                                                                and last["finished"]
                                                                                and last["epoch"] < _epochs(last)),
            "median_train_samples_per_s": float(np.median(sps)) if sps else float("nan"), "history": hist}


def _epochs(state: dict) -> int:
    cfg = state["config"]
    section = {"pretrain-cxr": "teacher", "pretrain-ecg": "ssl", "align": "align", "finetune": "finetune"}[
        state["stage"]]
    return int(cfg[section]["epochs"])


# ----------------------------------------------------------------------------- onnxruntime passes

def onnx_outputs(path: Path, arr: np.ndarray, idx: np.ndarray, input_name: str,
                 batch: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(logits float32 `[n, K]`, embeddings float32 `[n, D]`) of rows `idx` of a cohort array,
    by the ONNX model at `path` (`training.onnx_run.predict`)."""
    from training import onnx_run
    return onnx_run.predict(onnx_run.session(path), input_name, arr, idx, batch)


def set_thresholds(path: Path, thresholds: list[float]) -> None:
    """Rewrite the `cromotex.threshold` metadata of an exported model (weights untouched)."""
    import onnx
    model = onnx.load(str(path))
    for prop in model.metadata_props:
        if prop.key == "cromotex.threshold":
            prop.value = json.dumps([float(t) for t in thresholds])
    tmp = Path(str(path) + ".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(path)


# ----------------------------------------------------------------------------- statistics

def embedding_stats(train: np.ndarray, val: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, dict]:
    """Mean float64 `[D]`, precision float64 `[D, D]` (inverse of the Ledoit-Wolf shrunk covariance of
    the training embeddings `[n, D]`), OOD cut-off and a summary.

    Cut-off: the 99.5th percentile of the training Mahalanobis distances times
    sqrt((n + 1) / (n - D - 2)), the expected inflation of a new sample's distance when the
    covariance is estimated from the same n samples (Hotelling); training distances alone are
    optimistically small (with n ~ 1000 and D = 256 by ~16%). With n <= D + 2 (the teacher's
    1024-wide embedding of ~1000 images) that correction is undefined and the training distances
    are far too small (27 vs up to 57 for held-out phantom images): the cut-off is then the larger
    of that percentile and the largest validation distance."""
    from sklearn.covariance import LedoitWolf
    x = np.asarray(train, dtype=np.float64)
    n, d = x.shape
    lw = LedoitWolf().fit(x)
    mean = lw.location_.astype(np.float64)
    precision = np.linalg.inv(lw.covariance_)
    precision = (precision + precision.T) / 2.0
    d_train = mahalanobis(x, mean, precision)
    d_val = mahalanobis(np.asarray(val, np.float64), mean, precision) if len(val) else np.zeros(0)
    q_train = float(np.percentile(d_train, OOD_PERCENTILE))
    factor = math.sqrt((n + 1) / (n - d - 2)) if n > d + 2 else float("nan")
    cutoff = q_train * factor if math.isfinite(factor) else max(q_train, float(np.max(d_val, initial=q_train)))
    return mean, precision, cutoff, {
        "n_train": int(n), "shrinkage": float(lw.shrinkage_), "train_q995": q_train,
        "out_of_sample_factor": factor, "cutoff": cutoff,
        "val_fraction_flagged": float(np.mean(d_val > cutoff)) if len(d_val) else float("nan"),
        "rule": f"{OOD_PERCENTILE}th percentile of the training Mahalanobis distances (Ledoit-Wolf covariance of "
                "the training embeddings) x sqrt((n+1)/(n-D-2)), the expected out-of-sample inflation"
        if math.isfinite(factor) else
        f"n <= D + 2, where the out-of-sample correction is undefined: the larger of the {OOD_PERCENTILE}th "
        "percentile of the training Mahalanobis distances (Ledoit-Wolf covariance of the training embeddings) "
        "and the largest validation distance (held-out images)"}


def white_noise_windows(n: int = 8) -> np.ndarray:
    """float32 `[n, 12, 1000]`: 10 s of 12-lead Gaussian white noise (1 mV rms, 500 Hz, seeds 0..n-1)
    through `engine.preprocess.preprocess_ecg`, to measure how often the OOD flag fires on noise."""
    from engine.constants import LEADS
    from engine.preprocess import preprocess_ecg
    from engine.records import EcgRecord, Source
    out = []
    for seed in range(n):
        sig = np.random.default_rng(seed).normal(size=(len(LEADS), 5000)).astype(np.float32)
        rec = EcgRecord(signal=sig, fs=500.0, leads=tuple(LEADS), source=Source("white-noise", "synthetic"))
        out.append(preprocess_ecg(rec).windows[0])
    return np.stack(out).astype(np.float32)


def mahalanobis(x: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Distances float64 `[n]` of rows of `x` `[n, D]`."""
    d = np.asarray(x, np.float64) - mean
    return np.sqrt(np.maximum(np.einsum("ni,ij,nj->n", d, precision, d), 0.0))


def metrics_block(val_logit: np.ndarray, val_label: np.ndarray, test_logit: np.ndarray,
                  test_label: np.ndarray) -> dict[str, Any]:
    """training.evaluate's metrics of one model: threshold maximising F1 on validation, test
    AUROC / AUPRC / F1 as [value, lo95, hi95] (1000 bootstrap resamples, seed 0)."""
    from training.evaluate import evaluate_one
    r = evaluate_one({"val_logit": np.asarray(val_logit, np.float64), "val_label": val_label,
                      "test_logit": np.asarray(test_logit, np.float64), "test_label": test_label},
                     n_boot=N_BOOT, seed=BOOT_SEED)
    r["threshold"] = float(min(max(r["threshold"], 1e-6), 1.0 - 1e-6))
    return r


# ----------------------------------------------------------------------------- export + evaluate

def export_stage(work: Path, cohort: Path, cfgs: dict[str, Config], data: str, bundle_id: str,
                 teacher_fp16: bool) -> dict[str, Any]:
    """ONNX files into WORK/export/ with provisional thresholds (0.5; the bundle stage writes the final
    ones): ECG fp32 + int8 per pathology, the teacher (fp32, and a float16-weight copy)."""
    from dataclasses import asdict
    from training import export as ex
    from training.checkpoint import load_checkpoint
    from training.stages.finetune import load_classifier
    from training.stages.pretrain_cxr import build_teacher, teacher_pathologies
    out = work / "export"
    out.mkdir(parents=True, exist_ok=True)
    info: dict[str, Any] = {"ecg": {}}
    check_ecg = ex.check_records(cohort, "ecg", 16)
    for p in cfgs:
        model, _ = load_classifier(work / f"finetune_{p}" / "best.pt")
        rep = ex.export_ecg(model, out / f"ecg_{p}.onnx", p, 0.5, check_ecg, data, bundle_id, int8=True)
        info["ecg"][p] = asdict(rep)
    check_cxr = ex.check_records(cohort, "cxr", 8)
    info["teachers"] = {}
    for name in teacher_dirs(cfgs):
        state = load_checkpoint(work / name / "best.pt", stage="pretrain-cxr")
        tcfg = config_mod.from_dict(state["config"])
        tcfg.teacher.weights = ""
        teacher = build_teacher(tcfg)
        teacher.load_state_dict(state["models"]["teacher"])
        paths = teacher_pathologies(tcfg)
        module = teacher if tcfg.teacher.image_size == 224 else _Resized(teacher, tcfg.teacher.image_size)
        fp32 = out / f"{name}.fp32.onnx"
        rep = ex.export_cxr(module, fp32, paths, [0.5] * len(paths), check_cxr, data, bundle_id)
        t = {**asdict(rep), "pathologies": paths, "image_size": tcfg.teacher.image_size, "file": fp32.name}
        if teacher_fp16:
            from training.onnx_fp16 import fp16_weights
            half_path = out / f"{name}.fp16.onnx"
            n = fp16_weights(fp32, half_path)
            ref, _ = onnx_outputs(fp32, check_cxr, np.arange(len(check_cxr)), "cxr", 8)
            half, _ = onnx_outputs(half_path, check_cxr, np.arange(len(check_cxr)), "cxr", 8)
            t.update(fp16_initializers=n, fp16_max_abs_logit_diff=float(np.max(np.abs(ref - half))),
                     file=half_path.name)
        info["teachers"][name] = t
    return info


class _Resized:
    """A teacher trained at another image size, exported with a 224 input (tiny preset only):
    `features2` resizes bilinearly first."""

    def __new__(cls, teacher, size: int):
        import torch
        import torch.nn.functional as F

        class Resized(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.inner = teacher
                self.classifier = teacher.classifier

            def features2(self, x: torch.Tensor) -> torch.Tensor:
                x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
                return self.inner.features2(x)

        return Resized()


def evaluate_stage(work: Path, cohort: Path, pathologies: tuple[str, ...],
                   export_info: dict[str, Any]) -> dict[str, Any]:
    """onnxruntime outputs of the exported models, the int8 decision, metrics, thresholds and
    embedding statistics; arrays into WORK/evaluate/, the summary returned (and kept in the marker)."""
    from training.metrics import auroc
    from training.data import load_cohort
    co = load_cohort(cohort)
    ev = work / "evaluate"
    ev.mkdir(parents=True, exist_ok=True)
    exp = work / "export"
    splits = {s: co.indices(s) for s in ("train", "val", "test")}
    info: dict[str, Any] = {"ecg": {}, "teacher": {}}
    outs: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for p in pathologies:
        y = co.label(p)
        outs[p] = {}
        for prec, fname in (("fp32", f"ecg_{p}.onnx"), ("int8", f"ecg_{p}.int8.onnx")):
            res = {}
            for s, idx in splits.items():
                lg, emb = onnx_outputs(exp / fname, co.ecg, idx, "ecg")
                res[f"{s}_logit"], res[f"{s}_embedding"], res[f"{s}_label"] = lg[:, 0], emb, y[idx]
                res[f"{s}_index"] = idx
            np.savez(ev / f"ecg_{p}_{prec}.npz", pathology=p, **res)
            outs[p][prec] = res
        change = auroc(outs[p]["int8"]["test_label"], outs[p]["int8"]["test_logit"]) - \
            auroc(outs[p]["fp32"]["test_label"], outs[p]["fp32"]["test_logit"])
        info["ecg"][p] = {"int8_test_auroc_change": float(change)}
    changes = [abs(info["ecg"][p]["int8_test_auroc_change"]) for p in pathologies]
    use_int8 = all(math.isfinite(c) and c <= INT8_MAX_AUROC_CHANGE for c in changes)
    info["int8_shipped"] = bool(use_int8)
    info["int8_rule"] = (f"int8 copies are shipped (and used by default) only when every pathology's test "
                         f"AUROC changes by <= {INT8_MAX_AUROC_CHANGE}")
    default = "int8" if use_int8 else "fp32"
    noise = white_noise_windows()
    for p in pathologies:
        res = outs[p][default]
        m = metrics_block(res["val_logit"], res["val_label"], res["test_logit"], res["test_label"])
        m_fp32 = m if default == "fp32" else metrics_block(
            outs[p]["fp32"]["val_logit"], outs[p]["fp32"]["val_label"],
            outs[p]["fp32"]["test_logit"], outs[p]["fp32"]["test_label"])
        mean, precision, cutoff, summary = embedding_stats(res["train_embedding"], res["val_embedding"])
        np.savez(ev / f"embedding_stats_{p}.npz", mean=mean, precision=precision)
        d_test = mahalanobis(res["test_embedding"], mean, precision)
        summary["test_fraction_flagged"] = float(np.mean(d_test > cutoff)) if len(d_test) else float("nan")
        fname = f"ecg_{p}.int8.onnx" if default == "int8" else f"ecg_{p}.onnx"
        _, emb_noise = onnx_outputs(exp / fname, noise, np.arange(len(noise)), "ecg")
        d_noise = mahalanobis(emb_noise, mean, precision)
        summary["white_noise_flagged"] = f"{int(np.sum(d_noise > cutoff))}/{len(d_noise)}"
        summary["white_noise_distances"] = [round(float(v), 2) for v in d_noise]
        info["ecg"][p].update(precision=default, metrics=m, fp32_metrics=m_fp32, ood=summary,
                              ood_cutoff=cutoff, test_ood=(d_test > cutoff).tolist())
    # the teacher(s), through the files that are shipped
    for name, t_info in export_info["teachers"].items():
        tfile = exp / t_info["file"]
        t_out = {}
        for s in ("val", "test"):
            lg, _ = onnx_outputs(tfile, co.cxr, splits[s], "cxr", 16)
            t_out[s] = lg
        np.savez(ev / f"{name}.npz", val_logit=t_out["val"], test_logit=t_out["test"], val_index=splits["val"],
                 test_index=splits["test"], pathologies=np.array(t_info["pathologies"]))
        for j, p in enumerate(t_info["pathologies"]):
            y = co.label(p)
            m = metrics_block(t_out["val"][:, j], y[splits["val"]], t_out["test"][:, j], y[splits["test"]])
            with np.load(work / name / f"predictions_{p}.npz") as z:
                torch_auroc = auroc(z["test_label"], z["test_logit"])
            info["teacher"][p] = {"dir": name, "file": shipped_teacher_name(name), "export_file": t_info["file"],
                                  "output_index": j, "metrics": m,
                                  "test_auroc_change_vs_torch_fp32": float(m["test"]["auroc"][0] - torch_auroc)}
    return info


# ----------------------------------------------------------------------------- demo cases

@dataclass
class DemoCase:
    """A demo case copied into the demo folder: file paths (absolute) and its labels."""

    name: str
    labels: dict[str, int]
    subject_id: int
    files: dict[str, Path]


def phantom_root(cohort_info: dict) -> Path | None:
    """The phantom root a cohort was built from (it holds phantom.json), or None."""
    ecg_root = cohort_info.get("inputs", {}).get("ecg_root")
    if ecg_root and (Path(ecg_root).parent / "phantom.json").is_file():
        return Path(ecg_root).parent
    return None


def choose_demo_rows(cohort: Path, pathologies: tuple[str, ...], not_ood: np.ndarray,
                     test_index: np.ndarray, max_cases: int = 3) -> list[tuple[str, int]]:
    """(name, pair row) of up to `max_cases` test-split demo cases: the first pair (by row) with every
    finding, the first with none, and the first with a DICOM copy of its ECG (if the phantom wrote
    any). Only pairs that no model flags as out of distribution are considered; the choice never
    looks at the models' predictions."""
    from training.data import load_cohort
    c = load_cohort(cohort)
    droot = phantom_root(c.info)
    ok = {int(i) for i, good in zip(test_index, not_ood) if good}
    rows = [i for i in range(len(c)) if i in ok]
    lab = {i: [int(c.labels[p][i]) for p in pathologies] for i in rows}
    picks: list[tuple[str, int]] = []
    full = next((i for i in rows if all(lab[i])), None)
    if full is not None:
        picks.append(("case1_" + "_".join(pathologies), full))
    normal = next((i for i in rows if not any(lab[i])), None)
    if normal is not None:
        picks.append(("case2_no_finding", normal))
    if droot is not None:
        used = {r for _, r in picks}
        dcm = next((i for i in rows if i not in used and
                    (droot / "dicom" / "ecg" / f"{c.pairs[i]['ecg_study_id']}.dcm").is_file()), None)
        if dcm is not None:
            found = [p for p, v in zip(pathologies, lab[dcm]) if v] or ["no_finding"]
            picks.append(("case3_dicom_" + "_".join(found), dcm))
    return picks[:max_cases]


def copy_demo_case(cohort: Path, row: int, name: str, dest: Path, pathologies: tuple[str, ...]) -> DemoCase:
    """Copy pair `row`'s WFDB ECG (renamed `<name>_ecg.hea/.dat`), its CXR JPEG (`<name>_cxr.jpg`) and
    the phantom's DICOM copies of both when they exist (`<name>_ecg.dcm`, `<name>_cxr.dcm`)."""
    from training.data import load_cohort
    c = load_cohort(cohort)
    pair = c.pairs[row]
    ecg_root = Path(c.info["inputs"]["ecg_root"])
    cxr_root = Path(c.info["inputs"]["cxr_root"])
    dest.mkdir(parents=True, exist_ok=True)
    src = ecg_root / pair["ecg_file"]
    old = src.name
    header = src.with_suffix(".hea").read_text().splitlines()
    new_lines = []
    for k, line in enumerate(header):
        parts = line.split(" ")
        if k == 0 and parts[0] == old:
            parts[0] = f"{name}_ecg"
        elif parts and parts[0] == f"{old}.dat":
            parts[0] = f"{name}_ecg.dat"
        new_lines.append(" ".join(parts))
    files = {}
    (dest / f"{name}_ecg.hea").write_text("\n".join(new_lines) + "\n")
    shutil.copyfile(src.with_suffix(".dat"), dest / f"{name}_ecg.dat")
    files["ecg"] = dest / f"{name}_ecg.hea"
    shutil.copyfile(cxr_root / pair["cxr_file"], dest / f"{name}_cxr.jpg")
    files["cxr"] = dest / f"{name}_cxr.jpg"
    droot = phantom_root(c.info)
    if droot is not None:
        e_dcm = droot / "dicom" / "ecg" / f"{pair['ecg_study_id']}.dcm"
        x_dcm = droot / "dicom" / "cxr" / f"{pair['dicom_id']}.dcm"
        if e_dcm.is_file():
            shutil.copyfile(e_dcm, dest / f"{name}_ecg.dcm")
            files["ecg_dicom"] = dest / f"{name}_ecg.dcm"
        if x_dcm.is_file():
            shutil.copyfile(x_dcm, dest / f"{name}_cxr.dcm")
            files["cxr_dicom"] = dest / f"{name}_cxr.dcm"
    return DemoCase(name=name, labels={p: int(pair[p]) for p in pathologies}, subject_id=int(pair["subject_id"]),
                    files=files)


def write_demo_readme(dest: Path, cases: list[DemoCase], cohort_info: dict) -> None:
    """resources/demo/README.md: what the cases are (synthetic phantom) and where they come from."""
    lines = ["# Demo cases (synthetic phantom data)", "",
             "These files are **synthetic**: generated by the CroMoTEX phantom (`cromotex-train phantom`, "
             "docs/phantom.md), not recorded from any person. They exist to show the app and to test the "
             "shipped demo models (`resources/models/`, themselves trained on phantom data and not for "
             "diagnosis).", "",
             f"Phantom: {cohort_info.get('inputs', {}).get('ecg_root', '?')} (see the manifest's "
             "`training.phantom` for its seed and size). Every case is a pair of the cohort's **test** split "
             "(never seen in training). Choice rule (`training.build.choose_demo_rows`): the first test pair "
             "with every finding, the first with none, and the first with a DICOM copy of its ECG; pairs "
             "that a model flags as out of distribution are skipped; predictions are never looked at.", "",
             "| case | subject | labels (phantom CheXpert) | files |", "|---|---|---|---|"]
    for c in cases:
        labs = ", ".join(f"{p}={v}" for p, v in c.labels.items())
        files = ", ".join(f"`{f.name}`" for f in c.files.values())
        lines.append(f"| {c.name} | {c.subject_id} | {labs} | {files} |")
    lines += ["", "`*_ecg.hea/.dat`: WFDB, 500 Hz, 10 s, 12 leads (MIMIC-IV-ECG layout; header renamed to "
                  "the case). `*_ecg.dcm`: the same ECG as DICOM 12-Lead ECG Waveform Storage. "
                  "`*_cxr.jpg`: the paired frontal radiograph (8-bit JPEG as in MIMIC-CXR-JPG). "
                  "`*_cxr.dcm`: the same image as DICOM DX.", "",
              "Their model outputs at export time are stored in `resources/models/reference_outputs.json`."]
    (dest / "README.md").write_text("\n".join(lines) + "\n")


# ----------------------------------------------------------------------------- bundle assembly

def _rel(path: Path, repo: Path) -> str:
    try:
        return path.resolve().relative_to(repo).as_posix()
    except ValueError:
        return str(path.resolve())


def sha256(path: Path) -> str:
    from engine.bundle import sha256_file
    return sha256_file(path)


def assemble(args: argparse.Namespace, work: Path, cohort: Path, cfgs: dict[str, Config],
             runner: StageRunner, ev: dict, ex_info: dict, data: str, bundle_id: str) -> dict[str, Any]:
    """Write the bundle directory `args.out` (see the module docstring); returns the manifest."""
    from training.data import load_cohort
    from training.model_card import model_card
    out = Path(args.out)
    repo = Path(__file__).resolve().parent.parent
    pathologies = tuple(cfgs)
    if out.exists():
        for f in out.iterdir():
            if f.is_file() and f.name != ".gitkeep":
                f.unlink()
    out.mkdir(parents=True, exist_ok=True)
    exp = work / "export"
    c = load_cohort(cohort)
    files_of: dict[str, Any] = {}
    paths_block: dict[str, Any] = {}
    use_int8 = ev["int8_shipped"]
    for p in pathologies:
        e = ev["ecg"][p]
        thr = e["metrics"]["threshold"]
        shutil.copyfile(exp / f"ecg_{p}.onnx", out / f"ecg_{p}.onnx")
        set_thresholds(out / f"ecg_{p}.onnx", [thr])
        entry: dict[str, Any] = {"file": f"ecg_{p}.onnx"}
        if use_int8:
            shutil.copyfile(exp / f"ecg_{p}.int8.onnx", out / f"ecg_{p}.int8.onnx")
            set_thresholds(out / f"ecg_{p}.int8.onnx", [thr])
            entry["int8_file"] = f"ecg_{p}.int8.onnx"
        shutil.copyfile(work / "evaluate" / f"embedding_stats_{p}.npz", out / f"embedding_stats_{p}.npz")
        rep = ex_info["ecg"][p]
        cal = e["metrics"].get("calibration", {})
        if np.isfinite(cal.get("temperature", float("nan"))):
            # training-side calibration: the ONNX model still outputs the raw logit; an engine
            # showing calibrated probabilities uses sigmoid(logit / temperature) against
            # threshold_calibrated (the same decisions as sigmoid(logit) against threshold)
            entry.update({"temperature": cal["temperature"],
                          "threshold_calibrated": calibrated_threshold(thr, cal["temperature"]),
                          "calibration": {k: cal[k] for k in ("rule", "bins", "val_ece_raw", "val_ece_calibrated",
                                                              "test_ece_raw", "test_ece_calibrated")}})
        entry.update({
            "threshold": thr, "threshold_rule": "maximises F1 on the validation split",
            "embedding_stats": f"embedding_stats_{p}.npz", "ood_cutoff": e["ood_cutoff"],
            "ood": {k: v for k, v in e["ood"].items()},
            "metrics": {"model": e["precision"], "split": "test",
                        "test": e["metrics"]["test"], "val": {"auroc": e["metrics"]["val_auroc"],
                                                              "f1": e["metrics"]["val_f1"]},
                        "n_test": e["metrics"]["n_test"], "n_test_positive": e["metrics"]["n_test_positive"],
                        "fp32_test": e["fp32_metrics"]["test"],
                        "bootstrap": {"resamples": N_BOOT, "seed": BOOT_SEED, "level": 0.95}},
            "export": {"onnx_vs_torch_max_abs_logit_diff": rep["max_abs_logit_diff"],
                       "int8_max_abs_logit_diff": rep["int8_max_abs_logit_diff"],
                       "int8_max_abs_prob_diff": rep["int8_max_abs_prob_diff"],
                       "int8_test_auroc_change": e["int8_test_auroc_change"]},
        })
        paths_block[p] = {"ecg": entry}
    for name, t_info in ex_info["teachers"].items():
        fname = shipped_teacher_name(name)
        shutil.copyfile(exp / t_info["file"], out / fname)
        set_thresholds(out / fname, [ev["teacher"][p]["metrics"]["threshold"] for p in t_info["pathologies"]])
    for p in pathologies:
        if p in ev["teacher"]:
            t = ev["teacher"][p]
            paths_block[p]["cxr"] = {
                "file": t["file"], "output_index": t["output_index"], "threshold": t["metrics"]["threshold"],
                "metrics": {"model": "fp16-weights" if args.teacher_fp16 else "fp32", "split": "test",
                            "test": t["metrics"]["test"], "val": {"auroc": t["metrics"]["val_auroc"]},
                            "n_test": t["metrics"]["n_test"], "n_test_positive": t["metrics"]["n_test_positive"],
                            "test_auroc_change_vs_torch_fp32": t["test_auroc_change_vs_torch_fp32"]}}
    training_block = {
        "preset": args.preset,
        "overrides": config_mod.parse_overrides(args.set),
        "config": {p: config_mod.to_dict(cfg) for p, cfg in cfgs.items()},
        "cpu_differences": {k: {"value": v, "why": why} for k, (v, why) in config_mod.CPU_DIFFERENCES.items()}
        if args.preset in ("cpu", "tiny") else {},
        "stages": {k: {kk: vv for kk, vv in v.items() if kk != "history"} for k, v in runner.timings.items()},
        "cohort": {"path_name": cohort.name, "seed": c.info.get("seed"), "link": c.info.get("link"),
                   "counts": c.info.get("counts"), "splits": c.info.get("splits"),
                   "code_version": c.info.get("code_version")},
        "teacher": {"files": {shipped_teacher_name(n): {
            "pathologies": t["pathologies"], "image_size": t["image_size"],
            "fp16_max_abs_logit_diff": t.get("fp16_max_abs_logit_diff"),
            "onnx_vs_torch_max_abs_logit_diff": t["max_abs_logit_diff"]} for n, t in ex_info["teachers"].items()},
            "weights": "float16 initializers, Cast to float32 in the graph" if args.teacher_fp16 else "float32"},
        "int8": {"shipped": use_int8, "rule": ev["int8_rule"]},
        "command": "cromotex-train build " + " ".join(args.argv),
    }
    root = phantom_root(c.info)
    if root is not None:
        training_block["phantom"] = json.loads((root / "phantom.json").read_text())
    demo = bool(args.demo if args.demo is not None else data == "phantom")
    manifest: dict[str, Any] = {
        "schema_version": 1, "bundle_id": bundle_id, "data": data, "demo": demo,
        "disclaimer": DEMO_DISCLAIMER if demo else "",
        "created_utc": _utc_now(), "code_version": code_version(),
        "preprocessing": preprocessing_constants(), "files": {}, "pathologies": paths_block,
        "training": training_block,
    }
    # demo cases (copied from the phantom's test split) and their reference outputs
    cases: list[DemoCase] = []
    if args.demo_out:
        demo_dir = Path(args.demo_out)
        if demo_dir.exists():
            for f in demo_dir.iterdir():
                if f.is_file():
                    f.unlink()
        flags = np.array([ev["ecg"][p]["test_ood"] for p in pathologies]).any(axis=0)
        for name, row in choose_demo_rows(cohort, pathologies, ~flags, c.indices("test")):
            cases.append(copy_demo_case(cohort, row, name, demo_dir, pathologies))
        write_demo_readme(demo_dir, cases, c.info)
    (out / "MODEL_CARD.md").write_text(model_card(manifest, ev, cases, args), encoding="utf-8")
    _write_manifest(out, manifest, args.signing_key)
    if cases:
        ref = reference_outputs(out, cases, repo, args.signing_key)
        write_json(out / "reference_outputs.json", ref)
        manifest["reference"] = "reference_outputs.json"
        _write_manifest(out, manifest, args.signing_key)
    return manifest


def _write_manifest(out: Path, manifest: dict, signing_key: Path) -> None:
    """manifest.json with the sha256 of every other file, signed (manifest.json.sig)."""
    from engine.signing import load_private_key, sign_file
    manifest["files"] = {f.name: sha256(f) for f in sorted(out.iterdir())
                         if f.is_file() and f.name not in ("manifest.json", "manifest.json.sig", ".gitkeep")}
    write_json(out / "manifest.json", manifest)
    sign_file(out / "manifest.json", load_private_key(signing_key))


def reference_outputs(bundle_dir: Path, cases: list[DemoCase], repo: Path,
                      signing_key: Path) -> dict[str, Any]:
    """Outputs of the finished bundle (engine.inference.Predictor, default precision) on the demo cases:
    one entry per ECG file (WFDB and DICOM) with the case's CXR (JPEG, and DICOM when present).
    The bundle is loaded trusting its signing key (a site key need not be trusted here yet)."""
    from engine.bundle import load_bundle
    from engine.io import read_cxr, read_ecg
    from engine.inference import Predictor
    from engine.signing import load_private_key
    from engine.trust import load_trust
    trust = load_trust()
    trust.add(load_private_key(signing_key).public_key(), "build signing key", "--signing-key")
    pred = Predictor(load_bundle(bundle_dir, trust))
    out_cases = []
    for c in cases:
        cxr_files = [c.files["cxr"]] + ([c.files["cxr_dicom"]] if "cxr_dicom" in c.files else [])
        ecg_files = [c.files["ecg"]] + ([c.files["ecg_dicom"]] if "ecg_dicom" in c.files else [])
        for k, ef in enumerate(ecg_files):
            preds = pred.predict_ecg(read_ecg(ef))
            entry = {"case": c.name, "ecg": _rel(ef, repo), "labels": c.labels,
                     "probabilities": {p: v.probability for p, v in preds.items()},
                     "positive": {p: bool(v.positive) for p, v in preds.items()},
                     "ood_distance": {p: v.ood_distance for p, v in preds.items()},
                     "precision": pred.precision}
            cf = cxr_files[min(k, len(cxr_files) - 1)]
            if pred.cxr_pathologies:
                cp = pred.predict_cxr(read_cxr(cf))
                entry["cxr"] = _rel(cf, repo)
                entry["cxr_probabilities"] = {p: v.probability for p, v in cp.items()}
            out_cases.append(entry)
    return {"cases": out_cases, "atol": 1e-5,
            "note": "engine.inference.Predictor on the finished bundle, default precision and threads; "
                    "paths relative to the repository root"}


# ----------------------------------------------------------------------------- report plots

def plot_training_curves(runner: StageRunner, path: Path) -> None:
    """One panel per trained stage: training loss and the validation metric per epoch."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    stages = [(k, v["history"]) for k, v in runner.timings.items() if v.get("history")]
    if not stages:
        return
    cols = 4
    rows = math.ceil(len(stages) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), dpi=100, squeeze=False)
    for ax in axes.flat[len(stages):]:
        ax.axis("off")
    for ax, (name, hist) in zip(axes.flat, stages):
        ep = [h["epoch"] for h in hist]
        ax.plot(ep, [h["train_loss"] for h in hist], "o-", color="tab:blue", label="train loss")
        ax.set_xlabel("epoch")
        ax.set_ylabel("train loss", color="tab:blue")
        keys = [k for k in hist[0] if k.startswith("val_") and not k.startswith("val_auroc_")]
        ax2 = ax.twinx()
        for k, colour in zip(keys, ("tab:red", "tab:green")):
            ax2.plot(ep, [h[k] for h in hist], "s--", color=colour, label=k)
        ax2.set_ylabel(", ".join(keys), color="tab:red")
        ax.set_title(name, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_results(results: Path, work: Path, manifest: dict, ev: dict, runner: StageRunner) -> None:
    """docs/results/-style outputs: metrics.md/json, ROC curves, embedding plots, training curves."""
    from training.calibration import calibrated_probability, plot_reliability
    from training.evaluate import plot_embedding, plot_roc
    from training.metrics import sigmoid
    results.mkdir(parents=True, exist_ok=True)
    plot_training_curves(runner, results / "training_curves.png")
    rows = ["| pathology | model | test AUROC [95% CI] | AUPRC [95% CI] | F1 [95% CI] | threshold | "
            "n test (pos) |", "|---|---|---|---|---|---|---|"]
    for p, entry in manifest["pathologies"].items():
        for mod in ("ecg", "cxr"):
            if mod not in entry:
                continue
            m = entry[mod]["metrics"]
            cells = [f"{m['test'][k][0]:.3f} [{m['test'][k][1]:.3f}, {m['test'][k][2]:.3f}]"
                     for k in ("auroc", "auprc", "f1")]
            name = f"ECG ({m['model']})" if mod == "ecg" else "CXR teacher"
            rows.append(f"| {p} | {name} | " + " | ".join(cells) + f" | {entry[mod]['threshold']:.3f} | "
                        f"{m['n_test']} ({m['n_test_positive']}) |")
    (results / "metrics.md").write_text("# Shipped demo bundle: test metrics (phantom data)\n\n"
                                        "Synthetic phantom cohort, not clinical performance.\n\n"
                                        + "\n".join(rows) + "\n")
    write_json(results / "metrics.json", {p: {m: e[m]["metrics"] for m in e} for p, e in
                                          manifest["pathologies"].items()})
    for p in manifest["pathologies"]:
        prec = ev["ecg"][p]["precision"]
        with np.load(work / "evaluate" / f"ecg_{p}_{prec}.npz") as z:
            pred = {k: z[k] for k in z.files}
        plot_roc([pred], [f"ECG {p}"], results / f"roc_{p}.png", f"{p}: test ROC")
        temp = manifest["pathologies"][p]["ecg"].get("temperature")
        if temp is not None:
            y = pred["test_label"].astype(int)
            plot_reliability({"raw": (sigmoid(pred["test_logit"]), y),
                              f"T = {temp:.2f}": (calibrated_probability(pred["test_logit"], temp), y)},
                             results / f"reliability_{p}.png", f"{p}: test reliability (ECG)")
        plot_embedding(pred["test_embedding"], pred["test_label"], results / f"embedding_{p}.png",
                       f"{p}: test ECG embeddings")


# ----------------------------------------------------------------------------- main

class _QuietQuantizer(logging.Filter):
    """Drops onnxruntime.quantization's per-tensor INFO lines (logged on the root logger)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "root" and record.levelno < logging.WARNING
                    and "onnxruntime" in record.pathname)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="cromotex-train build", description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="cpu", choices=config_mod.PRESETS, help="hyper-parameter preset")
    p.add_argument("--cohort", required=True, type=Path, help="COHORT directory (docs/cohort.md)")
    p.add_argument("--out", required=True, type=Path, help="bundle directory to write (e.g. resources/models)")
    p.add_argument("--work", type=Path, default=Path("work/build"),
                   help="checkpoints, caches and stage markers (default work/build; keep it to resume)")
    p.add_argument("--data", choices=("auto", "phantom", "mimic"), default="auto",
                   help="provenance written into the bundle; auto: phantom when the cohort was built from a "
                        "phantom root (it holds phantom.json), else mimic")
    p.add_argument("--demo", dest="demo", action="store_true", default=None,
                   help="mark the bundle as a demo (default: only phantom bundles are)")
    p.add_argument("--demo-out", type=Path, help="copy demo cases from the phantom's test split here and store "
                                                 "their reference outputs (e.g. resources/demo)")
    p.add_argument("--results", type=Path, help="write metrics tables and plots here (e.g. docs/results/bundle)")
    p.add_argument("--signing-key", required=True, type=Path, metavar="KEY.pem",
                   help="Ed25519 private key that signs the bundle's manifest (`cromotex-train keygen`); "
                        "workstations must trust its public key (see the model card)")
    p.add_argument("--bundle-id", help="bundle id (default cromotex-<data>-demo-0.1.0 / cromotex-mimic-0.1.0)")
    p.add_argument("--pathologies", nargs="+", default=list(PATHOLOGIES), choices=PATHOLOGIES,
                   help=argparse.SUPPRESS)
    p.add_argument("--teacher-fp32", dest="teacher_fp16", action="store_false",
                   help="ship the teacher with float32 weights (default: float16 weights, half the size)")
    p.add_argument("--device", help="cpu | cuda (default: the preset's, cpu)")
    p.add_argument("--seed", type=int, help="random seed of every stage")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (for logs)")
    args = p.parse_args(argv)
    args.argv = list(argv)
    return args


def main(argv: list[str] | None = None) -> int:
    """`cromotex-train build --preset cpu --cohort COHORT --out resources/models [--demo-out ...]`."""
    from training.stages.common import configure_logging
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    configure_logging()
    for handler in logging.getLogger().handlers:
        handler.addFilter(_QuietQuantizer())
    from engine.signing import load_private_key
    load_private_key(args.signing_key)  # a bad key fails now, not after hours of training
    if set(args.pathologies) != set(PATHOLOGIES):
        raise BuildError("a bundle needs models for every pathology in engine.constants.PATHOLOGIES")
    from training.data import load_cohort
    cohort = args.cohort
    info = load_cohort(cohort).info
    data = args.data if args.data != "auto" else ("phantom" if phantom_root(info) else "mimic")
    bundle_id = args.bundle_id or (f"cromotex-{data}-demo-{VERSION}" if data == "phantom"
                                   else f"cromotex-{data}-{VERSION}")
    overrides: dict[str, Any] = config_mod.parse_overrides(args.set)
    for key, value in (("device", args.device), ("seed", args.seed)):
        if value is not None:
            overrides[key] = value
    if args.no_progress:
        overrides["progress"] = False
    args.set = [f"{k}={v}" for k, v in overrides.items()]
    pathologies = tuple(PATHOLOGIES)
    cfgs = resolve_configs(args.preset, overrides, pathologies)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    write_json(work / "build_config.json", {"argv": argv, "configs": {p: config_mod.to_dict(c)
                                                                      for p, c in cfgs.items()}})
    runner = StageRunner(work)
    t0 = time.perf_counter()
    train_shared(runner, cfgs, cohort)
    for p in pathologies:
        train_pathology(runner, cfgs[p], cohort)
    ex_info = runner.run("export", lambda: export_stage(work, cohort, cfgs, data, bundle_id, args.teacher_fp16))
    ev = runner.run("evaluate", lambda: evaluate_stage(work, cohort, pathologies, ex_info))
    t_bundle = time.perf_counter()
    manifest = assemble(args, work, cohort, cfgs, runner, ev, ex_info, data, bundle_id)
    from training.calibrate import calibrate_bundle
    calibrate_bundle(Path(args.out), cohort, args.signing_key)  # teacher OOD statistics, borderline bands
    manifest = json.loads((Path(args.out) / "manifest.json").read_text(encoding="utf-8"))
    if args.results:
        write_results(args.results, work, manifest, ev, runner)
    size = sum(f.stat().st_size for f in Path(args.out).iterdir() if f.is_file())
    log.info("bundle %s written to %s (%.1f MB) in %.0f s (bundle step %.0f s)", bundle_id, args.out, size / 1e6,
             time.perf_counter() - t0, time.perf_counter() - t_bundle)
    for p in pathologies:
        m = manifest["pathologies"][p]["ecg"]["metrics"]["test"]["auroc"]
        log.info("%s: ECG test AUROC %.3f [%.3f, %.3f]", p, *m)
    return 0


if __name__ == "__main__":
    sys.exit(main())
