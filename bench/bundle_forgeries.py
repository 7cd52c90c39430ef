"""Which forged copies of the shipped bundle the engine accepts (issue 15, item 6).

    python3 bench/bundle_forgeries.py [--code DIR] [--sign-with KEY.pem] [--json OUT]

Each forgery (tests/engine/bundle_forgeries.py) is made on a copy of resources/models/
with every sha256 in manifest.json re-computed, as a forger would. The copy is then
opened as `cromotex predict` does (`engine.inference.Predictor`) and demo case 1 scored.
`--code DIR`: import `engine` from another checkout (e.g. /work/main, to measure the
code before a change). `--sign-with KEY.pem`: re-sign each forged manifest with that key
(a forger's own key, which no workstation trusts). Prints one line per forgery:
accepted (with edema's probability, OOD flag and the disclaimer shown) or refused (the
message).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--code", type=Path, default=REPO, help="checkout whose engine is measured")
    ap.add_argument("--sign-with", type=Path, help="re-sign every forged manifest with this key")
    ap.add_argument("--json", type=Path, help="also write the outcomes here")
    args = ap.parse_args()
    sys.path.insert(0, str(args.code))
    sys.path.insert(1, str(REPO / "tests" / "engine"))
    from bundle_forgeries import FORGERIES, rehash_unsigned, shallow_copy

    from engine.errors import CromotexError
    from engine.inference import Predictor
    from engine.io import read_ecg
    import engine
    print(f"engine from {Path(engine.__file__).parent}")
    ecg = read_ecg(REPO / "resources" / "demo" / "case1_cardiomegaly_edema_pleural_effusion_ecg.hea")
    outcomes = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, forge in {"(none)": None, **FORGERIES}.items():
            d = shallow_copy(REPO / "resources" / "models", Path(tmp) / name)
            what = forge(d) if forge else "unchanged copy"
            if forge:
                rehash_unsigned(d)
            if args.sign_with and forge:
                from engine.signing import load_private_key, sign_file
                sign_file(d / "manifest.json", load_private_key(args.sign_with))
            try:
                pred = Predictor(d, threads=1, parallel_models=False)
                r = pred.predict_ecg(ecg)["edema"]
                outcome = {"accepted": True, "edema_probability": round(r.probability, 4),
                           "edema_ood": bool(r.ood), "edema_positive": bool(r.positive),
                           "disclaimer": pred.bundle.disclaimer}
                line = (f"ACCEPTED  edema p={r.probability:.3f} ood={r.ood} positive={r.positive} "
                        f"disclaimer={pred.bundle.disclaimer!r}")
            except CromotexError as exc:
                outcome = {"accepted": False, "message": str(exc)}
                line = f"refused   {str(exc).split(': ', 2)[-1][:150]}"
            outcomes[name] = {"forgery": what, **outcome}
            print(f"{name:28s} {line}")
    if args.json:
        args.json.write_text(json.dumps(outcomes, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
