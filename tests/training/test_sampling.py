"""Class-balanced sampling: measured positive share per batch, DDP shares."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import WeightedRandomSampler

from engine.errors import CromotexError
from training.sampling import DistributedWeightedSampler, class_balanced_weights


def labels_at(prevalence: float, n: int = 20_000, seed: int = 0) -> np.ndarray:
    y = np.zeros(n, dtype=np.int64)
    y[: int(round(prevalence * n))] = 1
    return np.random.default_rng(seed).permutation(y)


@pytest.mark.parametrize("prevalence", [0.05, 0.15, 0.40])
def test_positive_share_per_batch_of_256(prevalence):
    y = labels_at(prevalence)
    w = class_balanced_weights(y)
    assert w.shape == y.shape and (w > 0).all()
    assert w[y == 1].sum() / w.sum() == pytest.approx(0.275)
    n_batches = 200
    sampler = WeightedRandomSampler(torch.from_numpy(w), 256 * n_batches, replacement=True,
                                    generator=torch.Generator().manual_seed(1))
    batches = y[np.fromiter(sampler, dtype=np.int64)].reshape(n_batches, 256)
    shares = batches.mean(1)
    assert 0.25 <= shares.mean() <= 0.30
    assert np.quantile(shares, 0.1) > 0.22 and np.quantile(shares, 0.9) < 0.33  # per-batch spread


def test_distributed_sampler_positive_share_and_disjoint_shares():
    y = labels_at(0.05)
    w = class_balanced_weights(y)
    samplers = [DistributedWeightedSampler(w, 256 * 100, rank=r, world_size=4, seed=3)
                for r in range(4)]
    draws = [list(s) for s in samplers]
    assert all(len(d) == len(s) == 6400 for d, s in zip(draws, samplers))
    share = y[np.concatenate(draws)].mean()
    assert 0.25 <= share <= 0.30
    # the ranks' shares are disjoint positions of one global draw
    one = DistributedWeightedSampler(w, 256 * 100, rank=0, world_size=1, seed=3)
    global_draw = np.array(list(one))
    interleaved = np.stack(draws, axis=1).reshape(-1)
    np.testing.assert_array_equal(interleaved, global_draw)


def test_distributed_sampler_epochs_deterministic():
    w = class_balanced_weights(labels_at(0.15, n=1000))
    a = DistributedWeightedSampler(w, 500, rank=1, world_size=2, seed=7)
    b = DistributedWeightedSampler(w, 500, rank=1, world_size=2, seed=7)
    first = list(a)
    assert first == list(b) == list(a)                 # same epoch -> same draw
    a.set_epoch(1)
    assert list(a) != first
    b.set_epoch(1)
    assert list(a) == list(b)
    assert len(DistributedWeightedSampler(w, 501, rank=0, world_size=2)) == 251


def test_bad_inputs():
    with pytest.raises(CromotexError, match="both classes"):
        class_balanced_weights(np.zeros(10))
    with pytest.raises(CromotexError, match="binary"):
        class_balanced_weights(np.array([0, 1, 2]))
    with pytest.raises(ValueError):
        class_balanced_weights(np.array([0, 1]), positive_fraction=1.0)
    with pytest.raises(ValueError):
        DistributedWeightedSampler(np.ones(4), 10, rank=2, world_size=2)
    with pytest.raises(ValueError):
        DistributedWeightedSampler(np.array([-1.0, 1.0]), 10)
