"""Stage 4: fine-tune f_ecg + the MLP classifier for one pathology.

Projection heads are dropped; the encoder starts from an alignment (or SSL)
checkpoint given with `--init`, or from scratch without it (the 'direct ECG
classification' ablation). BCE with logits, class-balanced weighted sampling,
time-domain augmentation, Adam with warm-up + cosine. Validation AUROC every
epoch, early stopping, best checkpoint.

OUT/
  config.json, last.pt, best.pt (model "classifier": EcgClassifier state dict), history.json
  predictions.npz   from the best model: {val,test}_{logit,label,embedding,index},
                    train_embedding (for the bundle's embedding statistics), pathology
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from training import config as config_mod
from training.checkpoint import load_checkpoint
from training.config import Config
from training.metrics import auroc
from training.stages import common
from training.stages.common import Loop

log = logging.getLogger(__name__)

STAGE = "finetune"


@torch.no_grad()
def predict(model: torch.nn.Module, ecg: np.ndarray, idx: np.ndarray, device: torch.device,
            batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(logits float32 `[n]`, embeddings float32 `[n, 256]`) of ECG rows `idx`, eval mode."""
    was = model.training
    model.eval()
    logits, embs = [], []
    for b in common.chunks(idx, batch_size):
        lg, emb = model(common.ecg_batch(ecg, b, device))
        logits.append(lg[:, 0].float().cpu().numpy())
        embs.append(emb.float().cpu().numpy())
    model.train(was)
    if not logits:
        return np.zeros(0, np.float32), np.zeros((0, 256), np.float32)
    return np.concatenate(logits), np.concatenate(embs)


def load_classifier(path: str | Path) -> tuple[torch.nn.Module, Config]:
    """The EcgClassifier of a finetune checkpoint (eval mode, CPU) and its config."""
    state = load_checkpoint(path, stage=STAGE)
    cfg = config_mod.from_dict(state["config"])
    model = common.make_classifier(cfg)
    model.load_state_dict(state["models"]["classifier"])
    return model.eval(), cfg


def run(cfg: Config, cohort: str | Path, out: str | Path, init: str | Path | None = None,
        resume: bool = False) -> dict[str, Path]:
    """Fine-tune for `cfg.pathology`; `init` a checkpoint holding f_ecg (None: from scratch)."""
    from training.augment import time_augment
    out, device, ctx, co = common.begin(cfg, cohort, out)
    ft = cfg.finetune
    labels = co.label(cfg.pathology).astype(np.int64)
    train, val, test = co.indices("train"), co.indices("val"), co.indices("test")
    for split, idx in (("train", train), ("val", val)):
        common.require_both_classes(labels, idx, split, cfg.pathology, f"finetune_{cfg.pathology}")

    model = common.make_classifier(cfg)
    init_stage = "scratch"
    if init:
        encoder, init_stage = common.load_encoder_from(init, cfg)
        model.encoder.load_state_dict(encoder.state_dict())
    model.to(device)
    ddp = common.wrap_ddp(model, device, ctx)
    opt, sched = common.optimizer_and_schedule(ft, [(model, 1.0)], len(train), cfg.max_steps_per_epoch)

    def batches(epoch: int) -> list[np.ndarray]:
        local = common.balanced_batches(labels[train], ft.batch_size, sched.steps_per_epoch,
                                        ft.positive_fraction, cfg.seed, epoch, ctx)
        return [train[b] for b in local]

    def loss_fn(idx: np.ndarray, gen: torch.Generator) -> tuple[torch.Tensor, int]:
        x = common.ecg_batch(co.ecg, idx, torch.device("cpu"))
        if ft.time_augment:
            x = time_augment(x, gen)
        y = torch.from_numpy(labels[idx].astype(np.float32)).to(device)
        logit, _ = ddp(x.to(device))
        return F.binary_cross_entropy_with_logits(logit[:, 0], y), len(idx)

    def validate() -> dict[str, float]:
        lg, _ = predict(model, co.ecg, val, device, cfg.eval_batch_size)
        return {"auroc": auroc(labels[val], lg)}

    loop = Loop(STAGE, {"classifier": model}, opt, sched, batches, loss_fn, validate, metric="auroc",
                mode="max", patience=ft.patience, grad_clip=ft.grad_clip,
                extra={"init": str(init or ""), "init_stage": init_stage, "pathology": cfg.pathology})
    result = common.fit(loop, cfg, out, ctx, resume=resume)
    if ctx.is_main:
        best, _ = load_classifier(result.best_path)
        best.to(device)
        parts = {}
        for name, idx in (("val", val), ("test", test), ("train", train)):
            lg, emb = predict(best, co.ecg, idx, device, cfg.eval_batch_size)
            parts.update({f"{name}_logit": lg, f"{name}_embedding": emb, f"{name}_label": labels[idx],
                          f"{name}_index": idx})
        parts.pop("train_logit")
        np.savez(out / "predictions.npz", pathology=cfg.pathology, model=f"ecg_{init_stage}", **parts)
    return {**common.finish(result, ctx, out), "predictions": out / "predictions.npz"}


def main(argv: list[str] | None = None) -> int:
    """`cromotex-train finetune --cohort C --init ALIGN/best.pt --out DIR ...`"""
    p = common.base_parser("cromotex-train finetune", __doc__.splitlines()[0])
    p.add_argument("--init", help="checkpoint holding f_ecg (align's or pretrain-ecg's best.pt); "
                                  "omit for direct ECG classification from scratch")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    common.configure_logging()
    cfg = common.config_from_args(args, "finetune")
    outputs = run(cfg, args.cohort, args.out, init=args.init, resume=args.resume)
    log.info("finetune wrote %s", ", ".join(str(v) for v in outputs.values()))
    return 0
