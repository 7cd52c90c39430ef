"""`cromotex deid IN... --out DIR [--key-file F] [--keep-age-sex]`: de-identified copies."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TextIO

from engine.errors import CromotexError

#: Environment variable holding the export key (hex), when no --key-file is given.
KEY_ENV = "CROMOTEX_DEID_KEY"


def build_deid_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="cromotex deid",
        description="Write de-identified copies of ECG / chest X-ray files (DICOM by the PS3.15 Basic "
                    "Application Level Confidentiality Profile; WFDB, MUSE / Philips / HL7 XML, EDF "
                    "headers stripped) and a report of what was changed. Originals are never modified.")
    ap.add_argument("inputs", nargs="+", metavar="IN", help="files, folders (recursive) or DICOMDIRs")
    ap.add_argument("--out", required=True, metavar="DIR", help="empty or new folder outside the sources")
    ap.add_argument("--key-file", metavar="F",
                    help="file holding the secret key (any bytes): the same key gives the same date "
                         "offsets, pseudonyms and UIDs across exports (default: $" + KEY_ENV +
                         " as hex, else a random key for this export)")
    ap.add_argument("--keep-age-sex", action="store_true",
                    help="keep age and sex (PS3.15 Retain Patient Characteristics Option)")
    ap.add_argument("--store", metavar="DB", help="log each export in this study store's audit trail")
    ap.add_argument("--user", help="who exports (for the audit trail)")
    return ap


def run_deid(argv: list[str], out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    from engine.deid import deidentify

    try:
        args = build_deid_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        key = None
        if args.key_file:
            with open(args.key_file, "rb") as fh:
                key = fh.read()
        elif os.environ.get(KEY_ENV):
            key = bytes.fromhex(os.environ[KEY_ENV])
        store = None
        if args.store:
            from engine.store.db import Store

            store = Store(args.store)
        report = deidentify(args.inputs, args.out, key=key, keep_characteristics=args.keep_age_sex,
                            store=store, user=args.user)
    except OSError as exc:
        err.write(f"cromotex deid: cannot read the key file {args.key_file} ({exc.strerror})\n")
        return 2
    except ValueError:
        err.write(f"cromotex deid: ${KEY_ENV} must be hexadecimal\n")
        return 2
    except CromotexError as exc:
        err.write(f"cromotex deid: {exc}\n")
        return 2
    for f in report.files:
        if not f.ok:
            err.write(f"not exported: {f.error}\n")
    out.write(f"{report.n_ok} files de-identified, {report.n_failed} not exported; report "
              f"{report.report_path}\n")
    return 0 if report.n_failed == 0 else 1
