"""`cromotex-train probe`: how much of each pathology a frozen ECG encoder's embedding carries.

A diagnostic for the ablation (issue: "if alignment does not beat direct ECG
classification, investigate why"). For every encoder given (any stage
checkpoint holding `f_ecg`: SSL, alignment or fine-tuning; plus `random`, a
freshly initialised encoder with the config's seed) it embeds every pair of
the cohort (float32 `[N, 256]`, eval mode, no augmentation), fits an
L2-regularised logistic regression per pathology on the training split
(features standardised with training statistics; the inverse regularisation
strength C picked on the validation split from `C_GRID`) and reports the test
AUROC with a percentile bootstrap 95% CI.

The probe is linear and the encoder frozen, so a low figure means the
information is not linearly present in the embedding, not that no model could
find it. Compare with the hand-crafted-feature baseline of
`cromotex-train phantom-report` on the same cohort.

With `--predictions NAME=predictions.npz` (a fine-tuning stage's test predictions)
it also checks how much a classifier follows heart rate and rhythm, the phantom's
strongest ECG signs: the test AUROC of the heart rate alone (either sign), and the
Spearman correlation of each model's test logits with the heart rate and the RR
coefficient of variation (`training.phantom.report.ecg_features` on the
preprocessed test ECGs).

Writes OUT/probe.json and OUT/probe.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from engine.constants import PATHOLOGIES
from training.jsonio import write_json

log = logging.getLogger(__name__)

#: Inverse L2 strengths tried on the validation split.
C_GRID: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0)


def embed_all(encoder, ecg: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Embeddings float32 `[N, 256]` of every row of `ecg` (float32 `[N, 12, 1000]`), eval mode, CPU."""
    import torch

    from training.stages.common import chunks, ecg_batch
    encoder.eval()
    out = []
    with torch.no_grad():
        for idx in chunks(np.arange(len(ecg)), batch_size):
            out.append(encoder(ecg_batch(ecg, idx, torch.device("cpu"))).float().numpy())
    return np.concatenate(out) if out else np.zeros((0, 256), np.float32)


def probe_auroc(emb: np.ndarray, y: np.ndarray, train: np.ndarray, val: np.ndarray, test: np.ndarray,
                n_boot: int = 1000, seed: int = 0) -> dict:
    """Linear probe of one pathology.

    Args:
        emb: float `[N, D]` embeddings of all pairs.
        y: int `[N]` 0/1 labels.
        train, val, test: int64 row indices of the splits.

    Returns:
        {"C": chosen C, "val_auroc": at that C, "test_auroc": [value, lo95, hi95]}.
    """
    from sklearn.linear_model import LogisticRegression

    from training.metrics import auroc, bootstrap_ci
    mean, sd = emb[train].mean(axis=0), emb[train].std(axis=0) + 1e-6
    z = (emb - mean) / sd
    best = None
    for c in C_GRID:
        model = LogisticRegression(C=c, max_iter=2000).fit(z[train], y[train])
        score = auroc(y[val], model.decision_function(z[val]))
        if best is None or score > best[0]:
            best = (score, c, model)
    val_auroc, c, model = best
    value, lo, hi = bootstrap_ci(y[test], model.decision_function(z[test]), auroc, n_resamples=n_boot, seed=seed)
    return {"C": c, "val_auroc": float(val_auroc), "test_auroc": [value, lo, hi]}


def rhythm_check(ecg: np.ndarray, labels: dict[str, np.ndarray], test: np.ndarray,
                 predictions: dict[str, Path]) -> dict:
    """Heart rate alone vs the classifiers' test logits.

    Args:
        ecg: float32 `[N, 12, 1000]` preprocessed ECGs of all pairs.
        labels: pathology -> int `[N]` 0/1 labels.
        test: int64 indices of the test pairs (the prediction files' `test_index`).
        predictions: name -> predictions.npz of a fine-tuning stage (keys test_logit, test_index, pathology).

    Returns:
        {"heart_rate_auroc": {pathology: AUROC of the heart rate alone, either sign},
         "models": {name: {"pathology", "test_auroc", "spearman_heart_rate", "spearman_rr_cv"}}}.
    """
    from scipy.stats import spearmanr

    from training.metrics import auroc
    from training.phantom.report import ECG_FEATURES, _fill_nan, ecg_feature_matrix
    feats = _fill_nan(ecg_feature_matrix(np.asarray(ecg[test])))
    hr, rr_cv = feats[:, ECG_FEATURES.index("heart_rate_bpm")], feats[:, ECG_FEATURES.index("rr_cv")]
    out: dict = {"heart_rate_auroc": {}, "models": {}}
    for p, y in labels.items():
        a = auroc(y[test].astype(int), hr)
        out["heart_rate_auroc"][p] = float(max(a, 1.0 - a))
    for name, path in predictions.items():
        with np.load(path) as d:
            if not np.array_equal(d["test_index"], test):
                raise ValueError(f"{path}: its test pairs are not this cohort's test split")
            p, logit = str(d["pathology"]), np.asarray(d["test_logit"], dtype=np.float64)
        out["models"][name] = {"pathology": p, "test_auroc": float(auroc(labels[p][test].astype(int), logit)),
                               "spearman_heart_rate": float(spearmanr(logit, hr)[0]),
                               "spearman_rr_cv": float(spearmanr(logit, rr_cv)[0])}
    return out


def load_encoder(spec: str, cfg):
    """`random` -> a fresh encoder (seeded by the config); else a checkpoint path -> its f_ecg."""
    import torch

    from training.stages.common import load_encoder_from, make_encoder
    if spec == "random":
        torch.manual_seed(cfg.seed)
        return make_encoder(cfg)
    encoder, _stage = load_encoder_from(spec, cfg)
    return encoder


def markdown(result: dict) -> str:
    """Test AUROC [95% CI] of every encoder x pathology as a Markdown table."""
    paths = result["pathologies"]
    lines = ["# Linear probe of frozen ECG embeddings (phantom; synthetic data, not clinical performance)", "",
             result["description"]]
    if result["encoders"]:
        lines += ["", "| encoder | " + " | ".join(paths) + " |", "|---|" + "---|" * len(paths)]
    for name, per in result["encoders"].items():
        cells = [f"{per[p]['test_auroc'][0]:.3f} [{per[p]['test_auroc'][1]:.3f}, {per[p]['test_auroc'][2]:.3f}]"
                 for p in paths]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    rc = result.get("rhythm_check")
    if rc:
        lines += ["", "## Heart rate alone vs the classifiers (test split)", "",
                  "Heart rate alone, test AUROC (either sign): "
                  + ", ".join(f"{p} {a:.3f}" for p, a in rc["heart_rate_auroc"].items()) + ".", "",
                  "| model | pathology | test AUROC | Spearman(logit, heart rate) | Spearman(logit, RR CV) |",
                  "|---|---|---|---|---|"]
        for name, m in rc["models"].items():
            lines.append(f"| {name} | {m['pathology']} | {m['test_auroc']:.3f} | {m['spearman_heart_rate']:+.2f} | "
                         f"{m['spearman_rr_cv']:+.2f} |")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="cromotex-train probe", description=__doc__.splitlines()[0])
    p.add_argument("--cohort", required=True, type=Path, help="COHORT directory")
    p.add_argument("--encoder", action="append", default=[], metavar="NAME=CHECKPOINT",
                   help="an encoder to probe (repeatable): a stage checkpoint holding f_ecg, or NAME=random")
    p.add_argument("--predictions", action="append", default=[], metavar="NAME=NPZ",
                   help="a fine-tuning stage's predictions.npz to compare with heart rate (repeatable)")
    p.add_argument("--preset", default="cpu", help="config preset giving the encoder's architecture (default cpu)")
    p.add_argument("--pathologies", nargs="+", default=list(PATHOLOGIES), choices=PATHOLOGIES)
    p.add_argument("--out", type=Path, required=True, help="folder for probe.json and probe.md")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples of the test CI")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """`cromotex-train probe --cohort C --encoder ssl=WORK/ssl/best.pt --encoder random=random --out DIR`"""
    import torch

    from training import config as config_mod
    from training.data import load_cohort
    from training.stages.common import configure_logging
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    if not args.encoder and not args.predictions:
        sys.stderr.write("cromotex-train probe: give at least one --encoder or --predictions\n")
        return 2
    configure_logging()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    cfg = config_mod.resolve(args.preset)
    co = load_cohort(args.cohort)
    splits = {s: co.indices(s) for s in ("train", "val", "test")}
    result: dict = {"pathologies": list(args.pathologies), "encoders": {}, "c_grid": list(C_GRID),
                    "command": "cromotex-train probe " + " ".join(argv or sys.argv[1:]),
                    "splits": {s: int(len(i)) for s, i in splits.items()}}
    for item in args.encoder:
        name, _, spec = item.partition("=")
        spec = spec or name
        emb = embed_all(load_encoder(spec, cfg), co.ecg)
        result["encoders"][name] = {p: probe_auroc(emb, co.labels[p].astype(int), splits["train"], splits["val"],
                                                   splits["test"], n_boot=args.n_boot)
                                    for p in args.pathologies}
        log.info("probe %s: %s", name, {p: round(v["test_auroc"][0], 3) for p, v in result["encoders"][name].items()})
    if args.predictions:
        result["rhythm_check"] = rhythm_check(
            co.ecg, {p: co.labels[p] for p in args.pathologies}, splits["test"],
            {name: Path(path) for name, _, path in (item.partition("=") for item in args.predictions)})
    parts = []
    if args.encoder:
        parts.append(f"Logistic regression (L2, C picked on validation from {list(C_GRID)}) on standardised frozen "
                     f"embeddings; trained on {len(splits['train'])} train pairs, test AUROC on "
                     f"{len(splits['test'])} test pairs with a {args.n_boot}-resample bootstrap 95% CI. Encoders: "
                     + "; ".join(args.encoder) + ".")
    if args.predictions:
        parts.append(f"Heart rate and RR irregularity of the {len(splits['test'])} preprocessed test ECGs "
                     "(training.phantom.report.ecg_features) against the test logits of: "
                     + "; ".join(args.predictions) + ".")
    result["description"] = " ".join(parts)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "probe.json", result)
    (args.out / "probe.md").write_text(markdown(result), encoding="utf-8")
    sys.stdout.write(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
