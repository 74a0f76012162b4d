"""Restore a SQLite database from a backup file: validate, then swap atomically.

Order of work, so that any failure leaves the live database untouched:

1. copy the backup beside the live file (same file system: ``os.replace`` is
   atomic there) and check its header, ``PRAGMA integrity_check`` and that
   every registered model's table and columns are in it;
2. with the gate held exclusive (no request in flight, new ones wait), close
   this thread's connection and switch the live database out of WAL mode on a
   private connection: that folds the ``-wal`` into the file and fails while
   any other connection still has it open, so no journal can outlive the swap;
3. hard-link (or copy) the live file to ``<name>.pre-restore``, ``os.replace``
   the new file over the live one, fsync the directory, reopen.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import struct
import tempfile

import peewee

from .backup import fsync_dir, fsync_file, sqlite_path
from .db import get_database, registered_models, release_idle
from .errors import PeestoreError, RestoreError
from .gate import gate
from .listeners import notify_restore

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Union

__all__ = ["restore", "check_backup", "stage_file", "SQLITE_MAGIC"]

SQLITE_MAGIC = b"SQLite format 3\x00"
_CHUNK = 1 << 20


def restore(src: Union[str, os.PathLike], *, database: Optional[peewee.Database] = None,
            integrity_check: bool = True, dry_run: bool = False) -> Dict[str, Any]:
    """Replace the live SQLite database with the backup file ``src``.

    Returns ``{"status": "ok", "restored": bool, "bytes": n}``; ``restored``
    is false for a ``dry_run``, which validates and changes nothing.  Raises
    ``RestoreError`` when the file is not a usable backup (the live database
    is then untouched).  ``src`` itself is never modified.
    """
    db = get_database(database)
    live = sqlite_path(db, "restore()")
    staged = stage_file(src, live)
    return _restore_staged(db, live, staged, integrity_check, dry_run)


def stage_file(src: Union[str, os.PathLike], live: str) -> str:
    """Copy ``src`` to a new temporary file beside ``live``; returns its path."""
    if not os.path.isfile(str(src)):
        raise RestoreError(f"no backup file at {src}")
    fd, staged = tempfile.mkstemp(prefix=f".{os.path.basename(live)}.", suffix=".restore",
                                  dir=os.path.dirname(os.path.abspath(live)))
    try:
        with open(str(src), "rb") as fin, os.fdopen(fd, "wb") as fout:
            shutil.copyfileobj(fin, fout, _CHUNK)
            fout.flush()
            os.fsync(fout.fileno())
    except BaseException:
        _remove(staged)
        raise
    return staged


def restore_staged(staged: str, *, database: Optional[peewee.Database] = None,
                   integrity_check: bool = True, dry_run: bool = False) -> Dict[str, Any]:
    """``restore`` of a file already written beside the live database (it is consumed)."""
    db = get_database(database)
    try:
        live = sqlite_path(db, "restore()")
    except BaseException:
        _remove(staged)
        raise
    return _restore_staged(db, live, staged, integrity_check, dry_run)


def _restore_staged(db: peewee.Database, live: str, staged: str, integrity_check: bool,
                    dry_run: bool) -> Dict[str, Any]:
    try:
        size = os.path.getsize(staged)
        check_backup(staged, required_columns(db), integrity_check=integrity_check)
        if dry_run:
            return {"status": "ok", "restored": False, "bytes": size}
        with gate.exclusive():
            _swap(db, live, staged)
    finally:
        for suffix in ("", "-journal", "-wal", "-shm"):
            _remove(staged + suffix)
    notify_restore()
    return {"status": "ok", "restored": True, "bytes": size}


def required_columns(db: peewee.Database) -> Dict[str, List[str]]:
    """Table -> columns a backup must have: the registered models' and the audit log's.

    With no registered models (the command line), the live database's own
    tables and columns are required instead.
    """
    from .audit import AuditLog

    models = registered_models()
    if models:
        return {m._meta.table_name: [f.column_name for f in m._meta.sorted_fields]
                for m in [AuditLog] + models}
    required: Dict[str, List[str]] = {}
    with _connection(db):
        for table in db.get_tables():
            required[table] = [c.name for c in db.get_columns(table)]
    return required


class _connection:
    """Open ``db`` for the block if it is closed (and close it after)."""

    def __init__(self, db: peewee.Database) -> None:
        self.db = db
        self.opened = False

    def __enter__(self) -> None:
        if self.db.is_closed():
            self.db.connect()
            self.opened = True

    def __exit__(self, *exc: Any) -> None:
        if self.opened:
            self.db.close()


def check_header(path: str) -> None:
    """Reject a file that is not a complete SQLite database by its 100-byte header."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        header = f.read(100)
    if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
        raise RestoreError("not a SQLite database (bad header); upload a file made by "
                           "peestore backup")
    page_size = struct.unpack(">H", header[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        raise RestoreError(f"not a SQLite database (page size {page_size})")
    if size % page_size:
        raise RestoreError(f"truncated SQLite file: {size} bytes is not a whole number "
                           f"of {page_size}-byte pages")
    change_counter, pages = struct.unpack(">II", header[24:32])
    valid_for = struct.unpack(">I", header[92:96])[0]
    # The page count in the header is only valid when written by SQLite 3.7+
    # in the same transaction as the change counter.
    if pages and change_counter == valid_for and size < pages * page_size:
        raise RestoreError(f"truncated SQLite file: {size} bytes, the header says "
                           f"{pages * page_size}")


def check_backup(path: str, required: Dict[str, List[str]], *,
                 integrity_check: bool = True) -> None:
    """Raise ``RestoreError`` unless ``path`` is a sound SQLite file holding ``required``."""
    check_header(path)
    try:
        conn = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error as exc:
        raise RestoreError(f"cannot open the backup: {exc}") from None
    try:
        # Make the file standalone (no -wal needed) before it is swapped in.
        conn.execute("PRAGMA journal_mode=DELETE").fetchone()
        if integrity_check:
            problems = [row[0] for row in conn.execute("PRAGMA integrity_check(20)")]
            if problems != ["ok"]:
                raise RestoreError("the backup failed PRAGMA integrity_check: "
                                   + "; ".join(problems[:5]))
        tables = {row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = []
        for table, columns in required.items():
            if table not in tables:
                missing.append(f"table {table}")
                continue
            quoted = table.replace('"', '""')
            have = {row[1] for row in conn.execute(f'PRAGMA table_info("{quoted}")')}
            lacking = [c for c in columns if c not in have]
            if lacking:
                missing.append(f"columns {', '.join(lacking)} of table {table}")
        if missing:
            raise RestoreError("the backup does not fit the models; missing: "
                               + "; ".join(missing))
    except sqlite3.Error as exc:
        raise RestoreError(f"the backup is not a usable SQLite database: {exc}") from None
    finally:
        conn.close()


def _swap(db: peewee.Database, live: str, staged: str) -> None:
    if db.in_transaction():
        raise PeestoreError("restore() cannot run inside a transaction; call it outside "
                            "db.atomic()")
    was_open = not db.is_closed()
    if was_open:
        db.close()
    # Nothing is in flight (the gate is exclusive): the pool's idle connections
    # would keep the old file open, so they go too.
    release_idle(db)
    try:
        _fold_journal(live)
        for suffix in ("-wal", "-shm", "-journal"):
            _remove(live + suffix)
        previous = live + ".pre-restore"
        _keep_copy(live, previous)
        if os.path.exists(live):  # the new file gets the old one's permissions
            os.chmod(staged, stat.S_IMODE(os.stat(live).st_mode))
        os.replace(staged, live)
        fsync_dir(os.path.dirname(os.path.abspath(live)))
    finally:
        if was_open:
            db.connect()


def _fold_journal(live: str) -> None:
    """Fold the live database's WAL into its file, or fail if it is in use elsewhere."""
    if not os.path.exists(live):
        return
    try:
        conn = sqlite3.connect(live, timeout=5.0, isolation_level=None)
        try:
            mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise RestoreError(f"the live database is in use by another connection ({exc}); close "
                           "it and try again; nothing was changed") from None
    if str(mode).lower() != "delete":
        raise RestoreError("the live database is in use by another connection (it stays "
                           f"in {mode} mode); close it and try again; nothing was changed")


def _keep_copy(live: str, previous: str) -> None:
    """Make ``previous`` a copy of ``live`` (a hard link where the file system has them)."""
    if not os.path.exists(live):
        return
    tmp = previous + ".tmp"
    _remove(tmp)
    try:
        os.link(live, tmp)
    except OSError:  # FAT and some network file systems have no hard links
        shutil.copyfile(live, tmp)
        fsync_file(tmp)
    os.replace(tmp, previous)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
