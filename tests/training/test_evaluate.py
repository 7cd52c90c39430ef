"""training.evaluate: threshold from validation, bootstrap CIs, seeds, files."""

import json

import numpy as np
import pytest

from training import evaluate as ev
from training.metrics import auroc, f1_at, sigmoid


def _pred(seed, n=120, sep=1.5):
    rng = np.random.default_rng(seed)
    out = {}
    for split in ("val", "test"):
        y = rng.integers(0, 2, n)
        out[f"{split}_label"] = y
        out[f"{split}_logit"] = rng.normal(sep * y - 0.5, 1.0).astype(np.float32)
    out["test_embedding"] = rng.normal(size=(n, 8)) + out["test_label"][:, None]
    return out


def test_threshold_is_chosen_on_validation_and_applied_to_test():
    p = _pred(0)
    r = ev.evaluate_one(p, n_boot=50, seed=0)
    p_test = sigmoid(p["test_logit"])
    assert r["test"]["f1"][0] == pytest.approx(f1_at(p["test_label"], p_test, r["threshold"]))
    assert r["test"]["auroc"][0] == pytest.approx(auroc(p["test_label"], p["test_logit"]))
    # the threshold maximises validation F1
    p_val = sigmoid(p["val_logit"])
    assert r["val_f1"] == pytest.approx(max(f1_at(p["val_label"], p_val, t) for t in p_val))
    for k in ev.METRICS:
        v, lo, hi = r["test"][k]
        assert lo <= v <= hi


def test_evaluate_across_seeds_writes_tables_and_plots(tmp_path):
    preds = [_pred(s) for s in range(3)]
    for i, p in enumerate(preds):
        np.savez(tmp_path / f"p{i}.npz", **p)
    rc = ev.main(["--predictions", *[str(tmp_path / f"p{i}.npz") for i in range(3)], "--out",
                  str(tmp_path / "out"), "--n-boot", "100", "--name", "full"])
    assert rc == 0
    res = json.loads((tmp_path / "out" / "metrics.json").read_text())
    vals = [auroc(p["test_label"], p["test_logit"]) for p in preds]
    assert res["aggregate"]["auroc"]["mean"] == pytest.approx(np.mean(vals))
    assert res["aggregate"]["auroc"]["sd"] == pytest.approx(np.std(vals, ddof=1))
    assert res["embedding_projection"] in ("PCA", "UMAP")
    md = (tmp_path / "out" / "metrics.md").read_text()
    table, cal = md.split("\nCalibration")
    assert "mean ± s.d." in table and table.count("\n| ") == 5
    assert cal.count("\n| ") == 4 and (tmp_path / "out" / "reliability.png").is_file()
    for png in ("roc.png", "embedding.png"):
        assert (tmp_path / "out" / png).read_bytes()[:4] == b"\x89PNG"


def test_pca_projection_separates_classes():
    p = _pred(1)
    xy, method = ev.project_2d(p["test_embedding"] * 3)
    y = p["test_label"]
    assert method in ("PCA", "UMAP") and xy.shape == (len(y), 2)
    assert max(auroc(y, xy[:, 0]), auroc(y, -xy[:, 0])) > 0.9


def test_missing_keys_raise(tmp_path):
    np.savez(tmp_path / "bad.npz", val_logit=np.zeros(3))
    with pytest.raises(ev.CromotexError, match="lacks"):
        ev.load_predictions(tmp_path / "bad.npz")
