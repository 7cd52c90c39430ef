"""Which public keys a model bundle's signature may come from (the trust list).

Three sources, merged (`load_trust`):

1. The CroMoTEX project key, shipped inside the program (`PROJECT_KEYS`); it signs the
   bundle in `resources/models/`.
2. The site's keys, from the settings folder the app uses (`config_dir()`:
   `CROMOTEX_REVIEW_CONFIG_DIR`, else the user's config folder): every `*.pub` file in
   its `trusted_keys/` sub-folder, and the files or folders listed under
   `"trusted_keys"` in its `settings.json` (the app's Settings writes that list).
3. `CROMOTEX_TRUSTED_KEYS`: `.pub` files or folders of them, separated by `os.pathsep`
   (`cromotex predict --trusted-key` adds to it, so worker processes inherit it).

A site that trains its own bundle signs it with its own key (`cromotex-train keygen`,
`cromotex-train build --signing-key` or `sign-bundle`) and adds the `.pub` to 2 or 3.
An unreadable entry is skipped, logged and reported in the refusal message, never a
crash. Plain files and JSON only: no Qt, so the engine, the CLI and the app read the
same list.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from engine.errors import BundleError
from engine.signing import key_id, load_public_key, public_key_from_pem

log = logging.getLogger(__name__)

APP_NAME = "cromotex-review"
SETTINGS_FILE = "settings.json"
SETTINGS_KEY = "trusted_keys"
TRUST_FOLDER = "trusted_keys"
ENV_CONFIG_DIR = "CROMOTEX_REVIEW_CONFIG_DIR"
ENV_TRUSTED_KEYS = "CROMOTEX_TRUSTED_KEYS"
#: At most this many key files are read from one folder (a trust folder holds a handful).
MAX_KEYS_PER_FOLDER = 256

#: label -> SubjectPublicKeyInfo PEM of the keys shipped in the program. The private half
#: of "CroMoTEX project" (key id c862136d7256e190) is kept by the project, in no repository.
PROJECT_KEYS: dict[str, bytes] = {
    "CroMoTEX project": b"-----BEGIN PUBLIC KEY-----\n"
                        b"MCowBQYDK2VwAyEAXcwenMSxciYv8LyI84ehrggV5QeSoMdUAgdlsFt2KDQ=\n"
                        b"-----END PUBLIC KEY-----\n",
}


@dataclass(frozen=True)
class TrustedKey:
    """One trusted public key: its id, a label for messages and where it came from."""

    key_id: str
    label: str
    source: str
    public_key: Ed25519PublicKey


@dataclass
class TrustList:
    """Trusted keys by key id, and the trust entries that could not be used (messages)."""

    keys: dict[str, TrustedKey] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add(self, public_key: Ed25519PublicKey, label: str, source: str) -> None:
        kid = key_id(public_key)
        self.keys.setdefault(kid, TrustedKey(kid, label, source, public_key))

    def add_path(self, path: Path, source: str) -> None:
        """A `.pub` file, or every `*.pub` in a folder; problems are recorded, not raised."""
        try:
            if path.is_dir():
                pubs = sorted(path.glob("*.pub"))
                if len(pubs) > MAX_KEYS_PER_FOLDER:
                    self.problems.append(f"{path} ({source}): more than {MAX_KEYS_PER_FOLDER} .pub "
                                         "files; only the first are read")
                for p in pubs[:MAX_KEYS_PER_FOLDER]:
                    self.add_path(p, source)
                return
            if not path.exists():
                self.problems.append(f"{path} ({source}): does not exist")
                return
            self.add(load_public_key(path), path.stem, f"{source}: {path}")
        except (BundleError, OSError) as exc:
            self.problems.append(f"{path} ({source}): {exc}")

    def describe(self) -> str:
        """"label (key id), ..." for messages."""
        return ", ".join(f"{k.label} ({kid})" for kid, k in self.keys.items()) or "none"


def config_dir() -> Path:
    """The app's settings folder (holds settings.json and trusted_keys/)."""
    override = os.environ.get(ENV_CONFIG_DIR)
    if override:
        return Path(override)
    import appdirs
    return Path(appdirs.user_config_dir(APP_NAME, appauthor=False))


def _settings_entries(folder: Path) -> list[str]:
    path = folder / SETTINGS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        log.warning("trust list: ignoring unreadable %s: %s", path, exc)
        return []
    entries = data.get(SETTINGS_KEY, []) if isinstance(data, dict) else []
    if not isinstance(entries, list):
        return []
    return [e for e in entries if isinstance(e, str) and e]


def load_trust(extra: Iterable[str | os.PathLike] = (), *, site: bool = True) -> TrustList:
    """The trust list: project keys, then (with `site`) the settings folder's and
    `CROMOTEX_TRUSTED_KEYS`'s keys, then `extra` paths (files or folders)."""
    trust = TrustList()
    for label, pem in PROJECT_KEYS.items():
        trust.add(public_key_from_pem(pem, label), label, "shipped with the program")
    if site:
        folder = config_dir()
        if (folder / TRUST_FOLDER).is_dir():
            trust.add_path(folder / TRUST_FOLDER, "settings folder")
        for entry in _settings_entries(folder):
            trust.add_path(Path(entry), f"{folder / SETTINGS_FILE}")
        for entry in os.environ.get(ENV_TRUSTED_KEYS, "").split(os.pathsep):
            if entry:
                trust.add_path(Path(entry), ENV_TRUSTED_KEYS)
    for entry in extra:
        trust.add_path(Path(entry), "given")
    for problem in trust.problems:
        log.warning("trust list: %s", problem)
    return trust


def add_to_environment(paths: Iterable[str | os.PathLike]) -> None:
    """Append key paths to `CROMOTEX_TRUSTED_KEYS` in this process (inherited by children)."""
    entries = [e for e in os.environ.get(ENV_TRUSTED_KEYS, "").split(os.pathsep) if e]
    entries += [os.fspath(p) for p in paths]
    os.environ[ENV_TRUSTED_KEYS] = os.pathsep.join(entries)
