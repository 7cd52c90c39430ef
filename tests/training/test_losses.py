"""Losses against naive per-anchor loops written straight from the equations."""

from __future__ import annotations

import math

import pytest
import torch

from training.losses import ahnp_supcma, cma, gather_with_grad, hardness_weights, nt_xent, supcma


def _unit(z: torch.Tensor) -> list[list[float]]:
    return [[v / math.sqrt(sum(u * u for u in row)) for v in row] for row in z.tolist()]


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b))


def _weights_loop(cos_row: list[float], weighting: str, alpha: float, k: float) -> list[float]:
    """w_{i,a} for one anchor, from the definitions in METHOD.md."""
    m = len(cos_row)
    if weighting == "topk":
        n_top = int(math.floor(k * m + 0.5))
        ranked = sorted(range(m), key=lambda a: -cos_row[a])
        top = set(ranked[:n_top])
        return [alpha if a in top else 1.0 for a in range(m)]
    if weighting == "linear":
        lo, hi = min(cos_row), max(cos_row)
        return [1.0 + (alpha - 1.0) * (c - lo) / (hi - lo) for c in cos_row]
    return [1.0 + math.exp(alpha * c) for c in cos_row]


def _direction_loop(za, zb, labels, tau, weighting=None, alpha=1.0, beta=0.0, k=0.0,
                    beta_mode="equation", supervised=True) -> float:
    """mean over anchors i of -1/|P(i)| sum_{p in P(i)} log(num_ip / sum_a w_ia exp(s_ia))."""
    b = len(za)
    total = 0.0
    for i in range(b):
        cos_row = [_dot(za[i], zb[a]) for a in range(b)]
        s = [c / tau for c in cos_row]
        w = _weights_loop(cos_row, weighting, alpha, k) if weighting else [1.0] * b
        denom = sum(w[a] * math.exp(s[a]) for a in range(b))
        positives = [p for p in range(b) if (labels[p] == labels[i] if supervised else p == i)]
        acc, norm = 0.0, 0.0
        for p in positives:
            if beta_mode == "equation":
                num = (1.0 + (beta if p == i else 0.0)) * math.exp(s[p])
                acc += math.log(num / denom)
                norm += 1.0
            else:
                m = 1.0 + (beta if p == i else 0.0)
                acc += m * math.log(math.exp(s[p]) / denom)
                norm += m
        total += -acc / norm
    return total / b


def _symmetric_loop(z_e, z_x, labels, tau, **kw) -> float:
    ze, zx = _unit(z_e), _unit(z_x)
    return 0.5 * _direction_loop(ze, zx, labels, tau, **kw) + 0.5 * _direction_loop(zx, ze, labels, tau, **kw)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(7)
    z_e = torch.randn(12, 8, generator=g, dtype=torch.float64)
    z_x = torch.randn(12, 8, generator=g, dtype=torch.float64)
    labels = torch.tensor([0, 1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0])
    return z_e, z_x, labels


def test_cma_matches_loop(batch):
    z_e, z_x, labels = batch
    ref = _symmetric_loop(z_e, z_x, labels.tolist(), 0.2, supervised=False)
    assert cma(z_e, z_x, 0.2).item() == pytest.approx(ref, abs=1e-5)


def test_supcma_matches_loop(batch):
    z_e, z_x, labels = batch
    ref = _symmetric_loop(z_e, z_x, labels.tolist(), 0.2)
    assert supcma(z_e, z_x, labels, 0.2).item() == pytest.approx(ref, abs=1e-5)


@pytest.mark.parametrize("weighting", ["topk", "linear", "exp"])
@pytest.mark.parametrize("beta_mode", ["equation", "log_weight"])
def test_ahnp_matches_loop(batch, weighting, beta_mode):
    z_e, z_x, labels = batch
    kw = dict(weighting=weighting, alpha=4.5, beta=2.0, k=0.25, beta_mode=beta_mode)
    ref = _symmetric_loop(z_e, z_x, labels.tolist(), 0.3, **kw)
    got = ahnp_supcma(z_e, z_x, labels, 0.3, **kw).item()
    assert got == pytest.approx(ref, abs=1e-5)


def test_nt_xent_matches_loop(batch):
    z1, z2, _ = batch
    z = _unit(torch.cat([z1, z2]))
    n, b, tau = len(z), len(z) // 2, 0.5
    total = 0.0
    for i in range(n):
        pos = (i + b) % n
        denom = sum(math.exp(_dot(z[i], z[a]) / tau) for a in range(n) if a != i)
        total += -math.log(math.exp(_dot(z[i], z[pos]) / tau) / denom)
    assert nt_xent(z1, z2, tau).item() == pytest.approx(total / n, abs=1e-5)


@pytest.mark.parametrize("weighting", ["topk", "linear"])
def test_alpha_one_beta_zero_is_supcma(batch, weighting):
    z_e, z_x, labels = batch
    a = ahnp_supcma(z_e, z_x, labels, 0.05, weighting=weighting, alpha=1.0, beta=0.0, k=0.3)
    assert a.item() == pytest.approx(supcma(z_e, z_x, labels, 0.05).item(), abs=1e-10)


def test_unique_labels_supcma_is_cma(batch):
    z_e, z_x, _ = batch
    labels = torch.arange(z_e.shape[0])
    assert supcma(z_e, z_x, labels, 0.1).item() == pytest.approx(cma(z_e, z_x, 0.1).item(), abs=1e-10)


def test_beta_in_numerator_only_shifts_the_loss(batch):
    """Eq. 3 as written: beta adds -log(1+beta)/|P(i)| per anchor, gradients unchanged."""
    z_e, z_x, labels = batch
    grads, values = [], []
    for beta in (0.0, 2.0):
        z = z_e.clone().requires_grad_(True)
        loss = ahnp_supcma(z, z_x, labels, 0.1, beta=beta, beta_mode="equation")
        loss.backward()
        grads.append(z.grad)
        values.append(loss.item())
    sizes = torch.tensor([(labels == y).sum().item() for y in labels], dtype=torch.float64)
    shift = -(math.log(3.0) / sizes).mean().item()    # same in both directions
    assert values[1] - values[0] == pytest.approx(shift, abs=1e-8)
    torch.testing.assert_close(grads[0], grads[1])
    z = z_e.clone().requires_grad_(True)
    ahnp_supcma(z, z_x, labels, 0.1, beta=2.0, beta_mode="log_weight").backward()
    assert (z.grad - grads[0]).abs().max() > 1e-3      # the authors' placement does act


def _grad(z_e, z_x, labels, beta, mode):
    z = z_e.clone().requires_grad_(True)
    ahnp_supcma(z, z_x, labels, 0.1, beta=beta, beta_mode=mode).backward()
    return z.grad


def test_beta_gradient_by_mode(batch):
    """Issue 18: under Eq. 3 as printed the gradient is identical for beta = 0, 2, 3, 100;
    under the default `log_weight` reading every beta gives a different gradient."""
    z_e, z_x, labels = batch
    betas = (0.0, 2.0, 3.0, 100.0)
    eq = [_grad(z_e, z_x, labels, b, "equation") for b in betas]
    for g in eq[1:]:
        torch.testing.assert_close(g, eq[0])
    lw = [_grad(z_e, z_x, labels, b, "log_weight") for b in betas]
    torch.testing.assert_close(lw[0], eq[0])          # beta = 0: both readings agree
    for i in range(len(betas)):
        for j in range(i + 1, len(betas)):
            assert (lw[i] - lw[j]).abs().max() > 1e-4, (betas[i], betas[j])
    # and the default is log_weight
    torch.testing.assert_close(_grad(z_e, z_x, labels, 3.0, "log_weight"),
                               _grad_default(z_e, z_x, labels, 3.0))


def _grad_default(z_e, z_x, labels, beta):
    z = z_e.clone().requires_grad_(True)
    ahnp_supcma(z, z_x, labels, 0.1, beta=beta).backward()
    return z.grad


def test_topk_weight_count_and_detached():
    cos = torch.rand(5, 40, requires_grad=True)
    w = hardness_weights(cos, "topk", 4.5, 0.075)       # round(3.0) = 3 hard per anchor
    assert not w.requires_grad
    assert ((w == 4.5).sum(1) == 3).all() and ((w == 1.0).sum(1) == 37).all()
    top = cos.detach().topk(3, dim=1).indices
    assert (w.gather(1, top) == 4.5).all()
    lin = hardness_weights(cos, "linear", 4.5, 0.0)
    assert lin.min(1).values.sub(1.0).abs().max() < 1e-6
    assert lin.max(1).values.sub(4.5).abs().max() < 1e-6
    with pytest.raises(ValueError):
        hardness_weights(cos, "cubic", 4.5, 0.1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("name", ["nt_xent", "cma", "supcma", "topk", "linear", "exp"])
def test_stable_at_tau_001(name, dtype):
    """Large, nearly parallel projections at tau = 0.01: finite loss and gradients."""
    g = torch.Generator().manual_seed(3)
    base = torch.randn(1, 64, generator=g) * 1e3
    z_e = (base + torch.randn(64, 64, generator=g)).to(dtype).requires_grad_(True)
    z_x = (base + torch.randn(64, 64, generator=g)).to(dtype).requires_grad_(True)
    labels = torch.randint(0, 2, (64,), generator=g)
    if name == "nt_xent":
        loss = nt_xent(z_e, z_x, 0.01)
    elif name == "cma":
        loss = cma(z_e, z_x, 0.01)
    elif name == "supcma":
        loss = supcma(z_e, z_x, labels, 0.01)
    else:
        loss = ahnp_supcma(z_e, z_x, labels, 0.01, weighting=name, alpha=4.5, beta=2.0, k=0.075)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(z_e.grad.float()).all() and torch.isfinite(z_x.grad.float()).all()
    assert z_e.grad.float().abs().sum() > 0


def test_orthogonal_far_apart_no_overflow():
    """exp(1/0.01) = exp(100) overflows float32; logsumexp must not."""
    z = torch.eye(16, requires_grad=True)
    loss = ahnp_supcma(z, torch.eye(16), torch.zeros(16), 0.01)
    assert torch.isfinite(loss)
    # perfect alignment, all one class: every positive except i is at similarity 0
    assert cma(torch.eye(16), torch.eye(16), 0.01).item() == pytest.approx(0.0, abs=1e-6)


def test_gradients_flow_to_both_modalities(batch):
    z_e, z_x, labels = (t.clone() for t in batch)
    z_e.requires_grad_(True)
    z_x.requires_grad_(True)
    ahnp_supcma(z_e, z_x, labels, 0.1, weighting="exp").backward()
    assert z_e.grad.abs().sum() > 0 and z_x.grad.abs().sum() > 0


def test_loss_lower_when_embeddings_cluster_by_label(batch):
    z_e, z_x, labels = batch
    prototypes = torch.tensor([[1.0] + [0.0] * 7, [0.0, 1.0] + [0.0] * 6], dtype=torch.float64)
    clustered_e = prototypes[labels] + 0.05 * z_e
    clustered_x = prototypes[labels] + 0.05 * z_x
    for loss in (supcma, lambda a, b, y, t: ahnp_supcma(a, b, y, t, weighting="topk", k=0.25)):
        assert loss(clustered_e, clustered_x, labels, 0.1) < loss(z_e, z_x, labels, 0.1)


def test_bad_arguments(batch):
    z_e, z_x, labels = batch
    with pytest.raises(ValueError):
        cma(z_e, z_x[:5], 0.1)
    with pytest.raises(ValueError):
        supcma(z_e, z_x, labels[:3], 0.1)
    with pytest.raises(ValueError):
        ahnp_supcma(z_e, z_x, labels, 0.1, weighting="hard")
    with pytest.raises(ValueError):
        ahnp_supcma(z_e, z_x, labels, 0.1, beta_mode="other")


def test_gather_is_identity_without_distributed(batch):
    z = batch[0]
    assert gather_with_grad(z) is z


_DDP_WORKER = r'''
import sys, datetime, torch, torch.distributed as dist
from training.losses import ahnp_supcma, gather_with_grad
torch.set_num_threads(1)                                     # two ranks on a shared 2-core machine
rank, world, init, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world,
                        timeout=datetime.timedelta(seconds=float(sys.argv[5])))
g = torch.Generator().manual_seed(11)
z_e, z_x = torch.randn(10, 6, generator=g, dtype=torch.float64), torch.randn(10, 6, generator=g, dtype=torch.float64)
labels = torch.tensor([0, 1, 1, 0, 0, 1, 0, 0, 1, 0])
shard = slice(0, 6) if rank == 0 else slice(6, 10)          # unequal shards
e, x = z_e[shard].clone().requires_grad_(True), z_x[shard].clone().requires_grad_(True)
loss = ahnp_supcma(gather_with_grad(e), gather_with_grad(x), gather_with_grad(labels[shard]), 0.1, k=0.2)
(loss * world).backward()
torch.save({"loss": loss.detach(), "ge": e.grad, "gx": x.grad}, out)
dist.destroy_process_group()
'''
#: Wall-clock limit of the two-rank run. Each rank spends most of its time importing torch:
#: ~5 s alone, 60 s with the full suite and other jobs on 2 cores (the old 120 s limit was hit
#: under load). The ranks' own collective timeout is the same, so a rank whose peer died exits
#: with an error instead of waiting 30 minutes (gloo's default).
_DDP_DEADLINE_S = 600.0


def _run_ranks(tmp_path, world: int) -> None:
    """Start `world` gloo ranks of _DDP_WORKER and wait for all of them; the first rank that
    fails stops the others, and the failure shows every rank's stderr."""
    import os
    import subprocess
    import sys
    import time

    script = tmp_path / "worker.py"
    script.write_text(_DDP_WORKER)
    init = f"file://{tmp_path / 'rendezvous'}"                  # no TCP port to collide with
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo",            # loopback: no hostname lookup
           "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    logs = [open(tmp_path / f"{r}.log", "w+") for r in range(world)]
    procs = [subprocess.Popen([sys.executable, str(script), str(r), str(world), init,
                               str(tmp_path / f"{r}.pt"), str(_DDP_DEADLINE_S)],
                              stdout=logs[r], stderr=subprocess.STDOUT, env=env)
             for r in range(world)]
    deadline = time.monotonic() + _DDP_DEADLINE_S
    try:
        while any(p.poll() is None for p in procs):
            if any(p.returncode not in (None, 0) for p in procs) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    codes = [p.returncode for p in procs]
    if codes != [0] * world:
        text = []
        for r, log in enumerate(logs):
            log.seek(0)
            text.append(f"--- rank {r} (exit {codes[r]}) ---\n{log.read()[-4000:]}")
        pytest.fail("gloo ranks failed or passed the deadline:\n" + "\n".join(text))
    for log in logs:
        log.close()


def test_gather_with_grad_across_two_processes(tmp_path):
    """Two gloo ranks with unequal shards: the gathered loss equals the one-process
    loss, and with the loss scaled by world_size, DDP's averaging over ranks (a
    division by 2 here, the shards being disjoint) gives the one-process gradient."""
    _run_ranks(tmp_path, 2)
    got = [torch.load(tmp_path / f"{r}.pt") for r in range(2)]

    g = torch.Generator().manual_seed(11)
    z_e = torch.randn(10, 6, generator=g, dtype=torch.float64).requires_grad_(True)
    z_x = torch.randn(10, 6, generator=g, dtype=torch.float64).requires_grad_(True)
    labels = torch.tensor([0, 1, 1, 0, 0, 1, 0, 0, 1, 0])
    loss = ahnp_supcma(z_e, z_x, labels, 0.1, k=0.2)
    loss.backward()
    for r, shard in enumerate((slice(0, 6), slice(6, 10))):
        assert got[r]["loss"].item() == pytest.approx(loss.item(), abs=1e-10)
        torch.testing.assert_close(got[r]["ge"] / 2, z_e.grad[shard])
        torch.testing.assert_close(got[r]["gx"] / 2, z_x.grad[shard])
