"""`cromotex-train calibrate-bundle`: the chest X-ray teacher's embedding statistics and every
model's borderline band, computed from the cohort a bundle was built from, written into the bundle.

1. Teacher OOD statistics (`embedding_stats_cxr_teacher.npz`): the shipped teacher ONNX is run
   with onnxruntime on the cohort's images (`cxr.npy`: `engine.preprocess.preprocess_cxr` of each
   image, rounded to int16, as the teacher was trained on); the mean and precision of the
   **training split**'s embeddings and the cut-off come from `training.build.embedding_stats`,
   the same method as the ECG models' (Ledoit-Wolf covariance, 99.5th percentile of the training
   distances with the out-of-sample correction; with more dimensions than training images, where
   that correction is undefined, the larger of that percentile and the largest validation
   distance). The fraction of test images flagged and, for `--probe` images (e.g. real chest
   films), their distances are recorded in the manifest. The precision matrix is stored as its
   float32 upper triangle, compressed (2 MB instead of 8 for the full float64 matrix; the shipped
   bundle must stay under 60 MB; distances change by < 1e-4).
2. Borderline bands: for every pathology and model (the ECG model at the precision the bundle
   uses by default, and the teacher), the validation split's probabilities are resampled 1000
   times (seed 0) and the F1-maximising threshold (`training.metrics.best_f1_threshold`, the rule
   that chose the shipped threshold) is found on each resample; the band is the 2.5th..97.5th
   percentile of those thresholds, widened to hold the shipped threshold. A probability inside
   the band is called "borderline" (`engine.calls`). The test split's fraction inside the band and
   the accuracy of the threshold inside and outside it are recorded with the band.
   Calibrated ECG models (the manifest's entry has a `temperature` T, from `cromotex-train
   build`): the same bootstrap runs on the calibrated probabilities `sigmoid(logit / T)` that the
   engine shows, around `threshold_calibrated`, and the band is marked `"scale": "calibrated"`
   (`"raw"` otherwise; `engine.bundle` maps a raw band of a calibrated model with T). The
   ranking, hence every resample's chosen record, is the same; only the units differ.
3. The model card gets a section on the probabilities: calibrated (temperature T and test ECE
   before / after, per ECG model) or uncalibrated (`calibration_section`).
4. The manifest gets `embedding_stats` / `ood_cutoff` / `ood` in each `cxr` entry and
   `borderline` in every `ecg` and `cxr` entry, and the sha256 of every file again
   (docs/bundle.md). Other files are untouched.

`cromotex-train build` runs this on the bundle it writes.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

from engine.calibration import TEMPERATURE_RANGE, calibrated_probability
from engine.constants import PATHOLOGIES
from engine.numeric import sigmoid

log = logging.getLogger(__name__)

TEACHER_STATS = "embedding_stats_cxr_teacher.npz"
N_BOOT = 1000
BOOT_SEED = 0
BAND_LEVEL = 0.95
BAND_RULE = ("2.5th..97.5th percentile of the F1-maximising threshold over 1000 bootstrap resamples "
             "of the validation split (seed 0), widened to hold the shipped threshold")


def threshold_band(y: np.ndarray, prob: np.ndarray, threshold: float, n_boot: int = N_BOOT,
                   seed: int = BOOT_SEED) -> dict[str, Any] | None:
    """The borderline band of one model: bootstrap of the validation labels `y` (0/1 `[n]`) and
    probabilities `prob` (float `[n]`) (see module docstring).

    Returns:
        {"low", "high", "level", "resamples", "seed", "n_val", "val_threshold" (the F1-maximising
        threshold on all of `y`, which should equal `threshold`), "rule"}; None when fewer than
        half the resamples hold both classes (no band is then stated).
    """
    from training.metrics import best_f1_threshold
    y = np.asarray(y).astype(int)
    prob = np.asarray(prob, dtype=np.float64)
    rng = np.random.default_rng(seed)
    thresholds = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        if y[idx].min() == y[idx].max():  # one class only: no threshold to choose
            continue
        thresholds.append(best_f1_threshold(y[idx], prob[idx])[0])
    if len(thresholds) < n_boot // 2:  # a validation split with (almost) one class only
        return None
    alpha = (1.0 - BAND_LEVEL) / 2.0
    low, high = np.quantile(thresholds, [alpha, 1.0 - alpha])
    return {"low": float(min(low, threshold)), "high": float(max(high, threshold)),
            "level": BAND_LEVEL, "resamples": len(thresholds), "seed": seed, "n_val": int(len(y)),
            "val_threshold": float(best_f1_threshold(y, prob)[0]), "rule": BAND_RULE}


def band_effect(band: dict[str, Any], threshold: float, y: np.ndarray, prob: np.ndarray) -> dict[str, Any]:
    """How the band splits the test split (labels `y`, probabilities `prob`): the fraction called
    borderline and the accuracy of `prob >= threshold` inside and outside the band (None when empty)."""
    inside = (prob >= band["low"]) & (prob <= band["high"])
    correct = (prob >= threshold) == (np.asarray(y) == 1)
    return {"test_fraction_borderline": float(np.mean(inside)),
            "test_accuracy_inside": float(np.mean(correct[inside])) if inside.any() else None,
            "test_accuracy_outside": float(np.mean(correct[~inside])) if (~inside).any() else None}


def _set_band(entry: dict[str, Any], y: np.ndarray, prob: np.ndarray, model: str,
              y_test: np.ndarray, prob_test: np.ndarray, calibrated: bool = False) -> dict | None:
    """Put the band of one manifest model entry in `entry["borderline"]` (removed when none),
    with its effect on the test split. `calibrated`: `prob` / `prob_test` are the calibrated
    probabilities and the band is around `entry["threshold_calibrated"]` ("scale": "calibrated")."""
    threshold = entry["threshold_calibrated"] if calibrated else entry["threshold"]
    band = threshold_band(y, prob, threshold)
    if band is None:
        entry.pop("borderline", None)
        return None
    entry["borderline"] = {**band, "scale": "calibrated" if calibrated else "raw", "model": model,
                           **band_effect(band, threshold, y_test, prob_test)}
    return entry["borderline"]


def _ecg_probabilities(entry: dict[str, Any], logit: np.ndarray) -> tuple[np.ndarray, bool]:
    """(probabilities the engine shows for these raw logits `[N]`, calibrated?): `sigmoid(logit / T)`
    when the entry states a temperature T, else `sigmoid(logit)`."""
    t = entry.get("temperature")
    if t is None:
        return sigmoid(logit), False
    return calibrated_probability(logit, float(t)), True


def _probe_distances(bundle_dir: Path, files: list[Path], mean: np.ndarray, precision: np.ndarray,
                     teacher: str) -> list[np.ndarray]:
    """Teacher embeddings' distances of image files read and preprocessed as the engine does."""
    from engine.io import read_cxr
    from engine.preprocess import preprocess_cxr
    from training import onnx_run
    from training.build import mahalanobis
    sess = onnx_run.session(bundle_dir / teacher)
    out = []
    for f in files:
        x = preprocess_cxr(read_cxr(f))[None].astype(np.float32)
        _, emb = sess.run(["logit", "embedding"], {"cxr": x})
        out.append(float(mahalanobis(emb.astype(np.float64), mean, precision)[0]))
    return out


def calibrate_bundle(bundle_dir: Path, cohort_dir: Path, signing_key: Path, probes: list[Path] = (),
                     batch: int = 16) -> dict[str, Any]:
    """Write the teacher statistics and the borderline bands into `bundle_dir` (module docstring),
    then re-sign its manifest with `signing_key` (Ed25519 private key, `cromotex-train keygen`).

    Returns:
        {"teacher_ood": summary, "bands": {pathology: {"ecg": band, "cxr": band}}}.
    """
    from training import onnx_run
    from training.build import _write_manifest, embedding_stats, mahalanobis
    from training.data import load_cohort
    bundle_dir, cohort_dir = Path(bundle_dir), Path(cohort_dir)
    manifest = json.loads((bundle_dir / "manifest.json").read_text(encoding="utf-8"))
    co = load_cohort(cohort_dir)
    splits = {s: co.indices(s) for s in ("train", "val", "test")}
    paths = manifest["pathologies"]
    summary: dict[str, Any] = {"bands": {}}

    teachers = sorted({paths[p]["cxr"]["file"] for p in PATHOLOGIES if "cxr" in paths[p]})
    if len(teachers) > 1:
        raise ValueError(f"one teacher file expected, the manifest lists {teachers}")
    t_out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if teachers:
        sess = onnx_run.session(bundle_dir / teachers[0])
        for s, idx in splits.items():
            log.info("teacher on the %s split (%d images)", s, len(idx))
            t_out[s] = onnx_run.predict(sess, "cxr", co.cxr, idx, batch)
        mean, precision, cutoff, ood = embedding_stats(t_out["train"][1], t_out["val"][1])
        precision32 = precision.astype(np.float32)
        np.savez_compressed(bundle_dir / TEACHER_STATS, mean=mean,
                            precision_triu=precision32[np.triu_indices(len(mean))])
        precision = precision32.astype(np.float64)  # what the engine will use
        d_test = mahalanobis(t_out["test"][1], mean, precision)
        d_val = mahalanobis(t_out["val"][1], mean, precision)
        ood.update(test_fraction_flagged=float(np.mean(d_test > cutoff)),
                   val_fraction_flagged=float(np.mean(d_val > cutoff)),
                   n_dims=int(mean.shape[0]), precision_dtype="float32 upper triangle")
        if probes:
            d = _probe_distances(bundle_dir, list(probes), mean, precision, teachers[0])
            ood["probe_flagged"] = f"{sum(v > cutoff for v in d)}/{len(d)}"
            ood["probe_distances"] = {Path(f).name: round(v, 2) for f, v in zip(probes, d)}
        summary["teacher_ood"] = ood
        log.info("teacher OOD cut-off %.2f; test flagged %.3f; probes %s", cutoff,
                 ood["test_fraction_flagged"], ood.get("probe_flagged"))

    for p in PATHOLOGIES:
        y_val = co.label(p)[splits["val"]]
        e = paths[p]["ecg"]
        file = e.get("int8_file") if all(paths[q]["ecg"].get("int8_file") for q in PATHOLOGIES) \
            else e["file"]
        y_test = co.label(p)[splits["test"]]
        sess = onnx_run.session(bundle_dir / file)
        lg, _ = onnx_run.predict(sess, "ecg", co.ecg, splits["val"], 64)
        lg_test, _ = onnx_run.predict(sess, "ecg", co.ecg, splits["test"], 64)
        prob_val, calibrated = _ecg_probabilities(e, lg[:, 0])
        summary["bands"][p] = {"ecg": _set_band(e, y_val, prob_val, file, y_test,
                                                _ecg_probabilities(e, lg_test[:, 0])[0], calibrated)}
        if "cxr" in paths[p]:
            c = paths[p]["cxr"]
            col = c["output_index"]
            summary["bands"][p]["cxr"] = _set_band(c, y_val, sigmoid(t_out["val"][0][:, col]), c["file"],
                                                   y_test, sigmoid(t_out["test"][0][:, col]))
            c.update(embedding_stats=TEACHER_STATS, ood_cutoff=summary["teacher_ood"]["cutoff"],
                     ood=summary["teacher_ood"])
        for m, band in summary["bands"][p].items():
            if band is None:
                log.warning("%s %s: the validation split has too few cases of one class for a "
                            "threshold band; none stated", p, m)
            else:
                log.info("%s %s: threshold band %.4f..%.4f (%s probabilities)", p, m, band["low"],
                         band["high"], band["scale"])
    update_model_card(bundle_dir, manifest)
    _write_manifest(bundle_dir, manifest, signing_key)
    return summary


def update_model_card(bundle_dir: Path, manifest: dict) -> None:
    """Put the gate / teacher-OOD / borderline-band section and the saliency section into the
    bundle's MODEL_CARD.md (replacing earlier versions of them); the caller re-signs."""
    from training.model_card import (TRUST_HEADING, replace_section, saliency_section,
                                     trust_section)
    card_path = Path(bundle_dir) / "MODEL_CARD.md"
    if not card_path.is_file():
        return
    card = card_path.read_text(encoding="utf-8")
    card = replace_section(card, TRUST_HEADING, trust_section(manifest), before="## Demo cases")
    card = replace_section(card, CALIBRATION_HEADING, calibration_section(manifest), before="## Demo cases")
    sal = saliency_section(bool(manifest.get("demo", True)))
    card = replace_section(card, sal[0], sal, before="## Known failure modes and limitations")
    card_path.write_text(card, encoding="utf-8")


CALIBRATION_HEADING = "## Calibrated probabilities"


def calibration_section(manifest: dict) -> list[str]:
    """The model card's section on the ECG probabilities: calibrated by temperature scaling (T per
    model, the test ECE before / after, the calibrated threshold) or, for a model without a
    temperature, uncalibrated."""
    entries = {p: v["ecg"] for p, v in manifest["pathologies"].items()}
    lines = [CALIBRATION_HEADING, ""]
    if not any(e.get("temperature") is not None for e in entries.values()):
        return lines + ["The ECG probabilities are **uncalibrated**: `sigmoid(logit)` of the model output. "
                        "They rank records but are not frequencies; read them against the threshold and "
                        "its borderline band only.", ""]
    lines += ["The ECG probabilities are **calibrated** by temperature scaling (Guo et al. 2017): one "
              "temperature T per model fitted on the validation split (negative log-likelihood); the engine "
              "shows `sigmoid(logit / T)`, compares it with the calibrated threshold (the validation "
              "threshold mapped with the same T, so every call is the uncalibrated model's) and states the "
              "borderline band on the same scale. ECE: expected calibration error over 10 equal-width bins, "
              "test split. The borderline bands above are on the same calibrated scale (their threshold column "
              "is the calibrated threshold).", "",
              "| pathology | temperature T | threshold raw -> calibrated | test ECE raw -> calibrated |",
              "|---|---|---|---|"]
    for p, e in entries.items():
        t = e.get("temperature")
        if t is None:
            lines.append(f"| {p} | uncalibrated | {e['threshold']:.3f} | n/a |")
            continue
        c = e.get("calibration") or {}
        ece = f"{_fmt(c.get('test_ece_raw'))} -> {_fmt(c.get('test_ece_calibrated'))}" if c else "n/a"
        bound = " (at the end of the search range: the fit hit its bound)" if any(
            abs(t - end) <= 1e-6 * end for end in TEMPERATURE_RANGE) else ""
        lines.append(f"| {p} | {t:.3f}{bound} | {e['threshold']:.3f} -> {e['threshold_calibrated']:.3f} | "
                     f"{ece} |")
    return lines + [""]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="cromotex-train calibrate-bundle", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("--bundle", type=Path, required=True, help="the bundle directory to update in place")
    p.add_argument("--cohort", type=Path, required=True, help="the COHORT the bundle was built from")
    p.add_argument("--signing-key", type=Path, required=True, metavar="KEY.pem",
                   help="Ed25519 private key that re-signs the updated manifest (`cromotex-train keygen`)")
    p.add_argument("--probe", type=Path, nargs="*", default=[],
                   help="image files whose teacher-embedding distances are recorded (e.g. real chest films)")
    p.add_argument("--summary", type=Path, help="also write the summary JSON here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from training.jsonio import write_json
    from training.stages.common import configure_logging
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    configure_logging()
    summary = calibrate_bundle(args.bundle, args.cohort, args.signing_key, args.probe)
    if args.summary:
        write_json(args.summary, summary)
    from engine.bundle import load_bundle
    load_bundle(args.bundle)  # the bundle must still verify
    return 0


if __name__ == "__main__":
    sys.exit(main())
