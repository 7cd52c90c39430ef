"""Export trained models to ONNX (docs/bundle.md), checked against torch before writing.

- ECG: EcgClassifier, input `ecg` float32 `[N, 12, 1000]` -> `logit` `[N, 1]`, `embedding` `[N, 256]`.
- CXR teacher: DenseNet121, input `cxr` float32 `[N, 1, 224, 224]` in [-1024, 1024] ->
  `logit` `[N, K]`, `embedding` `[N, 1024]`.
Dynamic batch. Metadata: `cromotex.preprocessing`, `cromotex.pathologies`,
`cromotex.threshold`, `cromotex.data`, `cromotex.bundle_id`.

ECG graphs are written by `training.onnx_fused` (onnxruntime's fused `Attention`, `BiasGelu`,
patch convolutions as MatMuls; ~11% less CPU per run in fp32, ~25% in int8;
docs/results/inference_speed.md) when the model is of
the supported architecture, else traced by `torch.onnx.export` (`ExportReport.graph` says which).
Either way the parity check below applies; a fused graph that fails it is replaced by the traced
one (logged as an error), so an unattended build still gets a correct model.

The exported graph is run with onnxruntime on real preprocessed records (the
cohort's test split, or any float32 array given) and compared with torch; a
max abs logit difference above `PARITY_ATOL` raises `ExportParityError` and
nothing is written. An optional int8 dynamically quantised copy reports its
measured drift (max abs logit difference vs the fp32 ONNX model).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from engine.constants import preprocessing_constants
from engine.errors import CromotexError

log = logging.getLogger(__name__)

#: Max abs logit difference allowed between torch and onnxruntime (fp32).
PARITY_ATOL: float = 1e-4
OPSET: int = 17


class ExportParityError(CromotexError):
    """The ONNX model does not reproduce the torch model within PARITY_ATOL."""


@dataclass
class ExportReport:
    """What an export wrote and measured."""

    path: str
    n_check: int
    max_abs_logit_diff: float
    max_abs_embedding_diff: float
    int8_path: str | None = None
    int8_max_abs_logit_diff: float | None = None
    int8_max_abs_prob_diff: float | None = None
    #: "fused" (training.onnx_fused) or "traced" (torch.onnx.export).
    graph: str = "traced"


class _Teacher(nn.Module):
    """DenseNet121 -> (logits [N, K], embedding [N, 1024]) for export."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.model.features2(x)
        return self.model.classifier(emb), emb


def metadata(pathologies: list[str], thresholds: list[float], data: str, bundle_id: str) -> dict[str, str]:
    """The `metadata_props` of an exported model (docs/bundle.md)."""
    if data not in ("phantom", "mimic"):
        raise CromotexError(f"data must be 'phantom' or 'mimic', got {data!r}.")
    if len(pathologies) != len(thresholds):
        raise CromotexError("one threshold per pathology is needed.")
    return {
        "cromotex.preprocessing": json.dumps(preprocessing_constants(), sort_keys=True),
        "cromotex.pathologies": json.dumps(list(pathologies)),
        "cromotex.threshold": json.dumps([float(t) for t in thresholds]),
        "cromotex.data": data,
        "cromotex.bundle_id": bundle_id,
    }


def _to_onnx_bytes(module: nn.Module, example: torch.Tensor, input_name: str) -> bytes:
    """Trace `module` (eval mode) to ONNX bytes with a dynamic batch dimension."""
    buf = io.BytesIO()
    module.eval()
    # Not under no_grad: there, eval-mode Transformer layers take the fused fast path
    # (aten::_transformer_encoder_layer_fwd), which has no ONNX export.
    torch.onnx.export(module, (example,), buf, input_names=[input_name], output_names=["logit", "embedding"],
                      dynamic_axes={input_name: {0: "N"}, "logit": {0: "N"}, "embedding": {0: "N"}},
                      opset_version=OPSET, dynamo=False)
    return buf.getvalue()


def _with_metadata(onnx_bytes: bytes, meta: dict[str, str]) -> bytes:
    import onnx
    model = onnx.load_from_string(onnx_bytes)
    del model.metadata_props[:]
    for k, v in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _run_ort(onnx_bytes_or_path: bytes | str | Path, input_name: str, x: np.ndarray,
             batch: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """(logits, embeddings) of the float32 records `x` by the ONNX model, in batches of `batch`."""
    from training import onnx_run
    return onnx_run.predict(onnx_run.session(onnx_bytes_or_path), input_name, x, batch=batch)


@torch.no_grad()
def _run_torch(module: nn.Module, x: np.ndarray, batch: int = 16) -> tuple[np.ndarray, np.ndarray]:
    module.eval()
    out = [module(torch.from_numpy(x[s:s + batch])) for s in range(0, len(x), batch)]
    return (np.concatenate([o[0].numpy() for o in out]), np.concatenate([o[1].numpy() for o in out]))


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _graph_bytes(module: nn.Module, example: torch.Tensor, input_name: str, fused: bool) -> tuple[bytes, str]:
    """(ONNX bytes, "fused" | "traced"): the fused graph of `training.onnx_fused` when asked for
    and the module is of its architecture, else the traced one."""
    if fused:
        from training import onnx_fused
        why = onnx_fused.supported(module)
        if why is None:
            return onnx_fused.ecg_graph(module).SerializeToString(), "fused"
        log.warning("fused ONNX graph not available (%s); tracing with torch.onnx.export", why)
    return _to_onnx_bytes(module, example, input_name), "traced"


def _export(module: nn.Module, input_name: str, check_inputs: np.ndarray, out_path: Path, meta: dict[str, str],
            int8: bool, fused: bool = False) -> ExportReport:
    x = np.ascontiguousarray(check_inputs, dtype=np.float32)
    if len(x) == 0:
        raise CromotexError("No records to check the export on; give a cohort with a test split.")
    module = module.cpu().eval()
    raw, graph = _graph_bytes(module, torch.from_numpy(x[:2]), input_name, fused)
    t_logit, t_emb = _run_torch(module, x)
    while True:
        onnx_bytes = _with_metadata(raw, meta)
        o_logit, o_emb = _run_ort(onnx_bytes, input_name, x)
        d_logit = float(np.max(np.abs(t_logit - o_logit)))
        d_emb = float(np.max(np.abs(t_emb - o_emb)))
        log.info("export %s (%s graph): max |logit torch - onnx| = %.2e, embedding %.2e on %d records",
                 out_path.name, graph, d_logit, d_emb, len(x))
        if d_logit <= PARITY_ATOL or graph != "fused":
            break
        # an unattended build should still get a (slower) correct model
        log.error("fused ONNX graph of %s differs from torch by %.3g; falling back to the traced export",
                  out_path.name, d_logit)
        raw, graph = _graph_bytes(module, torch.from_numpy(x[:2]), input_name, False)
    if not d_logit <= PARITY_ATOL:
        raise ExportParityError(f"ONNX export of {out_path.name} differs from torch by {d_logit:.3g} in the "
                                f"logits (allowed {PARITY_ATOL}); nothing was written. Check for ops that "
                                "trace differently (training-mode layers, data-dependent control flow).")
    _atomic_write(out_path, onnx_bytes)
    report = ExportReport(str(out_path), len(x), d_logit, d_emb, graph=graph)
    if int8:
        q_path = out_path.with_name(out_path.name.replace(".onnx", ".int8.onnx"))
        report.int8_path = str(q_path)
        report.int8_max_abs_logit_diff, report.int8_max_abs_prob_diff = quantize(out_path, q_path, input_name, x,
                                                                                   o_logit)
    return report


def quantize(fp32_path: Path, out_path: Path, input_name: str, x: np.ndarray,
             reference_logit: np.ndarray) -> tuple[float, float]:
    """Dynamic int8 quantisation (weights int8 per tensor, activations uint8 per run); returns the
    measured drift (max abs logit difference, max abs probability difference) vs `reference_logit`.

    Traced graphs: MatMul / Gemm, after `quant_pre_process`. Fused graphs (`training.onnx_fused`):
    also `Attention` (-> `QAttention`, an int8 in-projection); no pre-processing (the graph is
    already folded, and onnxruntime's offline fusions would bring back SkipLayerNormalization)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from training import onnx_fused
    tmp = out_path.with_name(out_path.name + ".tmp.onnx")
    src = onnx.load(str(fp32_path))
    if onnx_fused.is_fused(src):
        quantize_dynamic(str(fp32_path), str(tmp), weight_type=QuantType.QInt8,
                         op_types_to_quantize=list(onnx_fused.INT8_OP_TYPES),
                         nodes_to_exclude=list(onnx_fused.INT8_EXCLUDE))
    else:
        pre = out_path.with_name(out_path.name + ".pre.onnx")
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)  # fold constants, infer shapes
        quantize_dynamic(str(pre), str(tmp), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"])
        pre.unlink()
    model = onnx.load(str(tmp))
    del model.metadata_props[:]
    model.metadata_props.extend(src.metadata_props)
    onnx.save(model, str(tmp))
    q_logit, _ = _run_ort(tmp, input_name, x)
    d_logit = float(np.max(np.abs(q_logit - reference_logit)))
    sig = lambda v: 1.0 / (1.0 + np.exp(-v.astype(np.float64)))  # noqa: E731
    d_prob = float(np.max(np.abs(sig(q_logit) - sig(reference_logit))))
    os.replace(tmp, out_path)
    log.info("int8 %s: max |logit drift| = %.3g, max |probability drift| = %.3g", out_path.name, d_logit, d_prob)
    return d_logit, d_prob


def export_ecg(model: nn.Module, out_path: str | Path, pathology: str, threshold: float, check_inputs: np.ndarray,
               data: str = "phantom", bundle_id: str = "", int8: bool = False, fused: bool = True) -> ExportReport:
    """Export an EcgClassifier (`x [N,12,1000] -> (logit [N,1], embedding [N,256])`) to `out_path`,
    after checking it on `check_inputs` float32 `[n, 12, 1000]` (real preprocessed records).
    `fused`: write the `training.onnx_fused` graph when the model allows (default), else trace."""
    meta = metadata([pathology], [threshold], data, bundle_id)
    return _export(model, "ecg", check_inputs, Path(out_path), meta, int8, fused)


def export_cxr(teacher: nn.Module, out_path: str | Path, pathologies: list[str], thresholds: list[float],
               check_inputs: np.ndarray, data: str = "phantom", bundle_id: str = "",
               int8: bool = False) -> ExportReport:
    """Export a DenseNet121 teacher (`cxr [N,1,224,224] -> (logit [N,K], embedding [N,1024])`),
    after checking it on `check_inputs` float32 `[n, 1, 224, 224]` in [-1024, 1024]."""
    meta = metadata(list(pathologies), list(thresholds), data, bundle_id)
    return _export(_Teacher(teacher), "cxr", check_inputs, Path(out_path), meta, int8)


def check_records(cohort: str | Path, kind: str, n: int = 16) -> np.ndarray:
    """Up to `n` preprocessed records of the cohort's test split (val if test is empty):
    ECG float32 `[n, 12, 1000]` or CXR float32 `[n, 1, 224, 224]`."""
    from training.data import load_cohort
    co = load_cohort(cohort)
    idx = co.indices("test")
    if len(idx) == 0:
        idx = co.indices("val")
    idx = idx[:n]
    arr = co.ecg if kind == "ecg" else co.cxr
    return np.asarray(arr[idx], dtype=np.float32)


def records_from_files(paths: list[str | Path], kind: str) -> np.ndarray:
    """Real records read and preprocessed exactly as at inference (engine.io + engine.preprocess):
    ECG float32 `[n, 12, 1000]` (first window of each) or CXR float32 `[n, 1, 224, 224]`."""
    import engine.io as eio
    import engine.preprocess as pp
    if kind == "ecg":
        return np.stack([pp.preprocess_ecg(eio.read_ecg(p)).windows[0] for p in paths]).astype(np.float32)
    return np.stack([pp.preprocess_cxr(eio.read_cxr(p)) for p in paths]).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    """`cromotex-train export --checkpoint CKPT --cohort C --out FILE.onnx [--int8] ...`"""
    p = argparse.ArgumentParser(prog="cromotex-train export", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="finetune best.pt (ECG) or pretrain-cxr best.pt (teacher)")
    p.add_argument("--cohort", help="COHORT whose test records check the export")
    p.add_argument("--records", nargs="+", help="ECG / CXR files to check the export on instead of --cohort")
    p.add_argument("--out", required=True, help="ONNX file to write")
    p.add_argument("--threshold", type=float, nargs="+",
                   help="decision threshold(s) on the probability, one per logit (default 0.5)")
    p.add_argument("--data", choices=("phantom", "mimic"), default="phantom", help="data provenance")
    p.add_argument("--bundle-id", default="", help="bundle id written into the metadata")
    p.add_argument("--int8", action="store_true", help="also write a dynamically quantised int8 copy")
    p.add_argument("--traced", action="store_true",
                   help="ECG: trace with torch.onnx.export instead of writing the fused graph")
    p.add_argument("--n-check", type=int, default=16, help="records used for the parity check")
    p.add_argument("--report", help="write the export report as JSON here")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    if not (args.cohort or args.records):
        p.error("give --cohort or --records to check the export on real records")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    def check(kind: str) -> np.ndarray:
        if args.records:
            return records_from_files(args.records, kind)
        return check_records(args.cohort, kind, args.n_check)

    from training.checkpoint import load_checkpoint
    state = load_checkpoint(args.checkpoint)
    if state["stage"] == "finetune":
        from training.stages.finetune import load_classifier
        model, cfg = load_classifier(args.checkpoint)
        thr = (args.threshold or [0.5])[0]
        report = export_ecg(model, args.out, cfg.pathology, thr, check("ecg"),
                            args.data, args.bundle_id, args.int8, fused=not args.traced)
    elif state["stage"] == "pretrain-cxr":
        from training import config as config_mod
        from training.stages.pretrain_cxr import build_teacher, teacher_pathologies
        cfg = config_mod.from_dict(state["config"])
        cfg.teacher.weights = ""
        teacher = build_teacher(cfg)
        teacher.load_state_dict(state["models"]["teacher"])
        paths = teacher_pathologies(cfg)
        thr = args.threshold or [0.5] * len(paths)
        report = export_cxr(teacher, args.out, paths, thr, check("cxr"),
                            args.data, args.bundle_id, args.int8)
    else:
        raise CromotexError(f"{args.checkpoint} is a {state['stage']!r} checkpoint; export a finetune or "
                            "pretrain-cxr checkpoint.")
    text = json.dumps(asdict(report), indent=2)
    if args.report:
        Path(args.report).write_text(text)
    log.info("%s", text)
    return 0


__all__ = ["export_ecg", "export_cxr", "quantize", "metadata", "check_records", "records_from_files", "ExportReport",
           "ExportParityError", "PARITY_ATOL"]
