"""Rows from the DB-API cursor to JSON-safe dicts: the inner loop of every GET.

Per model, ``rows_converter`` writes one list comprehension that unpacks a
row into locals and builds its dict with each field's test inline; a page of
100 rows then costs no Python call per plain value.  Values that are not of
the column's plain type, and kinds that need converting (datetimes, decimals,
booleans...), go through peewee's ``python_value`` as they always would.
"""
from __future__ import annotations

import re

import peewee

from .. import _compat
from ..model._values import BOOLEAN, DATETIME, INTEGER, NUMBER, STRING, to_json_value

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple
    Plan = Tuple[Optional[type], Optional[Callable[[Any], Any]]]

__all__ = ["raw_plan", "raw_converter", "rows_converter"]

_PLAIN_TYPES = {INTEGER: int, NUMBER: float, STRING: str}
_PLAIN_ADAPTERS = (peewee.IntegerField.adapt, peewee.FloatField.adapt,
                   peewee.CharField.adapt, peewee.TextField.adapt)

# A naive datetime as SQLite holds it (str(datetime)), with a day that exists in
# every month: anything else goes the slow way, through peewee and datetime.
_SQLITE_DATETIME = re.compile(r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8]) "
                              r"(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{6})?\Z")


def _sqlite_datetime(value: Any, slow: Callable[[Any], Any]) -> Any:
    """``datetime.isoformat()`` of a stored ``YYYY-MM-DD HH:MM:SS[.ffffff]`` text, made
    from the text itself (a page of rows would otherwise parse every one)."""
    if type(value) is str and _SQLITE_DATETIME.match(value):
        if len(value) == 26 and not value.endswith(".000000"):
            return value[:10] + "T" + value[11:]
        return value[:10] + "T" + value[11:19]
    return slow(value)


def raw_plan(field: peewee.Field, kind: str) -> Plan:
    """How a non-null DB-API value of ``field`` becomes JSON-safe: ``(plain_type,
    convert)``.  A value of ``plain_type`` passes as it is (peewee's stock integer,
    float and text fields); anything else goes through ``convert``."""
    target = _compat.target_field(field) if isinstance(field, peewee.ForeignKeyField) \
        else field
    python_value = field.python_value
    if kind in _PLAIN_TYPES and type(target).python_value is peewee.Field.python_value \
            and type(target).adapt in _PLAIN_ADAPTERS:
        return _PLAIN_TYPES[kind], python_value
    if kind in _PLAIN_TYPES or kind == BOOLEAN:
        return None, python_value
    slow = lambda value: to_json_value(python_value(value))  # noqa: E731
    if kind == DATETIME and type(field).python_value is peewee.DateTimeField.python_value \
            and _compat.datetime_formats(field) == \
            _compat.datetime_formats(peewee.DateTimeField):
        return None, lambda value: _sqlite_datetime(value, slow)
    return None, slow


def raw_converter(field: peewee.Field, kind: str) -> Callable[[Any], Any]:
    """One non-null DB-API value of ``field`` -> its JSON-safe value (``raw_plan`` as
    one function)."""
    plain, convert = raw_plan(field, kind)
    if plain is None:
        return convert
    return lambda value: value if type(value) is plain else convert(value)


def rows_converter(names: Sequence[str], plans: Sequence[Plan]
                   ) -> Callable[[Iterable[Sequence[Any]]], List[Dict[str, Any]]]:
    """A function: rows (tuples in ``names`` order) -> a list of JSON-safe dicts."""
    env: Dict[str, Any] = {}
    items = []
    for i, (name, (plain, convert)) in enumerate(zip(names, plans)):
        v = "v%d" % i
        if convert is None:
            expr = v
        elif plain is None:
            env["c%d" % i] = convert
            expr = "(None if %s is None else c%d(%s))" % (v, i, v)
        else:
            env["c%d" % i], env["t%d" % i] = convert, plain
            expr = "(%s if %s is None or %s.__class__ is t%d else c%d(%s))" % (v, v, v, i, i, v)
        items.append("%r: %s" % (str(name), expr))
    unpack = ", ".join("v%d" % i for i in range(len(names))) + ("," if len(names) == 1 else "")
    source = "def convert_rows(rows):\n    return [{%s} for %s in rows]\n" % (
        ", ".join(items), unpack)
    exec(compile(source, "<peestore rows %s>" % ",".join(names), "exec"), env)
    return env["convert_rows"]
