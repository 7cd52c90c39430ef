"""Networks of the CroMoTEX method (METHOD.md, paper §3.3 and Table 3).

- `EcgEncoder`: conv patch embedding + Transformer, `[B, 12, 1000]` -> `[B, 256]`.
- `MlpClassifier`, `ProjectionHead`, `EcgClassifier`: heads on top of it.
- `DenseNet121`: the chest X-ray teacher, parameter names as TorchXRayVision's
  `xrv.models.DenseNet` so that a site's locally saved MIMIC-CXR weights load
  with `load_xrv_state_dict`.

Import-light: building a network happens only when a class is instantiated.
"""

from __future__ import annotations

from torch import nn

from training.models.densenet import XRV_PATHOLOGIES, DenseNet121, load_xrv_state_dict
from training.models.ecg import EcgClassifier, EcgEncoder, MlpClassifier, ProjectionHead

__all__ = [
    "EcgEncoder", "MlpClassifier", "ProjectionHead", "EcgClassifier",
    "DenseNet121", "load_xrv_state_dict", "XRV_PATHOLOGIES", "count_parameters",
]


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters of `module` (buffers such as BatchNorm running
    statistics are not counted). With `trainable_only`, only those with
    `requires_grad`."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
