"""Atomic writes: a file is either its old self or its new self, never half of either.

The new content is written beside the target under a temporary name that holds the writer's
process id (``.NAME.PID.RANDOM.tmp``), flushed to disk, and renamed over the target (``os.replace``
is atomic on POSIX and Windows). A writer killed with ``kill -9`` cannot delete its temporary file,
so every write (and :func:`remove_stale_temporaries`, which ``vb.load`` calls) first removes the
temporary files of the same target whose writer is no longer alive. A temporary file of a writer
that is still running is left alone.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

__all__ = ["atomic_write", "atomic_write_text", "remove_stale_temporaries"]


def _pattern(path: Path) -> re.Pattern[str]:
    return re.compile(r"^\." + re.escape(path.name) + r"\.(\d+)\.[^.]+\.tmp$")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that killed writers of ``path`` left behind; return them."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern, removed = _pattern(path), []
    for entry in path.parent.iterdir():
        m = pattern.match(entry.name)
        if m and not _alive(int(m.group(1))):
            try:
                entry.unlink()
                removed.append(entry)
            except FileNotFoundError:  # another process cleaned it up first
                pass
    return removed


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Replace ``path`` by what ``write(file)`` writes into a binary file, atomically."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OSError(f"cannot create the folder {path.parent} to write {path}: {err.strerror or err}") from err
    remove_stale_temporaries(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    except OSError as err:
        raise OSError(f"cannot write {path}: {err.strerror or err}") from err
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(err, OSError):
            raise OSError(f"cannot write {path}: {err.strerror or err}") from err
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """:func:`atomic_write` for UTF-8 text."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))
