"""What peestore does differently on SQLite, PostgreSQL and MariaDB/MySQL.

One ``Dialect`` object per database, chosen once (``dialect_of``, which
``connect`` calls) and kept on it, instead of ``isinstance`` checks spread
over the package: the place to look for every backend difference.
"""
from __future__ import annotations

import datetime
import decimal
import sqlite3

import peewee

from .. import _compat
from ..errors import NotSQLiteError

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, FrozenSet, Optional

__all__ = ["Dialect", "dialect_of"]

# The JSON kinds (peestore.model._values) whose column may give back other than
# what was written: MySQL's DATETIME drops microseconds, PostgreSQL's REAL is
# a 4-byte float, NUMERIC rounds, a column of no known kind may convert.
_LOSSY_ON_SERVERS = frozenset(("decimal", "number", "datetime", "time", "any"))


class Dialect:
    """A backend as peestore sees it.  The base class is a server database."""

    #: ``sqlite``, ``postgresql``, ``mysql``, or the database class's name.
    name = "other"
    #: URL scheme for the start line and messages.
    scheme = "other"
    #: Whether backup, restore and the file tools work (SQLite files only).
    has_file = False
    #: The JSON kinds that must be read back after a write to answer with what
    #: the database holds.
    lossy_kinds: FrozenSet[str] = _LOSSY_ON_SERVERS
    #: Whether a one-row INSERT may run from SQL rendered once (its key comes
    #: back as the cursor's last row id, not through RETURNING).
    rendered_inserts = False

    def begin(self, db: peewee.Database) -> Any:
        """A new outermost transaction for an audited write (``db`` is at depth 0)."""
        return db.transaction()

    def audit_timestamp(self, now: datetime.datetime) -> Any:
        """``now`` as the audit INSERT binds it, exactly as the column gives it back
        (the hash chain covers it)."""
        return now

    def returns_keys(self, db: peewee.Database) -> bool:
        """Whether ``INSERT ... RETURNING`` gives the keys of a multi-row insert."""
        return _compat.returns_by_default(db)

    def locks_rows(self, db: peewee.Database) -> bool:
        """Whether ``SELECT ... FOR UPDATE`` locks the rows a write reads first."""
        return _compat.locks_rows(db)

    def pages_by_key(self) -> bool:
        """Whether a table is read in primary-key pages (drivers that fetch a whole
        result set at once) rather than through one cursor."""
        return True

    def file_path(self, db: peewee.Database, what: str) -> str:
        """The database file (SQLite); raises ``NotSQLiteError`` elsewhere."""
        raise NotSQLiteError(
            "%s works on SQLite databases only; for PostgreSQL use pg_dump / pg_restore, "
            "for MariaDB/MySQL use mariadb-dump / mysqldump" % what)

    def move_sequence(self, db: peewee.Database, table: str, column: str,
                      schema: Optional[str] = None) -> None:
        """After rows were inserted with explicit keys: make the table's key sequence
        continue past them (PostgreSQL only; the others follow by themselves)."""

    def snapshot(self, db: peewee.Database) -> Any:
        """A read transaction in which every statement sees one snapshot."""
        return db.atomic()

    def json_pages(self) -> bool:
        """Whether list pages may come from the database as one JSON text."""
        return False

    # What a column gives back for a value written to it (peestore.model._stored):
    # a write sends, and audits, the value as it will read back.

    def stored_decimal(self, value: decimal.Decimal) -> decimal.Decimal:
        """``value`` (finite, already rounded to the field's places) as a DECIMAL
        column gives it back; ``ValueError`` when the column cannot keep it."""
        return value

    def stored_datetime(self, value: datetime.datetime) -> datetime.datetime:
        """A naive ``value`` as a DateTimeField's column gives it back."""
        return value

    def stored_time(self, value: datetime.time) -> datetime.time:
        """A naive ``value`` as a TimeField's column gives it back."""
        return value

    def widen_audit_log(self, db: peewee.Database) -> None:
        """Make the audit log's ``before`` and ``after`` hold any row's JSON (at
        ``connect``; their TEXT holds that everywhere but on MySQL/MariaDB)."""


class SqliteDialect(Dialect):
    name = scheme = "sqlite"
    has_file = True
    lossy_kinds = frozenset(("decimal",))
    rendered_inserts = True

    def begin(self, db: peewee.Database) -> Any:
        # An audited write reads before it writes (the before-state, hooks that
        # look rows up).  In a plain (deferred) SQLite transaction that read
        # takes a snapshot, and when another connection commits before the
        # write, the write fails at once with "database is locked": SQLite
        # cannot wait there, the snapshot is stale.  BEGIN IMMEDIATE takes the
        # write lock first, waiting up to busy_timeout for it, so concurrent
        # writers queue up instead.
        return db.transaction(lock_type="IMMEDIATE")

    def audit_timestamp(self, now: datetime.datetime) -> Any:
        return now.isoformat(" ")  # the text peewee writes for a DateTimeField

    def returns_keys(self, db: peewee.Database) -> bool:
        return _compat.returns_by_default(db) or sqlite3.sqlite_version_info >= (3, 35, 0)

    def pages_by_key(self) -> bool:
        return False  # sqlite3 steps through a result; it never holds a whole table

    def file_path(self, db: peewee.Database, what: str) -> str:
        path = db.database
        if not path or path == ":memory:" or str(path).startswith("file:"):
            raise NotSQLiteError("%s needs a SQLite database file, not %r" % (what, path))
        return str(path)

    def json_pages(self) -> bool:
        return True

    def stored_decimal(self, value: decimal.Decimal) -> decimal.Decimal:
        # peewee's DECIMAL column has NUMERIC affinity: the text peewee binds
        # becomes an INTEGER when it is an integer literal, else a REAL (then an
        # INTEGER if that is whole), read back as Decimal(str(number)).
        _, digits, exponent = value.as_tuple()
        if exponent >= 0:
            number = int(value)
            if -_INT64 <= number < _INT64:
                return decimal.Decimal(number)
        if len(digits) - _trailing_zeros(digits) > 15:
            # A REAL keeps about 15 digits, and SQLite's text-to-REAL rounding
            # is not Python's beyond them: what would read back is unknowable.
            raise ValueError("more significant digits than SQLite keeps (15)")
        real = float(value)
        if real.is_integer() and -_INT64 < real < _INT64:
            return decimal.Decimal(int(real))
        return decimal.Decimal(str(real))


class PostgresqlDialect(Dialect):
    name = scheme = "postgresql"

    def move_sequence(self, db: peewee.Database, table: str, column: str,
                      schema: Optional[str] = None) -> None:
        quoted = '"%s"' % table.replace('"', '""')
        if schema:
            quoted = '"%s".%s' % (schema.replace('"', '""'), quoted)
        column_sql = '"%s"' % column.replace('"', '""')
        db.execute_sql(
            "SELECT setval(pg_get_serial_sequence(%%s, %%s), GREATEST("
            "(SELECT COALESCE(MAX(%s), 0) + 1 FROM %s), "
            "nextval(pg_get_serial_sequence(%%s, %%s))), false)" % (column_sql, quoted),
            (quoted, column, quoted, column))

    def snapshot(self, db: peewee.Database) -> Any:
        if not db.in_transaction():
            return _RepeatableRead(db)
        return db.atomic()


class MySQLDialect(Dialect):
    name = scheme = "mysql"

    def audit_timestamp(self, now: datetime.datetime) -> Any:
        # peewee's DateTimeField is a DATETIME, which keeps whole seconds only.
        return now.replace(microsecond=0)

    def stored_datetime(self, value: datetime.datetime) -> datetime.datetime:
        # Also peewee's DATETIME keeps whole seconds: MariaDB truncates the
        # fraction, MySQL rounds it; cut here, both store this value.
        return value.replace(microsecond=0) if value.microsecond else value

    def stored_time(self, value: datetime.time) -> datetime.time:
        return value.replace(microsecond=0) if value.microsecond else value

    # InnoDB snapshots at the first read of a REPEATABLE READ transaction (its default).

    def widen_audit_log(self, db: peewee.Database) -> None:
        # TEXT holds 64 KB here: a bigger row's audit entry would fail (strict
        # mode) or be cut, and the chain with it.  LONGTEXT holds 4 GB.
        from ..audit._log import AuditLog

        table = AuditLog._meta.table_name
        narrow = [name for name, kind in db.execute_sql(
            "SELECT column_name, data_type FROM information_schema.columns WHERE "
            "table_schema = DATABASE() AND table_name = %s AND column_name IN "
            "('before', 'after')", (table,)).fetchall() if kind.lower() != "longtext"]
        if narrow:
            db.execute_sql("ALTER TABLE `%s` %s" % (table, ", ".join(
                "MODIFY `%s` LONGTEXT NULL" % name for name in sorted(narrow))))


_INT64 = 1 << 63


def _trailing_zeros(digits: Any) -> int:
    count = 0
    for digit in reversed(digits):
        if digit:
            break
        count += 1
    return count


class _RepeatableRead:
    """A PostgreSQL transaction at REPEATABLE READ: one snapshot for every statement."""

    def __init__(self, db: peewee.Database) -> None:
        self._transaction = db.atomic()
        self._db = db

    def __enter__(self) -> Any:
        entered = self._transaction.__enter__()
        self._db.execute_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        return entered

    def __exit__(self, *exc: Any) -> Any:
        return self._transaction.__exit__(*exc)


_SQLITE, _POSTGRESQL, _MYSQL, _OTHER = (SqliteDialect(), PostgresqlDialect(), MySQLDialect(),
                                        Dialect())


def dialect_of(db: peewee.Database) -> Dialect:
    """The ``Dialect`` of ``db`` (a real database, not a proxy), chosen on first use
    and kept on the database."""
    dialect = db.__dict__.get("_peestore_dialect")
    if dialect is None:
        if isinstance(db, peewee.SqliteDatabase):
            dialect = _SQLITE
        elif isinstance(db, peewee.PostgresqlDatabase):
            dialect = _POSTGRESQL
        elif isinstance(db, peewee.MySQLDatabase):
            dialect = _MYSQL
        else:
            dialect = _OTHER
        db.__dict__["_peestore_dialect"] = dialect
    return dialect

