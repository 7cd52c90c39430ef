"""Class-balanced sampling (METHOD.md stage 3-4: positives 25-30% of each batch).

`class_balanced_weights` gives per-sample weights for
`torch.utils.data.WeightedRandomSampler` (one process) or
`DistributedWeightedSampler` (DistributedDataParallel, one per rank).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler

from engine.errors import CromotexError

log = logging.getLogger(__name__)


def class_balanced_weights(labels: np.ndarray, positive_fraction: float = 0.275) -> np.ndarray:
    """Sampling weights float64 `[N]` such that, drawing with replacement with
    probability proportional to them, a draw is positive with probability exactly
    `positive_fraction` (default 0.275, the middle of the paper's 25-30%).

    Args:
        labels: `[N]` binary labels (bool, or 0/1 int or float); positive = 1.
        positive_fraction: target share of positives, in (0, 1).
    Raises:
        CromotexError: the labels are not binary, or one class is absent (then no
            sampling can reach the target: check the cohort's split).
    """
    y = np.asarray(labels).reshape(-1)
    if not 0.0 < positive_fraction < 1.0:
        raise ValueError(f"positive_fraction must be in (0, 1), got {positive_fraction}")
    values = set(np.unique(y.astype(np.float64)).tolist())
    if not values <= {0.0, 1.0}:
        raise CromotexError(f"labels must be binary 0/1, found values {sorted(values)[:10]}")
    pos = y.astype(np.float64) == 1.0
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        raise CromotexError(f"class-balanced sampling needs both classes; the training split has "
                            f"{n_pos} positives and {n_neg} negatives. Rebuild the cohort or "
                            "choose a pathology with both classes in the training split.")
    weights = np.where(pos, positive_fraction / n_pos, (1.0 - positive_fraction) / n_neg)
    log.debug("class-balanced weights: %d positives (%.1f%%) sampled at %.1f%%",
              n_pos, 100 * n_pos / y.size, 100 * positive_fraction)
    return weights


class DistributedWeightedSampler(Sampler[int]):
    """Weighted random sampling with replacement, shared out between ranks.

    Each epoch, every rank draws the same `ceil(num_samples / world_size) *
    world_size` indices from a generator seeded with `(seed, epoch)` and keeps
    positions `rank, rank + world_size, ...`: the ranks' shares are disjoint
    parts of one global draw, deterministic given `seed` and the epoch (call
    `set_epoch(epoch)` before each epoch, as with `DistributedSampler`).

    Args:
        weights: `[N]` non-negative sampling weights (e.g. `class_balanced_weights`).
        num_samples: draws per epoch over **all** ranks (as `WeightedRandomSampler`'s
            `num_samples`); each rank yields `ceil(num_samples / world_size)`.
        rank: this process's rank, in [0, world_size).
        world_size: number of processes (1 without DDP).
        seed: base seed.
    """

    def __init__(self, weights: np.ndarray | torch.Tensor, num_samples: int, rank: int = 0,
                 world_size: int = 1, seed: int = 0) -> None:
        w = torch.as_tensor(np.asarray(weights, dtype=np.float64))
        if w.dim() != 1 or w.numel() == 0 or bool((w < 0).any()) or float(w.sum()) <= 0:
            raise ValueError("weights must be a non-empty 1-D array of non-negative numbers "
                             "with a positive sum")
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, {world_size})")
        self.weights = w
        self.rank, self.world_size, self.seed = rank, world_size, seed
        self.num_samples_per_rank = math.ceil(num_samples / world_size)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's draw (same on every rank)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_samples_per_rank

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        total = self.num_samples_per_rank * self.world_size
        draw = torch.multinomial(self.weights, total, replacement=True, generator=g)
        return iter(draw[self.rank::self.world_size].tolist())
