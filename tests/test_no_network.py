"""No network (issue 15, item 5): the CLI (with worker processes) and the app's self-test,
each in a subprocess on the shipped bundle, make no attempt to reach the network.

Two witnesses, neither needing strace:
- the socket guard (tests/socket_guard/sitecustomize.py, loaded by every interpreter the run
  starts) records every name lookup and every connect/send on a non-local socket made from
  Python; local AF_UNIX sockets (Qt, multiprocessing) are allowed and only noted;
- onnxruntime's native telemetry, which the guard cannot see, leaves a device id and an event
  store under the user's cache folder (~/.cache/Microsoft/DeveloperTools/.onnxruntime/) that
  it then uploads (DNS queries); HOME and XDG_CACHE_HOME point at an empty folder, which must
  stay empty of it. Before `ORT_DISABLE_TELEMETRY` was set by `engine` both files appeared
  here at import, and strace saw 4 DNS connects in 20 s (bench/trace_network.sh).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GUARD = REPO / "tests" / "socket_guard"
ECGS = [REPO / "tests/data/ecg/wfdb/ptbxl/00001_lr.hea",
        REPO / "tests/data/ecg/dicom/pydicom_waveform_ecg.dcm"]
CXR = REPO / "tests/data/cxr/png/nih/00000001_000.png"
ORT_CACHE = ("Microsoft", "DeveloperTools", ".onnxruntime")


def _guarded_env(tmp: Path) -> tuple[dict, Path]:
    home = tmp / "home"
    (home / ".cache").mkdir(parents=True)
    log = tmp / "socket_guard.jsonl"
    env = {k: v for k, v in os.environ.items() if k not in ("ORT_DISABLE_TELEMETRY", "PYTHONPATH")}
    env.update(PYTHONPATH=os.pathsep.join([str(GUARD), str(REPO)]), CROMOTEX_SOCKET_GUARD_LOG=str(log),
               HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), XDG_CONFIG_HOME=str(home / ".config"),
               CROMOTEX_REVIEW_CONFIG_DIR=str(tmp / "config"), QT_QPA_PLATFORM="offscreen")
    return env, log


def _attempts(log: Path) -> tuple[list[dict], list[dict]]:
    """(network attempts, guard-installed records) from the guard's log."""
    entries = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return ([e for e in entries if not e["local"]],
            [e for e in entries if e["call"] == "guard-installed"])


def _cache_files(env: dict) -> list[str]:
    home = Path(env["HOME"])
    return sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file())


def test_the_guard_sees_and_refuses_a_lookup(tmp_path):
    env, log = _guarded_env(tmp_path)
    proc = subprocess.run([sys.executable, "-c", "import socket\ntry:\n socket.getaddrinfo('example.org', 443)\n"
                           "except OSError as e:\n print(e)"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert "socket guard: network access refused (getaddrinfo ('example.org', 443))" in proc.stdout
    attempts, installed = _attempts(log)
    assert [a["call"] for a in attempts] == ["getaddrinfo"] and len(installed) == 1


def test_cli_predict_with_worker_processes_makes_no_network_attempt(tmp_path):
    env, log = _guarded_env(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "engine.cli", "predict", *map(str, ECGS), "--cxr", str(CXR),
                           "--parallel", "processes", "--workers", "2", "--no-progress"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o["ok"] for o in lines] == [True, True] and lines[0]["cxr"]["ok"]
    attempts, installed = _attempts(log)
    assert attempts == []
    assert len(installed) >= 3  # the CLI and its two worker processes ran under the guard
    assert not any(part in f for f in _cache_files(env) for part in ORT_CACHE), _cache_files(env)


@pytest.mark.filterwarnings("ignore")
def test_app_self_test_makes_no_network_attempt(tmp_path):
    env, log = _guarded_env(tmp_path)
    report = tmp_path / "self-test.json"
    proc = subprocess.run([sys.executable, "-m", "app.main", "--self-test", "--report", str(report)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    checks = json.loads(report.read_text())["checks"]
    assert {c["name"] for c in checks} >= {"bundle", "inference_ecg", "window"} and all(c["ok"] for c in checks)
    attempts, installed = _attempts(log)
    assert attempts == []
    assert installed
    assert not any(part in f for f in _cache_files(env) for part in ORT_CACHE), _cache_files(env)
