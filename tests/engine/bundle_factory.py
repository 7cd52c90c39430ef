"""Tiny but real model bundles for the engine tests (no torch).

`make_bundle(directory)` writes a complete bundle in the docs/bundle.md format:
three ECG models and one CXR teacher built with `onnx.helper`, with the exact
input/output names, shapes and `cromotex.*` metadata of exported models;
embedding statistics; `MODEL_CARD.md`; reference outputs; and a manifest with
the sha256 of every file.

ECG model (per pathology), input `ecg` float32 `[N, 12, 1000]`:
    features [N, 52] = concat(mean_t x, mean_t |x|, mean_t |dx/dt|, mean_t relu(conv1d(x)))
    embedding [N, 256] = tanh(features @ W1 + b1)
    logit [N, 1] = embedding @ W2 + b2
CXR teacher, input `cxr` float32 `[N, 1, 224, 224]`:
    embedding [N, 1024] = tanh(flatten(avgpool8(x)) / 1024 @ Wc + bc);  logit [N, 3] = embedding @ Wl + bl

`TinyEcg.forward` / `TinyCxr.forward` compute the same in numpy, independently of
onnxruntime, so tests can check the engine's numbers against them.

Bundles are signed (manifest.json.sig) with a throwaway Ed25519 key made once per process
(`throwaway_key()`, never written to the repository); `make_bundle` adds its public key to
`CROMOTEX_TRUSTED_KEYS` in this process (`trust_test_key()`), which child processes
(the CLI, worker processes, the app) inherit.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from engine.constants import DEMO_DISCLAIMER, PATHOLOGIES, preprocessing_constants

REPO = Path(__file__).resolve().parents[2]
N_FEAT = 12 * 3 + 16
EMB = 256
CXR_EMB = 1024
THRESHOLDS = {"cardiomegaly": 0.45, "edema": 0.5, "pleural_effusion": 0.55}
CXR_THRESHOLDS = [0.5, 0.4, 0.6]


@dataclass
class TinyEcg:
    conv_w: np.ndarray  # [16, 12, 7]
    conv_b: np.ndarray  # [16]
    w1: np.ndarray  # [52, 256]
    b1: np.ndarray  # [256]
    w2: np.ndarray  # [256, 1]
    b2: np.ndarray  # [1]

    @classmethod
    def random(cls, seed: int) -> "TinyEcg":
        rng = np.random.default_rng(seed)
        f32 = np.float32
        w1 = rng.normal(size=(N_FEAT, EMB)) / np.sqrt(N_FEAT) * 2.0
        w1[24:36] *= 4.0  # the smoothness features (mean |dx/dt|) tell noise from ECG
        return cls(conv_w=(rng.normal(size=(16, 12, 7)) * 0.2).astype(f32),
                   conv_b=(rng.normal(size=16) * 0.05).astype(f32),
                   w1=w1.astype(f32),
                   b1=(rng.normal(size=EMB) * 0.1).astype(f32),
                   w2=(rng.normal(size=(EMB, 1)) / np.sqrt(EMB) * 1.5).astype(f32),
                   b2=np.array([rng.normal() * 0.2], dtype=f32))

    def features(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        m1 = x.mean(axis=2)
        m2 = np.abs(x).mean(axis=2)
        m3 = np.abs(np.diff(x, axis=2)).mean(axis=2)
        k = self.conv_w.shape[2]
        t = x.shape[2] - k + 1
        cols = np.stack([x[:, :, i:i + t] for i in range(k)], axis=-1)  # [N, 12, T, k]
        conv = np.einsum("nctk,ock->not", cols, self.conv_w.astype(np.float64))
        conv += self.conv_b[None, :, None]
        mc = np.maximum(conv, 0.0).mean(axis=2)
        return np.concatenate([m1, m2, m3, mc], axis=1)

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """float `[N, 12, 1000]` -> (logit float64 `[N]`, embedding float64 `[N, 256]`)."""
        emb = np.tanh(self.features(x) @ self.w1 + self.b1)
        return (emb @ self.w2 + self.b2)[:, 0], emb

    def onnx_model(self) -> onnx.ModelProto:
        init = [numpy_helper.from_array(a, n) for a, n in [
            (self.conv_w, "conv_w"), (self.conv_b, "conv_b"), (self.w1, "w1"), (self.b1, "b1"),
            (self.w2, "w2"), (self.b2, "b2"),
            (np.array([1], np.int64), "one"), (np.array([0], np.int64), "zero"),
            (np.array([1000], np.int64), "end"), (np.array([999], np.int64), "endm1"),
            (np.array([2], np.int64), "ax2")]]
        mean_t = dict(axes=[2], keepdims=0)
        nodes = [
            helper.make_node("ReduceMean", ["ecg"], ["m1"], **mean_t),
            helper.make_node("Abs", ["ecg"], ["ax"]),
            helper.make_node("ReduceMean", ["ax"], ["m2"], **mean_t),
            helper.make_node("Slice", ["ecg", "one", "end", "ax2"], ["x1"]),
            helper.make_node("Slice", ["ecg", "zero", "endm1", "ax2"], ["x0"]),
            helper.make_node("Sub", ["x1", "x0"], ["dx"]),
            helper.make_node("Abs", ["dx"], ["adx"]),
            helper.make_node("ReduceMean", ["adx"], ["m3"], **mean_t),
            helper.make_node("Conv", ["ecg", "conv_w", "conv_b"], ["c"], kernel_shape=[7]),
            helper.make_node("Relu", ["c"], ["rc"]),
            helper.make_node("ReduceMean", ["rc"], ["mc"], **mean_t),
            helper.make_node("Concat", ["m1", "m2", "m3", "mc"], ["f"], axis=1),
            helper.make_node("MatMul", ["f", "w1"], ["h0"]),
            helper.make_node("Add", ["h0", "b1"], ["h1"]),
            helper.make_node("Tanh", ["h1"], ["embedding"]),
            helper.make_node("MatMul", ["embedding", "w2"], ["l0"]),
            helper.make_node("Add", ["l0", "b2"], ["logit"]),
        ]
        graph = helper.make_graph(
            nodes, "tiny_ecg",
            [helper.make_tensor_value_info("ecg", TensorProto.FLOAT, ["N", 12, 1000])],
            [helper.make_tensor_value_info("logit", TensorProto.FLOAT, ["N", 1]),
             helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", EMB])],
            init)
        return _model(graph)


@dataclass
class TinyCxr:
    wc: np.ndarray  # [784, 1024]
    bc: np.ndarray  # [1024]
    wl: np.ndarray  # [1024, 3]
    bl: np.ndarray  # [3]

    @classmethod
    def random(cls, seed: int) -> "TinyCxr":
        rng = np.random.default_rng(seed)
        f32 = np.float32
        return cls(wc=(rng.normal(size=(784, CXR_EMB)) / 28.0 * 3).astype(f32),
                   bc=(rng.normal(size=CXR_EMB) * 0.1).astype(f32),
                   wl=(rng.normal(size=(CXR_EMB, 3)) / 32.0).astype(f32),
                   bl=(rng.normal(size=3) * 0.2).astype(f32))

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """float `[N, 1, 224, 224]` -> (logits float64 `[N, 3]`, embedding `[N, 1024]`)."""
        x = np.asarray(x, dtype=np.float64)
        pooled = x.reshape(x.shape[0], 28, 8, 28, 8).mean(axis=(2, 4)).reshape(x.shape[0], 784)
        emb = np.tanh(pooled / 1024.0 @ self.wc + self.bc)
        return emb @ self.wl + self.bl, emb

    def onnx_model(self) -> onnx.ModelProto:
        init = [numpy_helper.from_array(a, n) for a, n in [
            (self.wc, "wc"), (self.bc, "bc"), (self.wl, "wl"), (self.bl, "bl"),
            (np.array(1.0 / 1024.0, np.float32), "scale")]]
        nodes = [
            helper.make_node("AveragePool", ["cxr"], ["p"], kernel_shape=[8, 8], strides=[8, 8]),
            helper.make_node("Flatten", ["p"], ["fl"], axis=1),
            helper.make_node("Mul", ["fl", "scale"], ["fs"]),
            helper.make_node("MatMul", ["fs", "wc"], ["h0"]),
            helper.make_node("Add", ["h0", "bc"], ["h1"]),
            helper.make_node("Tanh", ["h1"], ["embedding"]),
            helper.make_node("MatMul", ["embedding", "wl"], ["l0"]),
            helper.make_node("Add", ["l0", "bl"], ["logit"]),
        ]
        graph = helper.make_graph(
            nodes, "tiny_cxr",
            [helper.make_tensor_value_info("cxr", TensorProto.FLOAT, ["N", 1, 224, 224])],
            [helper.make_tensor_value_info("logit", TensorProto.FLOAT, ["N", 3]),
             helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", CXR_EMB])],
            init)
        return _model(graph)


def _model(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def synthetic_windows(n: int, seed: int) -> np.ndarray:
    """ECG-like model inputs float32 `[n, 12, 1000]`: beats at 45-120 bpm, per-lead
    min-max scaled to [-1, 1] like `engine.preprocess` output (a training population)."""
    rng = np.random.default_rng(seed)
    t = np.arange(1000) / 100.0
    out = np.empty((n, 12, 1000), np.float32)
    for i in range(n):
        rr = 60.0 / rng.uniform(45, 120)
        beats = np.arange(rng.uniform(0, rr), 10.0, rr)
        for lead in range(12):
            amp = rng.uniform(-1.0, 1.0, size=3) * np.array([0.3, 1.5, 0.6])
            qrs, tw = rng.uniform(0.01, 0.03), rng.uniform(0.04, 0.1)
            sig = 0.1 * rng.normal() * np.sin(2 * np.pi * rng.uniform(0.05, 0.3) * t + rng.uniform(0, 6))
            for b in beats:
                sig += amp[0] * np.exp(-0.5 * ((t - b + 0.16) / 0.025) ** 2)
                sig += amp[1] * np.exp(-0.5 * ((t - b) / qrs) ** 2)
                sig += amp[2] * np.exp(-0.5 * ((t - b - 0.3) / tw) ** 2)
            sig += rng.normal(0, rng.uniform(0.002, 0.03), size=t.size)
            lo, hi = sig.min(), sig.max()
            out[i, lead] = 2 * (sig - lo) / (hi - lo) - 1
    return out


def white_noise_windows(n: int, seed: int) -> np.ndarray:
    """Gaussian white noise float32 `[n, 12, 1000]`, per-lead min-max scaled to [-1, 1]."""
    x = np.random.default_rng(seed).normal(size=(n, 12, 1000))
    lo, hi = x.min(axis=2, keepdims=True), x.max(axis=2, keepdims=True)
    return (2 * (x - lo) / (hi - lo) - 1).astype(np.float32)


@functools.lru_cache(maxsize=1)
def throwaway_key() -> tuple[Path, Path]:
    """(private key .pem, public key .pub) of this process's throwaway signing key, in a
    temporary folder removed at exit."""
    from engine.signing import generate_keypair
    folder = Path(tempfile.mkdtemp(prefix="cromotex-test-key-"))
    atexit.register(shutil.rmtree, folder, True)
    return generate_keypair(folder, "cromotex-test")


def trust_test_key() -> Path:
    """Add the test key's .pub to CROMOTEX_TRUSTED_KEYS (this process and its children)."""
    import os

    from engine.trust import ENV_TRUSTED_KEYS, add_to_environment
    pub = throwaway_key()[1]
    if str(pub) not in os.environ.get(ENV_TRUSTED_KEYS, "").split(os.pathsep):
        add_to_environment([pub])
    return pub


def sign(directory: str | Path, key: Path | None = None) -> None:
    """Sign a bundle's manifest.json (default: with the test key)."""
    from engine.signing import load_private_key, sign_file
    sign_file(Path(directory) / "manifest.json", load_private_key(key or throwaway_key()[0]))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _meta(model: onnx.ModelProto, pathologies: list, thresholds: list, data: str,
          bundle_id: str, preprocessing: dict) -> onnx.ModelProto:
    helper.set_model_props(model, {
        "cromotex.preprocessing": json.dumps(preprocessing),
        "cromotex.pathologies": json.dumps(pathologies),
        "cromotex.threshold": json.dumps(thresholds),
        "cromotex.data": data,
        "cromotex.bundle_id": bundle_id,
    })
    return model


def ecg_models(seed: int = 0) -> dict[str, TinyEcg]:
    return {p: TinyEcg.random(seed * 10 + i + 1) for i, p in enumerate(PATHOLOGIES)}


def cxr_model(seed: int = 0) -> TinyCxr:
    return TinyCxr.random(seed * 10 + 7)


@functools.lru_cache(maxsize=4)
def population_stats(seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
    """Per pathology (mean [256], precision [256, 256], OOD cut-off) of the embeddings of
    160 synthetic ECG windows (the tiny models' "training data"). The covariance is
    shrunk (+0.05 I) before inversion; the cut-off is twice the largest training distance."""
    train = synthetic_windows(160, seed=1000 + seed)
    out = {}
    for p, m in ecg_models(seed).items():
        _, emb = m.forward(train)
        mean = emb.mean(axis=0)
        precision = np.linalg.inv(np.cov(emb, rowvar=False) + 0.05 * np.eye(EMB))
        precision = (precision + precision.T) / 2
        dist = np.sqrt(np.einsum("ni,ij,nj->n", emb - mean, precision, emb - mean))
        out[p] = (mean, precision, round(float(dist.max()) * 2.0, 4))
    return out


def reference_windows(path: Path) -> np.ndarray:
    """Model-ready windows of a sample ECG file, through the engine's reader and preprocessing."""
    from engine.io import read_ecg
    from engine.preprocess import preprocess_ecg
    return preprocess_ecg(read_ecg(path)).windows


def make_bundle(directory: str | Path, *, seed: int = 0, demo: bool = True, data: str = "phantom",
                bundle_id: str = "test-tiny-0", cxr: bool = True, int8: bool = False,
                reference_ecgs: tuple[str, ...] = (), reference_cxrs: tuple[str, ...] = (),
                onnx_preprocessing: dict | None = None, signed: bool = True) -> Path:
    """Write a complete tiny bundle into `directory` and return it.

    `reference_ecgs` / `reference_cxrs`: repository-relative sample files whose outputs
    (numpy forward of the same weights) go into reference_outputs.json.
    `onnx_preprocessing`: write these constants into the ECG models' metadata instead
    of the right ones (to test refusal).
    `signed`: sign the manifest with the test key, and trust that key (`trust_test_key`).
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    pre = preprocessing_constants()
    ecgs = ecg_models(seed)
    stats = population_stats(seed)
    entries = {}
    for p, m in ecgs.items():
        onnx.save(_meta(m.onnx_model(), [p], [THRESHOLDS[p]], data, bundle_id,
                        onnx_preprocessing or pre), d / f"ecg_{p}.onnx")
        mean, precision, cutoff = stats[p]
        np.savez(d / f"embedding_stats_{p}.npz", mean=mean, precision=precision)
        entries[p] = {"ecg": {"file": f"ecg_{p}.onnx", "threshold": THRESHOLDS[p],
                              "embedding_stats": f"embedding_stats_{p}.npz",
                              "ood_cutoff": cutoff,
                              "metrics": {"test": {"auroc": [0.7, 0.65, 0.75]}}}}
        if int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic
            quantize_dynamic(str(d / f"ecg_{p}.onnx"), str(d / f"ecg_{p}.int8.onnx"),
                             weight_type=QuantType.QInt8)
            q = onnx.load(str(d / f"ecg_{p}.int8.onnx"))
            del q.metadata_props[:]
            onnx.save(_meta(q, [p], [THRESHOLDS[p]], data, bundle_id, onnx_preprocessing or pre),
                      d / f"ecg_{p}.int8.onnx")
            entries[p]["ecg"]["int8_file"] = f"ecg_{p}.int8.onnx"
    if cxr:
        c = cxr_model(seed)
        onnx.save(_meta(c.onnx_model(), list(PATHOLOGIES), CXR_THRESHOLDS, data, bundle_id, pre),
                  d / "cxr_teacher.onnx")
        for i, p in enumerate(PATHOLOGIES):
            entries[p]["cxr"] = {"file": "cxr_teacher.onnx", "output_index": i,
                                 "threshold": CXR_THRESHOLDS[i]}
    (d / "MODEL_CARD.md").write_text("# Tiny test models\n\nRandom weights, for engine tests "
                                     "only. Not for diagnosis.\n")
    cases = []
    for rel in reference_ecgs:
        w = reference_windows(REPO / rel)
        probs = {p: float(np.mean(1 / (1 + np.exp(-m.forward(w)[0])))) for p, m in ecgs.items()}
        cases.append({"ecg": rel, "probabilities": probs})
    for rel in reference_cxrs:
        from engine.io import read_cxr
        from engine.preprocess import preprocess_cxr
        logits, _ = cxr_model(seed).forward(preprocess_cxr(read_cxr(REPO / rel))[None])
        cases.append({"cxr": rel, "cxr_probabilities": {
            p: float(1 / (1 + np.exp(-logits[0, i]))) for i, p in enumerate(PATHOLOGIES)}})
    (d / "reference_outputs.json").write_text(json.dumps({"cases": cases, "atol": 1e-5}, indent=1))
    files = {f.name: _sha(f) for f in sorted(d.iterdir()) if f.name != "manifest.json"}
    manifest = {
        "schema_version": 1, "bundle_id": bundle_id, "data": data, "demo": demo,
        "disclaimer": DEMO_DISCLAIMER if demo else "", "created_utc": "2026-11-24T08:00:00Z",
        "code_version": "test", "preprocessing": pre, "files": files, "pathologies": entries,
        "training": {"preset": "test"}, "reference": "reference_outputs.json",
    }
    (d / "manifest.json").write_text(json.dumps(manifest, indent=1))
    if signed:
        sign(d)
        trust_test_key()
    return d


def edit_manifest(directory: Path, edit, signed: bool = True) -> None:
    """Apply `edit(manifest_dict)` to a bundle's manifest.json in place and (`signed`)
    re-sign it with the test key, as a trusted builder making that bundle would."""
    path = Path(directory) / "manifest.json"
    m = json.loads(path.read_text())
    edit(m)
    path.write_text(json.dumps(m, indent=1))
    if signed:
        sign(directory)


def rehash(directory: Path, signed: bool = True) -> None:
    """Recompute every listed file's sha256 (after deliberately editing a file), and
    (`signed`) re-sign with the test key."""
    def fix(m):
        m["files"] = {name: _sha(Path(directory) / name) for name in m["files"]}
    edit_manifest(directory, fix, signed)
