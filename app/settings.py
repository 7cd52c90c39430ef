"""User settings, as JSON in the user's config directory (appdirs): recent files,
window geometry/state, last layout / speed / gain / rhythm lead / filters, the
models directory, the site's trusted bundle signing keys (`trusted_keys`: .pub files or
folders, read by `engine.trust` from the same file) and an optional screen calibration (DPI).

Set `CROMOTEX_REVIEW_CONFIG_DIR` to use another folder (tests, portable installs).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from engine.trust import config_dir as engine_config_dir

log = logging.getLogger(__name__)

APP_NAME = "cromotex-review"
FILE_NAME = "settings.json"
MAX_RECENT = 10


def config_dir() -> Path:
    """The folder holding settings.json."""
    return engine_config_dir()  # the engine reads the trust list from the same folder


@dataclass
class Settings:
    """Everything remembered between sessions (JSON-serialisable fields only)."""

    recent_ecg: list[str] = field(default_factory=list)
    recent_cxr: list[str] = field(default_factory=list)
    geometry: str = ""          # base64 of QMainWindow.saveGeometry()
    window_state: str = ""      # base64 of QMainWindow.saveState()
    layout: str = "3x4"
    speed_mm_s: float = 25.0
    gain_mm_mv: float = 10.0
    rhythm_lead: str = "II"
    cabrera: bool = False
    baseline_hz: float | None = None
    lowpass_hz: float | None = None
    notch_hz: float | None = None
    models_dir: str = ""        # "" = the shipped bundle
    trusted_keys: list[str] = field(default_factory=list)  # site .pub files/folders (engine.trust)
    dpi_override: float | None = None
    store_path: str = ""        # "" = <user data dir>/store.sqlite3 (engine.store.location reads this key)
    reader_name: str = ""       # who signs overreads (mandatory to sign; app.worklist_controller)
    reports_dir: str = ""       # signed reads' PDF + JSON; "" = <store folder>/reports

    def add_recent(self, kind: str, path: str | os.PathLike) -> None:
        """Put `path` first in the recent list of `kind` ("ecg" or "cxr")."""
        lst = self.recent_ecg if kind == "ecg" else self.recent_cxr
        p = str(Path(path).resolve())
        if p in lst:
            lst.remove(p)
        lst.insert(0, p)
        del lst[MAX_RECENT:]

    @classmethod
    def load(cls, folder: Path | None = None) -> "Settings":
        """Read settings; a missing or unreadable file gives the defaults (logged)."""
        path = (folder or config_dir()) / FILE_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable settings %s: %s", path, exc)
            return cls()
        known = {f.name for f in fields(cls)}
        s = cls(**{k: v for k, v in data.items() if k in known})
        return s

    def save(self, folder: Path | None = None) -> Path:
        """Write settings.json atomically; returns its path."""
        folder = folder or config_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / FILE_NAME
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")
        os.replace(tmp, path)
        return path
