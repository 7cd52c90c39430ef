"""What runs on a Dask worker: one Predictor per worker, and the chunk-scoring task.

`WorkerSpec` (picklable, sent with every task) says how to open the Predictor: the
bundle directory as the workers see it, device, precision, intra-op threads, the
public keys the client trusts (PEM text, so a worker on another machine trusts
exactly the client's keys whatever its own settings folder holds) and the sha256 of
the client's `manifest.json`: a worker whose bundle at that path differs (another
version installed there) refuses to score instead of writing rows under the wrong
bundle id.

`worker_predictor(spec)` opens the Predictor once per worker process and keeps it
on the `distributed.Worker` object (`cromotex_predictors`); `cromotex_loads` counts
the loads (tests read it with `Client.run`). Tasks on the worker's threads share it
(onnxruntime sessions are thread-safe).

`score_chunk(spec, tasks)` hashes each file, skips those whose hash equals the one
the client already holds for that path, and scores the rest with
`engine.batch.load_and_score_many` and `engine.predict_output.result_json`: the code
of `cromotex predict`. A bad file is a row with its error.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from engine.archive.rows import FileFacts, archive_row, file_facts
from engine.batch import InputItem, load_and_score_many
from engine.errors import ArchiveError
from engine.predict_output import model_json, result_json

log = logging.getLogger(__name__)

_lock = threading.Lock()
_local_cache: dict[Any, Any] = {}  # outside a Dask worker (direct calls)
_UNREAD = FileFacts(-1, float("nan"), None)


def manifest_sha256(bundle_dir: str | Path) -> str:
    """Hex sha256 of a bundle's manifest.json (which pins every file's sha256)."""
    return hashlib.sha256((Path(bundle_dir) / "manifest.json").read_bytes()).hexdigest()


@dataclass(frozen=True)
class WorkerSpec:
    """How a worker opens its Predictor (picklable, hashable).

    Attributes:
        models: bundle directory (absolute, as the workers see it).
        device: "cpu", "cuda" or "auto".
        precision: "fp32" or "int8" (resolved by the client).
        threads: onnxruntime intra-op threads per session (1: the workers are the parallelism).
        trusted_keys: ((label, PEM text), ...) of every key the client trusts.
        manifest_sha256: sha256 of the client's manifest.json.
    """

    models: str
    device: str
    precision: str
    threads: int = 1
    trusted_keys: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    manifest_sha256: str = ""

    def open(self):
        """The Predictor (bundle verified against the client's trust list and manifest).

        Raises:
            BundleError: the bundle is missing, tampered with or signed by an untrusted key.
            ArchiveError: the worker's bundle is not the client's.
        """
        from engine.bundle import load_bundle
        from engine.inference import Predictor
        from engine.signing import public_key_from_pem
        from engine.trust import TrustList

        trust = TrustList()
        for label, pem in self.trusted_keys:
            trust.add(public_key_from_pem(pem.encode("ascii"), label), label, "the archive client")
        bundle = load_bundle(self.models, trust)
        if self.manifest_sha256 and manifest_sha256(bundle.directory) != self.manifest_sha256:
            raise ArchiveError(f"the model bundle at {self.models} on this worker is not the one "
                               "the client uses (manifest.json differs); install the same bundle "
                               "on every worker")
        return Predictor(bundle, device=self.device, precision=self.precision,
                         threads=self.threads, parallel_models=False)


def _worker():
    try:
        from distributed import get_worker

        return get_worker()
    except (ImportError, ValueError):  # not inside a Dask task
        return None


def worker_predictor(spec: WorkerSpec):
    """This worker's Predictor for `spec`, opened on first use (once per worker process)."""
    worker = _worker()
    with _lock:
        cache = _local_cache if worker is None else worker.__dict__.setdefault("cromotex_predictors", {})
        predictor = cache.get(spec)
        if predictor is None:
            predictor = cache[spec] = spec.open()
            if worker is not None:
                worker.cromotex_loads = getattr(worker, "cromotex_loads", 0) + 1
            log.info("archive: opened model bundle %s (%s) on worker %s",
                     predictor.bundle.bundle_id, predictor.precision,
                     getattr(worker, "address", "local"))
        return predictor


@dataclass
class ChunkResult:
    """What a task sends back: rows scored and paths skipped (already in the archive)."""

    rows: list[dict[str, Any]]
    skipped: list[str]
    worker: str


def score_chunk(spec: WorkerSpec, tasks: list[tuple[str, str | None, str | None]]) -> ChunkResult:
    """Score a chunk of files on this worker.

    Args:
        spec: how to open the Predictor.
        tasks: (path, input error or None, sha256 already archived for this path or None).

    Returns:
        One row per file scored (`archive_row`) and the paths skipped because their content
        hash equals the archived one.
    """
    predictor = worker_predictor(spec)
    todo: list[tuple[InputItem, FileFacts]] = []
    skipped: list[str] = []
    for path, error, known in tasks:
        facts = _UNREAD if error else file_facts(path)
        if known is not None and facts.sha256 == known:
            skipped.append(path)
        else:
            todo.append((InputItem(path, error), facts))
    rows = []
    if todo:
        results = load_and_score_many(predictor, [item for item, _ in todo])
        model = model_json(predictor)
        now = datetime.now(timezone.utc)
        rows = [archive_row(result_json(r, model, None), facts, now)
                for r, (_, facts) in zip(results, todo)]
    worker = _worker()
    return ChunkResult(rows, skipped, getattr(worker, "address", "local"))


def worker_loads(dask_worker=None) -> int:
    """Predictor loads on this worker (run with `Client.run(worker_loads)`)."""
    return int(getattr(dask_worker, "cromotex_loads", 0))
