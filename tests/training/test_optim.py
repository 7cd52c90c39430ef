"""Schedule values, parameter groups with multipliers, optimisers, clipping."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from training.models import EcgEncoder, ProjectionHead
from training.optim import clip_gradients, make_optimizer, param_groups, set_lr, warmup_cosine


def test_warmup_cosine_values():
    kw = dict(total_steps=110, warmup_steps=10, start_lr=1e-5, peak_lr=1e-4, end_lr=1e-6)
    assert warmup_cosine(0, **kw) == pytest.approx(1e-5)
    assert warmup_cosine(5, **kw) == pytest.approx(5.5e-5)
    assert warmup_cosine(10, **kw) == pytest.approx(1e-4)
    assert warmup_cosine(60, **kw) == pytest.approx((1e-4 + 1e-6) / 2)   # half-way down
    assert warmup_cosine(35, **kw) == pytest.approx(1e-6 + (1e-4 - 1e-6) * 0.5 * (1 + math.cos(math.pi / 4)))
    assert warmup_cosine(110, **kw) == pytest.approx(1e-6)
    assert warmup_cosine(500, **kw) == pytest.approx(1e-6)
    lrs = [warmup_cosine(s, **kw) for s in range(111)]
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:11]))                # rising warm-up
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))                 # then falling
    assert warmup_cosine(0, 10, 0, 0.0, 1.0, 0.0) == pytest.approx(1.0)    # no warm-up
    with pytest.raises(ValueError):
        warmup_cosine(0, 0, 0, 1.0, 1.0, 1.0)


def _parts():
    encoder = EcgEncoder(ff_dim=64, depth=1)
    head = ProjectionHead(256, 128)
    return encoder, head


def test_param_groups_multipliers_and_decay():
    encoder, head = _parts()
    groups = param_groups([(encoder, 1.0), (head, 0.1)], base_lr=1e-4, weight_decay=1e-5)
    by_name = {g["name"]: g for g in groups}
    assert set(by_name) == {"0:EcgEncoder:decay", "0:EcgEncoder:no_decay",
                            "1:ProjectionHead:decay", "1:ProjectionHead:no_decay"}
    assert by_name["1:ProjectionHead:decay"]["lr"] == pytest.approx(1e-5)
    assert by_name["1:ProjectionHead:decay"]["lr_mult"] == 0.1
    assert by_name["0:EcgEncoder:no_decay"]["weight_decay"] == 0.0
    assert by_name["0:EcgEncoder:decay"]["weight_decay"] == 1e-5
    no_decay = {id(p) for p in by_name["0:EcgEncoder:no_decay"]["params"]}
    assert id(encoder.cls_token) in no_decay and id(encoder.pos_embed) in no_decay
    assert id(encoder.patch_embed[2].weight) in no_decay                  # BatchNorm weight
    assert id(encoder.patch_embed[0].weight) not in no_decay              # conv weight
    n = sum(p.numel() for g in groups for p in g["params"])
    assert n == sum(p.numel() for p in encoder.parameters()) + sum(p.numel() for p in head.parameters())


def test_frozen_parts_left_out_and_duplicates_rejected():
    encoder, head = _parts()
    for p in encoder.parameters():
        p.requires_grad_(False)
    groups = param_groups([(encoder, 0.05), (head, 1.0)], 1e-4, 0.0)
    assert [g["name"] for g in groups] == ["1:ProjectionHead:decay", "1:ProjectionHead:no_decay"]
    with pytest.raises(ValueError, match="earlier part"):
        param_groups([(head, 1.0), (head, 0.1)], 1e-4, 0.0)


@pytest.mark.parametrize("name, cls", [("adam", torch.optim.Adam), ("AdamW", torch.optim.AdamW)])
def test_make_optimizer_and_set_lr(name, cls):
    encoder, head = _parts()
    opt = make_optimizer(name, param_groups([(encoder, 0.05), (head, 0.1)], 1e-4, 1e-5), 1e-4, 1e-5)
    assert isinstance(opt, cls)
    set_lr(opt, 2e-4)
    for g in opt.param_groups:
        assert g["lr"] == pytest.approx(2e-4 * g["lr_mult"])
    assert sorted({g["lr"] for g in opt.param_groups}) == pytest.approx([1e-5, 2e-5])
    with pytest.raises(ValueError):
        make_optimizer("sgd", [{"params": list(head.parameters())}], 1e-3)


def test_adamw_decays_only_decay_group():
    layer = nn.Linear(4, 4)
    with torch.no_grad():
        layer.weight.fill_(1.0)
        layer.bias.fill_(1.0)
    opt = make_optimizer("adamw", param_groups([(layer, 1.0)], 0.1, 0.5), 0.1, 0.5)
    layer.weight.grad = torch.zeros_like(layer.weight)
    layer.bias.grad = torch.zeros_like(layer.bias)
    opt.step()
    torch.testing.assert_close(layer.weight, torch.full((4, 4), 1 - 0.1 * 0.5))
    torch.testing.assert_close(layer.bias, torch.ones(4))


def test_clip_gradients():
    a, b = nn.Parameter(torch.zeros(3)), nn.Parameter(torch.zeros(4))
    a.grad, b.grad = torch.tensor([3.0, 0, 0]), torch.tensor([0.0, 4, 0, 0])
    assert clip_gradients([a, b], 2.5) == pytest.approx(5.0)
    total = torch.cat([a.grad, b.grad]).norm().item()
    assert total == pytest.approx(2.5, rel=1e-5)
    torch.testing.assert_close(a.grad, torch.tensor([1.5, 0, 0]), atol=1e-5, rtol=0)
    assert clip_gradients([a, b], None) == pytest.approx(2.5, rel=1e-5)
    assert clip_gradients([nn.Parameter(torch.zeros(2))], 1.0) == 0.0
