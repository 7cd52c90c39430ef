"""Stage 3: align the ECG encoder to the frozen CXR teacher (CroMoTEX).

f_ecg (from the stage-2 checkpoint, or from scratch for the 'without SSL'
ablation) and linear heads g_ecg (256 -> D), g_cxr (1024 -> D) are trained with
AHNP-SupCMA (or supcma / cma / supcon for the ablations, `align.loss`) on
(ECG, teacher feature) pairs of the training split. The teacher is never run
here: its pooled features come from stage 1's `teacher_features.npy`.
AdamW, warm-up + cosine, weight decay, gradient clipping, heads at LR x0.1,
class-balanced weighted sampling, time-domain augmentation of the ECGs.

Validation metric (early stopping, higher is better): the *centroid AUROC* of
the validation ECGs, i.e. AUROC of `s = <z_e, c_pos> - <z_e, c_neg>`, where
`z_e` is a validation ECG's normalised projection and `c_pos`, `c_neg` the
normalised means of the training-split CXR projections of each class. It
measures directly whether ECGs land on the side of the shared space where the
teacher put CXRs of their class, needs no extra training, and is not affected
by batch composition as a contrastive validation loss would be.

OUT/ config.json, last.pt, best.pt (models "encoder", "g_ecg", "g_cxr"), history.json
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from training.config import Config
from training.metrics import auroc
from training.stages import common
from training.stages.common import Loop

log = logging.getLogger(__name__)

STAGE = "align"
TEACHER_DIM = 1024


def supcon(z_ecg: torch.Tensor, z_cxr: torch.Tensor, labels: torch.Tensor, tau: float) -> torch.Tensor:
    """SupCon (Khosla et al. 2020) over the 2B embeddings of both modalities, the
    'SupCon alignment' ablation of Table 1: for each anchor, positives are every
    other embedding (either modality) with its label, the denominator every other
    embedding. `z_*` `[B, D]` (normalised here), `labels` `[B]`; mean over anchors."""
    z = F.normalize(torch.cat([z_ecg, z_cxr]).float(), dim=1)
    y = torch.cat([labels, labels])
    n = z.shape[0]
    logits = z @ z.T / tau
    self_mask = torch.eye(n, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    pos = (y[:, None] == y[None, :]) & ~self_mask
    mean_pos = log_prob.masked_fill(~pos, 0.0).sum(1) / pos.sum(1).clamp(min=1)
    return -mean_pos.mean()


def alignment_loss(cfg: Config, z_e: torch.Tensor, z_x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The configured alignment loss of projections `[B, D]` and labels `[B]`."""
    from training.losses import ahnp_supcma, cma, supcma
    a = cfg.align
    if a.loss == "ahnp_supcma":
        return ahnp_supcma(z_e, z_x, y, a.tau, a.weighting, a.alpha, a.beta, a.k, beta_mode=a.beta_mode)
    if a.loss == "supcma":
        return supcma(z_e, z_x, y, a.tau)
    if a.loss == "cma":
        return cma(z_e, z_x, a.tau)
    return supcon(z_e, z_x, y, a.tau)


class AlignNet(nn.Module):
    """f_ecg + g_ecg on ECGs `[B, 12, 1000]`, g_cxr on teacher features `[B, 1024]` ->
    (z_ecg `[B, D]`, z_cxr `[B, D]`), not normalised (the losses normalise)."""

    def __init__(self, encoder: nn.Module, proj_dim: int) -> None:
        super().__init__()
        from training.models import ProjectionHead
        self.encoder = encoder
        self.g_ecg = ProjectionHead(256, proj_dim)
        self.g_cxr = ProjectionHead(TEACHER_DIM, proj_dim)

    def forward(self, ecg: torch.Tensor, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.g_ecg(self.encoder(ecg)), self.g_cxr(feats)


def load_teacher_features(teacher_dir: str | Path, n_pairs: int) -> np.ndarray:
    """Stage 1's cached features float32 `[N, 1024]`; StageError if absent or of another cohort."""
    path = Path(teacher_dir) / "teacher_features.npy"
    if not path.is_file():
        raise common.StageError(f"{path} is missing: run `cromotex-train pretrain-cxr` on this cohort first "
                                "and pass its --out as --teacher.")
    feats = np.load(path, mmap_mode="r")
    if feats.shape != (n_pairs, TEACHER_DIM):
        raise common.StageError(f"{path} has shape {feats.shape}, but the cohort has {n_pairs} pairs: "
                                "the teacher was cached for another cohort.")
    return feats


def make_step(cfg: Config, net: nn.Module, ecg: np.ndarray, feats: np.ndarray, labels: np.ndarray,
              device: torch.device):
    """The alignment loss of one batch of cohort rows (used by `run` and bench/train_step.py):
    returns `loss_fn(idx, generator) -> (loss, n)`."""
    from training.augment import time_augment
    from training.losses import gather_with_grad

    def loss_fn(idx: np.ndarray, gen: torch.Generator) -> tuple[torch.Tensor, int]:
        x = common.ecg_batch(ecg, idx, torch.device("cpu"))
        if cfg.align.time_augment:
            x = time_augment(x, gen)
        f = torch.from_numpy(np.asarray(feats[idx], dtype=np.float32))
        y = torch.from_numpy(labels[idx]).to(device)
        z_e, z_x = net(x.to(device), f.to(device))
        y_all = gather_with_grad(y.float()).long()
        return alignment_loss(cfg, gather_with_grad(z_e), gather_with_grad(z_x), y_all), len(idx)

    return loss_fn


@torch.no_grad()
def centroid_auroc(net: AlignNet, ecg: np.ndarray, feats: np.ndarray, labels: np.ndarray,
                   train: np.ndarray, val: np.ndarray, device: torch.device, batch_size: int) -> float:
    """Validation metric: AUROC of ECG projections scored against class centroids of the
    training CXR projections (see the module docstring)."""
    net.eval()
    zx = torch.cat([net.g_cxr(torch.from_numpy(np.asarray(feats[b])).to(device))
                    for b in common.chunks(train, 4096)])
    zx = F.normalize(zx.float(), dim=1)
    y_tr = torch.from_numpy(labels[train]).to(device)
    if int(y_tr.sum()) in (0, len(train)):
        net.train()
        return float("nan")
    c_pos = F.normalize(zx[y_tr == 1].mean(0), dim=0)
    c_neg = F.normalize(zx[y_tr == 0].mean(0), dim=0)
    emb = common.embed_ecg(net.encoder, ecg, val, device, batch_size)
    ze = F.normalize(net.g_ecg(torch.from_numpy(emb).to(device)).float(), dim=1)
    score = (ze @ c_pos - ze @ c_neg).cpu().numpy()
    net.train()
    return auroc(labels[val], score)


def run(cfg: Config, cohort: str | Path, out: str | Path, teacher: str | Path, init: str | Path | None = None,
        resume: bool = False) -> dict[str, Path]:
    """Align f_ecg to the teacher's cached features; `init`: stage-2 (or any) checkpoint
    holding an encoder, None for the 'without SSL' ablation. Returns {name: path}."""
    out, device, ctx, co = common.begin(cfg, cohort, out)
    a = cfg.align
    feats = load_teacher_features(teacher, len(co.split))
    labels = co.label(cfg.pathology).astype(np.int64)
    train, val = co.indices("train"), co.indices("val")
    for split, idx in (("train", train), ("val", val)):
        common.require_both_classes(labels, idx, split, cfg.pathology, f"align_{cfg.pathology}")

    if init:
        encoder, init_stage = common.load_encoder_from(init, cfg)
    else:
        encoder, init_stage = common.make_encoder(cfg), "scratch"
    net = AlignNet(encoder, a.proj_dim).to(device)
    ddp = common.wrap_ddp(net, device, ctx)
    opt, sched = common.optimizer_and_schedule(
        a, [(net.encoder, 1.0), (net.g_ecg, a.head_lr_mult), (net.g_cxr, a.head_lr_mult)], len(train),
        cfg.max_steps_per_epoch)
    y_train = labels[train]

    def batches(epoch: int) -> list[np.ndarray]:
        local = common.balanced_batches(y_train, a.batch_size, sched.steps_per_epoch, a.positive_fraction, cfg.seed, epoch, ctx)
        return [train[b] for b in local]

    loss_fn = make_step(cfg, ddp, co.ecg, feats, labels, device)

    def validate() -> dict[str, float]:
        return {"centroid_auroc": centroid_auroc(net, co.ecg, feats, labels, train, val, device,
                                                 cfg.eval_batch_size)}

    loop = Loop(STAGE, {"encoder": net.encoder, "g_ecg": net.g_ecg, "g_cxr": net.g_cxr}, opt, sched, batches,
                loss_fn, validate, metric="centroid_auroc", mode="max", patience=a.patience,
                grad_clip=a.grad_clip, extra={"init": str(init or ""), "init_stage": init_stage,
                                              "teacher": str(teacher)},
                gathered_loss=True)
    result = common.fit(loop, cfg, out, ctx, resume=resume)
    return common.finish(result, ctx, out)


def main(argv: list[str] | None = None) -> int:
    """`cromotex-train align --cohort C --teacher T --init SSL/best.pt --out DIR ...`"""
    p = common.base_parser("cromotex-train align", __doc__.splitlines()[0])
    p.add_argument("--teacher", required=True, help="output directory of pretrain-cxr (teacher_features.npy)")
    p.add_argument("--init", help="checkpoint holding f_ecg (pretrain-ecg's best.pt); omit for 'without SSL'")
    p.add_argument("--loss", choices=("ahnp_supcma", "supcma", "cma", "supcon"), help="alignment loss")
    p.add_argument("--weighting", choices=("topk", "linear", "exp"), help="AHNP weighting")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    common.configure_logging()
    extra = [f"align.{k}={getattr(args, k)}" for k in ("loss", "weighting") if getattr(args, k)]
    args.set = (args.set or []) + extra
    cfg = common.config_from_args(args, "align")
    outputs = run(cfg, args.cohort, args.out, args.teacher, init=args.init, resume=args.resume)
    log.info("align wrote %s", ", ".join(str(v) for v in outputs.values()))
    return 0
