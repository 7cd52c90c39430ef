"""The archive's Parquet dataset: incremental part files, resume index, final compaction.

Layout for `--out results.parquet`:

- `results.parquet.parts/part-<run>-<seq>.parquet`: rows as they are scored, one part
  file (one row group) every `flush_every` rows or `flush_seconds`, whichever comes
  first. Each part is written to a `.tmp` name and renamed when complete, so a run
  that is killed leaves only whole parts (at most the unflushed rows are lost, and
  scored again by the next run).
- `results.parquet`: the final dataset, written at the end of a run (`compact`): the
  previous `results.parquet` and every part, one row per path (the latest scored
  wins), **sorted by path**, written to a `.tmp` name and renamed; the parts are then
  removed. Read it with `pyarrow.parquet.read_table` or `pandas.read_parquet`.

Resume (`done_index`): the rows of `results.parquet` and of any parts left by an
interrupted run, as path -> content sha256, for one bundle id. `cromotex archive`
skips a file whose path is there with the same hash; any other file (new, changed,
or scored with another bundle) is scored and its new row replaces the old one.

Memory: rows wait in memory until flushed (`flush_every`); `compact` holds the whole
dataset in memory once (about 1-2 KB a row: ~1.5 GB for a million files).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from engine.archive.rows import schema
from engine.errors import ArchiveError

log = logging.getLogger(__name__)

#: Rows per part file (one row group) unless asked otherwise.
DEFAULT_FLUSH_EVERY = 256
#: A part is also flushed when its oldest row is this old (seconds).
DEFAULT_FLUSH_SECONDS = 30.0
#: Rows per row group of the compacted file.
COMPACT_ROW_GROUP = 65536
_INDEX_COLUMNS = ["path", "sha256", "bundle_id"]


def parts_dir(out: Path) -> Path:
    """Where the part files of `out` go: `<out>.parts/` beside it."""
    return out.with_name(out.name + ".parts")


def _read(path: Path, columns: list[str] | None = None):
    """The table of an archive Parquet file (only `columns` when given).

    Raises:
        ArchiveError: unreadable, or not written by `cromotex archive` (columns missing).
    """
    import pyarrow.parquet as pq

    try:
        names = set(pq.read_schema(path).names)
        missing = set(columns or schema().names) - names
        if missing:
            raise ArchiveError(f"{path} is not a `cromotex archive` dataset (no column "
                               f"{', '.join(sorted(missing))}); choose another --out")
        return pq.read_table(path, columns=columns)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise ArchiveError(f"{path} is not a readable archive Parquet file ({exc}); move it away "
                           "or choose another --out") from None


class ArchiveStore:
    """The output dataset of one `cromotex archive` run.

    Args:
        out: the final Parquet file (`--out`).
        flush_every: rows per part file (>= 1).
        flush_seconds: a pending row is flushed at the latest this long after it came.
    """

    def __init__(self, out: str | os.PathLike, flush_every: int = DEFAULT_FLUSH_EVERY,
                 flush_seconds: float = DEFAULT_FLUSH_SECONDS):
        self.out = Path(out).absolute()
        self.parts = parts_dir(self.out)
        self.flush_every = max(1, int(flush_every))
        self.flush_seconds = float(flush_seconds)
        self.run_id = f"{time.time_ns():020d}-{os.getpid()}"
        self.rows_written = 0
        self.parts_written = 0
        self._pending: list[dict[str, Any]] = []
        self._oldest = 0.0
        if self.out.is_dir():
            raise ArchiveError(f"--out {self.out} is a folder; give a file name such as "
                               "results.parquet")

    def part_files(self) -> list[Path]:
        """Complete part files, in the order they were written."""
        return sorted(self.parts.glob("part-*.parquet")) if self.parts.is_dir() else []

    def done_index(self, bundle_id: str) -> dict[str, str]:
        """path -> content sha256 of the rows already scored with `bundle_id` (the final file,
        then the parts of an interrupted run; the latest row of a path wins)."""
        done: dict[str, str | None] = {}
        sources = ([self.out] if self.out.exists() else []) + self.part_files()
        for src in sources:
            t = _read(src, _INDEX_COLUMNS).to_pydict()
            for path, sha, bid in zip(t["path"], t["sha256"], t["bundle_id"]):
                done[path] = sha if bid == bundle_id else None
        return {p: s for p, s in done.items() if s}

    def add(self, row: dict[str, Any]) -> None:
        """Queue one row (`engine.archive.rows.archive_row`); flushes when due."""
        if not self._pending:
            self._oldest = time.monotonic()
        self._pending.append(row)
        if self.due():
            self.flush()

    def due(self) -> bool:
        """Whether the pending rows should be flushed now."""
        return bool(self._pending) and (len(self._pending) >= self.flush_every
                                        or time.monotonic() - self._oldest >= self.flush_seconds)

    def flush(self) -> Path | None:
        """Write the pending rows as one new part file (written whole, then renamed)."""
        if not self._pending:
            return None
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.parts.mkdir(parents=True, exist_ok=True)
        self.parts_written += 1
        final = self.parts / f"part-{self.run_id}-{self.parts_written:06d}.parquet"
        tmp = final.with_suffix(".tmp")
        table = pa.Table.from_pylist(self._pending, schema=schema())
        pq.write_table(table, tmp)
        os.replace(tmp, final)
        self.rows_written += len(self._pending)
        log.info("archive: wrote %d rows to %s", len(self._pending), final)
        self._pending = []
        return final

    def compact(self) -> int:
        """Merge the final file and every part into the final file, one row per path (the
        latest wins), sorted by path; remove the parts. Returns the number of rows."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        self.flush()
        parts = self.part_files()
        if not parts and self.out.exists():
            return _read(self.out, ["path"]).num_rows
        tables = ([_read(self.out)] if self.out.exists() else []) + [_read(p) for p in parts]
        table = pa.concat_tables([t.select(schema().names).cast(schema()) for t in tables]) \
            if tables else schema().empty_table()
        last = {path: i for i, path in enumerate(table.column("path").to_pylist())}
        table = table.take(pa.array(sorted(last.values()), type=pa.int64()))
        table = table.take(pc.sort_indices(table, sort_keys=[("path", "ascending")]))
        tmp = self.out.with_name(self.out.name + ".tmp")
        pq.write_table(table, tmp, row_group_size=COMPACT_ROW_GROUP)
        os.replace(tmp, self.out)
        for p in parts:
            p.unlink()
        for leftover in self.parts.glob("*.tmp") if self.parts.is_dir() else []:
            leftover.unlink()  # a part being written when an earlier run was killed
        if self.parts.is_dir() and not any(self.parts.iterdir()):
            self.parts.rmdir()
        log.info("archive: %s holds %d rows", self.out, table.num_rows)
        return table.num_rows
