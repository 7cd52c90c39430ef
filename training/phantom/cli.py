"""`cromotex-train phantom [--subjects N] --seed S --out DIR [--force] [--workers W]`."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from engine.errors import OutputExistsError
from training.phantom.generate import generate

#: Default cohort size (v2): ~4,000 subjects give ~4,000 linked pairs, 600 validation pairs.
DEFAULT_SUBJECTS: int = 4000


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cromotex-train phantom",
                                description="Write a synthetic phantom cohort in the MIMIC layout "
                                            "(see docs/phantom.md).")
    p.add_argument("--subjects", type=int, default=DEFAULT_SUBJECTS,
                   help=f"number of subjects (>= 1; default {DEFAULT_SUBJECTS})")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed -> same bytes)")
    p.add_argument("--out", required=True, help="output directory (must be empty or new)")
    p.add_argument("--force", action="store_true", help="write into a non-empty directory")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                   help="worker processes (output does not depend on it)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.subjects < 1:
        print("cromotex-train phantom: --subjects must be at least 1", file=sys.stderr)
        return 2
    try:
        summary = generate(args.out, args.subjects, args.seed, force=args.force,
                           workers=max(1, args.workers), progress=not args.quiet)
    except OutputExistsError as exc:
        print(f"cromotex-train phantom: {exc}", file=sys.stderr)
        return 2
    for line in summary.lines():
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
