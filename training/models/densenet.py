"""DenseNet-121 chest X-ray teacher `f_cxr`, laid out like TorchXRayVision's
`xrv.models.DenseNet` so that its MIMIC-CXR weights, saved locally by a site as
a state dict, load into it (no download happens here).

Layout (torchvision-style DenseNet-BC, growth 32, blocks (6, 12, 24, 16),
bottleneck 4 x growth, 64 initial features, 1 input channel):
`features.conv0`, `features.norm0`, `features.denseblock{b}.denselayer{l}.
{norm1,conv1,norm2,conv2}`, `features.transition{t}.{norm,conv}`,
`features.norm5`, `classifier`. Input float32 `[B, 1, 224, 224]` in
[-1024, 1024] (`engine.constants.CXR_RANGE`).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import MissingFileError, UnsupportedFormatError

log = logging.getLogger(__name__)

#: Output rows of TorchXRayVision's 18-output DenseNet classifiers
#: (`xrv.datasets.default_pathologies`), in row order.
XRV_PATHOLOGIES: tuple[str, ...] = (
    "Atelectasis", "Consolidation", "Infiltration", "Pneumothorax", "Edema",
    "Emphysema", "Fibrosis", "Effusion", "Pneumonia", "Pleural_Thickening",
    "Cardiomegaly", "Nodule", "Mass", "Hernia", "Lung Lesion", "Fracture",
    "Lung Opacity", "Enlarged Cardiomediastinum",
)
#: Our pathology keys (`engine.constants.PATHOLOGIES`) -> TorchXRayVision row names.
XRV_NAME: dict[str, str] = {
    "cardiomegaly": "Cardiomegaly",
    "edema": "Edema",
    "pleural_effusion": "Effusion",
}

GROWTH_RATE: int = 32
BLOCK_CONFIG: tuple[int, ...] = (6, 12, 24, 16)
BN_SIZE: int = 4
INIT_FEATURES: int = 64
#: Width of the pooled embedding (`features2`).
EMBED_DIM: int = 1024


class _DenseLayer(nn.Sequential):
    """BN-ReLU-Conv1x1-BN-ReLU-Conv3x3; returns its `growth` new channels."""

    def __init__(self, in_features: int, growth: int, bn_size: int) -> None:
        super().__init__()
        self.add_module("norm1", nn.BatchNorm2d(in_features))
        self.add_module("relu1", nn.ReLU(inplace=True))
        self.add_module("conv1", nn.Conv2d(in_features, bn_size * growth, 1, bias=False))
        self.add_module("norm2", nn.BatchNorm2d(bn_size * growth))
        self.add_module("relu2", nn.ReLU(inplace=True))
        self.add_module("conv2", nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, super().forward(x)], dim=1)


class _DenseBlock(nn.Sequential):
    def __init__(self, n_layers: int, in_features: int, growth: int, bn_size: int) -> None:
        super().__init__()
        for i in range(n_layers):
            self.add_module(f"denselayer{i + 1}",
                            _DenseLayer(in_features + i * growth, growth, bn_size))


class _Transition(nn.Sequential):
    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.add_module("norm", nn.BatchNorm2d(in_features))
        self.add_module("relu", nn.ReLU(inplace=True))
        self.add_module("conv", nn.Conv2d(in_features, out_features, 1, bias=False))
        self.add_module("pool", nn.AvgPool2d(kernel_size=2, stride=2))


class DenseNet121(nn.Module):
    """DenseNet-121 with TorchXRayVision's parameter names.

    Args:
        num_classes: rows of the linear classifier (1 per pathology head).
        in_channels: image channels (1 for TorchXRayVision weights).

    `features2(x)`: float `[B, in_channels, H, W]` -> pooled float `[B, 1024]`
    (ReLU then global average pooling, as xrv). `forward(x)` -> logits
    `[B, num_classes]` (no sigmoid, no xrv `op_threshs` calibration).
    """

    def __init__(self, num_classes: int, in_channels: int = 1) -> None:
        super().__init__()
        self.num_classes = num_classes
        feats: OrderedDict[str, nn.Module] = OrderedDict([
            ("conv0", nn.Conv2d(in_channels, INIT_FEATURES, 7, stride=2, padding=3, bias=False)),
            ("norm0", nn.BatchNorm2d(INIT_FEATURES)),
            ("relu0", nn.ReLU(inplace=True)),
            ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
        ])
        n = INIT_FEATURES
        for b, n_layers in enumerate(BLOCK_CONFIG, start=1):
            feats[f"denseblock{b}"] = _DenseBlock(n_layers, n, GROWTH_RATE, BN_SIZE)
            n += n_layers * GROWTH_RATE
            if b < len(BLOCK_CONFIG):
                feats[f"transition{b}"] = _Transition(n, n // 2)
                n //= 2
        feats["norm5"] = nn.BatchNorm2d(n)
        self.features = nn.Sequential(feats)
        self.classifier = nn.Linear(n, num_classes)
        for m in self.modules():  # torchvision / xrv initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def features2(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled embedding float `[B, 1024]` of images float `[B, C, H, W]`."""
        f = self.features(x)
        return F.adaptive_avg_pool2d(F.relu(f), (1, 1)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits float `[B, num_classes]`."""
        return self.classifier(self.features2(x))


def _read_state_dict(path_or_state_dict: str | Path | Mapping[str, torch.Tensor]
                     ) -> dict[str, torch.Tensor]:
    if isinstance(path_or_state_dict, Mapping):
        return dict(path_or_state_dict)
    path = Path(path_or_state_dict)
    if not path.is_file():
        raise MissingFileError(f"TorchXRayVision weights not found at {path}. Save them on a "
                               "machine with torchxrayvision with `torch.save(model.state_dict(), "
                               "path)` and copy the file here.")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickled whole model, or not a torch file
        raise UnsupportedFormatError(
            f"{path} is not a plain state dict ({type(exc).__name__}: {exc}). TorchXRayVision "
            "ships pickled models; load one with torchxrayvision and save "
            "`model.state_dict()` instead.") from exc
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise UnsupportedFormatError(f"{path} holds a {type(obj).__name__}, not a state dict.")
    return dict(obj)


def load_xrv_state_dict(model: DenseNet121,
                        path_or_state_dict: str | Path | Mapping[str, torch.Tensor],
                        pathologies_map: Sequence[str | None] | None = None) -> list[str]:
    """Load a TorchXRayVision DenseNet-121 state dict into `model`.

    The backbone (`features.*`) is loaded strictly: every xrv key must be present
    with our shape, and nothing else (BatchNorm `num_batches_tracked`, absent from
    weights saved by old PyTorch, is tolerated; xrv's `op_threshs` calibration
    buffer is ignored). A `module.` prefix (DataParallel) is stripped.

    Args:
        model: the `DenseNet121` to fill in place.
        path_or_state_dict: a `.pt` file of `xrv_model.state_dict()`, or the mapping.
        pathologies_map: for each of `model`'s classifier rows, the xrv output
            name (one of `XRV_PATHOLOGIES` or of the file's own rows) to copy
            that row from, or None to keep the row's fresh initialisation.
            None: leave the whole head as initialised.

    Returns:
        The xrv row names copied, in our row order (None rows omitted).

    Raises:
        MissingFileError: the file does not exist.
        UnsupportedFormatError: not a state dict, or not this layout (the
            message lists missing / unexpected / mis-shaped keys).
    """
    state = {k.removeprefix("module."): v for k, v in _read_state_dict(path_or_state_dict).items()}
    ours = model.state_dict()
    backbone = {k: v for k, v in state.items() if k.startswith("features.")}
    want = {k for k in ours if k.startswith("features.")}
    missing = sorted(k for k in want - backbone.keys() if not k.endswith("num_batches_tracked"))
    unexpected = sorted(backbone.keys() - want)
    shapes = sorted(f"{k}: file {tuple(backbone[k].shape)} vs model {tuple(ours[k].shape)}"
                    for k in want & backbone.keys() if backbone[k].shape != ours[k].shape)
    if missing or unexpected or shapes:
        def few(items: list[str]) -> str:
            return ", ".join(items[:5]) + (f" (+{len(items) - 5} more)" if len(items) > 5 else "")
        raise UnsupportedFormatError(
            "The weights are not a TorchXRayVision DenseNet-121 (1-channel) state dict: "
            f"missing {len(missing)} [{few(missing)}], unexpected {len(unexpected)} "
            f"[{few(unexpected)}], wrong shape {len(shapes)} [{few(shapes)}].")
    result = model.load_state_dict(backbone, strict=False)
    bad = [k for k in result.missing_keys
           if k.startswith("features.") and not k.endswith("num_batches_tracked")]
    assert not bad, bad  # guaranteed by the checks above

    copied: list[str] = []
    if pathologies_map is not None:
        if len(pathologies_map) != model.num_classes:
            raise ValueError(f"pathologies_map has {len(pathologies_map)} entries for a head of "
                             f"{model.num_classes} rows")
        if "classifier.weight" not in state or "classifier.bias" not in state:
            raise UnsupportedFormatError("The weights have no `classifier` to take head rows from.")
        w, b = state["classifier.weight"], state["classifier.bias"]
        if w.dim() != 2 or w.shape[1] != model.classifier.in_features or b.shape != w.shape[:1]:
            raise UnsupportedFormatError(f"classifier of shape {tuple(w.shape)} does not fit "
                                         f"{model.classifier.in_features} features.")
        if w.shape[0] != len(XRV_PATHOLOGIES):
            raise UnsupportedFormatError(
                f"classifier has {w.shape[0]} rows, expected the {len(XRV_PATHOLOGIES)} of "
                "XRV_PATHOLOGIES; pass pathologies_map=None to keep a fresh head.")
        with torch.no_grad():
            for row, name in enumerate(pathologies_map):
                if name is None:
                    continue
                if name not in XRV_PATHOLOGIES:
                    raise ValueError(f"{name!r} is not a TorchXRayVision output; "
                                     f"choose from {list(XRV_PATHOLOGIES)}")
                src = XRV_PATHOLOGIES.index(name)
                model.classifier.weight[row].copy_(w[src])
                model.classifier.bias[row].copy_(b[src])
                copied.append(name)
    log.info("loaded TorchXRayVision backbone (%d tensors); head rows from %s",
             len(backbone), copied or "none")
    return copied
