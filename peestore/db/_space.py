"""Free disk space: writes stop, with ``DiskFullError``, before the disk is full.

``connect(min_free_bytes=...)`` gives a SQLite file database a ``DiskSpace``:
each unit of work (``peestore.audit._write``) asks it first, and under the
limit the write is refused before it starts, so nothing changes and SQLite
never reaches "database or disk is full" mid-transaction.  Measuring costs a
system call (``statvfs``), and writes are the hot path: far from the limit a
measurement is trusted for ``RECHECK_SECONDS``; within ``NEAR_BYTES`` of it,
and while writes are refused, every write measures again, so writes come
back as soon as space is freed.  SQLite's own SQLITE_FULL (the limit set to 0,
or another program filling the disk faster than a second's writes) becomes
the same error (``full_error``).  Server databases manage their own storage:
they get no ``DiskSpace``.
"""
from __future__ import annotations

import errno
import os
import time

from ..errors import DiskFullError

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Optional

__all__ = ["DiskSpace", "DEFAULT_MIN_FREE", "RECHECK_SECONDS", "NEAR_BYTES", "free_bytes",
           "disk_space", "set_disk_space", "check_room", "check_copy_room", "is_disk_full",
           "full_error", "file_sizes", "human"]

#: ``connect``'s default ``min_free_bytes``: 16 MiB.
DEFAULT_MIN_FREE = 16 << 20
#: Seconds a measurement is trusted while the free space is far from the limit.
RECHECK_SECONDS = 1.0
#: Closer than this to the limit, every write measures (an SD card writes far
#: less than this in ``RECHECK_SECONDS``).
NEAR_BYTES = 64 << 20

_KEY = "_peestore_disk_space"
_monotonic = time.monotonic
_FULL_TEXT = "database or disk is full"


def free_bytes(folder: str) -> int:
    """Bytes an unprivileged program may still write on ``folder``'s file system."""
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


def human(size: Optional[int]) -> str:
    """``size`` bytes for people: ``15.2 MiB``."""
    if size is None:
        return "an unknown amount"
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return "%d bytes" % size if unit == "bytes" else "%.1f %s" % (value, unit)
        value /= 1024
    raise AssertionError("unreachable")


class DiskSpace:
    """The free space of the file system holding one database file, against a limit."""

    __slots__ = ("folder", "min_free", "free", "_next")

    def __init__(self, folder: str, min_free: int) -> None:
        self.folder = folder
        self.min_free = min_free
        self.free: Optional[int] = None  # the last measurement
        self._next = 0.0  # monotonic time of the next measurement

    def check(self) -> None:
        """Raise ``DiskFullError`` when the free space is under the limit."""
        now = _monotonic()
        if now < self._next:
            return
        free = self.measure()
        if free is None:
            return  # the folder cannot be measured (gone?): SQLite will say
        if free < self.min_free:
            self._next = 0.0
            raise self.error(free)
        self._next = now + RECHECK_SECONDS if free - self.min_free >= NEAR_BYTES else 0.0

    def measure(self) -> Optional[int]:
        """Measure the free space now (None when the folder cannot be measured)."""
        try:
            self.free = free_bytes(self.folder)
        except OSError:
            self.free = None
        return self.free

    def low(self) -> bool:
        """Whether the last measurement is within the limit's warning band (under
        twice ``min_free``): writes still work, but not for long."""
        return self.free is not None and self.free < 2 * self.min_free

    def error(self, free: Optional[int], what: str = "the write") -> DiskFullError:
        return DiskFullError(
            "disk full: %s free on the file system of %s, under min_free_bytes (%s); %s "
            "was refused and nothing was changed; free some space (old backups, logs) and "
            "writes work again"
            % (human(free), self.folder, human(self.min_free), what),
            free_bytes=free, min_free_bytes=self.min_free, path=self.folder)


def disk_space(db: Any) -> Optional[DiskSpace]:
    """The ``DiskSpace`` of database ``db``, or None (not a SQLite file, or no limit)."""
    return db.__dict__.get(_KEY)


def set_disk_space(db: Any, path: Optional[str], min_free: Any) -> None:
    """Give database ``db`` (its file at ``path``, None for none) a ``DiskSpace``."""
    from ..errors import ConfigurationError

    if isinstance(min_free, bool) or not isinstance(min_free, int) or min_free < 0:
        raise ConfigurationError("min_free_bytes must be a whole number of bytes >= 0 "
                                 "(0: no limit), got %r" % (min_free,))
    if path is None or not min_free:
        db.__dict__.pop(_KEY, None)
        return
    folder = os.path.dirname(os.path.abspath(path))
    db.__dict__[_KEY] = DiskSpace(folder, min_free)


def check_room(db: Any) -> None:
    """Raise ``DiskFullError`` when ``db``'s disk is under its limit (no-op without one)."""
    space = db.__dict__.get(_KEY)
    # The common case in two lookups and a clock read: far from the limit, measured
    # less than RECHECK_SECONDS ago.
    if space is not None and _monotonic() >= space._next:
        space.check()


def check_copy_room(db: Any, folder: str, size: int, what: str) -> None:
    """Refuse (``DiskFullError``) to write a file of about ``size`` bytes into ``folder``
    when that would leave less than ``db``'s ``min_free_bytes`` there (or fill it)."""
    space = disk_space(db)
    limit = space.min_free if space is not None else 0
    try:
        free = free_bytes(folder)
    except OSError:
        return  # cannot be measured: writing will tell
    if free - size < limit or free < size:
        size_text = " of about %s" % human(size) if size else ""
        raise DiskFullError(
            "disk full: %s%s would leave %s free on the file system of %s (%s free now), "
            "under min_free_bytes (%s); nothing was changed; free some space (old "
            "backups, logs) or use another disk"
            % (what, size_text, human(max(free - size, 0)), folder, human(free),
               human(limit)),
            free_bytes=free, min_free_bytes=limit, path=folder)


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite's SQLITE_FULL or the system's "no space left"."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return _FULL_TEXT in str(exc)


def full_error(exc: BaseException, db: Any = None, folder: Optional[str] = None,
               what: str = "the write") -> DiskFullError:
    """The ``DiskFullError`` for SQLite's or the system's disk-full error ``exc``."""
    space = disk_space(db) if db is not None else None
    if folder is None and space is None and db is not None:
        path = str(getattr(db, "database", None) or "")
        if path and path != ":memory:" and not path.startswith("file:"):
            folder = os.path.dirname(os.path.abspath(path))
    if folder is not None or space is None:
        # Another folder (a backup's): measured with the database's limit.
        space = DiskSpace(folder or os.getcwd(), space.min_free if space else 0)
    free = space.measure()
    if space.min_free == 0 or (free is not None and free < space.min_free):
        space._next = 0.0
    message = ("disk full: %s free on the file system of %s (%s); %s was refused and "
               "nothing was changed; free some space (old backups, logs) and "
               "writes work again"
               % (human(free), space.folder, exc, what))
    return DiskFullError(message, free_bytes=free, min_free_bytes=space.min_free,
                         path=space.folder)


def file_sizes(path: str) -> Any:
    """``(database bytes, WAL bytes)`` of the SQLite file at ``path`` (0 when absent)."""
    sizes = []
    for name in (path, path + "-wal"):
        try:
            sizes.append(os.stat(name).st_size)
        except OSError:
            sizes.append(0)
    return tuple(sizes)
