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

from .rendered import Rendered, render

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Dict, Tuple

__all__ = ["insert_row"]

_cache: Dict[Tuple[type, Tuple[str, ...], type], Rendered] = {}


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
    rendered = _cache.get(key)
    if rendered is None:
        columns = [fields[n] for n in names]
        rendered = _cache[key] = render(
            db, lambda *marks: peewee.ModelInsert(model, dict(zip(columns, marks))),
            len(columns))
    params = rendered.params([fields[name].db_value(values[name]) for name in names])
    cursor = db.execute_sql(rendered.sql, params)
    return db.last_insert_id(cursor, peewee.Insert.SIMPLE)
