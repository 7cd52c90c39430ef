"""The README's test command: what .ci/run runs, and runnable as root (no sudo) or with sudo."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def readme_blocks() -> list[str]:
    return re.findall(r"^```bash\n(.*?)\n```$", (REPO / "README.md").read_text(), re.S | re.M)


def test_ci_run_runs_exactly_the_readmes_test_command():
    script = (REPO / ".ci/run").read_text()
    awk = re.search(r'cmd="\$\((awk .*? README\.md)\)"', script).group(1)
    extracted = subprocess.run(["bash", "-c", awk], cwd=REPO, capture_output=True, text=True,
                               check=True).stdout.strip()
    assert extracted == readme_blocks()[1]
    assert 'exec bash -euo pipefail -c "$cmd"' in script
    assert "pytest -q" in extracted and 'pip install -e ".[train,dev,build]"' in extracted


def test_the_command_has_no_bare_sudo():
    command = readme_blocks()[1]
    assert command.count("sudo") == command.count("$(command -v sudo)") == 2
    # where there is no sudo (a root shell) the prefix expands to nothing
    out = subprocess.run(["bash", "-c", 'PATH=/nonexistent; echo "[$(command -v sudo)]"'],
                         capture_output=True, text=True).stdout
    assert out.strip() == "[]"
