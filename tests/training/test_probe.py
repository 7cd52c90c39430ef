"""The linear probe of frozen ECG embeddings (`cromotex-train probe`)."""

from __future__ import annotations

import numpy as np
import pytest

from training import config as config_mod
from training.probe import embed_all, load_encoder, markdown, probe_auroc


def _splits(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    idx = np.arange(n)
    return idx[: n // 2], idx[n // 2: 3 * n // 4], idx[3 * n // 4:]


def test_probe_finds_a_linear_signal_and_not_noise() -> None:
    rng = np.random.default_rng(0)
    n, d = 800, 32
    y = rng.integers(0, 2, n)
    emb = rng.normal(size=(n, d)).astype(np.float32)
    emb[:, 3] += 1.5 * y  # one informative direction
    train, val, test = _splits(n)
    r = probe_auroc(emb, y, train, val, test, n_boot=200)
    assert r["test_auroc"][0] > 0.8 and r["test_auroc"][1] < r["test_auroc"][0] < r["test_auroc"][2]
    assert r["C"] in (0.001, 0.01, 0.1, 1.0) and 0.0 <= r["val_auroc"] <= 1.0
    noise = probe_auroc(rng.normal(size=(n, d)), y, train, val, test, n_boot=200)
    assert abs(noise["test_auroc"][0] - 0.5) < 0.1


def test_random_encoder_embeddings_are_deterministic_256_d() -> None:
    cfg = config_mod.resolve("tiny")
    ecg = np.random.default_rng(1).uniform(-1, 1, (5, 12, 1000)).astype(np.float32)
    a = embed_all(load_encoder("random", cfg), ecg, batch_size=2)
    b = embed_all(load_encoder("random", cfg), ecg, batch_size=5)
    assert a.shape == (5, 256) and a.dtype == np.float32
    np.testing.assert_allclose(a, b, atol=1e-5)  # same seed, eval mode, batch size does not matter


def test_markdown_lists_every_encoder_and_pathology() -> None:
    res = {"pathologies": ["edema"], "description": "d",
           "encoders": {"ssl": {"edema": {"test_auroc": [0.7, 0.6, 0.8]}}}}
    md = markdown(res)
    assert "| ssl | 0.700 [0.600, 0.800] |" in md and "not clinical performance" in md


@pytest.mark.parametrize("bad", ["nope.pt"])
def test_missing_checkpoint_is_a_typed_error(bad, tmp_path) -> None:
    from engine.errors import CromotexError
    with pytest.raises(CromotexError):
        load_encoder(str(tmp_path / bad), config_mod.resolve("tiny"))


def _spiky_ecg(rates_bpm: np.ndarray, fs: float = 100.0) -> np.ndarray:
    """float32 `[N, 12, 1000]`: narrow QRS-like spikes at each record's rate, scaled to [-1, 1]."""
    t = np.arange(1000) / fs
    out = np.zeros((len(rates_bpm), 12, 1000), np.float32)
    for i, bpm in enumerate(rates_bpm):
        period = 60.0 / bpm
        phase = (t % period) / period
        beat = np.exp(-0.5 * ((phase - 0.5) * period / 0.012) ** 2)  # ~12 ms wide spike mid-cycle
        out[i] = (2 * beat - 1)[None, :]
    return out


def test_rhythm_check_measures_heart_rate_and_its_correlation_with_logits(tmp_path) -> None:
    from training.probe import rhythm_check
    rng = np.random.default_rng(2)
    rates = rng.uniform(50, 130, 60)
    ecg = _spiky_ecg(rates)
    y = (rates > 90).astype(int)
    test = np.arange(60, dtype=np.int64)
    npz = tmp_path / "predictions.npz"
    np.savez(npz, pathology="edema", test_logit=rates.astype(np.float32), test_index=test)
    out = rhythm_check(ecg, {"edema": y}, test, {"m": npz})
    assert out["heart_rate_auroc"]["edema"] > 0.95
    m = out["models"]["m"]
    assert m["pathology"] == "edema" and m["test_auroc"] == 1.0 and m["spearman_heart_rate"] > 0.9
    np.savez(npz, pathology="edema", test_logit=rates, test_index=test[::-1])
    with pytest.raises(ValueError, match="test split"):
        rhythm_check(ecg, {"edema": y}, test, {"m": npz})
