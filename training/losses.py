"""Contrastive losses of the CroMoTEX method (METHOD.md "Losses", paper §3.1-3.2).

Every loss takes projections `z` float `[B, D]` (any float dtype; L2-normalised
here and computed in float32 -- float64 inputs in float64 -- so bf16 / fp16
inputs are safe at tau = 0.01) and returns a scalar: the mean over anchors of the symmetric loss,
`0.5 * mean_i L^{e,x}_i + 0.5 * mean_i L^{x,e}_i`.

Notation (one direction; the other swaps the modalities): `s_{i,a} =
<z^e_i, z^x_a> / tau`; `A(i)` = every sample of the other modality in the
batch, the within-sample pair `a = i` included (as in CLIP); `P(i)` = every
sample with the anchor's label, `i` included.

- CMA (Eq. 1):     `L_i = -log( exp(s_ii) / sum_{a in A(i)} exp(s_ia) )`.
- SupCMA (Eq. 2):  `L_i = -1/|P(i)| sum_{p in P(i)} log( exp(s_ip) / sum_{a in A(i)} exp(s_ia) )`.
- AHNP-SupCMA (Eq. 3):
  `L_i = -1/|P(i)| sum_{p in P(i)} log( (1 + beta 1[p=i]) exp(s_ip) / sum_{a in A(i)} w_ia exp(s_ia) )`.

Choices where the paper is loose (documented, tested):
- Hardness weights `w_ia` are weights, not part of the graph: they are computed
  from the detached cosine similarities.
- They apply to every term of the denominator, the within-sample pair and the
  other same-label samples included (the paper ranks "candidates"; so does the
  authors' code). With `topk`, the within-sample pair therefore gets `alpha`
  whenever it is among the anchor's top-k most similar candidates.
- `topk`: `alpha` for the `round(k * M)` most similar of the anchor's `M`
  candidates (ties broken by `torch.topk`), 1 otherwise.
- `linear`: `w = 1 + (alpha - 1) (c - c_min) / (c_max - c_min)`, min-max of
  the cosine similarity `c` over the anchor's candidates (all 1 if they are equal).
- `exp`: `w = 1 + exp(alpha * c)` with `c` the cosine similarity in [-1, 1]
  (not divided by tau: `exp(alpha * s)` would overflow at tau = 0.01).
- beta: `beta_mode="log_weight"` (default since issue 18) weights the
  within-sample term of the sum over positives by `(1 + beta)` and normalises
  by `|P(i)| + beta`:
  `L_i = -1/(|P(i)| + beta) sum_{p in P(i)} (1 + beta 1[p=i]) log( exp(s_ip) / sum_a w_ia exp(s_ia) )`.
  This is the reading in which beta does what Table 3 studies (the weight of
  the within-sample pair against the other same-label pairs), and what the
  authors' code does (`label_mask.fill_diagonal_(3.0)`).
  `beta_mode="equation"` (selectable, e.g. for the ablation) puts `(1 + beta)`
  inside the log of the numerator as Eq. 3 is printed. Measured (issue 18,
  `tests/training/test_losses.py::test_beta_gradient_by_mode`): there it only
  adds the constant `-log(1 + beta) / |P(i)|` to each anchor's loss, so the
  gradient is identical for beta = 0, 2, 3 and 100 -- beta would change nothing
  that is trained. With `log_weight` the gradient differs for every pair of them.
"""

from __future__ import annotations

import logging
import math

import torch
import torch.distributed as dist
import torch.nn.functional as F

log = logging.getLogger(__name__)

WEIGHTINGS: tuple[str, ...] = ("topk", "linear", "exp")
BETA_MODES: tuple[str, ...] = ("log_weight", "equation")


def _check_pair(z_a: torch.Tensor, z_b: torch.Tensor) -> None:
    if z_a.dim() != 2 or z_a.shape != z_b.shape:
        raise ValueError(f"expected two [B, D] tensors of equal shape, got "
                         f"{list(z_a.shape)} and {list(z_b.shape)}")
    if z_a.shape[0] < 1:
        raise ValueError("empty batch")


def _upcast(z: torch.Tensor) -> torch.Tensor:
    """float32 for half / bf16 / float32 inputs, float64 stays float64."""
    return z.to(torch.promote_types(z.dtype, torch.float32))


def _cosine(z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
    """Cosine similarities `[B, B]` (float32, or float64 for float64 inputs)."""
    return F.normalize(_upcast(z_a), dim=1) @ F.normalize(_upcast(z_b), dim=1).T


def _direction(logits: torch.Tensor, positives: torch.Tensor,
               log_weights: torch.Tensor | None = None,
               log_numerator_bonus: float = 0.0,
               term_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Per-anchor SupCon-style loss for one direction, float32 `[N]`.

    logits `[N, M]` (s_ia), positives bool `[N, M]` (P(i)), log_weights `[N, M]`
    (log w_ia in the denominator), log_numerator_bonus added to the log of the
    within-sample (diagonal) numerator, term_weights `[N, M]` weights of each
    positive's log term (normalised by their sum per anchor).
    """
    denom_logits = logits if log_weights is None else logits + log_weights
    log_denominator = torch.logsumexp(denom_logits, dim=1, keepdim=True)      # [N, 1]
    log_prob = logits - log_denominator                                         # [N, M]
    if log_numerator_bonus:
        eye = torch.eye(*logits.shape, dtype=torch.bool, device=logits.device)
        log_prob = log_prob + eye * log_numerator_bonus
    weights = positives.to(log_prob.dtype)
    if term_weights is not None:
        weights = weights * term_weights
    return -(torch.where(positives, log_prob, 0.0) * weights).sum(1) / weights.sum(1)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> torch.Tensor:
    """SimCLR NT-Xent on two views `z1`, `z2` `[B, D]`: each of the 2B samples is an
    anchor whose positive is its other view and whose denominator holds the 2B - 1
    other samples (itself excluded). Returns the mean over the 2B anchors."""
    _check_pair(z1, z2)
    b = z1.shape[0]
    z = F.normalize(_upcast(torch.cat([z1, z2])), dim=1)
    logits = (z @ z.T) / tau
    logits = logits.masked_fill(torch.eye(2 * b, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)
    return F.cross_entropy(logits, target)


def cma(z_ecg: torch.Tensor, z_cxr: torch.Tensor, tau: float) -> torch.Tensor:
    """Cross-modal alignment, Eq. 1: symmetric InfoNCE (CLIP) between `[B, D]` projections."""
    _check_pair(z_ecg, z_cxr)
    logits = _cosine(z_ecg, z_cxr) / tau
    eye = torch.eye(logits.shape[0], dtype=torch.bool, device=logits.device)
    return 0.5 * _direction(logits, eye).mean() + 0.5 * _direction(logits.T, eye).mean()


def _label_mask(labels: torch.Tensor, b: int) -> torch.Tensor:
    labels = labels.reshape(-1)
    if labels.shape[0] != b:
        raise ValueError(f"labels has {labels.shape[0]} entries for a batch of {b}")
    return labels[:, None] == labels[None, :]


def supcma(z_ecg: torch.Tensor, z_cxr: torch.Tensor, labels: torch.Tensor,
           tau: float) -> torch.Tensor:
    """Supervised CMA, Eq. 2: positives of anchor i are all cross-modal samples
    with label `labels[i]` (i included). `labels` any dtype `[B]`."""
    _check_pair(z_ecg, z_cxr)
    logits = _cosine(z_ecg, z_cxr) / tau
    pos = _label_mask(labels.to(logits.device), logits.shape[0])
    return 0.5 * _direction(logits, pos).mean() + 0.5 * _direction(logits.T, pos.T).mean()


def hardness_weights(cos: torch.Tensor, weighting: str, alpha: float, k: float) -> torch.Tensor:
    """Weights `w_ia` `[N, M]` (dtype of `cos`) of the denominator terms from cosine
    similarities `cos` `[N, M]` (rows = anchors), computed without gradient."""
    cos = cos.detach()
    n_cand = cos.shape[1]
    if weighting == "topk":
        n_top = min(n_cand, max(0, int(math.floor(k * n_cand + 0.5))))
        w = torch.ones_like(cos)
        if n_top:
            idx = torch.topk(cos, n_top, dim=1).indices
            w.scatter_(1, idx, float(alpha))
        return w
    if weighting == "linear":
        lo = cos.min(dim=1, keepdim=True).values
        hi = cos.max(dim=1, keepdim=True).values
        span = hi - lo
        frac = torch.where(span > 0, (cos - lo) / span.clamp_min(1e-12), torch.zeros_like(cos))
        return 1.0 + (alpha - 1.0) * frac
    if weighting == "exp":
        return 1.0 + torch.exp(alpha * cos)
    raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")


def ahnp_supcma(z_ecg: torch.Tensor, z_cxr: torch.Tensor, labels: torch.Tensor, tau: float,
                weighting: str = "topk", alpha: float = 4.5, beta: float = 2.0,
                k: float = 0.075, beta_mode: str = "log_weight") -> torch.Tensor:
    """AHNP-SupCMA, Eq. 3 (see the module docstring for every choice).

    Args:
        z_ecg, z_cxr: projections `[B, D]`.
        labels: `[B]` class labels.
        tau: temperature (paper 0.01).
        weighting: "topk", "linear" or "exp".
        alpha: hard-negative weight (topk: the weight; linear: the maximum; exp: the rate).
        beta: extra weight of the within-sample positive pair.
        k: fraction of the anchor's candidates counted as hard (topk only).
        beta_mode: "log_weight" (default: beta weights the within-sample term, as the
            authors' code) or "equation" (Eq. 3 as printed: beta changes no gradient).
    """
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    if beta_mode not in BETA_MODES:
        raise ValueError(f"beta_mode must be one of {BETA_MODES}, got {beta_mode!r}")
    if beta <= -1.0:
        raise ValueError(f"beta must be > -1, got {beta}")
    _check_pair(z_ecg, z_cxr)
    cos = _cosine(z_ecg, z_cxr)
    logits = cos / tau
    pos = _label_mask(labels.to(logits.device), logits.shape[0])
    total = logits.new_zeros(())
    for c, l, p in ((cos, logits, pos), (cos.T, logits.T, pos.T)):
        log_w = torch.log(hardness_weights(c, weighting, alpha, k))
        if beta_mode == "equation":
            per_anchor = _direction(l, p, log_w, log_numerator_bonus=math.log1p(beta))
        else:
            eye = torch.eye(*l.shape, dtype=l.dtype, device=l.device)
            per_anchor = _direction(l, p, log_w, term_weights=1.0 + beta * eye)
        total = total + 0.5 * per_anchor.mean()
    return total


def gather_with_grad(z: torch.Tensor) -> torch.Tensor:
    """Concatenate `z` `[b_r, ...]` of every DistributedDataParallel rank along dim 0,
    in rank order, keeping the autograd graph of this rank's own shard (the other
    shards are constants here; their ranks differentiate their own). Shards may
    differ in size. A no-op when torch.distributed is not initialised or has one rank.

    With DDP's gradient averaging, each rank computing the global-batch loss on
    the gathered tensors yields `1 / world_size` of that loss's gradient
    (open_clip's default); Adam/AdamW are insensitive to this scale, gradient
    clipping thresholds are not: multiply the loss by `world_size` for the
    exact single-process gradient.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return z
    world, rank = dist.get_world_size(), dist.get_rank()
    size = torch.tensor([z.shape[0]], device=z.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    n_max = int(max(s.item() for s in sizes))
    padded = z.detach()
    if z.shape[0] < n_max:
        pad = z.new_zeros((n_max - z.shape[0], *z.shape[1:]))
        padded = torch.cat([padded, pad])
    shards = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(shards, padded.contiguous())
    parts = [shards[r][: int(sizes[r].item())] for r in range(world)]
    parts[rank] = z
    return torch.cat(parts)
