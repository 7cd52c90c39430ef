"""Networks: shapes, parameter counts (closed form), ONNX export, TorchXRayVision layout."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from engine.errors import MissingFileError, UnsupportedFormatError
from training.models import (XRV_PATHOLOGIES, DenseNet121, EcgClassifier, EcgEncoder,
                             MlpClassifier, ProjectionHead, count_parameters, load_xrv_state_dict)


def ecg_encoder_parameters(ff: int, width: int = 256, depth: int = 4) -> int:
    """Closed form of the paper's ECG encoder (Table 3) parameter count."""
    conv1 = 12 * 128 * 5 + 128          # Conv1d(12->128, k5) weight + bias
    bn1 = 2 * 128                       # BatchNorm1d affine
    conv2 = 128 * width * 5 + width
    bn2 = 2 * width
    cls, pos = width, 197 * width       # CLS token, 196 tokens + CLS positions
    attention = 3 * width * width + 3 * width + width * width + width   # in_proj + out_proj
    feed_forward = width * ff + ff + ff * width + width
    norms = 2 * 2 * width
    return conv1 + bn1 + conv2 + bn2 + cls + pos + depth * (attention + feed_forward + norms)


@pytest.mark.parametrize("ff, expected", [(2048, 5_483_648), (512, 2_331_776), (256, 1_806_464)])
def test_ecg_encoder_parameter_count(ff, expected):
    assert ecg_encoder_parameters(ff) == expected
    assert count_parameters(EcgEncoder(ff_dim=ff)) == expected


def test_head_parameter_counts():
    # 3 hidden Linear(256) + output Linear(256 -> 1)
    assert count_parameters(MlpClassifier()) == 3 * (256 * 256 + 256) + 257
    assert sum(isinstance(m, nn.Linear) for m in MlpClassifier().modules()) == 4
    assert count_parameters(ProjectionHead(1024, 128)) == 1024 * 128 + 128


def test_densenet121_parameter_count():
    # torchvision's densenet121 (3 channels, 1000 classes) has 7,978,856 parameters;
    # 1 input channel removes 2 * 64 * 7 * 7 conv0 weights, and the head is 1025 per class.
    features = 7_978_856 - 2 * 64 * 7 * 7 - 1025 * 1000
    assert features == 6_947_584
    assert count_parameters(DenseNet121(num_classes=1)) == features + 1025
    assert count_parameters(DenseNet121(num_classes=18)) == features + 18 * 1025


def test_ecg_encoder_shapes_and_pooling_over_all_tokens():
    torch.manual_seed(0)
    enc = EcgEncoder(ff_dim=256).eval()
    x = torch.randn(3, 12, 1000)
    with torch.no_grad():
        tokens = enc.tokens(x)
        emb = enc(x)
    assert tokens.shape == (3, 197, 256) and emb.shape == (3, 256)
    torch.testing.assert_close(emb, tokens.mean(dim=1))      # CLS token included
    assert enc.patch_embed(x).shape == (3, 256, 196)
    layer = enc.transformer.layers[0]
    assert layer.self_attn.num_heads == 8 and layer.linear1.out_features == 256
    assert len(enc.transformer.layers) == 4 and layer.activation_relu_or_gelu == 2  # GELU
    with pytest.raises(ValueError):
        enc(torch.randn(3, 12, 999))


def test_ecg_classifier_trains():
    torch.manual_seed(0)
    model = EcgClassifier(EcgEncoder(ff_dim=256), MlpClassifier()).train()
    logit, emb = model(torch.randn(4, 12, 1000))
    assert logit.shape == (4, 1) and emb.shape == (4, 256)
    logit.sum().backward()
    assert model.encoder.patch_embed[0].weight.grad.abs().sum() > 0
    assert model.encoder.pos_embed.grad.abs().sum() > 0


@pytest.mark.parametrize("dynamo", [True, False])
def test_ecg_classifier_onnx_dynamic_batch(tmp_path, dynamo):
    torch.manual_seed(0)
    model = EcgClassifier(EcgEncoder(ff_dim=256), MlpClassifier()).eval()
    path = tmp_path / "ecg.onnx"
    torch.onnx.export(model, (torch.randn(2, 12, 1000),), str(path), input_names=["ecg"],
                      output_names=["logit", "embedding"], dynamo=dynamo,
                      dynamic_axes={"ecg": {0: "batch"}, "logit": {0: "batch"},
                                    "embedding": {0: "batch"}})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["ecg"]
    assert [o.name for o in session.get_outputs()] == ["logit", "embedding"]
    for batch in (1, 5):
        x = torch.randn(batch, 12, 1000)
        logit, emb = session.run(None, {"ecg": x.numpy()})
        with torch.no_grad():
            ref_logit, ref_emb = model(x)
        assert logit.shape == (batch, 1) and emb.shape == (batch, 256)
        assert np.abs(logit - ref_logit.numpy()).max() <= 1e-4
        assert np.abs(emb - ref_emb.numpy()).max() <= 1e-4


# ------------------------------------------------------------------ DenseNet-121

def xrv_state_dict_layout(num_classes: int = 18, bn_counter: bool = True) -> dict[str, tuple]:
    """TorchXRayVision DenseNet-121 state-dict keys and shapes, written from its
    definition (growth 32, blocks 6/12/24/16, bottleneck 128, 64 initial features)."""
    def bn(prefix: str, c: int) -> dict[str, tuple]:
        d = {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
             f"{prefix}.running_var": (c,)}
        if bn_counter:
            d[f"{prefix}.num_batches_tracked"] = ()
        return d

    keys: dict[str, tuple] = {"features.conv0.weight": (64, 1, 7, 7)}
    keys |= bn("features.norm0", 64)
    channels = 64
    for block, layers in zip((1, 2, 3, 4), (6, 12, 24, 16)):
        for layer in range(1, layers + 1):
            p = f"features.denseblock{block}.denselayer{layer}"
            c_in = channels + (layer - 1) * 32
            keys |= bn(f"{p}.norm1", c_in)
            keys[f"{p}.conv1.weight"] = (128, c_in, 1, 1)
            keys |= bn(f"{p}.norm2", 128)
            keys[f"{p}.conv2.weight"] = (32, 128, 3, 3)
        channels += layers * 32
        if block < 4:
            keys |= bn(f"features.transition{block}.norm", channels)
            keys[f"features.transition{block}.conv.weight"] = (channels // 2, channels, 1, 1)
            channels //= 2
    keys |= bn("features.norm5", channels)
    keys["classifier.weight"] = (num_classes, 1024)
    keys["classifier.bias"] = (num_classes,)
    return keys


def test_densenet_names_match_torchxrayvision():
    layout = xrv_state_dict_layout(num_classes=1)
    ours = {k: tuple(v.shape) for k, v in DenseNet121(num_classes=1).state_dict().items()}
    assert ours == layout
    assert len(layout) == 727          # 58 dense layers x 12 + 3 transitions x 6 + 11
    # a few hand-checked entries
    assert layout["features.denseblock1.denselayer1.conv1.weight"] == (128, 64, 1, 1)
    assert layout["features.denseblock4.denselayer16.norm1.weight"] == (992,)
    assert layout["features.transition3.conv.weight"] == (512, 1024, 1, 1)
    assert layout["features.norm5.running_var"] == (1024,)


def test_densenet_forward_and_features2():
    model = DenseNet121(num_classes=3).eval()
    x = torch.rand(2, 1, 224, 224) * 2048 - 1024
    with torch.no_grad():
        feats = model.features2(x)
        logits = model(x)
    assert feats.shape == (2, 1024) and logits.shape == (2, 3)
    assert (feats >= 0).all()
    torch.testing.assert_close(logits, model.classifier(feats))


def _fake_xrv_state(bn_counter: bool = True) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    state = {}
    for key, shape in xrv_state_dict_layout(18, bn_counter).items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(1000)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        else:
            state[key] = torch.randn(shape, generator=g)
    state["op_threshs"] = torch.rand(18, generator=g)      # xrv's calibration buffer
    return state


@pytest.mark.parametrize("bn_counter", [True, False])
def test_load_xrv_state_dict_from_file(tmp_path, bn_counter):
    state = _fake_xrv_state(bn_counter)
    path = tmp_path / "xrv-densenet121-res224-mimic_ch.pt"
    torch.save(state, path)
    model = DenseNet121(num_classes=2)
    fresh_row = model.classifier.weight[1].detach().clone()
    copied = load_xrv_state_dict(model, path, ["Cardiomegaly", None])
    assert copied == ["Cardiomegaly"]
    loaded = model.state_dict()
    for key in ("features.conv0.weight", "features.denseblock3.denselayer24.conv2.weight",
                "features.transition2.norm.running_mean", "features.norm5.bias"):
        torch.testing.assert_close(loaded[key], state[key])
    row = XRV_PATHOLOGIES.index("Cardiomegaly")
    assert row == 10
    torch.testing.assert_close(model.classifier.weight[0], state["classifier.weight"][row])
    torch.testing.assert_close(model.classifier.bias[0], state["classifier.bias"][row])
    torch.testing.assert_close(model.classifier.weight[1], fresh_row)


def test_load_xrv_state_dict_rejects_other_layouts(tmp_path):
    model = DenseNet121(num_classes=1)
    with pytest.raises(MissingFileError):
        load_xrv_state_dict(model, tmp_path / "absent.pt")
    three_channel = _fake_xrv_state()
    three_channel["features.conv0.weight"] = torch.zeros(64, 3, 7, 7)
    with pytest.raises(UnsupportedFormatError, match="conv0"):
        load_xrv_state_dict(model, three_channel)
    missing = _fake_xrv_state()
    del missing["features.denseblock2.denselayer3.conv1.weight"]
    with pytest.raises(UnsupportedFormatError, match="missing 1"):
        load_xrv_state_dict(model, missing)
    pickled = tmp_path / "model.pt"
    torch.save(nn.Linear(2, 2), pickled)                  # a whole pickled module
    with pytest.raises(UnsupportedFormatError, match="state_dict"):
        load_xrv_state_dict(model, pickled)
    with pytest.raises(ValueError, match="TorchXRayVision output"):
        load_xrv_state_dict(model, _fake_xrv_state(), ["Heart Failure"])
