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

from .. import _compat
from ..db._connect import get_database
from ..db._dialect import dialect_of
from ._rendered import render

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Dict, Optional, Tuple

__all__ = ["insert_row"]

class _Plan:
    """How to INSERT one set of columns: the SQL, the columns in order, the defaults
    to fill in."""

    __slots__ = ("rendered", "columns", "defaults")

    def __init__(self, model: type, db: peewee.Database, names: Tuple[str, ...]) -> None:
        meta = model._meta
        self.defaults = [(field.name, default)
                         for field, default in _compat.field_defaults(model).items()
                         if field.name not in names]
        every = set(names) | {name for name, _ in self.defaults}
        self.columns = [(field.name, field) for field in meta.sorted_fields
                        if field.name in every]
        columns = [field for _, field in self.columns]
        self.rendered = render(
            db, lambda *marks: peewee.ModelInsert(model, dict(zip(columns, marks))),
            len(columns))


# (model, column names as given, database class) -> _Plan, or None: peewee's own path.
_plans: Dict[Tuple[type, Tuple[str, ...], type], Optional[_Plan]] = {}


def insert_row(model: type, data: Dict[str, Any]) -> Any:
    """INSERT one row of ``model`` from ``data`` (field name -> value); the new key.

    What ``peewee.ModelInsert(model, data).execute()`` returns, for the same row.
    """
    db = get_database(model._meta.database)
    key = (model, tuple(data), type(db))
    try:
        plan = _plans[key]
    except KeyError:
        plan = _plans[key] = _plan_for(model, db, key[1])
    if plan is not None:
        values = data
        if plan.defaults:
            values = dict(data)
            for name, default in plan.defaults:
                values[name] = default() if callable(default) else default
        params = []
        for name, field in plan.columns:
            value = values[name]
            if isinstance(value, peewee.Node):  # a SQL expression: peewee renders it
                break
            params.append(field.db_value(value))
        else:
            cursor = db.execute_sql(plan.rendered.sql, plan.rendered.params(params))
            return _compat.last_insert_id(db, cursor)
    return peewee.ModelInsert(model, _compat.normalize_data(model, None, data)).execute()


def _plan_for(model: type, db: peewee.Database, names: Tuple[str, ...]) -> Optional[_Plan]:
    fields = model._meta.fields
    if (not dialect_of(db).rendered_inserts or _compat.returns_by_default(db)
            or any(name not in fields for name in names)):
        return None
    return _Plan(model, db, names)
