"""Issue 18: the training loop refuses undefined validation metrics and chooses epochs on a
smoothed metric; splits without positives stop a stage with a clear error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training import config as config_mod
from training.stages.common import (DistContext, Loop, Schedule, StageError, fit, require_both_classes,
                                    smoothed)


def _loop(metrics: list[float], patience: int = 10) -> Loop:
    net = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    x = torch.randn(8, 3, generator=torch.Generator().manual_seed(0))
    calls = iter(metrics)

    def loss_fn(batch, gen):
        return net(x).pow(2).mean(), len(x)

    return Loop("toy", {"net": net}, opt, Schedule(len(metrics), 1, 0.0, 0.01, 0.01, 0.01),
                lambda epoch: [0], loss_fn, lambda: {"auroc": next(calls)}, metric="auroc", mode="max",
                patience=patience, grad_clip=0.0)


def test_nan_validation_metric_stops_with_a_clear_error(tmp_path):
    cfg = config_mod.resolve("tiny")
    with pytest.raises(StageError, match="validation auroc is nan after epoch 2.*positives"):
        fit(_loop([0.6, float("nan"), 0.7]), cfg, tmp_path, DistContext())


def test_best_epoch_is_chosen_on_the_smoothed_metric(tmp_path):
    # one lucky spike at epoch 2 wins the raw metric, the steady rise wins the 3-epoch mean
    vals = [0.60, 0.80, 0.62, 0.70, 0.72, 0.74, 0.60]
    raw = fit(_loop(vals), config_mod.resolve("tiny", {"val_smooth_epochs": 1}), tmp_path / "raw",
              DistContext())
    assert raw.best_epoch == 2
    sm = fit(_loop(vals), config_mod.resolve("tiny", {"val_smooth_epochs": 3}), tmp_path / "sm",
             DistContext())
    assert sm.best_epoch == 6
    assert sm.best_metric == pytest.approx(np.mean([0.70, 0.72, 0.74]))
    assert [r["val_auroc"] for r in sm.history] == vals
    assert sm.history[1]["val_smoothed"] == pytest.approx(0.70)


def test_patience_counts_epochs_without_smoothed_improvement(tmp_path):
    vals = [0.7, 0.72, 0.71, 0.70, 0.69, 0.68, 0.9, 0.9]
    res = fit(_loop(vals, patience=2), config_mod.resolve("tiny", {"val_smooth_epochs": 2}), tmp_path,
              DistContext())
    assert res.stopped_early and res.epochs_run < len(vals)


def test_smoothed_mean_of_last_window():
    hist = [{"v": 1.0}, {"v": 2.0}, {"v": 4.0}]
    assert smoothed(hist, "v", 2) == 3.0 and smoothed(hist, "v", 1) == 4.0 and smoothed(hist, "v", 9) == 7 / 3


@pytest.mark.parametrize("y", [[0, 0, 0, 0], [1, 1, 1], []])
def test_split_without_both_classes_raises(y):
    labels = np.array(y + [0, 1], dtype=np.int64)
    idx = np.arange(len(y))
    with pytest.raises(StageError, match="val split has .* positive of .* edema"):
        require_both_classes(labels, idx, "val", "edema", "finetune_edema")
    require_both_classes(labels, np.arange(len(labels)), "val", "edema", "finetune_edema")  # both: fine
