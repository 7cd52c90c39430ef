"""`cromotex-train evaluate`: AUROC, AUPRC and F1 with bootstrap 95% CIs, across seeds.

Inputs: one `predictions*.npz` per seed (written by finetune or pretrain-cxr:
`val_logit`, `val_label`, `test_logit`, `test_label`, optional `test_embedding`),
or an exported ECG ONNX model plus the cohort (scored here with onnxruntime).

Per seed: the F1 threshold is chosen on the validation split (the probability
maximising F1) and applied to the test split; test AUROC, AUPRC and F1 with
percentile bootstrap 95% CIs (`--n-boot` resamples of the test set, seeded).
Across seeds: mean and sample standard deviation of each metric.

Calibration: a temperature fitted on the validation logits (`training.calibration`), with
the test ECE before and after, in metrics.json ("calibration") and metrics.md.

Writes OUT/metrics.json, OUT/metrics.md, OUT/roc.png (test ROC of every seed),
OUT/reliability.png (test reliability diagram of the first run, raw and calibrated)
and OUT/embedding.png (2-D projection of the test ECG embeddings by class:
UMAP if `umap` is installed, else PCA).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from engine.errors import CromotexError
from training.calibration import calibrated_probability, calibration_report, plot_reliability
from training.jsonio import write_json
from training.metrics import auprc, auroc, best_f1_threshold, bootstrap_ci, f1_at, roc_curve, sigmoid

log = logging.getLogger(__name__)

METRICS = ("auroc", "auprc", "f1")


def load_predictions(path: str | Path) -> dict[str, np.ndarray]:
    """A predictions .npz as a dict; CromotexError when keys are missing."""
    path = Path(path)
    if not path.is_file():
        raise CromotexError(f"{path} does not exist; run finetune (or pretrain-cxr) first.")
    with np.load(path, allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    missing = {"val_logit", "val_label", "test_logit", "test_label"} - set(data)
    if missing:
        raise CromotexError(f"{path} lacks {', '.join(sorted(missing))}; it is not a predictions file.")
    return data


def evaluate_one(pred: dict[str, np.ndarray], n_boot: int = 1000, seed: int = 0) -> dict:
    """Metrics of one run: threshold from validation, test metrics as [value, lo95, hi95]."""
    p_val, p_test = sigmoid(pred["val_logit"]), sigmoid(pred["test_logit"])
    y_val, y_test = pred["val_label"].astype(int), pred["test_label"].astype(int)
    threshold, val_f1 = best_f1_threshold(y_val, p_val)
    out = {"threshold": threshold, "val_f1": val_f1, "val_auroc": auroc(y_val, p_val),
           "n_test": int(len(y_test)), "n_test_positive": int(y_test.sum())}
    fns = {"auroc": auroc, "auprc": auprc, "f1": lambda y, s: f1_at(y, s, threshold)}
    out["test"] = {k: list(bootstrap_ci(y_test, p_test, fn, n_boot, seed)) for k, fn in fns.items()}
    try:  # temperature fitted on validation; ECE before / after (training.calibration)
        out["calibration"] = calibration_report(pred["val_logit"], y_val, pred["test_logit"], y_test, threshold)
    except ValueError as exc:
        out["calibration"] = {"temperature": float("nan"), "error": str(exc)}
    return out


def aggregate(runs: list[dict]) -> dict:
    """Mean and s.d. (ddof=1; 0 for one run) across runs of each test metric's value."""
    agg = {}
    for k in METRICS:
        vals = np.array([r["test"][k][0] for r in runs], dtype=float)
        agg[k] = {"mean": float(np.nanmean(vals)),
                  "sd": float(np.nanstd(vals, ddof=1)) if len(vals) > 1 else 0.0, "values": vals.tolist()}
    return agg


def markdown_table(name: str, runs: list[dict], agg: dict) -> str:
    """Markdown table: one row per seed (value [95% CI]) and a mean ± s.d. row."""
    lines = [f"### {name}", "", "| run | AUROC | AUPRC | F1 | threshold |", "|---|---|---|---|---|"]
    for i, r in enumerate(runs):
        cells = [f"{r['test'][k][0]:.3f} [{r['test'][k][1]:.3f}, {r['test'][k][2]:.3f}]" for k in METRICS]
        lines.append(f"| {r.get('source', i)} | " + " | ".join(cells) + f" | {r['threshold']:.3f} |")
    lines.append("| **mean ± s.d.** | " + " | ".join(f"{agg[k]['mean']:.3f} ± {agg[k]['sd']:.3f}" for k in METRICS)
                 + " | |")
    return "\n".join(lines) + "\n"


def calibration_table(runs: list[dict]) -> str:
    """Markdown: temperature and test ECE before / after per run ("" when none was fitted)."""
    lines: list[str] = []
    cal = [r.get("calibration", {}) for r in runs]
    if any("test_ece_raw" in c for c in cal):
        lines += ["", "Calibration (temperature scaling fitted on validation; ECE, 10 bins, test split):", "",
                  "| run | temperature | ECE raw | ECE calibrated |", "|---|---|---|---|"]
        for i, (r, c) in enumerate(zip(runs, cal)):
            if "test_ece_raw" in c:
                lines.append(f"| {r.get('source', i)} | {c['temperature']:.3f} | {c['test_ece_raw']:.3f} | "
                             f"{c['test_ece_calibrated']:.3f} |")
    return "\n".join(lines) + "\n" if lines else ""


def plot_roc(preds: list[dict[str, np.ndarray]], labels: list[str], path: Path, title: str) -> None:
    """Test ROC curves of each run into a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    many = len(preds) > 3  # a long legend goes beside the axes instead of over the curves
    fig, ax = plt.subplots(figsize=(9.0 if many else 4.5, 4.5), dpi=120)
    for p, lab in zip(preds, labels):
        fpr, tpr, _ = roc_curve(p["test_label"], p["test_logit"])
        ax.plot(fpr, tpr, lw=1.5, label=f"{lab} (AUROC {auroc(p['test_label'], p['test_logit']):.3f})")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title=title, xlim=(0, 1), ylim=(0, 1))
    ax.set_aspect("equal")
    if many:
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    else:
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def project_2d(x: np.ndarray, seed: int = 0) -> tuple[np.ndarray, str]:
    """[n, d] -> ([n, 2], method): UMAP when installed, else PCA (SVD of centred data)."""
    try:
        import umap  # type: ignore
        return umap.UMAP(n_components=2, random_state=seed).fit_transform(x), "UMAP"
    except ImportError:
        xc = x - x.mean(0)
        _, _, vt = np.linalg.svd(xc, full_matrices=False)
        return xc @ vt[:2].T, "PCA"


def plot_embedding(emb: np.ndarray, y: np.ndarray, path: Path, title: str) -> str:
    """Scatter of the 2-D projection of embeddings [n, d], coloured by class; returns the method."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    xy, method = project_2d(np.asarray(emb, dtype=np.float64))
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=120)
    for cls, colour, name in ((0, "tab:blue", "negative"), (1, "tab:red", "positive")):
        m = y == cls
        ax.scatter(xy[m, 0], xy[m, 1], s=6, c=colour, alpha=0.6, label=f"{name} (n={int(m.sum())})")
    ax.set(title=f"{title} ({method})", xlabel=f"{method} 1", ylabel=f"{method} 2")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return method


def predictions_from_onnx(onnx_path: str | Path, cohort: str | Path, pathology: str | None = None,
                          batch: int = 32) -> dict[str, np.ndarray]:
    """Score the cohort's val and test ECGs with an exported ECG model (onnxruntime)."""
    from training import onnx_run
    from training.data import load_cohort
    sess = onnx_run.session(onnx_path)
    meta = sess.get_modelmeta().custom_metadata_map
    pathology = pathology or json.loads(meta.get("cromotex.pathologies", "[null]"))[0]
    if not pathology:
        raise CromotexError(f"{onnx_path} names no pathology; pass --pathology.")
    co = load_cohort(cohort)
    out: dict[str, np.ndarray] = {"pathology": np.array(pathology)}
    for split in ("val", "test"):
        idx = co.indices(split)
        logits, out[f"{split}_embedding"] = onnx_run.predict(sess, "ecg", co.ecg, idx, batch)
        out[f"{split}_logit"] = logits[:, 0]
        out[f"{split}_label"] = co.label(pathology)[idx]
    return out


def evaluate(preds: list[dict[str, np.ndarray]], sources: list[str], out: str | Path, name: str = "model",
             n_boot: int = 1000, seed: int = 0) -> dict:
    """Evaluate runs (one per seed), write metrics.json/.md and the plots; return the JSON dict."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    for p, src in zip(preds, sources):
        r = evaluate_one(p, n_boot=n_boot, seed=seed)
        r["source"] = src
        runs.append(r)
    agg = aggregate(runs)
    result = {"name": name, "n_boot": n_boot, "bootstrap_seed": seed, "runs": runs, "aggregate": agg}
    write_json(out / "metrics.json", result, nan="literal", trailing_newline=False)
    (out / "metrics.md").write_text(markdown_table(name, runs, agg) + calibration_table(runs))
    plot_roc(preds, sources, out / "roc.png", f"{name}: test ROC")
    t0 = runs[0].get("calibration", {}).get("temperature", float("nan"))
    if np.isfinite(t0):
        y0 = preds[0]["test_label"].astype(int)
        plot_reliability({"raw": (sigmoid(preds[0]["test_logit"]), y0),
                          f"T = {t0:.2f}": (calibrated_probability(preds[0]["test_logit"], t0), y0)},
                         out / "reliability.png", f"{name}: test reliability ({sources[0]})")
    if "test_embedding" in preds[0] and len(preds[0]["test_embedding"]) >= 3:
        result["embedding_projection"] = plot_embedding(preds[0]["test_embedding"], preds[0]["test_label"],
                                                        out / "embedding.png", f"{name}: test ECG embeddings")
        write_json(out / "metrics.json", result, nan="literal", trailing_newline=False)
    return result


def main(argv: list[str] | None = None) -> int:
    """`cromotex-train evaluate --predictions RUN1/predictions.npz RUN2/... --out DIR`
    or `cromotex-train evaluate --onnx ecg_x.onnx --cohort C --out DIR`."""
    p = argparse.ArgumentParser(prog="cromotex-train evaluate", description=__doc__.splitlines()[0])
    p.add_argument("--predictions", nargs="+", help="predictions .npz files, one per seed")
    p.add_argument("--onnx", nargs="+", help="exported ECG ONNX models (one per seed) to score on --cohort")
    p.add_argument("--cohort", help="COHORT directory (with --onnx)")
    p.add_argument("--pathology", help="pathology (default: from the ONNX metadata)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--name", default="model", help="row name in the tables")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if bool(args.predictions) == bool(args.onnx):
        p.error("give either --predictions or --onnx (with --cohort)")
    if args.onnx:
        if not args.cohort:
            p.error("--onnx needs --cohort")
        preds = [predictions_from_onnx(f, args.cohort, args.pathology) for f in args.onnx]
        sources = list(args.onnx)
    else:
        preds = [load_predictions(f) for f in args.predictions]
        sources = list(args.predictions)
    result = evaluate(preds, sources, args.out, args.name, args.n_boot, args.seed)
    sys.stdout.write(markdown_table(args.name, result["runs"], result["aggregate"]))
    return 0
