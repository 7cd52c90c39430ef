"""Store the large float32 weights of an ONNX model as float16 (inputs, outputs and
arithmetic stay float32).

Every float32 initializer with at least `min_elements` values is replaced by a
float16 initializer followed by a `Cast` back to float32, so the file is about
half the size while onnxruntime computes exactly as before, on weights rounded
to float16 (relative rounding error <= 2^-11). Used for the CXR teacher of the
demo bundle, whose fp32 DenseNet-121 (~28 MB) would otherwise not fit the bundle
budget; `build` measures the logit drift and the AUROC change it causes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: Initializers smaller than this stay float32 (biases, BatchNorm vectors: negligible size).
MIN_ELEMENTS = 1024


def fp16_weights(src: str | Path, dst: str | Path, min_elements: int = MIN_ELEMENTS) -> int:
    """Write `dst`: `src` with its large float32 initializers stored as float16 + Cast.

    Metadata, inputs and outputs are kept. Returns the number of initializers converted.

    Raises:
        ValueError: a converted weight would overflow float16 (|w| > 65504).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    casts, kept, converted = [], [], 0
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT or int(np.prod(init.dims)) < min_elements:
            kept.append(init)
            continue
        w = numpy_helper.to_array(init)
        if np.abs(w).max() > np.finfo(np.float16).max:
            raise ValueError(f"initializer {init.name} has values beyond the float16 range")
        half = numpy_helper.from_array(w.astype(np.float16), init.name + "__fp16")
        kept.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT,
                                      name=init.name + "__cast"))
        converted += 1
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    onnx.checker.check_model(model)
    tmp = Path(str(dst) + ".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(dst)
    return converted
