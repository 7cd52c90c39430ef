"""Where the study store lives: a setting shared by the app and the CLI.

The app keeps its settings as JSON in the user's config directory
(`app.settings`: `<config dir>/settings.json`, `CROMOTEX_REVIEW_CONFIG_DIR`
overrides the folder). The engine must not import the app, so the same file is
read here for its `store_path` key (a department can point every workstation at
a shared folder). Precedence:

1. the `CROMOTEX_REVIEW_STORE` environment variable (tests, scripts);
2. `store_path` in settings.json, when not empty;
3. `<user data dir>/store.sqlite3` (appdirs, e.g. ~/.local/share/cromotex-review/).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import appdirs

log = logging.getLogger(__name__)

APP_NAME = "cromotex-review"
#: Environment variable naming the store's database file (overrides the setting).
STORE_ENV = "CROMOTEX_REVIEW_STORE"
#: Environment variable naming the settings folder (the same as `app.settings`).
CONFIG_ENV = "CROMOTEX_REVIEW_CONFIG_DIR"
SETTINGS_FILE = "settings.json"
STORE_FILE = "store.sqlite3"
#: The settings.json key holding the store's path.
SETTING_KEY = "store_path"


def config_dir() -> Path:
    """The folder holding settings.json (the app's, see `app.settings.config_dir`)."""
    override = os.environ.get(CONFIG_ENV)
    return Path(override) if override else Path(appdirs.user_config_dir(APP_NAME, appauthor=False))


def default_store_path() -> Path:
    """`<user data dir>/store.sqlite3`."""
    return Path(appdirs.user_data_dir(APP_NAME, appauthor=False)) / STORE_FILE


def configured_store_path() -> str:
    """The `store_path` setting ("" when unset or when settings.json is unreadable)."""
    path = config_dir() / SETTINGS_FILE
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get(SETTING_KEY, "")
    except FileNotFoundError:
        return ""
    except (OSError, ValueError, AttributeError) as exc:
        log.warning("ignoring unreadable settings %s: %s", path, exc)
        return ""
    return value if isinstance(value, str) else ""


def store_path() -> Path:
    """The store's database file: $CROMOTEX_REVIEW_STORE, else the setting, else the default.
    A setting naming a folder means `<folder>/store.sqlite3`."""
    value = os.environ.get(STORE_ENV) or configured_store_path()
    if not value:
        return default_store_path()
    p = Path(value).expanduser()
    return p / STORE_FILE if p.is_dir() else p
