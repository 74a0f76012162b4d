"""Restore a SQLite database from a backup file: validate, then swap atomically.

The uploaded file is hostile until proven otherwise.  Its schema table is
read from its pages and bounded first (``_sqlitefile``, ``_objects``), before
SQLite parses any of it; it is then opened only on connections that do not
trust its schema (``peestore.db._hardening``), and its schema must match the
live database's object by object (``_schema``) before SQLite checks its
pages, so none of its own SQL runs first.  Last, its rows must be what the
app could have written (``_contents``), unless ``integrity_check`` is off:
that switch means "trust the file's contents".

Order of work, so that any failure leaves the live database untouched:

1. copy the backup beside the live file (same file system: ``os.replace`` is
   atomic there), hashing it on the way, and check its header, its schema
   against the live database's, ``PRAGMA integrity_check`` and its rows;
2. with the gate held exclusive (no request in flight, new ones wait; at most
   ``wait`` seconds, else ``BusyError`` and nothing changes), close this
   thread's connection and switch the live database out of WAL mode on a
   private connection: that folds the ``-wal`` into the file and fails while
   any other connection still has it open, so no journal can outlive the swap;
3. hard-link (or copy) the live file to ``<name>.pre-restore``, ``os.replace``
   the new file over the live one, fsync the directory, reopen, and write the
   restore's own audit entry (who, and the file's size and SHA-256).
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sqlite3
import stat

import peewee

from ._backup import fsync_dir, fsync_file, sqlite_path
from ..audit._chain import forget_head
from ..db._connect import get_database, open_connection, registered_models, release_idle
from ..errors import BusyError, ConfigurationError, PeestoreError, RestoreError
from ..db._gate import gate
from ..db._space import check_copy_room, full_error, is_disk_full
from ..db._hardening import limit_statements, open_sqlite
from ..audit._listeners import notify_restore
from ._objects import Limits, row_problems
from ._sqlitefile import FileHeader, SchemaTableError, read_header, read_schema_rows

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import IO, Any, Dict, List, Optional, Tuple, Union
    from ._schema import Schema

__all__ = ["restore", "restore_staged", "check_backup", "check_standalone", "schema_problems",
           "stage_file",
           "Sha256Writer", "SQLITE_MAGIC", "DEFAULT_WAIT"]

log = logging.getLogger("peestore.restore")

SQLITE_MAGIC = b"SQLite format 3\x00"
#: Seconds a restore waits for the requests in flight before it gives up.
DEFAULT_WAIT = 10.0
_CHUNK = 1 << 20


def restore(src: Union[str, os.PathLike], *, database: Optional[peewee.Database] = None,
            integrity_check: bool = True, dry_run: bool = False,
            wait: Optional[float] = DEFAULT_WAIT) -> Dict[str, Any]:
    """Replace the live SQLite database with the backup file ``src``.

    Returns ``{"status": "ok", "restored": bool, "bytes": n}``; ``restored``
    is false for a ``dry_run``, which validates and changes nothing.  Raises
    ``RestoreError`` when the file is not a usable backup, its schema
    included (the live database is then untouched), and ``BusyError`` when
    the requests in flight do not finish within ``wait`` seconds (nothing
    changes).  A restore writes one audit entry into the restored database.
    ``src`` itself is never modified.
    """
    _check_wait(wait)
    db = get_database(database)
    live = sqlite_path(db, "restore()")
    check_standalone(src)
    folder = os.path.dirname(os.path.abspath(live))
    if os.path.isfile(str(src)):
        check_copy_room(db, folder, os.path.getsize(str(src)), "the restore's copy")
    digest = hashlib.sha256()
    try:
        staged = stage_file(src, live, digest)
    except OSError as exc:
        if is_disk_full(exc):
            raise full_error(exc, db, folder, "the restore") from None
        raise
    return _restore_staged(db, live, staged, integrity_check, dry_run, wait,
                           digest.hexdigest())


class Sha256Writer:
    """A binary file that keeps the SHA-256 of what is written to it."""

    def __init__(self, f: IO[bytes], digest: Optional[Any] = None) -> None:
        self.f = f
        self.digest = digest if digest is not None else hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self.f.write(data)

    def hexdigest(self) -> str:
        return self.digest.hexdigest()


def check_standalone(src: Union[str, os.PathLike]) -> None:
    """Refuse a file whose ``-wal`` or ``-journal`` beside it holds something.

    A database in WAL mode keeps committed transactions in its ``-wal`` until
    a checkpoint, and one with a hot ``-journal`` is mid-transaction: the file
    alone is then not the database.  Copying it through SQLite would write
    beside ``src`` (a ``-shm``, a rolled-back journal) and run SQLite on a
    file not yet checked, so the operator is asked for a backup instead.
    """
    for suffix in ("-wal", "-journal"):
        beside = str(src) + suffix
        try:
            size = os.stat(beside).st_size
        except OSError:
            continue
        if size or not os.path.isfile(beside):
            raise RestoreError(
                f"{beside} is not empty: {src} alone is not the whole database (it is in "
                f"use, or was copied without it); make a backup of it first with "
                f"`peestore backup --db sqlite:///{src} OUT.sqlite` and restore that")


def stage_file(src: Union[str, os.PathLike], live: str, digest: Optional[Any] = None) -> str:
    """Copy ``src`` to a new temporary file beside ``live``; returns its path.

    ``digest`` (a ``hashlib`` object) is updated with the bytes as they are copied.
    """
    if not os.path.isfile(str(src)):
        raise RestoreError(f"no backup file at {src}")
    from ._files import temp_file

    fd, staged = temp_file(os.path.dirname(os.path.abspath(live)), "restore", ".restore")
    try:
        with open(str(src), "rb") as fin, os.fdopen(fd, "wb") as fout:
            shutil.copyfileobj(fin, Sha256Writer(fout, digest) if digest else fout, _CHUNK)
            fout.flush()
            os.fsync(fout.fileno())
    except BaseException:
        _remove(staged)
        raise
    return staged


def restore_staged(staged: str, *, database: Optional[peewee.Database] = None,
                   integrity_check: bool = True, dry_run: bool = False,
                   wait: Optional[float] = DEFAULT_WAIT,
                   sha256: Optional[str] = None) -> Dict[str, Any]:
    """``restore`` of a file already written beside the live database (it is consumed).

    ``sha256`` is the file's SHA-256 if the caller hashed it while writing it.
    """
    try:
        _check_wait(wait)
        db = get_database(database)
        live = sqlite_path(db, "restore()")
        # The staged file is on the disk already; the swap keeps the old file too.
        if not dry_run:
            check_copy_room(db, os.path.dirname(os.path.abspath(live)), 0, "the restore")
        if sha256 is None:
            sha256 = _hash_file(staged)
    except BaseException:
        _remove(staged)
        raise
    return _restore_staged(db, live, staged, integrity_check, dry_run, wait, sha256)


def _check_wait(wait: Optional[float]) -> None:
    if wait is None:
        return
    if isinstance(wait, bool) or not isinstance(wait, (int, float)) \
            or not 0 <= wait < float("inf"):
        raise ConfigurationError(f"wait must be a number of seconds >= 0 (or None: no "
                                 f"limit), got {wait!r}")


def _hash_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _restore_staged(db: peewee.Database, live: str, staged: str, integrity_check: bool,
                    dry_run: bool, wait: Optional[float], sha256: str) -> Dict[str, Any]:
    try:
        size = os.path.getsize(staged)
        check_backup(staged, db, integrity_check=integrity_check)
        if dry_run:
            return {"status": "ok", "restored": False, "bytes": size}
        if db.in_transaction():
            raise PeestoreError("restore() cannot run inside a transaction; call it outside "
                                "db.atomic()")
        # Less of the WAL left to fold while requests wait at the gate.
        _checkpoint(live)
        with gate.exclusive(timeout=wait):
            _swap(db, live, staged)
            forget_head(db)  # the chain's head is the restored file's own now
            _audit(db, size, sha256)
    finally:
        for suffix in ("", "-journal", "-wal", "-shm"):
            _remove(staged + suffix)
    notify_restore()
    return {"status": "ok", "restored": True, "bytes": size}


def _audit(db: peewee.Database, size: int, sha256: str) -> None:
    """The restore's own entry, in the database just restored."""
    from ..audit._write import write

    change = ("*", None, {"bytes": size, "sha256": sha256})
    opened = db.is_closed()
    try:
        with open_connection(db):
            write("db", "restore", lambda _: (True, [change]), database=db)
        if opened:
            # The pool would keep that connection; closed, the new file is left
            # as it came (no -wal beside it) until the next request opens it.
            release_idle(db)
    except Exception as exc:
        log.exception("restore: the audit entry could not be written")
        raise PeestoreError(f"the backup was restored, but its audit entry could not be "
                            f"written: {exc}") from None


def check_header(path: str) -> FileHeader:
    """Reject a file that is not a complete SQLite database by its 100-byte header."""
    try:
        return read_header(path)
    except SchemaTableError as exc:
        raise RestoreError(str(exc)) from None


def check_backup(path: str, db: Optional[peewee.Database] = None, *,
                 integrity_check: bool = True) -> None:
    """Raise ``RestoreError`` unless ``path`` is a sound SQLite file whose schema
    matches the live database ``db``'s (see ``schema_problems``) and, unless
    ``integrity_check`` is false, whose pages and rows are sound (see
    ``peestore.tools._contents``)."""
    db = get_database(db)
    header = check_header(path)
    if header.encoding != 1:
        raise RestoreError("the backup's text encoding is %s; peestore restores UTF-8 "
                           "databases only" % header.encoding_name)
    live, owned = _live_schema(db)
    limits = Limits(live)
    # Before SQLite parses the schema: a hostile one is refused at its size.
    try:
        rows = read_schema_rows(path, header, max_rows=limits.max_rows,
                                max_bytes=limits.max_bytes)
    except SchemaTableError as exc:
        raise RestoreError(str(exc)) from None
    _refuse(row_problems(rows, live, limits))
    try:
        conn = open_sqlite(path, isolation_level=None)
        limit_statements(conn, limits.longest + 1)
    except sqlite3.Error as exc:
        raise RestoreError(f"cannot open the backup: {exc}") from None
    try:
        # Make the file standalone (no -wal needed) before it is swapped in.
        conn.execute("PRAGMA journal_mode=DELETE").fetchone()
        # The schema first: integrity_check evaluates CHECK constraints and
        # index expressions, which must be the live database's own by then.
        _refuse(_file_problems(conn, live, owned, limits))
        if integrity_check:
            problems = [row[0] for row in conn.execute("PRAGMA integrity_check(20)")]
            if problems != ["ok"]:
                raise RestoreError("the backup failed PRAGMA integrity_check: "
                                   + "; ".join(problems[:5]))
            problem = _content_problem(path, conn, db, owned)
            if problem:
                raise RestoreError("the backup holds data the app could not have written "
                                   "(its rows are checked unless integrity_check is off): "
                                   + problem)
            _drop_statistics(conn, owned)
    except (sqlite3.Error, UnicodeDecodeError) as exc:
        raise RestoreError(f"the backup is not a usable SQLite database: {exc}") from None
    finally:
        conn.close()


def _refuse(problems: List[str]) -> None:
    if problems:
        from ._schema import summary

        raise RestoreError("the backup's schema does not match the live database's "
                           "(live vs file): " + summary(problems))


def schema_problems(conn: sqlite3.Connection, db: peewee.Database) -> List[str]:
    """How the schema of the file open on ``conn`` differs from live database ``db``'s.

    Compared object by object: the tables of the registered models and of the
    audit log (with no registered models, every table of the live database),
    with their indexes and triggers, must be the same; the file may hold no
    trigger or view the live database does not have, and no object SQLite
    would not build as its row in ``sqlite_master`` says; see
    ``peestore.schema.compare_schemas`` for other tables.  Empty when it fits.
    """
    live, owned = _live_schema(db)
    return _file_problems(conn, live, owned, Limits(live))


def _file_problems(conn: sqlite3.Connection, live: Schema, owned: List[str],
                   limits: Limits) -> List[str]:
    from ._schema import compare_schemas, read_schema

    def query(sql: str, params: tuple = ()) -> List[tuple]:
        return conn.execute(sql, params).fetchall()

    # The rows again, as SQLite reads them: what it builds is what counts.
    file = read_schema(query)
    problems = row_problems(file.rows, live, limits)
    if problems:
        return problems
    for table in owned:
        file.describe(query, table)
    return compare_schemas(live, file, owned)


def _live_schema(db: peewee.Database) -> Tuple[Schema, List[str]]:
    """The live database's schema, and the (folded) names of the tables it owns."""
    from ..audit._log import INTERNAL_TABLES, AuditChain, AuditLog
    from ._schema import fold, read_schema

    models = registered_models()
    with open_connection(db):
        live = read_schema(_query(db))
        if models:
            audit = [AuditLog, AuditChain]
            owned = list(dict.fromkeys(fold(m._meta.table_name) for m in audit + models))
            for table in owned:
                live.describe(_query(db), table)
            missing = [m for m in audit + models
                       if fold(m._meta.table_name) not in live.tables]
            if missing:
                _describe_models(live, missing)
        else:
            # peestore's bookkeeping (the MQTT publisher's place) is not the app's
            # data: a backup made before the publisher ran restores too.
            owned = [t for t in live.table_names() if t not in INTERNAL_TABLES]
            for table in owned:
                live.describe(_query(db), table)
    return live, owned


def _query(db: peewee.Database) -> Any:
    def query(sql: str, params: tuple = ()) -> List[tuple]:
        return db.execute_sql(sql, params).fetchall()
    return query


def _describe_models(live: Schema, models: List[type]) -> None:
    """Add to ``live`` the tables of ``models`` it lacks, as ``create_tables`` would
    make them (the live database was connected with ``create_tables=False``)."""
    from ..db._hardening import HardenedConnection
    from ._schema import fold, read_schema

    scratch = peewee.SqliteDatabase(":memory:", factory=HardenedConnection)
    scratch.connect()
    try:
        for model in models:
            peewee.SchemaManager(model, scratch).create_all(safe=True)
        tables = [fold(m._meta.table_name) for m in models]
        made = read_schema(_query(scratch), tables)
    finally:
        scratch.close()
    for table in tables:
        live.tables[table] = made.tables[table]
        live.table_sql[table] = made.table_sql[table]
        live.index_sql[table] = made.index_sql.get(table, [])
    for row in made.rows:
        if fold(str(row[2])) in tables:
            live.rows.append(row)
            live.lengths[(fold(str(row[0])), fold(str(row[1])))] = len(row[3] or "")


def _content_problem(path: str, conn: sqlite3.Connection, db: peewee.Database,
                     owned: List[str]) -> Optional[str]:
    """The first value in the owned tables of the file that the app could not read."""
    from ..audit._log import INTERNAL_TABLES, AuditLog
    from ..db._hardening import HardenedConnection
    from ._contents import content_problem
    from ._schema import fold
    from ._tables import describe_tables

    # The fields the app (or, for a table no model has, export) reads each column with.
    scratch = peewee.SqliteDatabase(path, factory=HardenedConnection)
    scratch.connect()
    try:
        names = {fold(name): name for name in scratch.get_tables()}
        # peestore's own bookkeeping (where the chain starts) is not read as data.
        tables = [names[table] for table in owned
                  if table in names and names[table] not in INTERNAL_TABLES]
        infos = describe_tables(scratch, tables)
    finally:
        scratch.close()
    audit = names.get(fold(AuditLog._meta.table_name))
    return content_problem(conn, [(t, infos[t].fields) for t in tables], audit)


def _drop_statistics(conn: sqlite3.Connection, owned: List[str]) -> None:
    """Forget the file's planner statistics for the owned tables: made up, they would
    steer the app's queries to full scans (``ANALYZE`` makes them again)."""
    from ._schema import fold

    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                    "name = 'sqlite_stat1'").fetchone() is None:
        return
    for (table,) in conn.execute("SELECT DISTINCT tbl FROM sqlite_stat1").fetchall():
        if fold(str(table)) in owned:
            conn.execute("DELETE FROM sqlite_stat1 WHERE tbl = ?", (table,))


def _swap(db: peewee.Database, live: str, staged: str) -> None:
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


def _checkpoint(live: str) -> None:
    """Copy what the live database's WAL holds into its file, as far as readers let."""
    if not os.path.exists(live + "-wal"):
        return
    try:
        conn = open_sqlite(live, timeout=1.0, isolation_level=None)
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        pass  # only a head start: _fold_journal does it for good


def _fold_journal(live: str) -> None:
    """Fold the live database's WAL into its file, or fail if it is in use elsewhere.

    Another process holding the file open is the server's state, not the
    backup's fault: ``BusyError`` (503, ``Retry-After``), and nothing changes.
    """
    if not os.path.exists(live):
        return
    try:
        conn = open_sqlite(live, timeout=5.0, isolation_level=None)
        try:
            mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise BusyError(f"the live database is in use by another connection ({exc}); close "
                        "it and try again; nothing was changed", retry_after=5) from None
    if str(mode).lower() != "delete":
        raise BusyError("the live database is in use by another connection (it stays "
                        f"in {mode} mode); close it and try again; nothing was changed",
                        retry_after=5)


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
