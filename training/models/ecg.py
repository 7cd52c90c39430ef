"""ECG encoder `f_ecg` and the heads used with it (METHOD.md "Networks").

Shapes: ECG input float32 `[B, 12, 1000]` (leads in `engine.constants.LEADS`
order, 100 Hz, 10 s, per-lead min-max scaled to [-1, 1]); embedding float32
`[B, 256]`.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.constants import ECG_SAMPLES, LEADS

#: Width of the token embedding, the Transformer and the pooled embedding.
EMBED_DIM: int = 256
#: Channels after the first convolution of the patch embedding.
PATCH_HIDDEN: int = 128
#: Convolution kernel size of both patch-embedding convolutions.
PATCH_KERNEL: int = 5
#: Tokens produced from a 1000-sample window: (1000 - 5)//5 + 1 = 200, then 200 - 5 + 1 = 196.
N_TOKENS: int = ((ECG_SAMPLES - PATCH_KERNEL) // PATCH_KERNEL + 1) - PATCH_KERNEL + 1


class EcgEncoder(nn.Module):
    """ECG encoder of the paper (§3.3, Table 3).

    Conv1d(12->128, k5, s5) + ReLU + BatchNorm1d, Conv1d(128->256, k5, s1) +
    ReLU + BatchNorm1d -> 196 tokens of width 256; a learned CLS token is
    prepended and a learned positional embedding (197 positions) added; a
    post-norm `nn.TransformerEncoder` (`depth` blocks, `heads` heads, GELU,
    feed-forward width `ff_dim`, dropout `dropout`); then 1-D adaptive average
    pooling over **all 197 tokens, the CLS token included** (as the authors'
    code does: `AdaptiveAvgPool1d(1)` over the encoder output), giving the
    256-d embedding. No final LayerNorm (post-norm blocks end in one).

    `ff_dim` is not given by the paper; 2048 is PyTorch's default.

    The Transformer is built with `enable_nested_tensor=False` and is called
    without a padding mask, so eval-mode export to ONNX traces the plain
    (non-nested) path.

    Args:
        ff_dim: feed-forward width of each Transformer block.
        width: token / embedding width (256 in the paper).
        depth: number of Transformer blocks (4).
        heads: attention heads (8).
        dropout: dropout inside the Transformer blocks.

    Input `x`: float32 `[B, 12, 1000]`. Output: float32 `[B, width]`.
    """

    def __init__(self, ff_dim: int = 2048, width: int = EMBED_DIM, depth: int = 4,
                 heads: int = 8, dropout: float = 0.1) -> None:
        super().__init__()
        self.ff_dim = ff_dim
        self.width = width
        self.patch_embed = nn.Sequential(
            nn.Conv1d(len(LEADS), PATCH_HIDDEN, kernel_size=PATCH_KERNEL, stride=PATCH_KERNEL),
            nn.ReLU(),
            nn.BatchNorm1d(PATCH_HIDDEN),
            nn.Conv1d(PATCH_HIDDEN, width, kernel_size=PATCH_KERNEL, stride=1),
            nn.ReLU(),
            nn.BatchNorm1d(width),
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(torch.zeros(1, N_TOKENS + 1, width))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        layer = nn.TransformerEncoderLayer(
            d_model=width, nhead=heads, dim_feedforward=ff_dim, dropout=dropout,
            activation="gelu", batch_first=True, norm_first=False)
        self.transformer = nn.TransformerEncoder(layer, num_layers=depth,
                                                 enable_nested_tensor=False)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder output before pooling: float `[B, 197, width]` (index 0 = CLS)."""
        if not torch.jit.is_tracing() and (
                x.dim() != 3 or x.shape[1] != len(LEADS) or x.shape[2] != ECG_SAMPLES):
            raise ValueError(f"EcgEncoder expects [B, {len(LEADS)}, {ECG_SAMPLES}], "
                             f"got {list(x.shape)}")
        t = self.patch_embed(x).transpose(1, 2)              # [B, 196, width]
        cls = self.cls_token.expand(t.shape[0], -1, -1)       # [B, 1, width]
        t = torch.cat([cls, t], dim=1) + self.pos_embed       # [B, 197, width]
        return self.transformer(t)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`x` float `[B, 12, 1000]` -> embedding float `[B, width]`."""
        return self.tokens(x).mean(dim=1)


class MlpClassifier(nn.Module):
    """Classifier head: `n_layers` Linear layers (hidden width `hidden`) with
    ReLU + Dropout between them; `[B, in_dim]` -> logits `[B, n_out]`."""

    def __init__(self, in_dim: int = EMBED_DIM, hidden: int = 256, n_layers: int = 4,
                 dropout: float = 0.1, n_out: int = 1) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        dims = [in_dim] + [hidden] * (n_layers - 1) + [n_out]
        layers: list[nn.Module] = []
        for i in range(n_layers):
            layers.append(nn.Linear(dims[i], dims[i + 1]))
            if i < n_layers - 1:
                layers += [nn.ReLU(), nn.Dropout(dropout)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`x` float `[B, in_dim]` -> logits float `[B, n_out]`."""
        return self.net(x)


class ProjectionHead(nn.Module):
    """Linear projection into the shared space (`g_ecg`, `g_cxr`, SimCLR `h_ecg`):
    `[B, in_dim]` -> `[B, out_dim]`. Not normalised: the losses L2-normalise."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


class EcgClassifier(nn.Module):
    """ECG encoder + classifier as exported: `forward(x)` returns
    `(logit [B, n_out], embedding [B, width])` for `x` float `[B, 12, 1000]`."""

    def __init__(self, encoder: EcgEncoder, classifier: MlpClassifier) -> None:
        super().__init__()
        self.encoder = encoder
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.encoder(x)
        return self.classifier(embedding), embedding
