"""Optimisation pieces (METHOD.md "Stages"): linear warm-up + cosine schedule,
parameter groups with learning-rate multipliers, Adam / AdamW, gradient clipping.

Every parameter group carries `"lr_mult"`; `set_lr(optimizer, lr)` sets each
group's learning rate to `lr * lr_mult`, so one schedule drives e.g. a
backbone at x0.05 (stage 1) or projection heads at x0.1 (stage 3).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn


def warmup_cosine(step: int, total_steps: int, warmup_steps: int, start_lr: float,
                  peak_lr: float, end_lr: float) -> float:
    """Learning rate at `step` (0-based): linear from `start_lr` (step 0) to `peak_lr`
    (step `warmup_steps`), then half a cosine from `peak_lr` down to `end_lr` at
    step `total_steps`; `end_lr` after. Units are those of the arguments."""
    if total_steps < 1 or warmup_steps < 0:
        raise ValueError(f"need total_steps >= 1 and warmup_steps >= 0, got "
                         f"{total_steps}, {warmup_steps}")
    if step < warmup_steps:
        return start_lr + (peak_lr - start_lr) * step / warmup_steps
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, max(0.0, (step - warmup_steps) / decay_steps))
    return end_lr + (peak_lr - end_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


#: Parameter names (last component) exempt from weight decay besides 0-/1-D tensors.
NO_DECAY_NAMES: tuple[str, ...] = ("cls_token", "pos_embed")


def _no_decay(name: str, param: nn.Parameter) -> bool:
    return param.dim() < 2 or name.rsplit(".", 1)[-1] in NO_DECAY_NAMES


def param_groups(parts: list[tuple[nn.Module, float]], base_lr: float,
                 weight_decay: float) -> list[dict]:
    """Optimizer parameter groups: for each `(module, lr_mult)`, one group with
    weight decay (weights of Linear / Conv layers) and one without (biases, norm
    weights, and the learned CLS token and positional embedding: every tensor
    of fewer than 2 dimensions and the names in `NO_DECAY_NAMES`). Frozen
    parameters (`requires_grad=False`) are left out; empty groups are dropped.

    Each group: `{"params", "lr": base_lr * lr_mult, "lr_mult", "weight_decay", "name"}`.
    Raises ValueError if a parameter belongs to two parts.
    """
    groups: list[dict] = []
    seen: set[int] = set()
    for index, (module, mult) in enumerate(parts):
        decay, no_decay = [], []
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            if id(param) in seen:
                raise ValueError(f"parameter {name!r} of part {index} is also in an earlier part")
            seen.add(id(param))
            (no_decay if _no_decay(name, param) else decay).append(param)
        label = type(module).__name__
        for params, wd, suffix in ((decay, weight_decay, "decay"), (no_decay, 0.0, "no_decay")):
            if params:
                groups.append({"params": params, "lr": base_lr * mult, "lr_mult": float(mult),
                               "weight_decay": wd, "name": f"{index}:{label}:{suffix}"})
    return groups


def make_optimizer(name: str, groups: list[dict], lr: float,
                   weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """`"adam"` (torch.optim.Adam; its weight decay is L2 in the gradient) or
    `"adamw"` (decoupled weight decay) over `groups`; `lr` and `weight_decay` are
    defaults for groups that do not set them. Groups without `"lr_mult"` get 1."""
    for g in groups:
        g.setdefault("lr_mult", 1.0)
        g.setdefault("lr", lr * g["lr_mult"])
    key = name.lower()
    if key == "adam":
        return torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay)
    if key == "adamw":
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be 'adam' or 'adamw', got {name!r}")


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every group's learning rate to `lr * group["lr_mult"]` (multiplier 1 if absent)."""
    for g in optimizer.param_groups:
        g["lr"] = lr * g.get("lr_mult", 1.0)


def clip_gradients(params: Iterable[torch.nn.Parameter], max_norm: float | None) -> float:
    """Clip the global L2 norm of the gradients of `params` to `max_norm` in place
    (no clipping when `max_norm` is None or <= 0). Returns the norm before clipping."""
    params = [p for p in params if p.grad is not None]
    if not params:
        return 0.0
    if max_norm is None or max_norm <= 0:
        norms = torch.stack([p.grad.detach().float().norm() for p in params])
        return float(norms.norm())
    return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
