"""Turn whatever a third-party parser raises into a typed `CorruptFileError`.

pydicom, Pillow and wfdb raise many exception types on damaged files (ValueError,
IndexError, struct.error, OSError ...). Every reader wraps its parsing in
`corrupt_file_errors`, which keeps the engine's own errors and gives everything
else one actionable message naming the file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from engine.errors import CorruptFileError, CromotexError

log = logging.getLogger(__name__)


@contextmanager
def corrupt_file_errors(path: str | os.PathLike, damaged: Callable[[str], str], too_large: str, *,
                        too_large_types: tuple[type[BaseException], ...] = (MemoryError,),
                        log_level: int = logging.DEBUG) -> Iterator[None]:
    """Inside the block, any exception that is not a `CromotexError` becomes a `CorruptFileError`.

    Args:
        path: the file being read (named in the log record).
        damaged: builds the message from the error's description, "<ExceptionType>: <text>",
            e.g. `lambda error: f"The image {path} is damaged ({error}). Export it again."`.
        too_large: the message when the file claims more data than memory can hold.
        too_large_types: the exception types meaning "too large" (MemoryError by default).
        log_level: level of the log record (with traceback) for a `damaged` error.

    Raises:
        CorruptFileError: chained (`from`) to the original exception.
    """
    try:
        yield
    except CromotexError:
        raise
    except too_large_types as exc:
        raise CorruptFileError(too_large) from exc
    except Exception as exc:
        log.log(log_level, "%s while reading %s", type(exc).__name__, path, exc_info=True)
        raise CorruptFileError(damaged(f"{type(exc).__name__}: {exc}")) from exc
