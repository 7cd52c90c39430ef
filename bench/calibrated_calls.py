"""Calibrated vs uncalibrated ECG outputs on real files: the calls must not change.

Copies a bundle (default: the shipped one) into a temporary folder, writes a temperature per ECG
model into the copy's manifest (with `threshold_calibrated`, as `cromotex-train build` writes it),
signs it with a throwaway key trusted for this run only, scores every ECG file given with both
bundles and prints: the call counts, the number of files whose call or positive flag differs
(must be 0), the largest |calibrated probability - sigmoid(logit(raw probability) / T)| and how
far the probabilities moved.

    PYTHONPATH=. python3 bench/calibrated_calls.py --temperature 1.7 0.6 2.5 \
        $(find /work/shared/data/ecg /work/shared/data/formats tests/data/ecg resources/demo -type f \
          \( -name "*.hea" -o -name "*.xml" -o -name "*.dcm" -o -name "*.scp" -o -name "*.SCP" -o -name "*.edf" \) | sort)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from engine.bundle import load_bundle
from engine.calibration import calibrate_probability, calibrated_threshold
from engine.constants import PATHOLOGIES
from engine.errors import CromotexError
from engine.inference import Predictor
from engine.io import read_ecg
from engine.resources import default_models_dir
from engine.signing import generate_keypair, load_private_key, load_public_key, sign_file
from engine.trust import load_trust


def calibrated_copy(src: Path, dst: Path, temperatures: dict[str, float], key_dir: Path):
    """(bundle directory, trust list): `src` with temperatures, signed by a throwaway key."""
    dst.mkdir()
    for f in src.iterdir():
        if f.is_file():
            (shutil.copyfile if f.name.startswith("manifest") else os.link)(f, dst / f.name)
    m = json.loads((dst / "manifest.json").read_text())
    for p, t in temperatures.items():
        e = m["pathologies"][p]["ecg"]
        e.update(temperature=t, threshold_calibrated=calibrated_threshold(e["threshold"], t))
    (dst / "manifest.json").write_text(json.dumps(m, indent=1))
    priv, pub = generate_keypair(key_dir, "bench")
    sign_file(dst / "manifest.json", load_private_key(priv))
    trust = load_trust(site=False)
    trust.add(load_public_key(pub), "bench", "bench/calibrated_calls.py")
    return dst, trust


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ecgs", nargs="+")
    ap.add_argument("--models", type=Path, default=None, help="bundle (default: the shipped one)")
    ap.add_argument("--temperature", type=float, nargs=len(PATHOLOGIES), default=[1.7, 0.6, 2.5],
                    metavar="T", help=f"one per pathology ({', '.join(PATHOLOGIES)})")
    args = ap.parse_args(argv)
    temps = dict(zip(PATHOLOGIES, args.temperature))
    src = args.models or default_models_dir()
    with tempfile.TemporaryDirectory(prefix="cromotex-calibrated-") as tmp:
        d, trust = calibrated_copy(Path(src), Path(tmp) / "bundle", temps, Path(tmp) / "keys")
        raw_p = Predictor(src, threads=1, parallel_models=False)
        cal_p = Predictor(load_bundle(d, trust), threads=1, parallel_models=False)
        calls: Counter = Counter()
        differ, scored, failed, max_err, moved = 0, 0, 0, 0.0, []
        for f in args.ecgs:
            try:
                record = read_ecg(f)
                raw, cal = raw_p.predict_ecg(record), cal_p.predict_ecg(record)
            except CromotexError:
                failed += 1
                continue
            scored += 1
            for p in PATHOLOGIES:
                calls[(p, raw[p].call)] += 1
                differ += (raw[p].call, raw[p].positive) != (cal[p].call, cal[p].positive)
                expected = float(calibrate_probability(raw[p].probability, temps[p]))
                max_err = max(max_err, abs(cal[p].probability - expected))
                moved.append(abs(cal[p].probability - raw[p].probability))
    print(f"bundle {raw_p.bundle.bundle_id} ({raw_p.precision}); temperatures {temps}")
    print(f"files scored {scored}, unreadable {failed}")
    for p in PATHOLOGIES:
        print(f"  {p}: " + ", ".join(f"{c} {calls[(p, c)]}" for c in
                                     ("positive", "negative", "borderline", "not_assessable")))
    print(f"findings whose call or positive flag differs calibrated vs uncalibrated: {differ} "
          f"of {scored * len(PATHOLOGIES)}")
    print(f"max |calibrated p - sigmoid(logit(raw p) / T)|: {max_err:.2e}")
    if moved:
        print(f"|calibrated p - raw p|: median {np.median(moved):.3f}, max {np.max(moved):.3f}")
    return 0 if differ == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
