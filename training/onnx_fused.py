"""The ECG classifier written as an ONNX graph of onnxruntime's fused CPU operators.

`torch.onnx.export` traces each `nn.TransformerEncoderLayer` into ~40 primitive nodes (one
in-projection MatMul, Split, Reshape / Transpose per head layout, two batched MatMuls, Softmax,
LayerNorm...). onnxruntime's transformer optimiser does not recognise that attention pattern
(docs/results/ort_optimise.md), so every run pays for the transposes and unfused matmuls, and
dynamic int8 quantisation leaves the attention in fp32. This module writes the same network
directly, from the module's weights, with the `com.microsoft` contrib operators onnxruntime's
CPU provider implements:

- `Attention` (packed Q/K/V in-projection + scaled dot-product attention over `heads` heads, one
  kernel; `quantize_dynamic` turns it into `QAttention`, an int8 in-projection);
- `BiasGelu` (feed-forward bias + exact erf GELU), `LayerNormalization` (opset 17);
- the patch convolutions as MatMuls over patches (token-major, so no Transpose after them; left
  in fp32 by int8 quantisation, see `INT8_EXCLUDE`; `ConvInteger` measured slower than fp32);
- the CLS token and the positional embedding as one `Pad` + `Add` (row 0 of the added table is
  `cls + pos[0]`, computed once here exactly as torch computes it per run);
- the residual stream 2-D `[N*T, width]`, so that onnxruntime does not fuse Add + LayerNorm
  into its `SkipLayerNormalization`, measured ~4x slower on this model (ORT 1.32 CPU).

Measured on the shipped weights (docs/results/inference_speed.md), per model, one thread:
11.5 ms instead of 13.0 ms fp32, 6.0 ms instead of 8.1 ms int8; outputs within 1e-7 (fp32).

Shapes: input `ecg` float32 `[N, 12, 1000]` -> `logit` float32 `[N, n_out]`, `embedding`
float32 `[N, width]` (width 256), dynamic N, the same names as the traced export. Only the
architecture of `training.models.ecg` is supported (post-norm, batch-first, GELU, biases on);
`supported(model)` says why not otherwise. The result is checked against torch by
`training.export` like the traced graph (same `PARITY_ATOL`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

if TYPE_CHECKING:
    import onnx

log = logging.getLogger(__name__)

#: Operator set of the default domain, and of Microsoft's contrib domain.
OPSET: int = 17
MS_DOMAIN: str = "com.microsoft"
#: `producer_name` of the models written here (`is_fused`).
PRODUCER: str = "cromotex.training.onnx_fused"
#: Op types dynamic int8 quantisation converts in a fused graph (Attention -> QAttention).
INT8_OP_TYPES: tuple[str, ...] = ("MatMul", "Gemm", "Attention")
#: Nodes left in fp32 by int8 quantisation: the patch convolutions. Quantising the second one
#: (one uint8 scale for all 196 x 640 im2col values of a run) multiplied the int8 drift by ~2-4
#: on the shipped weights (max |prob| 1.3e-3 vs 3.0e-4); the first sees the raw ECG (3 MFLOP).
INT8_EXCLUDE: tuple[str, ...] = ("conv1.matmul", "conv2.matmul")
#: Op types the fused graph must contain (asserted by tests).
FUSED_OPS: tuple[str, ...] = ("Attention", "BiasGelu", "LayerNormalization")


def supported(model: nn.Module) -> str | None:
    """None if `model` is an `EcgClassifier` this module can write; else the reason it cannot."""
    from training.models.ecg import EcgClassifier, EcgEncoder, MlpClassifier
    if not isinstance(model, EcgClassifier):
        return f"not an EcgClassifier ({type(model).__name__})"
    enc, head = model.encoder, model.classifier
    if type(enc) is not EcgEncoder or type(head) is not MlpClassifier:
        return "encoder or classifier of another class"
    seq = list(enc.patch_embed)
    kinds = [nn.Conv1d, nn.ReLU, nn.BatchNorm1d, nn.Conv1d, nn.ReLU, nn.BatchNorm1d]
    if len(seq) != len(kinds) or not all(type(m) is k for m, k in zip(seq, kinds)):
        return "patch embedding is not Conv-ReLU-BN x2"
    for conv in (seq[0], seq[3]):
        if conv.bias is None or conv.padding != (0,) or conv.dilation != (1,) or conv.groups != 1:
            return "patch convolution with padding, dilation, groups or no bias"
    for bn in (seq[2], seq[5]):
        if not bn.track_running_stats or bn.running_mean is None or not bn.affine:
            return "batch norm without running statistics or affine parameters"
    for layer in enc.transformer.layers:
        att = layer.self_attn
        if layer.norm_first or not att.batch_first or not att._qkv_same_embed_dim:
            return "transformer layer is pre-norm, not batch-first or has separate q/k/v weights"
        if att.in_proj_bias is None or att.out_proj.bias is None or att.bias_k is not None or att.add_zero_attn:
            return "attention without biases or with bias_k / zero attention"
        if layer.activation is not F.gelu or layer.linear1.bias is None or layer.linear2.bias is None:
            return "feed-forward activation is not exact GELU, or linear without bias"
    if enc.transformer.norm is not None:
        return "transformer has a final norm"
    for m in head.net:
        if type(m) not in (nn.Linear, nn.ReLU, nn.Dropout):
            return f"classifier layer {type(m).__name__}"
    return None


class _Graph:
    """Collects nodes and float32 initialisers with unique names."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.inits: list = []

    def const(self, name: str, value: np.ndarray | torch.Tensor, dtype=np.float32) -> str:
        from onnx import numpy_helper
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=dtype), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, domain: str = "", **attrs) -> str:
        from onnx import helper
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, domain=domain, **attrs))
        return output


def _t(w: torch.Tensor) -> np.ndarray:
    """A Linear weight `[out, in]` as a MatMul right operand `[in, out]`."""
    return w.detach().cpu().numpy().T


@torch.no_grad()
def ecg_graph(model: nn.Module) -> "onnx.ModelProto":
    """The fused ONNX model of an `EcgClassifier` in eval mode (no metadata).

    Layout: tokens are kept row-major (`[N*T, width]` between the attention kernels); the patch
    convolutions are MatMuls over patches (im2col by Reshape / Slice / Concat), so no Transpose
    is left but one on the raw input.

    Raises:
        ValueError: the model is not of the supported architecture (`supported`).
    """
    import onnx
    from onnx import TensorProto, helper
    from engine.constants import ECG_SAMPLES, LEADS
    why = supported(model)
    if why is not None:
        raise ValueError(f"cannot write a fused graph: {why}")
    model = model.eval()
    enc, head = model.encoder, model.classifier
    conv1, _, bn1, conv2, _, bn2 = list(enc.patch_embed)
    g = _Graph()
    i64 = np.int64

    def linear(name: str, x: str, w: torch.Tensor | np.ndarray, b: torch.Tensor) -> str:
        """x @ w + b (w `[in, out]`)."""
        x = g.node("MatMul", [x, g.const(f"{name}.weight", w)], f"{name}.matmul")
        return g.node("Add", [x, g.const(f"{name}.bias", b)], name)

    def relu_bn(name: str, x: str, m: nn.BatchNorm1d) -> str:
        """BatchNorm1d (eval) of ReLU(x) over the last axis, as one scale and one shift."""
        scale = m.weight / torch.sqrt(m.running_var + m.eps)
        x = g.node("Mul", [g.node("Relu", [x], f"{name}.relu"), g.const(f"{name}.scale", scale)], f"{name}.mul")
        return g.node("Add", [x, g.const(f"{name}.shift", m.bias - m.running_mean * scale)], name)

    # Conv1d(12 -> C1, k, stride k): non-overlapping patches [N, T1, 12 * k] @ [12 * k, C1]
    k1, k2 = conv1.kernel_size[0], conv2.kernel_size[0]
    if conv1.stride[0] != k1 or conv2.stride[0] != 1 or ECG_SAMPLES % k1:
        raise ValueError("cannot write a fused graph: patch convolution strides other than (k, 1)")
    t1 = ECG_SAMPLES // k1
    x = g.node("Reshape", ["ecg", g.const("patch.shape", np.array([-1, len(LEADS), t1, k1]), i64)], "patch.split")
    x = g.node("Transpose", [x], "patch.t", perm=[0, 2, 1, 3])                    # [N, T1, 12, k]
    x = g.node("Reshape", [x, g.const("patch.shape2", np.array([0, t1, len(LEADS) * k1]), i64)], "patches")
    x = linear("conv1", x, conv1.weight.reshape(conv1.out_channels, -1).T, conv1.bias)  # (lead, tap) order
    x = relu_bn("bn1", x, bn1)                                                    # [N, T1, C1]
    # Conv1d(C1 -> width, k, stride 1): im2col by k shifted slices side by side, (tap, channel) order
    t2 = t1 - k2 + 1
    taps = [g.node("Slice", [x, g.const(f"im2col.start{k}", np.array([k]), i64),
                             g.const(f"im2col.end{k}", np.array([k + t2]), i64),
                             g.const(f"im2col.axis{k}", np.array([1]), i64)], f"im2col.tap{k}") for k in range(k2)]
    x = g.node("Concat", taps, "im2col", axis=2)                                  # [N, T2, k * C1]
    x = linear("conv2", x, conv2.weight.permute(2, 1, 0).reshape(-1, conv2.out_channels), conv2.bias)
    x = relu_bn("bn2", x, bn2)                                                    # [N, T2, width]
    # cat([cls, t]) + pos == pad(t, one zero row in front) + table, table[0] = cls + pos[0]
    table = enc.pos_embed.detach().clone()
    table[:, :1] = enc.cls_token.detach() + enc.pos_embed.detach()[:, :1]
    n_tok, width = table.shape[1], table.shape[2]
    x = g.node("Pad", [x, g.const("pad.pads", np.array([0, 1, 0, 0, 0, 0]), i64)], "tokens.padded")
    x = g.node("Add", [x, g.const("pos_embed_cls", table)], "tokens")             # [N, T, width]
    shape3 = g.const("shape.tokens", np.array([-1, n_tok, width]), i64)
    shape2 = g.const("shape.rows", np.array([-1, width]), i64)
    # The residual stream is kept 2-D: onnxruntime then does not fuse Add + LayerNormalization into
    # SkipLayerNormalization (it fuses 3-D inputs only), whose CPU kernel measured ~4x slower here
    # (0.26 ms a node vs 0.06 ms for the Adds and the LayerNormalization it would replace).
    x = g.node("Reshape", [x, shape2], "tokens.rows")                             # [N*T, width]

    def add_norm(name: str, x: str, y: str, norm: nn.LayerNorm) -> str:
        """LayerNorm(x + y), the post-norm residual."""
        r = g.node("Add", [x, y], f"{name}.residual")
        return g.node("LayerNormalization", [r, g.const(f"{name}.weight", norm.weight),
                                             g.const(f"{name}.bias", norm.bias)],
                      name, axis=-1, epsilon=float(norm.eps))

    for i, layer in enumerate(enc.transformer.layers):
        p, att = f"layer{i}", layer.self_attn
        a = g.node("Reshape", [x, shape3], f"{p}.tokens")
        a = g.node("Attention", [a, g.const(f"{p}.in_proj_weight", _t(att.in_proj_weight)),
                                 g.const(f"{p}.in_proj_bias", att.in_proj_bias)],
                   f"{p}.attention", domain=MS_DOMAIN, num_heads=int(att.num_heads))
        a = g.node("Reshape", [a, shape2], f"{p}.attention.rows")
        x = add_norm(f"{p}.norm1", x, linear(f"{p}.out_proj", a, _t(att.out_proj.weight), att.out_proj.bias),
                     layer.norm1)
        h = g.node("MatMul", [x, g.const(f"{p}.linear1.weight", _t(layer.linear1.weight))], f"{p}.linear1.matmul")
        h = g.node("BiasGelu", [h, g.const(f"{p}.linear1.bias", layer.linear1.bias)], f"{p}.gelu", domain=MS_DOMAIN)
        x = add_norm(f"{p}.norm2", x, linear(f"{p}.linear2", h, _t(layer.linear2.weight), layer.linear2.bias),
                     layer.norm2)

    x = g.node("Reshape", [x, shape3], "encoded")                                # [N, T, width]
    emb = g.node("ReduceMean", [x], "embedding", axes=[1], keepdims=0)           # [N, width], CLS included
    y, linears = emb, [m for m in head.net if isinstance(m, nn.Linear)]
    for j, lin in enumerate(linears):
        y = g.node("Gemm", [y, g.const(f"classifier.{j}.weight", lin.weight), g.const(f"classifier.{j}.bias", lin.bias)],
                   "logit" if j == len(linears) - 1 else f"classifier.{j}.gemm", transB=1)
        if j < len(linears) - 1:
            y = g.node("Relu", [y], f"classifier.{j}.relu")

    n_out = linears[-1].out_features
    graph = helper.make_graph(
        g.nodes, "cromotex_ecg_fused",
        [helper.make_tensor_value_info("ecg", TensorProto.FLOAT, ["N", len(LEADS), ECG_SAMPLES])],
        [helper.make_tensor_value_info("logit", TensorProto.FLOAT, ["N", n_out]),
         helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", width])],
        initializer=g.inits,
        # element types of the intermediate tensors: onnx's shape inference does not know the contrib
        # operators, and the quantiser needs the type of every tensor it quantises
        value_info=[helper.make_tensor_value_info(o, TensorProto.FLOAT, None)
                    for n in g.nodes for o in n.output if o not in ("logit", "embedding")])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS_DOMAIN, 1)],
                          producer_name=PRODUCER)
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def is_fused(model: "onnx.ModelProto") -> bool:
    """Whether `model` was written by `ecg_graph`."""
    return model.producer_name == PRODUCER


def op_counts(model: "onnx.ModelProto") -> dict[str, int]:  # noqa: F821
    """`{op_type: count}` of a model's top-level nodes."""
    out: dict[str, int] = {}
    for n in model.graph.node:
        out[n.op_type] = out.get(n.op_type, 0) + 1
    return out


__all__ = ["ecg_graph", "supported", "is_fused", "op_counts", "FUSED_OPS", "INT8_OP_TYPES", "INT8_EXCLUDE",
           "MS_DOMAIN", "PRODUCER"]
