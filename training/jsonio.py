"""The one atomic JSON writer of the training package.

Every JSON file the training code writes (manifest.json, metrics, history,
stage markers, configs, cohort.json, reports) goes through `write_json`: the
text is written to `<name>.tmp` next to the target and moved over it with
`os.replace`, so a reader never sees a half-written file.

Non-finite floats are the one real difference between files, so the policy is
an explicit argument (`nan`):

- `"null"`: NaN / ±inf (Python or numpy floats, at any depth) become `null`;
  the file is strict JSON that any parser (browsers, `jq`, other languages)
  reads. Used for manifest.json and the build's metrics files.
- `"literal"`: Python's `json` extension `NaN` / `Infinity` / `-Infinity` is
  written as is; `json.loads` reads it back as float NaN. Used for files that
  only Python reads and where NaN carries meaning (e.g. a history's
  `val_auroc` before any positive case was seen).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np

#: How non-finite floats are written (see the module docstring).
NanPolicy = Literal["null", "literal"]


def to_builtin(o: Any) -> Any:
    """`json.dumps` default: numpy scalars -> Python numbers, numpy arrays -> nested
    lists, `Path` -> str; anything else raises TypeError."""
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(type(o))


def nan_to_none(x: Any) -> Any:
    """A copy of `x` (dicts, lists and tuples walked; tuples become lists) with every
    non-finite Python or numpy float replaced by None."""
    if isinstance(x, dict):
        return {k: nan_to_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [nan_to_none(v) for v in x]
    if isinstance(x, (float, np.floating)) and not math.isfinite(float(x)):
        return None
    return x


def dumps(data: Any, *, nan: NanPolicy = "null", sort_keys: bool = False,
          trailing_newline: bool = True, default: Callable[[Any], Any] = to_builtin) -> str:
    """The text `write_json` writes (2-space indent, ASCII; arguments as there)."""
    if nan == "null":
        data = nan_to_none(data)
    elif nan != "literal":
        raise ValueError(f"nan must be 'null' or 'literal', not {nan!r}")
    text = json.dumps(data, indent=2, sort_keys=sort_keys, default=default)
    return text + "\n" if trailing_newline else text


def write_json(path: str | os.PathLike, data: Any, *, nan: NanPolicy = "null", sort_keys: bool = False,
               trailing_newline: bool = True, default: Callable[[Any], Any] = to_builtin) -> None:
    """Write `data` as indented JSON to `path`, atomically (via `<name>.tmp`, UTF-8).

    Args:
        path: target file; its folder must exist.
        data: JSON-ready data; objects `json` cannot encode go through `default`.
        nan: `"null"` (strict JSON, the default) or `"literal"` (`NaN` / `Infinity`),
            see the module docstring.
        sort_keys: sort object keys.
        trailing_newline: end the file with "\\n".
        default: converter for objects `json` cannot encode (default `to_builtin`).
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(dumps(data, nan=nan, sort_keys=sort_keys, trailing_newline=trailing_newline,
                         default=default), encoding="utf-8")
    os.replace(tmp, path)
