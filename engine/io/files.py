"""Checks on a path before any parser sees it, shared by every reader.

Each check raises a typed `engine.errors` error whose message names the file
and says what to do, so that no `OSError` escapes a reader.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from engine.errors import MissingFileError, ReadError


def _a(what: str) -> str:
    return ("an " if what[:1].lower() in "aeiou" else "a ") + what


def check_file(path: str | os.PathLike, what: str = "file") -> Path:
    """Return `path` as a Path after checking it is an existing, readable file.

    Args:
        path: the file to check.
        what: how to call the file in messages (e.g. "ECG file", "WFDB signal file").

    Raises:
        MissingFileError: the path, or its folder, does not exist (the message says which).
        ReadError: it is a folder, a symbolic link loop, not a regular file, or cannot be read.
    """
    text = os.fspath(path)
    p = Path(text)
    try:
        mode = _mode(p)
        if mode is not None and stat.S_ISDIR(mode):
            raise ReadError(f"{p} is a folder, not {_a(what)}. Choose a file inside it "
                            f"(for WFDB records, the .hea header file).")
        if mode is None:
            if _is_link_loop(p):
                raise ReadError(f"{p} is a symbolic link that points back to itself (a link "
                                f"loop), not {_a(what)}. Open the file it was meant to point to.")
            folder = p.parent
            if str(folder) not in ("", ".") and not folder.is_dir():
                raise MissingFileError(f"The folder {folder} does not exist, so the {what} "
                                       f"{p.name} cannot be found there. Check the path.")
            if str(text).endswith(os.sep) or not p.suffix:
                raise MissingFileError(f"There is no file or folder {p}. Check the path.")
            raise MissingFileError(f"The {what} {p} does not exist. Check the path, or copy the "
                                   f"file here again.")
        if not stat.S_ISREG(mode):
            raise ReadError(f"{p} is not {_a(what)} (it is a device, pipe or socket).")
        if not os.access(p, os.R_OK):
            raise ReadError(f"You are not allowed to read the {what} {p}. Ask for read "
                            f"permission or copy the file somewhere you can read.")
    except OSError as exc:  # e.g. a path too long, or an unreadable parent folder
        raise ReadError(f"Cannot access the {what} {p}: {exc.strerror or exc}.") from exc
    return p


def _mode(p: Path) -> int | None:
    """`st_mode` of `p` (links followed) from one stat call; None where `Path.exists()`
    says that `p` does not exist. Other OSErrors propagate, as they do from `exists()`."""
    try:
        return p.stat().st_mode
    except ValueError:  # e.g. an embedded NUL byte: exists() is False
        return None
    except OSError:
        if p.exists():  # asked again on this error path only: exists() knows what to ignore
            raise
        return None


def _is_link_loop(p: Path) -> bool:
    """True when following the symbolic links of `p` loops (ELOOP)."""
    try:
        os.stat(p)
    except OSError as exc:
        return exc.errno == errno.ELOOP
    except ValueError:
        return False
    return False


def file_size(path: Path, what: str = "file") -> int:
    """Size of `path` in bytes; a typed error instead of OSError."""
    try:
        return path.stat().st_size
    except OSError as exc:
        raise ReadError(f"Cannot access the {what} {path}: {exc.strerror or exc}.") from exc


def read_bytes(path: Path, limit: int | None = None, what: str = "file") -> bytes:
    """The first `limit` bytes of `path` (all of it when None); typed errors only.

    A regular file smaller than `limit` is read whole, without a `limit`-sized buffer
    (reading 1 KiB with a 4 MiB limit costs three times as much otherwise)."""
    try:
        with open(path, "rb") as fh:
            if limit is None:
                return fh.read()
            st = os.fstat(fh.fileno())
            if stat.S_ISREG(st.st_mode) and st.st_size < limit:
                return fh.read()[:limit]  # [:limit]: the file may have grown meanwhile
            return fh.read(limit)
    except PermissionError as exc:
        raise ReadError(f"You are not allowed to read the {what} {path}. Ask for read "
                        f"permission or copy the file somewhere you can read.") from exc
    except IsADirectoryError as exc:
        raise ReadError(f"{path} is a folder, not {_a(what)}.") from exc
    except FileNotFoundError as exc:
        raise MissingFileError(f"The {what} {path} does not exist.") from exc
    except OSError as exc:
        raise ReadError(f"Cannot read the {what} {path}: {exc.strerror or exc}.") from exc
