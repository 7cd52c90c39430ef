"""The screen shows the file opened last (issue 15, item 2): a slow read of an earlier open
request that finishes after a fast read of a later one is dropped, for ECGs, chest X-rays
and dropped files. The reader the worker calls is made slow for the first path only."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from app.qt import QtCore
from app_samples import DATA, NIH_CXR, PTBXL, SAMPLE_ECGS

TIMEOUT = 20000
SLOW_S = 1.5
LUDB = SAMPLE_ECGS[0]
OTHER_CXR = DATA / "cxr/png/nih/00004387_000.png"


@pytest.fixture
def two_threads(controller):
    """The controller's reads run two at a time (whatever the CPU count)."""
    pool = QtCore.QThreadPool()
    pool.setMaxThreadCount(2)
    controller.pool = pool
    yield controller
    pool.waitForDone(TIMEOUT)


def _slow_first(monkeypatch, module, name: str, slow_path: Path) -> list[str]:
    """Make `module.name` (a reader) sleep SLOW_S before reading `slow_path`; returns the
    order in which reads finished."""
    real, finished, lock = getattr(module, name), [], threading.Lock()

    def reader(path, *args, **kwargs):
        if Path(path) == slow_path:
            time.sleep(SLOW_S)
        result = real(path, *args, **kwargs)
        with lock:
            finished.append(Path(path).name)
        return result
    monkeypatch.setattr(module, name, reader)
    return finished


def _settle(controller, qtbot, finished: list, n: int) -> None:
    """Wait until `n` reads finished and their results reached the GUI thread."""
    qtbot.waitUntil(lambda: len(finished) == n, timeout=TIMEOUT)
    controller.pool.waitForDone(TIMEOUT)
    qtbot.wait(200)  # queued done-signals delivered


def test_late_slow_ecg_read_does_not_replace_the_last_opened(two_threads, qtbot, monkeypatch):
    import engine.io
    ctl = two_threads
    finished = _slow_first(monkeypatch, engine.io, "read_ecg", LUDB)
    shown = []
    ctl.ecg_shown.connect(lambda r: shown.append(Path(r.source.path).name))
    ctl.open_ecg(LUDB)   # slow
    ctl.open_ecg(PTBXL)  # fast, opened last
    _settle(ctl, qtbot, finished, 2)
    assert finished == [PTBXL.name, LUDB.name]  # the slow read did finish last
    assert shown == [PTBXL.name]
    assert Path(ctl.record.source.path).name == PTBXL.name
    assert ctl.w.ecg_view._record is ctl.record
    assert ctl.settings.recent_ecg == [str(PTBXL.resolve())]


def test_late_slow_cxr_read_does_not_replace_the_last_opened(two_threads, qtbot, monkeypatch):
    import engine.io
    ctl = two_threads
    finished = _slow_first(monkeypatch, engine.io, "read_cxr", NIH_CXR)
    ctl.open_cxr(NIH_CXR)   # slow
    ctl.open_cxr(OTHER_CXR)  # fast, opened last
    _settle(ctl, qtbot, finished, 2)
    assert finished == [OTHER_CXR.name, NIH_CXR.name]
    assert Path(ctl.cxr.source.path).name == OTHER_CXR.name
    assert ctl.w.cxr_view.image is ctl.cxr


def test_dropped_files_keep_the_last_of_each_kind(two_threads, qtbot, monkeypatch):
    """Dropped files are read as "any": a slow ECG, then a fast ECG and a chest X-ray; the
    fast ECG and the X-ray stay on screen."""
    import engine.io.dispatch
    ctl = two_threads
    finished = _slow_first(monkeypatch, engine.io.dispatch, "read_any", LUDB)
    ctl.open_paths([str(LUDB)])
    ctl.open_paths([str(PTBXL), str(NIH_CXR)])
    _settle(ctl, qtbot, finished, 3)
    assert finished[-1] == LUDB.name
    assert Path(ctl.record.source.path).name == PTBXL.name
    assert Path(ctl.cxr.source.path).name == NIH_CXR.name


def test_reads_in_order_all_show(two_threads, qtbot):
    """Without overtaking, each open shows its file in turn (nothing is dropped)."""
    ctl = two_threads
    shown = []
    ctl.ecg_shown.connect(lambda r: shown.append(Path(r.source.path).name))
    for path in (LUDB, PTBXL):
        with qtbot.waitSignal(ctl.ecg_shown, timeout=TIMEOUT):
            ctl.open_ecg(path)
    assert shown == [LUDB.name, PTBXL.name]
