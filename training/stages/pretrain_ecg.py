"""Stage 2: self-supervised pretraining of the ECG encoder f_ecg (SimCLR).

Two VCG-augmented views (3KG: rotation, scaling, time masking) of every ECG of
the SSL pool (`ssl_ecg.npy`: all ECGs except those of test subjects), NT-Xent
on a linear projection head h_ecg that is discarded afterwards. The validation
metric is the NT-Xent loss on the pool's `val` rows with augmentations drawn
from a fixed seed (the same views every epoch), lower is better.

OUT/ config.json, last.pt, best.pt (models "encoder", "projection"), history.json
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import torch

from training.config import Config
from training.stages import common
from training.stages.common import Loop

log = logging.getLogger(__name__)

STAGE = "pretrain-ecg"
#: Seed of the fixed validation views.
VAL_SEED = 12345


def ssl_views(x: torch.Tensor, gen: torch.Generator, cfg: Config) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independent VCG augmentations of `x` float `[B, 12, 1000]`."""
    from training.augment import vcg_augment
    s = cfg.ssl
    kw = dict(max_angle_deg=s.max_rotation_deg, scale_range=tuple(s.scale_range), mask_fraction=s.mask_fraction)
    return vcg_augment(x, gen, **kw), vcg_augment(x, gen, **kw)


def split_pool(split: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, val rows) of the SSL pool: its `val` rows, or a seeded 10% when it has none."""
    val = np.flatnonzero(split == "val")
    train = np.flatnonzero(split != "val")
    if len(val) == 0:
        perm = np.random.default_rng(seed).permutation(len(split))
        n_val = max(1, len(split) // 10)
        val, train = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    return train.astype(np.int64), val.astype(np.int64)


def run(cfg: Config, cohort: str | Path, out: str | Path, resume: bool = False) -> dict[str, Path]:
    """Pretrain f_ecg with NT-Xent; returns {name: path} of the outputs."""
    from training.losses import gather_with_grad, nt_xent
    from training.models import ProjectionHead
    out, device, ctx, co = common.begin(cfg, cohort, out)
    s = cfg.ssl
    if len(co.ssl_ecg) < 4:
        raise common.StageError(f"Cohort {cohort} has {len(co.ssl_ecg)} SSL ECGs; at least 4 are needed.")
    train, val = split_pool(co.ssl_split, cfg.seed)

    encoder = common.make_encoder(cfg).to(device)
    head = ProjectionHead(256, s.proj_dim).to(device)
    net = torch.nn.Sequential(encoder, head)
    ddp = common.wrap_ddp(net, device, ctx)
    opt, sched = common.optimizer_and_schedule(s, [(net, 1.0)], len(train), cfg.max_steps_per_epoch)

    def batches(epoch: int) -> list[np.ndarray]:
        return [train[b] for b in common.shuffled_batches(len(train), s.batch_size, sched.steps_per_epoch,
                                                          cfg.seed, epoch, ctx)]

    def loss_fn(idx: np.ndarray, gen: torch.Generator) -> tuple[torch.Tensor, int]:
        x = common.ecg_batch(co.ssl_ecg, idx, torch.device("cpu"))  # augmented on CPU, then moved
        v1, v2 = ssl_views(x, gen, cfg)
        z = ddp(torch.cat([v1, v2]).to(device))
        z1, z2 = z[:len(idx)], z[len(idx):]
        return nt_xent(gather_with_grad(z1), gather_with_grad(z2), s.tau), len(idx)

    @torch.no_grad()
    def validate() -> dict[str, float]:
        net.eval()
        gen = torch.Generator().manual_seed(VAL_SEED)
        total, n = 0.0, 0
        for b in common.chunks(val, max(2, cfg.eval_batch_size)):
            if len(b) < 2:
                continue
            v1, v2 = ssl_views(common.ecg_batch(co.ssl_ecg, b, torch.device("cpu")), gen, cfg)
            total += float(nt_xent(net(v1.to(device)), net(v2.to(device)), s.tau)) * len(b)
            n += len(b)
        net.train()
        return {"loss": total / n if n else float("nan")}

    loop = Loop(STAGE, {"encoder": encoder, "projection": head}, opt, sched, batches, loss_fn, validate,
                metric="loss", mode="min", patience=s.patience, grad_clip=s.grad_clip, gathered_loss=True)
    result = common.fit(loop, cfg, out, ctx, resume=resume)
    return common.finish(result, ctx, out)


def main(argv: list[str] | None = None) -> int:
    """`cromotex-train pretrain-ecg --cohort C --out DIR [--preset cpu] ...`"""
    p = common.base_parser("cromotex-train pretrain-ecg", __doc__.splitlines()[0])
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    common.configure_logging()
    cfg = common.config_from_args(args, "ssl")
    outputs = run(cfg, args.cohort, args.out, resume=args.resume)
    log.info("pretrain-ecg wrote %s", ", ".join(str(v) for v in outputs.values()))
    return 0
