"""`cromotex-train keygen` and `cromotex-train sign-bundle`: the bundle signing keys.

    cromotex-train keygen --out DIR [--name NAME]
        writes DIR/NAME-ed25519.pem (private key, mode 600: keep it outside any
        repository, never share it) and DIR/NAME-ed25519.pub (public key: add it to
        the trust list of every workstation that should accept your bundles).

    cromotex-train sign-bundle BUNDLE_DIR --key PRIVATE.pem [--rehash]
        signs BUNDLE_DIR/manifest.json (writes manifest.json.sig). Every file the
        manifest lists must still match its sha256, so a damaged or edited bundle is
        not signed by accident; `--rehash` first recomputes the listed files' sha256
        (for a bundle you changed on purpose, e.g. a regenerated model card).

`cromotex-train build --signing-key PRIVATE.pem` signs the bundle it writes (`sign_bundle`).
The format and the cryptography are `engine.signing`'s (the `cryptography` package).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from engine.bundle import MANIFEST, sha256_file
from engine.errors import BundleError
from engine.signing import generate_keypair, key_id, load_private_key, sign_file
from training.jsonio import write_json

log = logging.getLogger(__name__)


def rehash_manifest(bundle_dir: Path) -> list[str]:
    """Recompute the sha256 of every file `manifest.json` lists (in place, key order and
    formatting kept); returns the names whose hash changed."""
    path = bundle_dir / MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    changed = []
    for name, digest in manifest.get("files", {}).items():
        new = sha256_file(bundle_dir / name)
        if new != digest:
            manifest["files"][name] = new
            changed.append(name)
    if changed:
        write_json(path, manifest)
    return changed


def sign_bundle(bundle_dir: str | Path, key_path: str | Path, rehash: bool = False) -> str:
    """Sign a bundle's manifest with the private key at `key_path`; returns the key id.

    Raises:
        BundleError: no manifest, a listed file missing or (without `rehash`) changed, or a
            bad key file.
    """
    bundle_dir = Path(bundle_dir)
    key = load_private_key(key_path)
    path = bundle_dir / MANIFEST
    if not path.is_file():
        raise BundleError(f"{bundle_dir}: no {MANIFEST}: not a model bundle")
    if rehash:
        for name in rehash_manifest(bundle_dir):
            log.info("sha256 of %s updated in %s", name, MANIFEST)
    manifest = json.loads(path.read_text(encoding="utf-8"))
    for name, digest in manifest.get("files", {}).items():
        f = bundle_dir / name
        if not f.is_file():
            raise BundleError(f"{bundle_dir}: {name} is listed in {MANIFEST} but missing; not signed")
        if sha256_file(f) != digest:
            raise BundleError(f"{bundle_dir}: {name} does not match its sha256 in {MANIFEST}; not "
                              "signed (use --rehash if you changed it on purpose)")
    sign_file(path, key)
    kid = key_id(key.public_key())
    return kid


def keygen_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="cromotex-train keygen",
                                description="Make an Ed25519 key pair for signing model bundles.")
    p.add_argument("--out", required=True, type=Path, help="folder for the key files (outside any "
                                                            "repository)")
    p.add_argument("--name", default="cromotex-site", help="file name stem (default cromotex-site)")
    args = p.parse_args(argv)
    priv, pub = generate_keypair(args.out, args.name)
    kid = key_id(load_private_key(priv).public_key())
    print(f"private key: {priv} (keep it secret; never commit it)\npublic key:  {pub}\nkey id:      {kid}")
    return 0


def sign_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="cromotex-train sign-bundle",
                                description="Sign a model bundle's manifest.json (writes manifest.json.sig).")
    p.add_argument("bundle", type=Path, help="bundle directory (holds manifest.json)")
    p.add_argument("--key", required=True, type=Path, help="Ed25519 private key (PEM)")
    p.add_argument("--rehash", action="store_true",
                   help="recompute the sha256 of every listed file before signing")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    kid = sign_bundle(args.bundle, args.key, rehash=args.rehash)
    print(f"signed {args.bundle / MANIFEST} with key {kid}")
    return 0


if __name__ == "__main__":
    sys.exit(sign_main())
