"""Stage 1: train the DenseNet-121 chest X-ray teacher f_cxr, then cache its outputs.

Paper: one single-label model per pathology (Adam, peak LR 1e-4, batch 64,
warm-up 10 epochs from 1e-5, cosine to 1e-5, backbone LR x0.05). With
`teacher.multi_label` one backbone carries one head per pathology (all of
`engine.constants.PATHOLOGIES`).

Because the teacher is frozen afterwards, the best model's pooled features and
logits are written for every cohort pair, so alignment never runs the DenseNet:

OUT/
  config.json               resolved config
  last.pt, best.pt          checkpoints (model "teacher")
  history.json              per-epoch training loss and validation AUROC
  teacher_features.npy      float32 [N, 1024], pooled DenseNet features of cxr.npy rows
  teacher_logits.npy        float32 [N, K], logits of the K heads
  teacher.json              {"pathologies": [...K...], "image_size": S, "best_epoch", "val_auroc"}
  predictions_<p>.npz       val/test logits and labels per pathology (for `evaluate`)
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.constants import PATHOLOGIES
from training.checkpoint import load_checkpoint
from training.config import Config
from training.data import Cohort
from training.metrics import auroc
from training.stages import common
from training.stages.common import Loop

log = logging.getLogger(__name__)

STAGE = "pretrain-cxr"


def teacher_pathologies(cfg: Config) -> list[str]:
    """The pathologies of the teacher's heads, in logit-column order."""
    return list(PATHOLOGIES) if cfg.teacher.multi_label else [cfg.pathology]


def build_teacher(cfg: Config) -> torch.nn.Module:
    """DenseNet121 with one head per teacher pathology, from local xrv weights if configured."""
    from training.models import DenseNet121, load_xrv_state_dict
    from training.models.densenet import XRV_NAME
    paths = teacher_pathologies(cfg)
    model = DenseNet121(num_classes=len(paths), in_channels=1)
    if cfg.teacher.weights:
        copied = load_xrv_state_dict(model, cfg.teacher.weights, [XRV_NAME[p] for p in paths])
        log.info("teacher: started from %s (heads %s)", cfg.teacher.weights, copied)
    return model


@torch.no_grad()
def teacher_outputs(model: torch.nn.Module, co: Cohort, idx: np.ndarray, device: torch.device,
                    image_size: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(features float32 [n, 1024], logits float32 [n, K]) of cohort rows `idx`, eval mode."""
    model.eval()
    feats, logits = [], []
    for b in common.chunks(idx, batch_size):
        f = model.features2(common.cxr_batch(co.cxr, b, device, image_size))
        feats.append(f.float().cpu().numpy())
        logits.append(model.classifier(f).float().cpu().numpy())
    k = model.classifier.out_features
    return (np.concatenate(feats) if feats else np.zeros((0, 1024), np.float32),
            np.concatenate(logits) if logits else np.zeros((0, k), np.float32))


def run(cfg: Config, cohort: str | Path, out: str | Path, resume: bool = False) -> dict[str, Path]:
    """Train the teacher and write its cached outputs; returns {name: path} of the outputs."""
    out, device, ctx, co = common.begin(cfg, cohort, out)
    tc = cfg.teacher
    paths = teacher_pathologies(cfg)
    labels = np.stack([co.label(p) for p in paths], axis=1).astype(np.float32)   # [N, K]
    train, val = co.indices("train"), co.indices("val")
    if len(train) == 0 or len(val) == 0:
        raise common.StageError(f"Cohort {cohort} has no train or no val pairs; rebuild it with more subjects.")
    for j, name in enumerate(paths):
        for split, idx in (("train", train), ("val", val)):
            common.require_both_classes(labels[:, j].astype(np.int64), idx, split, name, STAGE)

    model = build_teacher(cfg).to(device)
    ddp = common.wrap_ddp(model, device, ctx)
    opt, sched = common.optimizer_and_schedule(
        tc, [(model.features, tc.backbone_lr_mult), (model.classifier, 1.0)], len(train), cfg.max_steps_per_epoch)
    any_pos = (labels[train].max(axis=1) > 0).astype(np.int64)

    def batches(epoch: int) -> list[np.ndarray]:
        if tc.balanced_sampling and 0 < any_pos.sum() < len(any_pos):
            local = common.balanced_batches(any_pos, tc.batch_size, sched.steps_per_epoch, 0.5, cfg.seed, epoch,
                                            ctx)
        else:
            local = common.shuffled_batches(len(train), tc.batch_size, sched.steps_per_epoch, cfg.seed, epoch,
                                            ctx)
        return [train[b] for b in local]

    def loss_fn(idx: np.ndarray, gen: torch.Generator) -> tuple[torch.Tensor, int]:
        x = common.cxr_batch(co.cxr, idx, device, tc.image_size)
        y = torch.from_numpy(labels[idx]).to(device)
        return F.binary_cross_entropy_with_logits(ddp(x), y), len(idx)

    def validate() -> dict[str, float]:
        _, lg = teacher_outputs(model, co, val, device, tc.image_size, cfg.eval_batch_size)
        aucs = [auroc(labels[val, j], lg[:, j]) for j in range(len(paths))]
        return {"auroc": float(np.nanmean(aucs)) if not all(np.isnan(aucs)) else float("nan"),
                **{f"auroc_{p}": a for p, a in zip(paths, aucs)}}

    loop = Loop(STAGE, {"teacher": ddp}, opt, sched, batches, loss_fn, validate, metric="auroc", mode="max",
                patience=tc.patience, grad_clip=tc.grad_clip, extra={"pathologies": paths})
    result = common.fit(loop, cfg, out, ctx, resume=resume)

    outputs = {}
    if ctx.is_main:
        best = load_checkpoint(result.best_path, stage=STAGE)
        model.load_state_dict(best["models"]["teacher"])
        everything = np.arange(len(co.split), dtype=np.int64)
        feats, logits = teacher_outputs(model, co, everything, device, tc.image_size, cfg.eval_batch_size)
        np.save(out / "teacher_features.npy", feats.astype(np.float32))
        np.save(out / "teacher_logits.npy", logits.astype(np.float32))
        test = co.indices("test")
        for j, p in enumerate(paths):
            np.savez(out / f"predictions_{p}.npz", pathology=p, model="cxr_teacher",
                     val_logit=logits[val, j], val_label=labels[val, j].astype(np.int64),
                     test_logit=logits[test, j], test_label=labels[test, j].astype(np.int64),
                     test_embedding=feats[test], test_index=test, val_index=val)
            outputs[f"predictions_{p}"] = out / f"predictions_{p}.npz"
        common.write_json(out / "teacher.json", {"pathologies": paths, "image_size": tc.image_size,
                                                 "best_epoch": result.best_epoch,
                                                 "val_auroc": result.best_metric})
        outputs.update(features=out / "teacher_features.npy", logits=out / "teacher_logits.npy",
                       teacher=out / "teacher.json")
    return {**common.finish(result, ctx, out), **outputs}


def main(argv: list[str] | None = None) -> int:
    """`cromotex-train pretrain-cxr --cohort C --out DIR [--preset cpu] ...`"""
    p = common.base_parser("cromotex-train pretrain-cxr", __doc__.splitlines()[0])
    p.add_argument("--multi-label", action="store_true",
                   help="one backbone, one head per pathology (default: the preset's choice)")
    p.add_argument("--weights", help="local TorchXRayVision DenseNet-121 state dict to start from")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    common.configure_logging()
    if args.multi_label:
        args.set = (args.set or []) + ["teacher.multi_label=true"]
    if args.weights:
        args.set = (args.set or []) + [f"teacher.weights={args.weights}"]
    cfg = common.config_from_args(args, "teacher")
    outputs = run(cfg, args.cohort, args.out, resume=args.resume)
    log.info("pretrain-cxr wrote %s", ", ".join(str(v) for v in outputs.values()))
    return 0
