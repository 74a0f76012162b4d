"""The audit log: one row per audited write, with the row before and after."""
from __future__ import annotations

import datetime

import peewee

from ._actor import current_actor
from ..db._connect import database
from ..model._values import dumps, loads

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Dict, Iterable, List, Optional

__all__ = ["AuditLog", "JSONTextField", "OPERATIONS", "utcnow", "write_entries",
           "write_entry", "changed_fields"]

OPERATIONS = ("create", "update", "delete", "soft_delete", "restore", "import")


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
            "before": self.before,
            "after": self.after,
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


_COLUMNS = ("timestamp", "component", "record_id", "operation", "actor", "before", "after")


_insert_sql_by_class: Dict[type, str] = {}


def _insert_sql(db: peewee.Database) -> str:
    sql = _insert_sql_by_class.get(type(db))
    if sql is None:
        sql = _insert_sql_by_class[type(db)] = _render_insert(db)
    return sql


def _render_insert(db: peewee.Database) -> str:
    quote = db.quote
    names = ", ".join(quote[0] + name + quote[1] for name in _COLUMNS)
    table = quote[0] + AuditLog._meta.table_name + quote[1]
    return "INSERT INTO %s (%s) VALUES (%s)" % (
        table, names, ", ".join([db.param] * len(_COLUMNS)))


def write_entries(entries: Iterable[Dict[str, Any]], actor: Optional[str] = None) -> int:
    """Insert audit entries (dicts of AuditLog fields) in one ``executemany``.

    ``timestamp`` and ``actor`` are filled in when missing.  Returns how many.
    """
    db = _database()
    who = current_actor(actor)
    sqlite = isinstance(db, peewee.SqliteDatabase)
    stamp = _stamp(db)
    params = []
    for entry in entries:
        before = entry.get("before")
        after = entry.get("after")
        timestamp = entry.get("timestamp")
        if timestamp is None:
            timestamp = stamp
        elif sqlite:
            timestamp = timestamp.isoformat(" ")
        params.append((timestamp, entry["component"], str(entry["record_id"]),
                       entry["operation"], entry.get("actor") or who,
                       None if before is None else dumps(before),
                       None if after is None else dumps(after)))
    _insert(db, params)
    return len(params)


def write_entry(component: str, operation: str, record_id: str, before: Optional[str],
                after: Optional[str], actor: str) -> None:
    """Insert one audit entry, timestamped now; ``before``/``after`` are JSON text.

    The single write's path (``save``, ``delete_instance``): its JSON is
    made once by the caller, who may answer with it too.
    """
    db = _database()
    _insert(db, [(_stamp(db), component, record_id, operation, actor, before, after)])


def _database() -> peewee.Database:
    db = AuditLog._meta.database
    return db.obj if isinstance(db, peewee.DatabaseProxy) else db


def _stamp(db: peewee.Database) -> Any:
    """Now, as ``db`` takes an audit timestamp (SQLite: the text peewee writes)."""
    now = utcnow()
    return now.isoformat(" ") if isinstance(db, peewee.SqliteDatabase) else now


def _insert(db: peewee.Database, params: List[tuple]) -> None:
    # Plain parameters and one prepared statement, not a peewee query built per
    # row: this runs once per audited write.
    if not params:
        return
    with peewee.__exception_wrapper__:
        if len(params) == 1:  # execute() is cheaper than executemany() for one row
            db.cursor().execute(_insert_sql(db), params[0])
        else:
            db.cursor().executemany(_insert_sql(db), params)
