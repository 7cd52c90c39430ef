"""training.onnx_fused through training.export: the fused ECG graph computes what torch computes
(fp32), its int8 copy stays as close to fp32 as the traced path's, the fused operators are really
in the file and survive onnxruntime's own graph optimisation, and other architectures fall back to
the traced export."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from engine.inference import session_options
from training import export as ex
from training import onnx_fused
from training.models import EcgClassifier, EcgEncoder, MlpClassifier

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
ECG_FILES = [DATA / "ecg/wfdb/ptbxl/00001_lr.hea", DATA / "ecg/wfdb/ludb/1.hea",
             DATA / "ecg/wfdb_mat/cinc2021/HR06000.hea"]
#: The bundle's tolerance on reference probabilities (reference_outputs.json).
PROB_ATOL = 1e-5


def _sig(v):
    return 1.0 / (1.0 + np.exp(-np.asarray(v, dtype=np.float64)))


@pytest.fixture(scope="module")
def records():
    return ex.records_from_files(ECG_FILES, "ecg")


def _tiny(seed: int = 0) -> EcgClassifier:
    """Tiny-preset-sized classifier (ff_dim 32, head 16) with non-trivial batch-norm statistics."""
    torch.manual_seed(seed)
    model = EcgClassifier(EcgEncoder(ff_dim=32), MlpClassifier(hidden=16)).eval()
    for bn in (model.encoder.patch_embed[2], model.encoder.patch_embed[5]):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.2, 0.2)
    return model


def _session(path, threads: int = 2) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"])


def test_fused_graph_has_the_fused_operators_after_onnxruntime_optimisation(tmp_path):
    model = _tiny()
    depth = len(model.encoder.transformer.layers)
    ops = onnx_fused.op_counts(onnx_fused.ecg_graph(model))
    assert ops["Attention"] == depth and ops["BiasGelu"] == depth and ops["LayerNormalization"] == 2 * depth
    assert ops["Transpose"] == 1 and "Conv" not in ops and "Softmax" not in ops
    # what onnxruntime actually runs (ORT_ENABLE_ALL, as the engine): the attention stays fused and
    # Add + LayerNormalization is NOT turned into the slower SkipLayerNormalization
    opts = session_options(1)
    opts.optimized_model_filepath = str(tmp_path / "optimised.onnx")
    src = tmp_path / "fused.onnx"
    onnx.save(onnx_fused.ecg_graph(model), src)
    ort.InferenceSession(str(src), opts, providers=["CPUExecutionProvider"])
    run_ops = onnx_fused.op_counts(onnx.load(str(tmp_path / "optimised.onnx")))
    assert run_ops["Attention"] == depth and run_ops["BiasGelu"] == depth
    assert run_ops["LayerNormalization"] == 2 * depth and "SkipLayerNormalization" not in run_ops


def test_fused_export_equals_torch_and_the_traced_export(tmp_path, records):
    model = _tiny()
    rep = ex.export_ecg(model, tmp_path / "new" / "ecg_edema.onnx", "edema", 0.4, records,
                        bundle_id="b", int8=True)
    old = ex.export_ecg(model, tmp_path / "old" / "ecg_edema.onnx", "edema", 0.4, records,
                        bundle_id="b", int8=True, fused=False)
    assert (rep.graph, old.graph) == ("fused", "traced")
    assert rep.max_abs_logit_diff <= 1e-5 and rep.max_abs_embedding_diff <= 1e-5
    assert onnx_fused.is_fused(onnx.load(rep.path)) and not onnx_fused.is_fused(onnx.load(old.path))
    new_s, old_s = _session(rep.path), _session(old.path)
    meta = new_s.get_modelmeta().custom_metadata_map
    assert json.loads(meta["cromotex.pathologies"]) == ["edema"] and json.loads(meta["cromotex.threshold"]) == [0.4]
    assert [o.name for o in new_s.get_outputs()] == ["logit", "embedding"]
    batch = np.concatenate([records, records[::-1]])        # dynamic batch of 6
    logit, emb = new_s.run(None, {"ecg": batch})
    o_logit, o_emb = old_s.run(None, {"ecg": batch})
    with torch.no_grad():
        t_logit, t_emb = (t.numpy() for t in model(torch.from_numpy(batch)))
    assert logit.shape == (6, 1) and emb.shape == (6, 256)
    assert np.max(np.abs(_sig(logit) - _sig(t_logit))) <= PROB_ATOL
    assert np.max(np.abs(_sig(logit) - _sig(o_logit))) <= PROB_ATOL
    assert np.max(np.abs(emb - t_emb)) <= 1e-5 and np.max(np.abs(emb - o_emb)) <= 1e-5
    # one window per run (as the engine scores) agrees with the batch
    one = np.concatenate([new_s.run(["logit"], {"ecg": batch[i:i + 1]})[0] for i in range(6)])
    assert np.max(np.abs(one - logit)) <= 1e-6


def test_fused_int8_is_quantised_and_as_close_to_fp32_as_the_traced_int8(tmp_path, records):
    model = _tiny(1)
    new = ex.export_ecg(model, tmp_path / "new" / "ecg_edema.onnx", "edema", 0.5, records, int8=True)
    old = ex.export_ecg(model, tmp_path / "old" / "ecg_edema.onnx", "edema", 0.5, records, int8=True, fused=False)
    q = onnx.load(new.int8_path)
    ops = onnx_fused.op_counts(q)
    depth = len(model.encoder.transformer.layers)
    assert ops.get("QAttention") == depth and "Attention" not in ops
    # out_proj, linear1, linear2 per layer + the 4 classifier layers are int8; the patch MatMuls are not
    assert ops.get("MatMulInteger") == 3 * depth + 4
    fp32_matmuls = {n.name for n in q.graph.node if n.op_type == "MatMul"}
    assert fp32_matmuls == set(onnx_fused.INT8_EXCLUDE)
    assert q.metadata_props == onnx.load(new.path).metadata_props
    logit8, _ = _session(new.int8_path).run(None, {"ecg": records})
    logit, _ = _session(new.path).run(None, {"ecg": records})
    assert new.int8_max_abs_logit_diff == pytest.approx(float(np.max(np.abs(logit8 - logit))), abs=1e-6)
    # measured on this model: new 3.8e-4, traced 3.5e-4 (max |prob| drift); the shipped bundle's
    # weights give 1.0e-4 - 3.0e-4 vs 1.4e-4 - 3.1e-4 (docs/results/inference_speed.md)
    assert new.int8_max_abs_prob_diff <= max(2 * old.int8_max_abs_prob_diff, 1e-4)


def test_fused_outputs_are_bit_identical_across_thread_counts(tmp_path, records):
    """The engine promises the same bits from 1-thread (CLI) and 2-thread (app) sessions, one
    window per run; the fused kernels (Attention, QAttention) keep that promise."""
    rep = ex.export_ecg(_tiny(2), tmp_path / "ecg_edema.onnx", "edema", 0.5, records, int8=True)
    for path in (rep.path, rep.int8_path):
        runs = [[_session(path, t).run(None, {"ecg": records[i:i + 1]}) for i in range(len(records))]
                for t in (1, 2, 4)]
        for other in runs[1:]:
            for a, b in zip(runs[0], other):
                assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_other_architectures_fall_back_to_the_traced_export(tmp_path, records):
    model = _tiny()
    for layer in model.encoder.transformer.layers:
        layer.norm_first = True                           # pre-norm: not what onnx_fused writes
    assert "pre-norm" in onnx_fused.supported(model)
    with pytest.raises(ValueError, match="pre-norm"):
        onnx_fused.ecg_graph(model)
    rep = ex.export_ecg(model, tmp_path / "ecg_edema.onnx", "edema", 0.5, records)
    assert rep.graph == "traced" and rep.max_abs_logit_diff <= ex.PARITY_ATOL
    assert onnx_fused.supported(torch.nn.Linear(2, 2)).startswith("not an EcgClassifier")


def test_a_fused_graph_that_fails_parity_is_replaced_by_the_traced_one(tmp_path, records, monkeypatch):
    real = ex._run_ort

    def drift_if_fused(onnx_bytes, *args, **kwargs):
        logit, emb = real(onnx_bytes, *args, **kwargs)
        fused = onnx_fused.is_fused(onnx.load_from_string(onnx_bytes)) if isinstance(onnx_bytes, bytes) else False
        return (logit + 1e-3 if fused else logit), emb

    monkeypatch.setattr(ex, "_run_ort", drift_if_fused)
    rep = ex.export_ecg(_tiny(), tmp_path / "ecg_edema.onnx", "edema", 0.5, records)
    assert rep.graph == "traced" and rep.max_abs_logit_diff <= ex.PARITY_ATOL
    assert not onnx_fused.is_fused(onnx.load(rep.path))


def test_the_shipped_ecg_models_are_the_fused_graphs_of_their_weights():
    """resources/models/ was re-exported fused from its own fp32 weights (manifest `reexport`);
    the equivalence with the traced files was measured then (bench/ort_speed.py prepare) and is
    recorded per model; the reference outputs (tests/engine) check the files themselves. A fused
    file cannot be mapped back to torch by name: the bench helper says so instead of silently
    loading a half-random network."""
    manifest = json.loads((ROOT / "resources/models/manifest.json").read_text())
    assert "fused" in manifest["reexport"]["what"]
    for p in ("cardiomegaly", "edema", "pleural_effusion"):
        export = manifest["pathologies"][p]["ecg"]["export"]
        assert export["graph"].startswith("fused")
        assert export["reexport_fp32_max_abs_prob_vs_traced"] <= PROB_ATOL
        assert export["reexport_int8_max_abs_prob_vs_fp32"] < 5e-4
        for name, op in ((f"ecg_{p}.onnx", "Attention"), (f"ecg_{p}.int8.onnx", "QAttention")):
            ops = {n.op_type for n in onnx.load(str(ROOT / "resources/models" / name)).graph.node}
            assert op in ops, name
    spec = importlib.util.spec_from_file_location("bench_predict", ROOT / "bench" / "predict.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    with pytest.raises(ValueError, match="fused graph"):
        bench.onnx_to_torch_state(ROOT / "resources/models/ecg_edema.onnx", {})
