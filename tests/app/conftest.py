"""App tests run offscreen (pytest-qt), with settings in a temporary folder and a
tiny but real ONNX model bundle (tests/engine/bundle_factory.py) for inference."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

from app_samples import PPM, REPO  # noqa: E402


@pytest.fixture(autouse=True)
def _config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CROMOTEX_REVIEW_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("CROMOTEX_REVIEW_STORE", str(tmp_path / "store" / "store.sqlite3"))  # the worklist's


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    sys.path.insert(0, str(REPO / "tests" / "engine"))
    try:
        from bundle_factory import make_bundle
    finally:
        sys.path.pop(0)
    return make_bundle(tmp_path_factory.mktemp("bundle") / "models")


@pytest.fixture
def shown(qtbot):
    """`shown(widget, width, height)`: the widget, closed by qtbot after the test, resized,
    shown and exposed."""
    def show(widget, width: int, height: int):
        qtbot.addWidget(widget)
        widget.resize(width, height)
        widget.show()
        qtbot.waitExposed(widget)
        return widget
    return show


@pytest.fixture
def window(shown):
    from app.main_window import MainWindow
    return shown(MainWindow(px_per_mm=PPM), 1500, 860)


@pytest.fixture
def errors():
    """Collects (title, message) of error dialogs instead of showing them."""
    return []


@pytest.fixture
def shipped(window, errors, tmp_path, qtbot):
    """A controller on `window` with the shipped bundle (resources/models/) loaded; shut down
    after the test."""
    from app.controller import Controller

    c = Controller(window, error_presenter=lambda t, m: errors.append((t, m)),
                   settings_dir=tmp_path / "config")
    with qtbot.waitSignal(c.models_ready, timeout=120000) as ok:
        c.load_models()
    assert ok.args == [True]
    yield c
    c.shutdown()


@pytest.fixture
def controller(window, errors, tmp_path):
    from app.controller import Controller
    return Controller(window, models_dir=str(tmp_path / "no-bundle-here"),
                      error_presenter=lambda t, m: errors.append((t, m)),
                      settings_dir=tmp_path / "config")
