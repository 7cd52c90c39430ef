"""Ed25519 signatures of a model bundle's manifest (format: docs/bundle.md, "Signature").

The manifest (`manifest.json`) carries the sha256 of every other bundle file, the
thresholds, OOD cut-offs, disclaimer and metadata, so one signature over its exact
bytes covers the whole bundle. The signature is detached, in `manifest.json.sig`
beside it (JSON):

    {"format": "cromotex-bundle-signature", "version": 1, "algorithm": "Ed25519",
     "key_id": "<16 hex>", "signature": "<base64 of the 64-byte signature>"}

Keys are files: the private key PKCS#8 PEM (unencrypted; keep it outside any
repository, mode 600), the public key SubjectPublicKeyInfo PEM (`.pub`). A key's id
is the first 16 hex digits of the sha256 of its raw 32-byte public key; the full
hex digest is its fingerprint.

All the cryptography is the `cryptography` package's; nothing here is our own.
Which keys are trusted is `engine.trust`'s business.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from engine.errors import BundleError

log = logging.getLogger(__name__)

SIGNATURE_SUFFIX = ".sig"
SIGNATURE_FORMAT = "cromotex-bundle-signature"
SIGNATURE_VERSION = 1
ALGORITHM = "Ed25519"
#: A signature file is ~200 bytes; anything far larger is not one (read no more than this).
MAX_SIGNATURE_BYTES = 64 * 1024
#: A PEM key file is ~120 bytes.
MAX_KEY_BYTES = 64 * 1024


class KeyFileError(BundleError):
    """A key file is missing, unreadable or not an Ed25519 key."""


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """Hex sha256 (64 digits) of the raw 32-byte public key."""
    return hashlib.sha256(_raw(public_key)).hexdigest()


def key_id(public_key: Ed25519PublicKey) -> str:
    """The key's id: the first 16 hex digits of its fingerprint."""
    return fingerprint(public_key)[:16]


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    """SubjectPublicKeyInfo PEM bytes of a public key (the `.pub` file's content)."""
    return public_key.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def _read_small(path: Path, what: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_KEY_BYTES + 1)
    except OSError as exc:
        raise KeyFileError(f"{what} {path}: cannot be read ({exc.strerror or exc})") from None
    if len(data) > MAX_KEY_BYTES:
        raise KeyFileError(f"{what} {path}: is larger than {MAX_KEY_BYTES} bytes, not a key file")
    return data


def public_key_from_pem(data: bytes, source: str) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM bytes; `KeyFileError` naming `source` otherwise."""
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"public key {source}: not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"public key {source}: is a {type(key).__name__}, not an Ed25519 key")
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """Read a `.pub` (SubjectPublicKeyInfo PEM) Ed25519 public key file."""
    path = Path(path)
    return public_key_from_pem(_read_small(path, "public key"), str(path))


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """Read an unencrypted PKCS#8 PEM Ed25519 private key file."""
    path = Path(path)
    data = _read_small(path, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"private key {path}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"private key {path}: is a {type(key).__name__}, not an Ed25519 key")
    return key


def generate_keypair(out_dir: str | Path, name: str) -> tuple[Path, Path]:
    """Write a new key pair `<name>-ed25519.pem` (private, mode 600) and `<name>-ed25519.pub`
    into `out_dir`; refuses to overwrite either. Returns (private path, public path)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    priv_path, pub_path = out / f"{name}-ed25519.pem", out / f"{name}-ed25519.pub"
    for p in (priv_path, pub_path):
        if p.exists():
            raise KeyFileError(f"{p} already exists; keys are never overwritten (choose another "
                            "--name or folder)")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(priv_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    pub_path.write_bytes(public_pem(key.public_key()))
    return priv_path, pub_path


def signature_path(manifest_path: Path) -> Path:
    """`manifest.json` -> `manifest.json.sig`."""
    return manifest_path.with_name(manifest_path.name + SIGNATURE_SUFFIX)


def signature_document(private_key: Ed25519PrivateKey, data: bytes) -> dict:
    """The signature file's JSON object for `data` (the manifest's exact bytes)."""
    return {"format": SIGNATURE_FORMAT, "version": SIGNATURE_VERSION, "algorithm": ALGORITHM,
            "key_id": key_id(private_key.public_key()),
            "signature": base64.b64encode(private_key.sign(data)).decode("ascii")}


def sign_file(path: str | Path, private_key: Ed25519PrivateKey) -> Path:
    """Sign `path`'s bytes; writes `<path>.sig` (replacing it) and returns its path."""
    path = Path(path)
    doc = signature_document(private_key, path.read_bytes())
    out = signature_path(path)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, out)
    return out


def read_signature(sig_path: Path) -> tuple[str, bytes]:
    """(key id, 64-byte signature) from a signature file.

    Raises:
        BundleError: missing, oversized, not JSON, wrong format or algorithm.
    """
    try:
        with open(sig_path, "rb") as fh:
            raw = fh.read(MAX_SIGNATURE_BYTES + 1)
    except FileNotFoundError:
        raise BundleError(f"{sig_path.name}: missing: the bundle is not signed") from None
    except OSError as exc:
        raise BundleError(f"{sig_path.name}: cannot be read ({exc.strerror or exc})") from None
    if len(raw) > MAX_SIGNATURE_BYTES:
        raise BundleError(f"{sig_path.name}: larger than {MAX_SIGNATURE_BYTES} bytes, not a signature")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BundleError(f"{sig_path.name}: is not a signature file (not JSON)") from None
    if not isinstance(doc, dict) or doc.get("format") != SIGNATURE_FORMAT \
            or doc.get("version") != SIGNATURE_VERSION:
        raise BundleError(f"{sig_path.name}: is not a {SIGNATURE_FORMAT} version "
                          f"{SIGNATURE_VERSION} file")
    if doc.get("algorithm") != ALGORITHM:
        raise BundleError(f"{sig_path.name}: algorithm {doc.get('algorithm')!r} is not {ALGORITHM}")
    kid, sig = doc.get("key_id"), doc.get("signature")
    if not isinstance(kid, str) or not isinstance(sig, str):
        raise BundleError(f"{sig_path.name}: lacks 'key_id' or 'signature'")
    try:
        signature = base64.b64decode(sig, validate=True)
    except (binascii.Error, ValueError):
        raise BundleError(f"{sig_path.name}: 'signature' is not base64") from None
    if len(signature) != 64:
        raise BundleError(f"{sig_path.name}: an {ALGORITHM} signature has 64 bytes, this one "
                          f"{len(signature)}")
    return kid, signature


def verify(public_key: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    """Whether `signature` is `public_key`'s Ed25519 signature of `data`."""
    try:
        public_key.verify(signature, data)
    except InvalidSignature:
        return False
    return True
