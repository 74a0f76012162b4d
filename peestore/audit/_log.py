"""The audit log: one row per audited write, with the row before and after."""
from __future__ import annotations

import datetime

import peewee

from .. import _compat
from ..db._connect import database
from ..model._values import dumps, loads

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Tuple

__all__ = ["AuditLog", "AuditHead", "AuditChain", "INTERNAL_TABLES", "OUTBOX_TABLE",
           "data_tables", "JSONTextField", "OPERATIONS", "utcnow", "insert_sql",
           "changed_fields"]

OPERATIONS = ("create", "update", "delete", "soft_delete", "restore", "import", "prune")


def utcnow() -> datetime.datetime:
    """Now, as the naive UTC datetime peestore stores."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class JSONTextField(peewee.TextField):
    """A JSON value stored as text, so every backend stores it the same way."""

    def db_value(self, value: Any) -> Optional[str]:
        return None if value is None else dumps(value)

    def python_value(self, value: Any) -> Any:
        return loads(value)


class AuditLog(peewee.Model):
    """One audited write.  ``before``/``after`` are JSON objects or ``None``."""

    id = peewee.AutoField()
    timestamp = peewee.DateTimeField(default=utcnow, index=True)
    component = peewee.CharField(max_length=100, index=True)
    record_id = peewee.CharField(max_length=100, index=True)
    operation = peewee.CharField(max_length=20)
    actor = peewee.CharField(max_length=200, default="internal")
    before = JSONTextField(null=True)
    after = JSONTextField(null=True)
    # Null on entries written before the hash chain existed (an upgraded database).
    reason = peewee.TextField(null=True)
    hash = peewee.CharField(max_length=64, null=True)

    class Meta:
        database = database
        table_name = "audit_log"

    def to_dict(self, with_changed: bool = False) -> Dict[str, Any]:
        """The entry as a JSON-safe dict; ``with_changed`` adds the changed field names."""
        out = {
            "id": self.id,
            "timestamp": self.timestamp.isoformat() if isinstance(
                self.timestamp, datetime.datetime) else self.timestamp,
            "component": self.component,
            "record_id": self.record_id,
            "operation": self.operation,
            "actor": self.actor,
            "reason": self.reason,
            "before": self.before,
            "after": self.after,
            "hash": self.hash,
        }
        if with_changed:
            out["changed"] = changed_fields(self.before, self.after)
        return out


def changed_fields(before: Optional[Dict[str, Any]], after: Optional[Dict[str, Any]]) -> List[str]:
    """Names of the fields whose value differs between ``before`` and ``after``."""
    before = before or {}
    after = after or {}
    names = list(after) + [k for k in before if k not in after]
    return [k for k in names if before.get(k) != after.get(k) or (k in before) != (k in after)]


class AuditHead(peewee.Model):
    """The head of the hash chain (its last entry's id and hash), one row, on the
    server databases only: locked by each audited write (``peestore.audit._chain``)."""

    id = peewee.IntegerField(primary_key=True)
    entry_id = peewee.BigIntegerField()
    hash = peewee.CharField(max_length=64, null=True)

    class Meta:
        database = database
        table_name = "audit_head"


class AuditChain(peewee.Model):
    """Where the hash chain starts: the id of its first entry, and a mark of that id
    made with the audit key (``peestore.audit._chain.start_mark``).  One row, written
    when the audit log is made or upgraded.  Entries before that id were written
    before the chain existed; an entry at or after it without a hash is tampering."""

    id = peewee.IntegerField(primary_key=True)
    start_id = peewee.BigIntegerField()
    mark = peewee.CharField(max_length=64)

    class Meta:
        database = database
        table_name = "audit_chain"


#: The table where ``peestore.mqtt.Publisher`` keeps the id of the last change
#: its broker acknowledged (made by the publisher, on any backend).
OUTBOX_TABLE = "mqtt_outbox"

#: Tables that are peestore's own bookkeeping, not data: the data tools (export,
#: import, the diagram) leave them out.
INTERNAL_TABLES = frozenset((AuditHead._meta.table_name, AuditChain._meta.table_name,
                             OUTBOX_TABLE))


def data_tables(db: peewee.Database) -> List[str]:
    """``db.get_tables()`` without peestore's own bookkeeping (``INTERNAL_TABLES``)."""
    return [table for table in db.get_tables() if table not in INTERNAL_TABLES]


_COLUMNS = ("id", "timestamp", "component", "record_id", "operation", "actor", "reason",
            "before", "after", "hash")


# (database class, rows) -> the INSERT of that many entries, rendered once.
_insert_sql: Dict[Tuple[type, int], str] = {}


def insert_sql(db: peewee.Database, rows: int = 1) -> str:
    """``INSERT INTO audit_log (...) VALUES (...)`` for ``rows`` entries, in ``db``'s
    SQL dialect; the parameters are ``_COLUMNS`` per entry, in order.

    Plain parameters and one prepared statement rather than a peewee query
    built per entry: this runs at every audited write.
    """
    key = (type(db), rows)
    sql = _insert_sql.get(key)
    if sql is None:
        names = ", ".join(_compat.quote_name(db, name) for name in _COLUMNS)
        table = _compat.quote_name(db, AuditLog._meta.table_name)
        values = "(%s)" % ", ".join([_compat.parameter(db)] * len(_COLUMNS))
        sql = _insert_sql[key] = "INSERT INTO %s (%s) VALUES %s" % (
            table, names, ", ".join([values] * rows))
    return sql
