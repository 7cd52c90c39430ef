"""The dependency rule of DESIGN.md: app -> engine <- training.

`engine` must import neither Qt nor torch nor training; `app` must not import
torch or training. Neither imports Dask or pyarrow when imported (`cromotex archive`
imports them when it runs). Each package is imported in a fresh interpreter in which
the forbidden modules cannot be imported at all, and we also check that none
of them was pulled in.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

_BLOCKER = textwrap.dedent(
    """
    import importlib.abc, sys
    FORBIDDEN = {forbidden!r}
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in FORBIDDEN:
                raise ImportError(f'forbidden import of {{name}} by the dependency rule')
            return None
    sys.meta_path.insert(0, Block())
    import importlib, pkgutil
    pkg = importlib.import_module({package!r})
    for mod in pkgutil.walk_packages(pkg.__path__, {package!r} + '.'):
        importlib.import_module(mod.name)
    bad = sorted(m for m in sys.modules if m.split('.')[0] in FORBIDDEN)
    assert not bad, bad
    print('IMPORTED', len([m for m in sys.modules if m.startswith({package!r})]))
    """
)


@pytest.mark.parametrize(
    "package, forbidden",
    [
        # dask, distributed, pyarrow: only `cromotex archive` (engine.archive) uses them, imported
        # inside its functions, so every engine module (engine.archive's too) imports without them
        ("engine", ["PySide6", "PyQt5", "PyQt6", "PySide2", "pyqtgraph", "torch", "training", "app",
                    "dask", "distributed", "pyarrow"]),
        ("app", ["torch", "training", "dask", "distributed", "pyarrow"]),
    ],
)
def test_package_imports_without_forbidden_modules(package, forbidden):
    code = _BLOCKER.format(forbidden=set(forbidden), package=package)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    n_modules = int(proc.stdout.split("IMPORTED")[-1])
    assert n_modules >= 2  # the package and at least one submodule really imported
