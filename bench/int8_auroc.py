"""AUROC of the bundle's int8 vs fp32 ECG models on the phantom test split, through the engine.

    python bench/int8_auroc.py [--cohort work/cohort] [--models DIR] [--json OUT]

Each test-split ECG of the cohort (already preprocessed, float32 `[12, 1000]`) is scored by
`engine.inference.Predictor` exactly as the app scores a 10 s record (one window per
onnxruntime run), once with the int8 and once with the fp32 models. Prints, per pathology,
both test AUROCs, their difference (int8 - fp32; the target is |change| <= 0.005), the
largest probability difference, and the change the manifest recorded at export time.
Needs scikit-learn and the `training` package (to open the cohort); the engine does not.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.inference import Predictor  # noqa: E402


def scores(predictor: Predictor, ecg: np.ndarray) -> dict[str, np.ndarray]:
    """pathology -> float64 `[N]` probabilities, one onnxruntime run per ECG window."""
    out = {p: np.empty(len(ecg)) for p in predictor.pathologies}
    for i in range(len(ecg)):
        for p, s in predictor.predict_ecg_inputs(np.asarray(ecg[i:i + 1])).items():
            out[p][i] = s.probabilities[0]
    return out


def main(argv: list[str] | None = None) -> int:
    from sklearn.metrics import roc_auc_score

    from training.data import load_cohort

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cohort", default=str(REPO / "work" / "cohort"))
    ap.add_argument("--models", help="bundle directory (default: resources/models/)")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args(argv)

    cohort = load_cohort(args.cohort)
    test = np.flatnonzero(cohort.split == "test")
    ecg = np.asarray(cohort.ecg[test], dtype=np.float32)
    int8 = Predictor(args.models, precision="int8")
    fp32 = Predictor(args.models, precision="fp32")
    s8, s32 = scores(int8, ecg), scores(fp32, ecg)
    res = {"bundle_id": int8.bundle.bundle_id, "cohort": str(args.cohort), "n_test": int(len(test)),
           "scoring": "engine.inference.Predictor, one 10 s window per onnxruntime run",
           "pathologies": {}}
    for p in int8.pathologies:
        y = cohort.labels[p][test]
        a8, a32 = float(roc_auc_score(y, s8[p])), float(roc_auc_score(y, s32[p]))
        export = int8.bundle.manifest["pathologies"][p]["ecg"].get("export", {})
        res["pathologies"][p] = {
            "n_positive": int(y.sum()), "auroc_int8": a8, "auroc_fp32": a32,
            "auroc_change_int8_minus_fp32": a8 - a32,
            "max_abs_prob_diff": float(np.abs(s8[p] - s32[p]).max()),
            "manifest_int8_test_auroc_change": export.get("int8_test_auroc_change"),
            "within_0_005": abs(a8 - a32) <= 0.005}
        r = res["pathologies"][p]
        print(f"{p}: test AUROC int8 {a8:.4f}, fp32 {a32:.4f}, change {a8 - a32:+.5f} "
              f"(manifest {r['manifest_int8_test_auroc_change']}); max |dprob| "
              f"{r['max_abs_prob_diff']:.1e}; n={len(test)} ({r['n_positive']} positive)")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
    return 0 if all(r["within_0_005"] for r in res["pathologies"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
