"""A backup's rows, checked as the app will read them, before it is swapped in.

A schema that matches says nothing of the values: SQLite stores any value
in any column, so a crafted file can hold text in a REAL column, a blob in
a CharField, bytes that are not UTF-8 (Python's ``sqlite3`` cannot read
them), audit entries whose before/after is not a JSON object, or foreign
keys that point nowhere.  Each would make reads of the restored database
fail.  For every table the models and the audit log own (with no models,
every table, each column by the field ``playhouse.reflection`` infers, as
export reads it), this checks in time linear in the file and with memory
bounded by one row:

- the SQLite storage class (``typeof``) of every value against what its
  field's type stores, and the form of dates, times and UUIDs, one
  aggregate query per table;
- that every text value is valid UTF-8, streamed one row at a time as bytes;
- that ``before`` and ``after`` of the audit log are JSON objects (or NULL),
  nested at most ``MAX_JSON_DEPTH`` deep;
- ``PRAGMA foreign_key_check`` on each table, and that no AUTOINCREMENT
  counter is near its end (the next insert would fail).

The first problem found is returned, naming the table, the row and the column.
"""
from __future__ import annotations

import json
import sqlite3

import peewee

from .. import _compat
from ._schema import shown
from ..model._values import BYTES, DATE, DATETIME, DECIMAL, NUMBER, STRING, TIME, UUID, \
    field_kind

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Tuple

__all__ = ["content_problem", "MAX_JSON_DEPTH", "MAX_COUNTER"]

#: Deepest nesting of an audit entry's before/after (arrays and objects).
MAX_JSON_DEPTH = 100
#: Largest AUTOINCREMENT counter (and row id in such a table) a backup may hold.
MAX_COUNTER = 1 << 53
_FETCH = 256
# Finite: between minus and plus the largest double (abs() of the smallest
# integer would overflow).
_FINITE = "{c} BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308"


class _Rule:
    """What a column may hold: storage classes, and an SQL test of its values."""

    def __init__(self, expects: str, classes: Tuple[str, ...], test: str = "") -> None:
        self.expects = expects
        self.classes = classes
        self.test = test  # SQL with {c} for the column; true when the value fits

    def ok(self, column: str) -> str:
        classes = ", ".join("'%s'" % c for c in ("null",) + self.classes)
        sql = "typeof(%s) IN (%s)" % (column, classes)
        if self.test:
            sql = "(%s AND (%s IS NULL OR (%s)))" % (sql, column, self.test.format(c=column))
        return sql


_DATE = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*"
_UUID = "replace(trim(replace(replace({c}, 'urn:', ''), 'uuid:', ''), '{{}}'), '-', '')"
_RULES = {
    "integer": _Rule("an integer", ("integer",)),
    NUMBER: _Rule("a finite number", ("integer", "real"), _FINITE),
    DECIMAL: _Rule("a finite decimal number", ("integer", "real"), _FINITE),
    "timestamp": _Rule("a timestamp (a number)", ("integer", "real"), _FINITE),
    DATETIME: _Rule("an ISO 8601 date and time", ("text",),
                    "{c} GLOB '%s' AND datetime({c}) IS NOT NULL" % _DATE),
    DATE: _Rule("an ISO 8601 date", ("text",),
                "{c} GLOB '%s' AND date({c}) IS NOT NULL" % _DATE),
    TIME: _Rule("an ISO 8601 time", ("text",),
                "{c} GLOB '[0-9][0-9]:[0-9][0-9]*' AND time({c}) IS NOT NULL"),
    UUID: _Rule("a UUID", ("text",),
                "length(%s) = 32 AND %s NOT GLOB '*[^0-9a-fA-F]*'" % (_UUID, _UUID)),
    "binary uuid": _Rule("a 16-byte UUID", ("blob",), "length({c}) = 16"),
    BYTES: _Rule("bytes (a blob)", ("blob",)),
    STRING: _Rule("text", ("text",)),
}


def _rule(field: peewee.Field) -> Optional[_Rule]:
    if isinstance(field, peewee.ForeignKeyField):
        return _rule(_compat.target_field(field))
    if isinstance(field, peewee.BooleanField):
        return _Rule("true or false (an integer)", ("integer",))
    if isinstance(field, peewee.TimestampField):
        return _RULES["timestamp"]
    if isinstance(field, peewee.BinaryUUIDField):
        return _RULES["binary uuid"]
    kind = field_kind(field)
    if kind == "integer":
        return _RULES["integer"]
    return _RULES.get(kind)


def content_problem(conn: sqlite3.Connection, tables: List[Tuple[str, Dict[str, Any]]],
                    audit_table: Optional[str]) -> Optional[str]:
    """The first problem with the rows of ``tables`` (``(name, {column: field})``) in
    the file open on ``conn``; None when every value reads back as its field's.

    ``audit_table`` (a name in ``tables``) gets the audit log's JSON checks.
    """
    functions = _functions(conn)
    for name, fields in tables:
        key = _row_key(conn, name)
        problem = (_classes(conn, name, key, fields, functions)
                   or _utf8(conn, name, key, fields)
                   or (_json(conn, name, key, functions) if name == audit_table else None)
                   or _foreign_keys(conn, name)
                   or _counter(conn, name, key))
        if problem:
            return problem
    return None


def _q(name: str) -> str:
    return '"%s"' % name.replace('"', '""')


def _functions(conn: sqlite3.Connection) -> Dict[str, bool]:
    """Which optional SQL functions this SQLite has (date and JSON functions can be
    left out when SQLite is built)."""
    found = {}
    for name, probe in (("date", "SELECT datetime('2000-01-01')"),
                        ("json", "SELECT json_valid('{}'), json_type('{}')")):
        try:
            conn.execute(probe).fetchone()
            found[name] = True
        except sqlite3.Error:
            found[name] = False
    return found


def _row_key(conn: sqlite3.Connection, table: str) -> str:
    """An expression naming a row of ``table``: its rowid, else its primary key."""
    rows = conn.execute("SELECT name, pk FROM pragma_table_info(?)", (table,)).fetchall()
    columns = {str(name).lower() for name, _ in rows}
    for alias in ("rowid", "_rowid_", "oid"):
        if alias in columns:
            continue
        try:
            conn.execute("SELECT %s FROM %s LIMIT 0" % (alias, _q(table))).fetchall()
            return alias
        except sqlite3.Error:
            break  # WITHOUT ROWID
    keys = sorted((pk, name) for name, pk in rows if pk)
    return _q(keys[0][1]) if keys else "NULL"


def _where(table: str, key: str, column: str, value: Any) -> str:
    row = "row id %s" % value if key in ("rowid", "_rowid_", "oid") else (
        "the row whose %s is %r" % (key.strip('"'), value))
    return "table %s, %s, column %s" % (table, row, column)


def _classes(conn: sqlite3.Connection, table: str, key: str, fields: Dict[str, Any],
             functions: Dict[str, bool]) -> Optional[str]:
    rules = []
    for column, field in fields.items():
        rule = _rule(field)
        if rule is None:
            continue
        if rule.test and "date(" in rule.test and not functions["date"]:
            rule = _Rule(rule.expects, rule.classes)
        rules.append((column, rule))
    if not rules:
        return None
    parts = []
    for column, rule in rules:
        ok = rule.ok(_q(column))
        parts.append("max(CASE WHEN %s THEN 0 ELSE 1 END), min(CASE WHEN %s THEN NULL ELSE %s "
                     "END)" % (ok, ok, key))
    found = conn.execute("SELECT %s FROM %s" % (", ".join(parts), _q(table))).fetchone()
    for i, (column, rule) in enumerate(rules):
        if found[2 * i]:
            value = found[2 * i + 1]
            stored, start = conn.execute(
                "SELECT typeof(%s), CAST(substr(%s, 1, 40) AS BLOB) FROM %s WHERE %s IS ? "
                "LIMIT 1" % (_q(column), _q(column), _q(table), key), (value,)).fetchone()
            if stored in rule.classes:
                what = "%r is not" % shown(bytes(start or b"").decode("utf-8", "replace"))
            else:
                what = "a value of type %s where it expects" % stored
            return "%s: %s %s (%s)" % (_where(table, key, column, value), what, rule.expects,
                                       type(fields[column]).__name__)
    return None


def _utf8(conn: sqlite3.Connection, table: str, key: str,
          fields: Dict[str, Any]) -> Optional[str]:
    """Every text value decodes as UTF-8, read as bytes (Python's sqlite3 would fail
    on the first that does not), one row at a time."""
    columns = []
    for column, field in fields.items():
        rule = _rule(field)
        if rule is None or "text" in rule.classes:
            columns.append(column)
    if not columns:
        return None
    joined = " || char(10) || ".join(
        "CASE WHEN typeof(%s) = 'text' THEN %s ELSE '' END" % (_q(c), _q(c)) for c in columns)
    factory = conn.text_factory
    conn.text_factory = bytes
    try:
        cursor = conn.execute("SELECT %s, %s FROM %s" % (key, joined, _q(table)))
        while True:
            rows = cursor.fetchmany(_FETCH)
            if not rows:
                return None
            for value, text in rows:
                try:
                    text.decode("utf-8")
                except UnicodeDecodeError:
                    return _which_column(conn, table, key, columns, value)
    finally:
        conn.text_factory = factory


def _which_column(conn: sqlite3.Connection, table: str, key: str, columns: List[str],
                  value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    for column in columns:
        found = conn.execute("SELECT CAST(%s AS BLOB) FROM %s WHERE %s IS ? AND typeof(%s) = "
                             "'text' LIMIT 1" % (_q(column), _q(table), key, _q(column)),
                             (value,)).fetchone()
        if found is not None:
            try:
                bytes(found[0]).decode("utf-8")
            except UnicodeDecodeError as exc:
                return "%s: text that is not UTF-8 (byte %d)" % (
                    _where(table, key, column, value), exc.start)
    return "table %s, %s: text that is not UTF-8" % (table, value)


def _json(conn: sqlite3.Connection, table: str, key: str,
          functions: Dict[str, bool]) -> Optional[str]:
    """``before`` and ``after`` are JSON objects or NULL, as the audit log reads them.

    SQLite's own JSON functions pick the rows to look at; Python's parser, the
    one that reads them back, has the last word (it also takes NaN, which
    peestore writes for a float that is not a number).
    """
    for column in ("before", "after"):
        c = _q(column)
        if functions["json"]:
            # Rows with many brackets may nest too deep: Python decides.
            doubt = ("CASE WHEN %s IS NULL THEN 0 WHEN NOT json_valid(%s) THEN 1 "
                     "WHEN json_type(%s) <> 'object' THEN 1 "
                     "ELSE length(%s) - length(replace(replace(%s, '[', ''), '{', '')) "
                     "> %d END" % (c, c, c, c, c, MAX_JSON_DEPTH))
        else:
            doubt = "%s IS NOT NULL" % c
        cursor = conn.execute("SELECT %s, %s FROM %s WHERE %s" % (key, c, _q(table), doubt))
        rows = cursor.fetchmany(_FETCH)
        while rows:
            for value, text in rows:
                problem = _json_problem(text)
                if problem:
                    return "%s: %s" % (_where(table, key, column, value), problem)
            rows = cursor.fetchmany(_FETCH)
    return None


def _json_problem(text: Any) -> Optional[str]:
    if not isinstance(text, str):
        return "a value of type %s where JSON text is expected" % type(text).__name__
    try:
        value = json.loads(text)
    except RecursionError:
        return "JSON nested deeper than %d levels" % MAX_JSON_DEPTH
    except ValueError as exc:
        return "not JSON (%s)" % exc
    if not isinstance(value, dict):
        return "JSON that is not an object"
    if _depth(value) > MAX_JSON_DEPTH:
        return "JSON nested deeper than %d levels" % MAX_JSON_DEPTH
    return None


def _depth(value: Any) -> int:
    deepest = 0
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        deepest = max(deepest, depth)
        children = item.values() if isinstance(item, dict) else item
        pending.extend((child, depth + 1) for child in children
                       if isinstance(child, (dict, list)))
    return deepest


def _foreign_keys(conn: sqlite3.Connection, table: str) -> Optional[str]:
    found = conn.execute("PRAGMA foreign_key_check(%s)" % _q(table)).fetchone()
    if found is None:
        return None
    _, rowid, parent, _ = found
    row = "row id %s" % rowid if rowid is not None else "a row"
    return "table %s, %s: a foreign key to %s names a row that is not there" % (
        table, row, parent)


def _counter(conn: sqlite3.Connection, table: str, key: str) -> Optional[str]:
    """No AUTOINCREMENT counter so high that the next insert would fail."""
    try:
        found = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?",
                             (table,)).fetchone()
    except sqlite3.Error:
        return None  # no AUTOINCREMENT table in the file
    if found is None:
        return None
    highest = conn.execute("SELECT max(%s) FROM %s" % (key, _q(table))).fetchone()[0]
    for what, value in (("its AUTOINCREMENT counter", found[0]), ("its highest row id",
                                                                  highest)):
        if isinstance(value, (int, float)) and value > MAX_COUNTER:
            return "table %s: %s is %r, over %d (new rows could not be added)" % (
                table, what, value, MAX_COUNTER)
    return None
