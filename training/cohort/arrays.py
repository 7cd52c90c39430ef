"""Streamed `.npy` writing with bounded memory: preallocate the largest row
count with `numpy.lib.format.open_memmap`, fill rows in order, then shrink the
file in place to the rows actually written."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from numpy.lib import format as npformat


class NpyStream:
    """Row-by-row writer of one `.npy` array `[n, *row_shape]` of `dtype`.

    Usage: `s = NpyStream(path, max_rows, (12, 1000), np.float32); s.append(row);
    s.close()` -> the file holds exactly the appended rows.
    """

    def __init__(self, path: Path, max_rows: int, row_shape: tuple[int, ...],
                 dtype: np.dtype) -> None:
        self.path = Path(path)
        self.row_shape = tuple(row_shape)
        self.dtype = np.dtype(dtype)
        self.n = 0
        self._max = int(max_rows)
        self._mm = None
        if self._max > 0:
            self._mm = npformat.open_memmap(self.path, mode="w+", dtype=self.dtype,
                                            shape=(self._max, *self.row_shape))

    def append(self, row: np.ndarray) -> int:
        """Write `row` (shape `row_shape`) as the next row; returns its index."""
        if self.n >= self._max:
            raise IndexError(f"{self.path.name}: more than the {self._max} rows preallocated")
        self._mm[self.n] = row
        self.n += 1
        return self.n - 1

    def row(self, index: int) -> np.ndarray:
        """A copy of a row written earlier."""
        if not 0 <= index < self.n:
            raise IndexError(index)
        return np.array(self._mm[index])

    def close(self) -> None:
        """Flush and shrink the file to the `n` rows written."""
        if self._mm is None:
            np.save(self.path, np.zeros((0, *self.row_shape), self.dtype))
            return
        self._mm.flush()
        del self._mm
        self._mm = None
        if self.n < self._max:
            shrink_npy(self.path, self.n)


def shrink_npy(path: Path, n_rows: int) -> None:
    """Rewrite the header of a C-ordered `.npy` file to `n_rows` along axis 0 and
    truncate the data after them (in place; numpy pads headers so that the
    first dimension can change without the header growing)."""
    with open(path, "r+b") as f:
        version = npformat.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = npformat.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = npformat.read_array_header_2_0(f)
        data_start = f.tell()
        if fortran:
            raise ValueError(f"{path}: Fortran-ordered arrays cannot be shrunk in place")
        new_shape = (int(n_rows), *shape[1:])
        buf = io.BytesIO()
        header = {"descr": npformat.dtype_to_descr(dtype), "fortran_order": False,
                  "shape": new_shape}
        if version == (1, 0):
            npformat.write_array_header_1_0(buf, header)
        else:
            npformat.write_array_header_2_0(buf, header)
        if buf.tell() != data_start:
            raise ValueError(f"{path}: new header length {buf.tell()} != {data_start}")
        f.seek(0)
        f.write(buf.getvalue())
    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
    os.truncate(path, data_start + int(n_rows) * row_bytes)
