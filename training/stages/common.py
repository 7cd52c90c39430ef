"""Shared machinery of the four stages: device, distributed setup, seeding,
batching from memory-mapped cohort arrays, the training loop with validation,
early stopping, atomic checkpoints and resume.

Distributed: launch with `torchrun --nproc_per_node=G cromotex-train STAGE ...`;
torchrun's `WORLD_SIZE`, `RANK`, `LOCAL_RANK` turn on `init_process_group`
(nccl on cuda, gloo on cpu). `batch_size` in the config is the *global* batch:
each rank draws `batch_size // world_size` samples per step from its own shard
of the seeded sampler; the contrastive losses gather embeddings from every rank
(`training.losses.gather_with_grad`). Validation runs identically on every rank
(the validation sets are small), so early-stopping decisions agree; rank 0
writes checkpoints and outputs.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from engine.errors import CromotexError
from training import config as config_mod
from training import jsonio
from training.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from training.config import Config
from training.data import Cohort, load_cohort, take_rows

log = logging.getLogger(__name__)

LAST = "last.pt"
BEST = "best.pt"


class StageError(CromotexError):
    """A stage cannot run with the given inputs (device, cohort, init checkpoint)."""


# ----------------------------------------------------------------------------- device / dist

def select_device(name: str) -> torch.device:
    """`cpu`, `cuda` or `cuda:N` -> torch.device; StageError if CUDA is asked for but absent.

    Under torchrun, `cuda` means `cuda:$LOCAL_RANK`.
    """
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise StageError("--device cuda was given but no CUDA GPU is available to torch; "
                             "use --device cpu or install a CUDA build of torch.")
        if name == "cuda" and "LOCAL_RANK" in os.environ:
            return torch.device(f"cuda:{int(os.environ['LOCAL_RANK'])}")
        return torch.device(name)
    raise StageError(f"Unknown device {name!r}; use cpu or cuda.")


@dataclass
class DistContext:
    """Process-group facts of this process (world_size 1 without torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup_distributed(device: torch.device) -> DistContext:
    """Initialise torch.distributed from torchrun's env vars when WORLD_SIZE > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    import torch.distributed as dist
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
    return DistContext(rank=dist.get_rank(), world_size=dist.get_world_size(),
                       local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """On CUDA, replace every BatchNorm layer inside `module` by SyncBatchNorm (in place
    for submodules; same parameters, buffers and state-dict keys), so that batch
    statistics are those of the global batch and a G-GPU step equals a one-process
    step on the global batch. On CPU torch has no SyncBatchNorm: `module` is returned
    unchanged and BatchNorm statistics stay per rank (logged)."""
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())
    if not has_bn:
        return module
    if device.type != "cuda":
        log.warning("DDP on %s: BatchNorm statistics are computed per rank (torch has no CPU "
                    "SyncBatchNorm), so steps differ slightly from one process on the global batch.",
                    device.type)
        return module
    return nn.SyncBatchNorm.convert_sync_batchnorm(module)


def wrap_ddp(module: nn.Module, device: torch.device, ctx: DistContext) -> nn.Module:
    """DistributedDataParallel around `module` when distributed, else `module`.
    On CUDA its BatchNorm layers become SyncBatchNorm first (`sync_batchnorm`)."""
    if not ctx.enabled:
        return module
    from torch.nn.parallel import DistributedDataParallel
    module = sync_batchnorm(module, device)
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)


def unwrap(module: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (or the module itself)."""
    return module.module if hasattr(module, "module") else module


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        import torch.distributed as dist
        dist.barrier()


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch; deterministic algorithms where torch has them (CPU)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def setup(cfg: Config) -> tuple[torch.device, DistContext]:
    """Device, process group, threads and seeds for a stage run."""
    device = select_device(cfg.device)
    ctx = setup_distributed(device)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed + ctx.rank)
    return device, ctx


class Opened(NamedTuple):
    """What `begin` opened for a stage run."""

    out: Path
    device: torch.device
    ctx: DistContext
    cohort: Cohort


def begin(cfg: Config, cohort: str | os.PathLike, out: str | os.PathLike) -> Opened:
    """Open a stage run: create `out`, set up device, process group and seeds (`setup`),
    open the cohort and (rank 0) save the resolved config as `out/config.json`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    device, ctx = setup(cfg)
    co = open_cohort(cohort)
    if ctx.is_main:
        config_mod.save_json(cfg, out / "config.json")
    return Opened(out, device, ctx, co)


# ----------------------------------------------------------------------------- cohort access

#: The stages open a COHORT directory with `training.data.load_cohort` (memory-mapped
#: arrays; MissingFileError / CorruptFileError / PreprocessError on a bad cohort).
open_cohort = load_cohort


def ecg_batch(ecg: np.ndarray, idx: np.ndarray, device: torch.device) -> torch.Tensor:
    """Rows `idx` of a memory-mapped ECG array -> float32 tensor `[b, 12, 1000]` on `device`.

    Rows are read in ascending order (`training.data.take_rows`).
    """
    return torch.from_numpy(take_rows(ecg, idx, np.float32)).to(device, non_blocking=True)


def cxr_batch(cxr: np.ndarray, idx: np.ndarray, device: torch.device, image_size: int) -> torch.Tensor:
    """Rows `idx` of the int16 CXR array -> float32 `[b, 1, S, S]` in [-1024, 1024] on `device`
    (bilinear resize only when `image_size` differs from the stored 224)."""
    rows = take_rows(cxr, idx, np.int16)
    x = torch.from_numpy(rows.astype(np.float32)).to(device, non_blocking=True)
    if x.shape[-1] != image_size:
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)
    return x


def chunks(idx: np.ndarray, size: int) -> Iterator[np.ndarray]:
    """Consecutive slices of `idx` of at most `size`."""
    for s in range(0, len(idx), size):
        yield idx[s:s + size]


def steps_per_epoch(n_train: int, batch_size: int, cap: int) -> int:
    """One pass over `n_train` samples in global batches, capped by `cap` (0 = no cap)."""
    steps = max(1, math.ceil(n_train / batch_size))
    return min(steps, cap) if cap > 0 else steps


def balanced_batches(labels: np.ndarray, batch_size: int, steps: int, positive_fraction: float,
                     seed: int, epoch: int, ctx: DistContext) -> list[np.ndarray]:
    """This rank's batches of one epoch from class-balanced weighted sampling with
    replacement (`training.sampling`), `batch_size // world_size` indices each.
    `labels` int `[n]` are local to the training subset; indices returned are into it."""
    from training.sampling import DistributedWeightedSampler, class_balanced_weights
    per_rank = max(1, batch_size // ctx.world_size)
    weights = class_balanced_weights(labels, positive_fraction=positive_fraction)
    sampler = DistributedWeightedSampler(weights, num_samples=per_rank * steps * ctx.world_size,
                                         rank=ctx.rank, world_size=ctx.world_size, seed=seed)
    sampler.set_epoch(epoch)
    idx = np.fromiter(iter(sampler), dtype=np.int64)
    return [idx[i * per_rank:(i + 1) * per_rank] for i in range(steps)]


def shuffled_batches(n: int, batch_size: int, steps: int, seed: int, epoch: int,
                     ctx: DistContext) -> list[np.ndarray]:
    """This rank's batches of one epoch from a seeded permutation (without replacement,
    wrapping around when `steps` asks for more than one pass)."""
    per_rank = max(1, batch_size // ctx.world_size)
    g = np.random.default_rng([seed, epoch])
    need = per_rank * steps * ctx.world_size
    perm = np.concatenate([g.permutation(n) for _ in range(math.ceil(need / n))])[:need]
    mine = perm[ctx.rank::ctx.world_size]
    return [mine[i * per_rank:(i + 1) * per_rank] for i in range(steps)]


# ----------------------------------------------------------------------------- models

def make_encoder(cfg: Config) -> nn.Module:
    """ECG encoder f_ecg with the config's feed-forward width."""
    from training.models import EcgEncoder
    return EcgEncoder(ff_dim=cfg.ecg.ff_dim)


def make_classifier(cfg: Config) -> nn.Module:
    """f_ecg + MLP classifier (EcgClassifier: x -> (logit [B,1], embedding [B,256]))."""
    from training.models import EcgClassifier, MlpClassifier
    head = MlpClassifier(in_dim=256, hidden=cfg.ecg.classifier_hidden, n_layers=cfg.ecg.classifier_layers,
                         dropout=cfg.ecg.classifier_dropout, n_out=1)
    return EcgClassifier(make_encoder(cfg), head)


def load_encoder_from(path: str | os.PathLike, cfg: Config) -> tuple[nn.Module, str]:
    """f_ecg initialised from any stage checkpoint holding an `encoder` (ssl, align, finetune);
    returns (encoder, stage of the checkpoint). StageError when the widths disagree."""
    state = load_checkpoint(path)
    models = state["models"]
    if "encoder" in models:
        sd = models["encoder"]
    elif "classifier" in models:
        sd = {k[len("encoder."):]: v for k, v in models["classifier"].items() if k.startswith("encoder.")}
    else:
        raise StageError(f"{path} holds no ECG encoder (stage {state.get('stage')!r}).")
    enc = make_encoder(cfg)
    try:
        enc.load_state_dict(sd)
    except RuntimeError as exc:
        raise StageError(f"The encoder in {path} does not match this config (ecg.ff_dim="
                         f"{cfg.ecg.ff_dim}): {exc}. Use the same preset as the stage that wrote it.") from exc
    return enc, str(state.get("stage"))


@torch.no_grad()
def embed_ecg(encoder: nn.Module, ecg: np.ndarray, idx: np.ndarray, device: torch.device,
              batch_size: int) -> np.ndarray:
    """Embeddings float32 `[len(idx), 256]` of ECG rows `idx`, in eval mode."""
    was = encoder.training
    encoder.eval()
    out = [encoder(ecg_batch(ecg, b, device)).float().cpu().numpy() for b in chunks(idx, batch_size)]
    encoder.train(was)
    return np.concatenate(out) if out else np.zeros((0, 256), np.float32)


# ----------------------------------------------------------------------------- the loop

@dataclass
class Schedule:
    """Warm-up + cosine learning-rate schedule in optimiser steps."""

    epochs: int
    steps_per_epoch: int
    warmup_epochs: float
    start_lr: float
    peak_lr: float
    end_lr: float

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def lr(self, step: int) -> float:
        from training.optim import warmup_cosine
        warm = int(round(self.warmup_epochs * self.steps_per_epoch))
        return warmup_cosine(step, self.total_steps, warm, self.start_lr, self.peak_lr, self.end_lr)


def optimizer_and_schedule(section: Any, parts: list[tuple[nn.Module, float]], n_train: int,
                           max_steps_per_epoch: int) -> tuple[torch.optim.Optimizer, Schedule]:
    """The optimiser and warm-up + cosine schedule of a stage.

    `section` is the stage's config section (`cfg.teacher`, `cfg.ssl`, `cfg.align`,
    `cfg.finetune`: optimizer, peak/start/end_lr, weight_decay, epochs, warmup_epochs,
    batch_size); `parts` are `(module, lr_mult)` pairs (`training.optim.param_groups`);
    an epoch is one pass over `n_train` samples, capped by `max_steps_per_epoch`.
    """
    from training.optim import make_optimizer, param_groups
    s = section
    opt = make_optimizer(s.optimizer, param_groups(parts, s.peak_lr, s.weight_decay), s.peak_lr, s.weight_decay)
    steps = steps_per_epoch(n_train, s.batch_size, max_steps_per_epoch)
    return opt, Schedule(s.epochs, steps, s.warmup_epochs, s.start_lr, s.peak_lr, s.end_lr)


@dataclass
class FitResult:
    """What `fit` did: best validation metric and epoch, epochs run, history, checkpoints."""

    best_metric: float
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    history: list[dict[str, float]]
    last_path: Path
    best_path: Path


@dataclass
class Loop:
    """Everything `fit` needs besides the config.

    - modules: name -> module saved in checkpoints (DDP-unwrapped for saving).
    - batches(epoch) -> this rank's list of batches for one epoch.
    - loss_fn(batch, generator) -> (scalar loss tensor, samples in the batch on this rank).
    - validate() -> dict of metrics; `metric` names the one for early stopping, `mode` max|min.
    - gathered_loss: True when loss_fn computes the *global-batch* loss on embeddings
      gathered from every rank (`training.losses.gather_with_grad`); `fit` then
      back-propagates `world_size * loss` so that DDP's gradient averaging yields the
      exact single-process gradient of the global batch (see `backward`).
    """

    stage: str
    modules: dict[str, nn.Module]
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    batches: Callable[[int], list[Any]]
    loss_fn: Callable[[Any, torch.Generator], tuple[torch.Tensor, int]]
    validate: Callable[[], dict[str, float]]
    metric: str
    mode: str
    patience: int
    grad_clip: float
    extra: dict[str, Any] = field(default_factory=dict)
    gathered_loss: bool = False


def backward(loss: torch.Tensor, ctx: DistContext, gathered: bool) -> None:
    """`loss.backward()`, scaled by `world_size` when `gathered`.

    With a loss over embeddings gathered from all ranks, each rank's autograd graph
    reaches only its own shard, so rank r's gradient is the global loss's gradient
    through shard r; DDP then *averages* over ranks, i.e. the global gradient divided
    by `world_size`. Scaling by `world_size` restores the exact global gradient, which
    matters for gradient clipping (Adam alone is nearly scale-invariant). Losses that
    are a per-rank mean (BCE on this rank's samples) must not be scaled: DDP's
    average of equal-sized per-rank means already is the global mean.
    """
    (loss * ctx.world_size if gathered and ctx.enabled else loss).backward()


def _better(value: float, best: float, mode: str) -> bool:
    if math.isnan(value):
        return False
    if math.isnan(best):
        return True
    return value > best if mode == "max" else value < best


def require_both_classes(labels: np.ndarray, idx: np.ndarray, split: str, pathology: str, stage: str) -> None:
    """StageError unless `labels[idx]` (int `[N]` 0/1) holds at least one positive and one
    negative: AUROC and the balanced sampler are undefined otherwise, and a build that went on
    would choose epochs on NaN."""
    y = np.asarray(labels)[np.asarray(idx, dtype=np.int64)]
    n_pos = int((y == 1).sum())
    if len(y) == 0 or n_pos == 0 or n_pos == len(y):
        raise StageError(
            f"{stage}: the {split} split has {n_pos} positive of {len(y)} pairs for {pathology}, so "
            "AUROC is undefined and training cannot choose an epoch. Build the cohort from more "
            "subjects (cromotex-train phantom --subjects N, or more MIMIC data) or re-split it with "
            "another --seed.")


def smoothed(history: list[dict[str, float]], key: str, window: int) -> float:
    """Mean of the last `window` (>= 1) values of `history[*][key]`: the validation metric
    early stopping and the best checkpoint are chosen on (one noisy epoch does not win)."""
    vals = [float(r[key]) for r in history[-max(1, window):]]
    return float(np.mean(vals)) if vals else float("nan")


def fit(loop: Loop, cfg: Config, out_dir: Path, ctx: DistContext, resume: bool = False) -> FitResult:
    """Train for up to `schedule.epochs` epochs with validation every epoch, early stopping
    after `patience` epochs without improvement of the validation metric smoothed over
    `cfg.val_smooth_epochs` epochs (`smoothed`; history rows keep the raw value and
    `val_smoothed`), `last.pt` (full state, atomic) every epoch, `best.pt` (models + config)
    on improvement. A NaN validation metric raises StageError (a split without positives or
    a diverged model; never silently "best"). With `resume`, continue from `last.pt` (a
    finished run returns at once)."""
    from training.optim import clip_gradients, set_lr
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    last_path, best_path = out_dir / LAST, out_dir / BEST
    start_epoch, step, best, best_epoch, bad, history = 0, 0, float("nan"), -1, 0, []
    finished = False
    if resume and last_path.exists():
        state = load_checkpoint(last_path, stage=loop.stage)
        for name, module in loop.modules.items():
            unwrap(module).load_state_dict(state["models"][name])
        loop.optimizer.load_state_dict(state["optimizer"])
        start_epoch, step = state["epoch"], state["step"]
        best, best_epoch, bad = state["best_metric"], state["best_epoch"], state["bad_epochs"]
        history = state["history"]
        # a finished run stays finished unless it was given more epochs (and did not stop early)
        finished = state.get("finished", False) and (start_epoch >= loop.schedule.epochs
                                                     or 0 < loop.patience <= bad)
        set_rng_state(state["rng"])
        log.info("%s: resumed from %s at epoch %d (step %d)", loop.stage, last_path, start_epoch, step)
    params = [p for m in loop.modules.values() for p in m.parameters() if p.requires_grad]
    epoch = start_epoch
    stopped = finished and start_epoch < loop.schedule.epochs
    while not finished and epoch < loop.schedule.epochs:
        for m in loop.modules.values():
            m.train()
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch * 7919 + ctx.rank)
        batches = loop.batches(epoch)
        bar = tqdm(total=len(batches), desc=f"{loop.stage} {epoch + 1}/{loop.schedule.epochs}",
                   disable=not (cfg.progress and ctx.is_main), leave=False, dynamic_ncols=True)
        t0, seen, loss_sum = time.perf_counter(), 0, 0.0
        for batch in batches:
            set_lr(loop.optimizer, loop.schedule.lr(step))
            loss, n = loop.loss_fn(batch, gen)
            if not torch.isfinite(loss):
                raise StageError(f"{loop.stage}: the loss became {loss.item()} at step {step}; "
                                 "lower the learning rate or check the cohort for NaNs.")
            loop.optimizer.zero_grad(set_to_none=True)
            backward(loss, ctx, loop.gathered_loss)
            if loop.grad_clip > 0:
                clip_gradients(params, loop.grad_clip)
            loop.optimizer.step()
            step += 1
            seen += n * ctx.world_size
            loss_sum += float(loss.detach())
            bar.update(1)
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}",
                            sps=f"{seen / max(time.perf_counter() - t0, 1e-9):.1f}")
        bar.close()
        train_time = time.perf_counter() - t0
        metrics = loop.validate()
        value = float(metrics[loop.metric])
        row = {"epoch": epoch + 1, "step": step, "train_loss": loss_sum / max(len(batches), 1),
               "samples_per_s": seen / max(train_time, 1e-9), "lr": loop.schedule.lr(max(step - 1, 0)),
               **{f"val_{k}": float(v) for k, v in metrics.items()}}
        if not math.isfinite(value):
            raise StageError(
                f"{loop.stage}: validation {loop.metric} is {value} after epoch {epoch + 1}. A split "
                "without positives or negatives makes AUROC undefined (build a bigger cohort or "
                "re-split); a diverged model gives NaN losses (lower the learning rate).")
        history.append(row)
        value = smoothed(history, f"val_{loop.metric}", getattr(cfg, "val_smooth_epochs", 1))
        row["val_smoothed"] = value
        epoch += 1
        if _better(value, best, loop.mode):
            best, best_epoch, bad = value, epoch, 0
            if ctx.is_main:
                save_checkpoint(best_path, _state(loop, cfg, epoch, step, best, best_epoch, bad, history, False,
                                                  with_optimizer=False))
        else:
            bad += 1
        stop = bad >= loop.patience > 0
        finished = stop or epoch >= loop.schedule.epochs
        stopped = stop and epoch < loop.schedule.epochs
        if ctx.is_main:
            save_checkpoint(last_path, _state(loop, cfg, epoch, step, best, best_epoch, bad, history, finished))
            log.info("%s epoch %d/%d: train loss %.4f, val %s %.4f, smoothed %.4f (best %.4f @ %d)%s",
                     loop.stage, epoch, loop.schedule.epochs, row["train_loss"], loop.metric,
                     row[f"val_{loop.metric}"], value, best, best_epoch,
                     ", early stop" if stopped else "")
        barrier(ctx)
    if ctx.is_main and not best_path.exists():  # every validation was NaN: keep the last model
        save_checkpoint(best_path, _state(loop, cfg, epoch, step, best, best_epoch, bad, history, True,
                                          with_optimizer=False))
    barrier(ctx)
    return FitResult(best_metric=best, best_epoch=best_epoch, epochs_run=epoch, stopped_early=stopped,
                     history=history, last_path=last_path, best_path=best_path)


def _state(loop: Loop, cfg: Config, epoch: int, step: int, best: float, best_epoch: int, bad: int,
           history: list, finished: bool, with_optimizer: bool = True) -> dict[str, Any]:
    state = {
        "stage": loop.stage,
        "models": {k: {n: t.detach().cpu() for n, t in unwrap(m).state_dict().items()}
                   for k, m in loop.modules.items()},
        "epoch": epoch, "step": step, "best_metric": best, "best_epoch": best_epoch, "bad_epochs": bad,
        "history": list(history), "finished": finished, "rng": rng_state(),
        "config": config_mod.to_dict(cfg), "extra": dict(loop.extra),
    }
    if with_optimizer:
        state["optimizer"] = loop.optimizer.state_dict()
    return state


# ----------------------------------------------------------------------------- CLI helpers

def base_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The options every stage shares."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--cohort", required=True, help="COHORT directory (docs/cohort.md)")
    p.add_argument("--out", required=True, help="output directory of this stage")
    p.add_argument("--preset", default="paper", choices=config_mod.PRESETS,
                   help="hyper-parameter preset (default: paper)")
    p.add_argument("--pathology", help="target pathology (default: the preset's)")
    p.add_argument("--device", help="cpu | cuda (default: cpu)")
    p.add_argument("--epochs", type=int, help="maximum epochs of this stage")
    p.add_argument("--batch-size", type=int, help="global batch size of this stage")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--max-steps", type=int, help="cap of steps per epoch (0: full pass)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt after an interruption")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override any config key, e.g. --set align.tau=0.05 (repeatable)")
    return p


def config_from_args(args: argparse.Namespace, section: str) -> Config:
    """Resolve the preset with the CLI options; `section` is the stage's config section."""
    overrides: dict[str, Any] = config_mod.parse_overrides(args.set)
    for attr, key in (("pathology", "pathology"), ("device", "device"), ("seed", "seed"),
                      ("max_steps", "max_steps_per_epoch"), ("epochs", f"{section}.epochs"),
                      ("batch_size", f"{section}.batch_size")):
        value = getattr(args, attr, None)
        if value is not None:
            overrides[key] = value
    if args.no_progress:
        overrides["progress"] = False
    return config_mod.resolve(args.preset, overrides)


def write_json(path: Path, data: Any) -> None:
    """A stage's JSON output (history.json, teacher.json), written atomically: sorted keys,
    NaN kept as `NaN` (a validation AUROC is NaN while a split has no positive case), no
    trailing newline, other numbers through `float`."""
    jsonio.write_json(path, data, nan="literal", sort_keys=True, trailing_newline=False, default=float)


def configure_logging() -> None:
    """INFO logging to stderr for command-line runs."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")


def cleanup(ctx: DistContext) -> None:
    """Destroy the process group if one was created."""
    if ctx.enabled:
        import torch.distributed as dist
        dist.destroy_process_group()


def finish(result: FitResult, ctx: DistContext, out_dir: Path) -> dict[str, Path]:
    """Write `history.json` (rank 0), wait for every rank, leave the process group and
    return the stage's outputs: {"config", "best", "last", "history"} paths."""
    if ctx.is_main:
        write_json(out_dir / "history.json", result.history)
    barrier(ctx)
    cleanup(ctx)
    return {"config": out_dir / "config.json", "best": result.best_path, "last": result.last_path,
            "history": out_dir / "history.json"}
