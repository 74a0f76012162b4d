"""One-row INSERTs whose SQL is rendered once per model and set of columns.

peewee builds and renders a new ``ModelInsert`` for every ``save()``; on
SQLite that costs more than running the statement.  ``insert_row`` keeps the
rendered SQL per (model, columns, database class) and only converts the new
values, exactly as peewee would (``Field.db_value``, defaults for missing
columns).  Anything unusual (a SQL expression as a value, a database that
answers with RETURNING) goes through peewee itself.
"""
from __future__ import annotations


import peewee

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Dict, List, Tuple
    _Entry = Tuple[str, List[Any], List[int]]

__all__ = ["insert_row"]


class _Mark:
    """A placeholder parameter, found again in the rendered parameters by identity."""

    __slots__ = ()


_cache: Dict[Tuple[type, Tuple[str, ...], type], _Entry] = {}


def _render(model: type, fields: List[peewee.Field], db: peewee.Database) -> _Entry:
    marks = [_Mark() for _ in fields]
    query = peewee.ModelInsert(model, {field: peewee.Value(mark, converter=False)
                                       for field, mark in zip(fields, marks)})
    sql, params = db.get_sql_context().sql(query).query()
    params = list(params)
    positions = []
    for mark in marks:
        found = [i for i, p in enumerate(params) if p is mark]
        if len(found) != 1:
            raise RuntimeError("placeholder rendered %d times" % len(found))
        positions.append(found[0])
    return sql, params, positions


def insert_row(model: type, data: Dict[str, Any]) -> Any:
    """INSERT one row of ``model`` from ``data`` (field name -> value); the new key.

    What ``peewee.ModelInsert(model, data).execute()`` returns, for the same row.
    """
    meta = model._meta
    db = meta.database
    if isinstance(db, peewee.DatabaseProxy):
        db = db.obj
    fields = meta.fields
    if (not isinstance(db, peewee.SqliteDatabase) or db.returning_clause
            or any(isinstance(v, peewee.Node) for v in data.values())
            or any(name not in fields for name in data)):
        return peewee.ModelInsert(model, model._normalize_data(None, data)).execute()
    values = dict(data)
    for field, default in meta.defaults.items():
        if field.name not in values:
            values[field.name] = default() if callable(default) else default
    names = tuple(sorted(values, key=lambda n: fields[n]._sort_key))
    key = (model, names, type(db))
    entry = _cache.get(key)
    if entry is None:
        entry = _cache[key] = _render(model, [fields[n] for n in names], db)
    sql, params, positions = entry
    params = list(params)
    for position, name in zip(positions, names):
        params[position] = fields[name].db_value(values[name])
    cursor = db.execute_sql(sql, params)
    return db.last_insert_id(cursor, peewee.Insert.SIMPLE)
