"""Where the shipped resources (model bundle, demo cases) live.

From a source checkout or an editable install, `resources/` sits beside the
`engine` package at the repository root. In the PyInstaller build
(`build_installer.py` adds `resources/` as data under the same name) it is
`sys._MEIPASS/resources`.
"""

from __future__ import annotations

import sys
from pathlib import Path


def resource_root() -> Path:
    """The `resources/` directory, from source or from a frozen (PyInstaller) build."""
    frozen_base = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and frozen_base:
        return Path(frozen_base) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def resource_path(*parts: str) -> Path:
    """A path under `resources/`, e.g. `resource_path("demo", "case1.hea")`."""
    return resource_root().joinpath(*parts)


def default_models_dir() -> Path:
    """The shipped model bundle directory (`resources/models/`)."""
    return resource_path("models")


def demo_dir() -> Path:
    """The shipped demo cases directory (`resources/demo/`)."""
    return resource_path("demo")
