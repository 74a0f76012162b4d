"""The database: one ``DatabaseProxy`` the models are bound to, and ``connect``."""
from __future__ import annotations

import contextlib
import os
import sqlite3

import peewee

from .. import _compat
from ..errors import ConfigurationError
from ._dialect import dialect_of
from ._space import DEFAULT_MIN_FREE, set_disk_space
from ._hardening import check_pragmas, harden, hardened_factory
from ..audit._listeners import track_transactions

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple, Union

__all__ = ["database", "connect", "get_database", "open_connection", "registered_models",
           "release_idle",
           "DEFAULT_URL", "SQLITE_PRAGMAS", "FORCED_SQLITE_PRAGMAS", "SERVER_FIELD_TYPES"]

DEFAULT_URL = "sqlite:///peestore.db"

#: Applied to every SQLite database unless ``pragmas`` overrides them.
SQLITE_PRAGMAS: Dict[str, Any] = {
    "journal_mode": "wal",
    "synchronous": "normal",
    "foreign_keys": 1,
    # Milliseconds a writer waits for another writer's lock before failing.
    "busy_timeout": 5000,
    # Bytes the WAL is cut back to after a checkpoint: a burst of writes must not
    # leave a large -wal file on a small disk (SQLite's default keeps it).  The
    # WAL checkpoints itself at about this size (1000 pages of 4 KiB).
    "journal_size_limit": 4 << 20,
}

#: Applied after ``SQLITE_PRAGMAS`` and the caller's pragmas, which may not
#: change them (``peestore.hardening``): a file's schema is not trusted.
FORCED_SQLITE_PRAGMAS: Dict[str, Any] = {"trusted_schema": 0}

#: Column types of the PostgreSQL and MySQL/MariaDB databases ``connect`` opens
#: from a URL: a ``FloatField`` holds a Python float (8 bytes) as on SQLite, not
#: in the 4-byte REAL or FLOAT peewee gives it there, which rounds every value to
#: 7 digits and cannot hold 1e-50 or 1e300 (MariaDB silently stores 0).
SERVER_FIELD_TYPES: Dict[str, str] = {"FLOAT": "DOUBLE PRECISION"}


class _Proxy(peewee.DatabaseProxy):
    """A ``DatabaseProxy`` whose transactions are the real database's own.

    peewee's proxy builds transaction objects around itself; peestore's
    change tracking lives on the database's transaction objects, so the proxy
    hands those out instead.
    """

    def _real(self) -> peewee.Database:
        if self.obj is None:
            raise ConfigurationError("no database yet: call peestore.connect() first")
        return self.obj

    def atomic(self, *args: Any, **kwargs: Any):
        return self._real().atomic(*args, **kwargs)

    def transaction(self, *args: Any, **kwargs: Any):
        return self._real().transaction(*args, **kwargs)

    def savepoint(self):
        return self._real().savepoint()


#: Every ``BaseAuditedModel`` is bound to this proxy; ``connect`` points it at a database.
database = _Proxy()

_registered: List[type] = []


def connect(url: Union[str, peewee.Database, None] = None, *, models: Iterable[type] = (),
            create_tables: bool = True, migrate: bool = False,
            pragmas: Optional[Dict[str, Any]] = None,
            audit_key: Union[str, bytes, None] = None,
            min_free_bytes: int = DEFAULT_MIN_FREE) -> peewee.Database:
    """Open the database at ``url`` and bind ``peestore.database`` to it.

    ``url`` is a ``playhouse.db_url`` URL or a peewee ``Database``; by default
    the ``PEESTORE_DATABASE_URL`` environment variable, else
    ``sqlite:///peestore.db``.  ``audit_key`` keys the audit log's hash chain
    (default: ``$PEESTORE_AUDIT_KEY``; none: plain SHA-256).  An audit log made
    by an earlier version gains its new columns here.  On a SQLite file, writes
    raise ``DiskFullError`` while its file system has less than
    ``min_free_bytes`` free (0: no limit; server databases have none).
    Returns the real ``Database``.
    """
    from ..audit._chain import set_audit_key

    models = list(models)
    if isinstance(url, peewee.Database):
        db = url
        if dialect_of(db).name == "sqlite":
            _harden_database(db, pragmas)
    else:
        if url is None:
            url = os.environ.get("PEESTORE_DATABASE_URL") or DEFAULT_URL
        if not isinstance(url, str):
            raise ConfigurationError(
                "connect() takes a database URL or a peewee Database, got %r" % (url,))
        db = _plain_sqlite(url, pragmas)
    if db is None:
        # playhouse.db_url imports every backend's extension (pools, postgres_ext,
        # sqlite_ext...): loaded only for URLs that need it.
        from playhouse import db_url

        scheme = url.split(":", 1)[0].lower()
        if scheme not in db_url.schemes:
            raise ConfigurationError(
                "unknown database URL scheme %r in %r; use one of: %s" % (
                    scheme, url, ", ".join(sorted(db_url.schemes))))
        kwargs: Dict[str, Any] = {}
        if db_url.schemes[scheme] is not None and issubclass(
                db_url.schemes[scheme], peewee.SqliteDatabase):
            kwargs["pragmas"] = _sqlite_pragmas(pragmas)
        if db_url.schemes[scheme] is not None and issubclass(
                db_url.schemes[scheme], (peewee.MySQLDatabase, peewee.PostgresqlDatabase)):
            kwargs["field_types"] = SERVER_FIELD_TYPES
        try:
            db = db_url.connect(url, **kwargs)
        except (ImportError, RuntimeError) as exc:
            raise ConfigurationError(
                "cannot open %s: %s (install the driver extra: peestore[postgres] "
                "or peestore[mysql])" % (scheme, exc)) from exc
        if dialect_of(db).name == "sqlite":
            _harden_database(db, pragmas)

    if min_free_bytes == DEFAULT_MIN_FREE and isinstance(url, peewee.Database):
        # connect(db) again (bootstrap, ``peestore serve`` of an app that connected
        # itself) keeps the limit the first connect gave it.
        min_free_bytes = db.__dict__.get("_peestore_min_free", min_free_bytes)
    set_disk_space(db, _file_of(db), min_free_bytes)
    db.__dict__["_peestore_min_free"] = min_free_bytes
    previous = database.obj
    if previous is not None and previous is not db:
        if not previous.is_closed():
            previous.close()
        release_idle(previous)
    track_transactions(db)
    set_audit_key(db, audit_key)
    database.initialize(db)
    _registered[:] = models

    if not create_tables and not migrate and (
            not dialect_of(db).has_file or not os.path.exists(str(db.database))):
        # Nothing to create: no connection now (the command line refuses a missing
        # SQLite file itself; a server database upgrades when its app connects).
        return db
    opened = db.is_closed()
    if opened:
        db.connect()
    try:
        audit_models = _audit_models(db)
        before = _audit_state(db)
        if migrate:
            from ._migrate import migrate_models
            migrate_models(db, audit_models + models)
        elif create_tables:
            db.create_tables(audit_models + models, safe=True)
        _upgrade_audit_log(db, *before)
    finally:
        if opened:
            db.close()
            # A pool would keep that connection (and its page cache) open
            # until the first request needs one.
            release_idle(db)
    return db


def _file_of(db: peewee.Database) -> Optional[str]:
    """The SQLite file of ``db``, or None (a server database, memory, a URI)."""
    if not dialect_of(db).has_file:
        return None
    path = str(db.database or "")
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return path


def _audit_models(db: peewee.Database) -> List[type]:
    """The audit log's tables on ``db``: the log, where its hash chain starts, and on
    the server databases the row that holds (and locks) the head of the chain."""
    from ..audit._log import AuditChain, AuditHead, AuditLog

    return [AuditLog, AuditChain] if dialect_of(db).has_file else [AuditLog, AuditChain,
                                                                   AuditHead]


def _audit_state(db: peewee.Database) -> Tuple[bool, bool]:
    """Before ``connect`` makes or changes a table: whether ``db`` has the record of
    where the chain starts, and whether its audit log (if any) has hashes."""
    from ..audit._log import AuditChain, AuditLog

    tables = db.get_tables()
    had_hashes = AuditLog._meta.table_name not in tables or "hash" in {
        column.name for column in db.get_columns(AuditLog._meta.table_name)}
    return AuditChain._meta.table_name in tables, had_hashes


def _upgrade_audit_log(db: peewee.Database, had_start: bool, had_hashes: bool) -> None:
    """Give an audit log made by an earlier version the columns it lacks (nullable:
    its old entries stay as they were, outside the hash chain), the record of
    where the chain starts, and the server databases their chain head; additive,
    also without ``migrate=True``.  ``had_start``, ``had_hashes``: what
    ``_audit_state`` found before ``connect`` made or changed any table."""
    from ..audit._chain import write_chain_start
    from ..audit._log import AuditChain, AuditHead, AuditLog

    tables = db.get_tables()
    if AuditLog._meta.table_name not in tables:
        return  # connect(create_tables=False) on a database without one
    have = {column.name for column in db.get_columns(AuditLog._meta.table_name)}
    missing = [field for field in AuditLog._meta.sorted_fields if field.column_name not in have]
    if missing:
        from playhouse.migrate import SchemaMigrator

        migrator = SchemaMigrator.from_database(db)
        with db.atomic():
            for field in missing:
                migrator.add_column(AuditLog._meta.table_name, field.column_name, field).run()
    dialect_of(db).widen_audit_log(db)
    if AuditChain._meta.table_name not in tables:
        db.create_tables([AuditChain], safe=True)
    with db.atomic():
        write_chain_start(db, had_start, had_hashes)
    if not dialect_of(db).has_file:
        if AuditHead._meta.table_name not in tables:
            db.create_tables([AuditHead], safe=True)
        if AuditHead.select().where(AuditHead.id == 1).exists():
            return
        last = (AuditLog.select(AuditLog.id, AuditLog.hash).order_by(AuditLog.id.desc())
                .limit(1).first())
        AuditHead.insert(id=1, entry_id=last.id if last else 0,
                         hash=last.hash if last else None).on_conflict_ignore().execute()


#: URL options that configure the connection or the pool; any other option of a
#: ``sqlite://`` URL is a pragma (``sqlite:///app.db?synchronous=full``).
_SQLITE_OPTIONS = frozenset((
    "timeout", "returning_clause", "detect_types", "check_same_thread", "cached_statements",
    "uri", "autocommit", "isolation_level", "max_connections", "stale_timeout"))


def _sqlite_pragmas(*layers: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """peestore's SQLite pragmas with ``layers`` over them, the last one winning,
    then ``FORCED_SQLITE_PRAGMAS``; a layer that would change those is refused."""
    merged = dict(SQLITE_PRAGMAS)
    for layer in layers:
        check_pragmas(layer)
        merged.update(layer or {})
    for name in FORCED_SQLITE_PRAGMAS:
        merged.pop(name, None)
    merged.update(FORCED_SQLITE_PRAGMAS)
    return merged


def _harden_database(db: peewee.SqliteDatabase, pragmas: Optional[Dict[str, Any]]) -> None:
    """Give a ``SqliteDatabase`` built by the caller peestore's pragmas and hardened
    connections (``peestore.hardening``)."""
    _compat.set_sqlite_pragmas(db, _sqlite_pragmas(_compat.sqlite_pragmas(db), pragmas))
    if _compat.opens_with_sqlite3(db, (__name__, "peestore.db._pool")):
        params = _compat.connection_params(db)
        params["factory"] = hardened_factory(params.get("factory"))
    if not db.is_closed():
        conn = db.connection()
        if isinstance(conn, sqlite3.Connection):
            harden(conn)


def _plain_sqlite(url: str, pragmas: Optional[Dict[str, Any]]) -> Optional[peewee.Database]:
    """A ``sqlite://`` URL's database, pooled; None for any other URL.

    A file database is a ``peestore.parking.SqlitePool``, a
    ``playhouse.pool.PooledSqliteDatabase``: closing a connection hands it back
    to the pool, so a request that opens and closes one costs no
    ``sqlite3.connect``, no pragmas and no WAL checkpoint (SQLite checkpoints
    and removes the WAL whenever its last connection closes); the REST plugin's
    worker threads even keep theirs between requests.
    ``:memory:`` is not pooled: each of its connections is a database of its own.
    The URL's query options are read as ``playhouse.db_url`` reads them;
    those that are not connection or pool options are pragmas.
    """
    if not url.startswith("sqlite://") or "#" in url:
        return None
    from urllib.parse import urlparse

    parsed = urlparse(url)
    if parsed.netloc:
        return None
    options: Dict[str, Any] = {}
    if parsed.query:
        from playhouse.db_url import parseresult_to_dict

        options = parseresult_to_dict(parsed)
        del options["database"]
    merged = _sqlite_pragmas({k: v for k, v in options.items() if k not in _SQLITE_OPTIONS},
                             pragmas)
    options = {k: v for k, v in options.items() if k in _SQLITE_OPTIONS}
    path = parsed.path[1:] or ":memory:"
    options["factory"] = hardened_factory()
    if path == ":memory:":
        options.pop("max_connections", None)
        options.pop("stale_timeout", None)
        return peewee.SqliteDatabase(path, pragmas=merged, **options)
    from ._pool import SqlitePool

    # No cap by default: the server's worker threads bound how many are in use.
    options.setdefault("max_connections", None)
    options.setdefault("check_same_thread", False)
    return SqlitePool(path, pragmas=merged, **options)


def release_idle(db: peewee.Database) -> None:
    """Close the idle connections a pooled database keeps (no-op otherwise): those in
    the pool and those worker threads keep between requests (``peestore.parking``)."""
    close_idle = getattr(db, "close_idle", None)
    if close_idle is not None:
        from ._pool import close_parked

        close_parked(db)
        close_idle()


def get_database(db: Optional[peewee.Database] = None) -> peewee.Database:
    """Return ``db``, else the database ``connect`` opened."""
    if db is not None:
        if isinstance(db, peewee.DatabaseProxy):
            db = db.obj
        if db is None:
            raise ConfigurationError(
                "that DatabaseProxy is not initialised; call peestore.connect() first")
        return db
    if database.obj is None:
        raise ConfigurationError("no database yet: call peestore.connect() first")
    return database.obj


def registered_models() -> List[type]:
    """The models passed to the last ``connect(models=...)``."""
    return list(_registered)


@contextlib.contextmanager
def open_connection(db: peewee.Database) -> Iterator[peewee.Database]:
    """Use this thread's open connection to ``db``, or open one for the block."""
    if db.is_closed():
        db.connect()
        try:
            yield db
        finally:
            if not db.is_closed():
                db.close()
    else:
        yield db
