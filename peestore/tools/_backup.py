"""Online backup of a SQLite database: one consistent snapshot, copied in steps.

SQLite's backup API copies the database page by page while other connections
keep writing.  Left alone it restarts whenever another connection commits, so
under a steady writer it may never finish; the copy is therefore taken inside
one read transaction on its own connection.  In WAL mode (peestore's default)
that read transaction is a snapshot that writers do not wait for, and the
backup sees exactly the database as it was when the snapshot began: rows and
their audit entries agree.
"""
from __future__ import annotations

import os
import sqlite3

import peewee

from ..db._connect import get_database
from ..db._dialect import dialect_of
from ..db._space import check_copy_room, file_sizes, full_error, is_disk_full
from ..errors import NotSQLiteError, PeestoreError
from ..db._hardening import open_sqlite

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Callable, Optional, Union
    import pathlib
    Progress = Callable[[int, int], None]


__all__ = ["backup", "sqlite_path", "fsync_dir", "NotSQLiteError", "STEP_PAGES"]

#: Pages copied per step (4 MB at SQLite's default 4 KiB page size).
STEP_PAGES = 1024


def sqlite_path(db: peewee.Database, what: str) -> str:
    """The file of SQLite database ``db``; raises ``NotSQLiteError`` for anything else."""
    return dialect_of(db).file_path(db, what)


def fsync_dir(path: Union[str, os.PathLike]) -> None:
    """Make a rename or unlink in directory ``path`` durable (a no-op where unsupported)."""
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_file(path: Union[str, os.PathLike]) -> None:
    """Flush a closed file's data to the storage device."""
    with open(str(path), "rb+") as f:
        os.fsync(f.fileno())


def backup(dest: Union[str, os.PathLike], *, database: Optional[peewee.Database] = None,
           progress: Optional[Progress] = None) -> pathlib.Path:
    """Copy the live SQLite database to the file ``dest``; returns its path.

    ``progress(remaining_pages, total_pages)`` is called after each step.  The
    copy is written beside ``dest`` and renamed into place when complete, so
    ``dest`` is never a half-written file.  Raises ``NotSQLiteError`` (a
    ``PeestoreError``) on PostgreSQL or MariaDB, and ``PeestoreError`` when
    ``dest`` exists and is not a regular file (a device, a FIFO, a folder) or
    is the live database or one of its ``-wal``, ``-shm``, ``-journal`` files.
    """
    db = get_database(database)
    source_path = sqlite_path(db, "backup()")
    import pathlib

    dest = pathlib.Path(dest)
    if not os.path.exists(source_path):
        raise PeestoreError(f"no database file at {source_path}")
    directory = dest.parent if str(dest.parent) else pathlib.Path(".")
    if not directory.is_dir():
        raise PeestoreError(f"no folder {directory} to write the backup {dest.name} into; "
                            f"create it first")
    if dest.is_dir():
        raise PeestoreError(f"{dest} is a folder; give the backup a file name, e.g. "
                            f"{dest / 'backup.sqlite'}")
    from ._files import check_output, temp_file

    check_output(dest, database=db, what="the backup")
    check_copy_room(db, str(directory), sum(file_sizes(source_path)), "a backup")
    try:
        fd, tmp = temp_file(directory, "backup", ".sqlite")
    except OSError as exc:
        raise PeestoreError(f"cannot write the backup into the folder {directory}: "
                            f"{exc.strerror or exc}") from None
    os.close(fd)
    try:
        copy_snapshot(source_path, tmp, progress)
        fsync_file(tmp)
        os.replace(tmp, str(dest))
        fsync_dir(directory)
    except BaseException as exc:
        _unlink(tmp)
        if isinstance(exc, (sqlite3.Error, OSError)) and is_disk_full(exc):
            raise full_error(exc, db, str(directory.absolute()), "the backup") from None
        raise
    return dest


def copy_snapshot(source_path: str, dest_path: str, progress: Optional[Progress] = None) -> None:
    """Copy ``source_path`` to ``dest_path`` (an empty or absent file) as one snapshot."""
    # A private connection: the caller's own connection may be inside a
    # transaction, and the read transaction below must not become part of it.
    src = open_sqlite(source_path, timeout=5.0, isolation_level=None,
                      check_same_thread=False)
    dst = open_sqlite(dest_path, isolation_level=None)
    try:
        src.execute("BEGIN")
        # The snapshot starts with the first read, not with BEGIN.
        src.execute("SELECT count(*) FROM sqlite_master").fetchone()

        def step(status: int, remaining: int, total: int) -> None:
            if progress is not None:
                progress(remaining, total)

        src.backup(dst, pages=STEP_PAGES, progress=step, sleep=0)
        src.execute("COMMIT")
        # The copy keeps the source's journal mode; a standalone file is safer
        # without a WAL (connect() switches it back to WAL when it opens it).
        dst.execute("PRAGMA journal_mode=DELETE").fetchone()
    finally:
        dst.close()
        src.close()


def _unlink(path: str) -> None:
    for name in (path, path + "-journal", path + "-wal", path + "-shm"):
        try:
            os.unlink(name)
        except FileNotFoundError:
            pass
