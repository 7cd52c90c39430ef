"""Checkpoints: atomic save, load, and RNG state capture/restore.

A checkpoint is a dict saved with `torch.save`:
`models` {name: state_dict}, `optimizer` state_dict, `step` (optimiser steps done),
`epoch` (epochs completed), `rng` (see `rng_state`), `config` (resolved Config as a
dict), `best_metric`, `best_epoch`, `bad_epochs` (early-stopping counter),
`history` (list of per-epoch dicts), `stage` (name), `extra` (stage-specific).
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.errors import CromotexError

log = logging.getLogger(__name__)


class CheckpointError(CromotexError):
    """A checkpoint is missing, unreadable or of the wrong stage."""


def rng_state() -> dict[str, Any]:
    """The state of Python's, numpy's and torch's (CPU and CUDA) generators."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore generators captured by `rng_state`."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write `state` to `path` atomically (temporary file in the same folder, fsync, rename).

    An interruption leaves either the previous checkpoint or the new one, never a torn file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        torch.save(state, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    log.debug("saved checkpoint %s", path)
    return path


def load_checkpoint(path: str | os.PathLike, stage: str | None = None) -> dict[str, Any]:
    """Load a checkpoint onto the CPU; check its stage name when `stage` is given.

    Raises CheckpointError if the file is missing, unreadable or from another stage.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {path} does not exist; run the stage that writes it first "
                              "or pass the right --init / --out.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many kinds on a torn or foreign file
        raise CheckpointError(f"Checkpoint {path} cannot be read ({exc}); delete it and rerun the stage.") from exc
    if not isinstance(state, dict) or "models" not in state:
        raise CheckpointError(f"{path} is not a CroMoTEX checkpoint (no 'models' entry).")
    if stage is not None and state.get("stage") != stage:
        raise CheckpointError(f"{path} is a {state.get('stage')!r} checkpoint, but a {stage!r} one is needed.")
    return state
