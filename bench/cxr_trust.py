"""What the chest X-ray teacher says on a set of images, before and after the gate.

Prints, per image, the teacher's probabilities and positive calls (the old output), the
teacher-embedding OOD distance and cut-off, the gate's decision, and the calls now shown; then
totals: positive rate per pathology without the gate, OOD flags, refused images.

    python3 bench/cxr_trust.py tests/data/cxr/png/nih/*.png tests/data/cxr/dicom/*.dcm
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from engine.inference import Predictor
from engine.io import read_cxr


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("images", nargs="+")
    ap.add_argument("--models", help="bundle directory (default: the shipped one)")
    args = ap.parse_args(argv)
    pred = Predictor(args.models, threads=1)
    positive, calls, n_ood, n_refused = Counter(), Counter(), 0, 0
    for f in args.images:
        image = read_cxr(f)
        raw = pred.predict_cxr(image)
        a = pred.assess_cxr(image)
        v0 = next(iter(raw.values()))
        n_ood += v0.ood
        n_refused += not a.gate.accepted
        for p, v in raw.items():
            positive[p] += v.positive
        for p, v in a.predictions.items():
            calls[(p, v.call)] += 1
        probs = " ".join(f"{p[:4]}={v.probability:.3f}{'+' if v.positive else '-'}" for p, v in raw.items())
        print(f"{f}\n  teacher: {probs}  distance {v0.ood_distance:.1f} (cut-off {v0.ood_cutoff:.1f})"
              f"\n  gate: {'accepted' if a.gate.accepted else 'REFUSED'}: {a.gate.reason[:110]}")
    n = len(args.images)
    print(f"\n{n} images; teacher positive without the gate: "
          + ", ".join(f"{p} {positive[p]}/{n}" for p in pred.cxr_pathologies)
          + f"; OOD flagged {n_ood}/{n}; refused by the gate {n_refused}/{n}")
    print("calls shown: " + ", ".join(f"{p} {c}: {k}" for (p, c), k in sorted(calls.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
