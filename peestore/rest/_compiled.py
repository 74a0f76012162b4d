"""SELECTs that peewee generates once and the routes run again with new values.

Building and rendering a peewee query costs more than running it on SQLite;
the hot read routes (get by id, an unfiltered list page) keep the rendered
SQL per database class and only swap the parameter values in.
"""
from __future__ import annotations

import json

import peewee

from ..db._dialect import dialect_of
from ..model._rendered import Rendered, render
from ..model._values import BYTES, INTEGER, STRING

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Sequence
    from ._fields import ModelInfo

__all__ = ["CompiledSelect", "JsonRows"]


class CompiledSelect:
    """``build(*placeholders) -> query``, rendered once per database class."""

    def __init__(self, build: Callable[..., Any], arity: int) -> None:
        self._build = build
        self._arity = arity
        self._cache: Dict[type, Rendered] = {}

    def rendered(self, db: peewee.Database) -> Rendered:
        """The query rendered for ``db``'s class."""
        rendered = self._cache.get(type(db))
        if rendered is None:
            rendered = self._cache[type(db)] = render(db, self._build, self._arity)
        return rendered

    def rows(self, db: peewee.Database, values: Sequence[Any]) -> List[tuple]:
        """Run with ``values`` (database-ready) in place of the placeholders."""
        rendered = self.rendered(db)
        return db.execute_sql(rendered.sql, rendered.params(values)).fetchall()


# Per database class: whether its SQLite has JSON functions and prints every
# sampled REAL exactly with printf('%!.17g').
_exact: Dict[type, bool] = {}


def _printf_exact(db: peewee.Database) -> bool:
    known = _exact.get(type(db))
    if known is None:
        import random

        rng = random.Random(5)
        values = [0.1, 0.1 + 0.2, 1 / 3, 2.0 ** -1074, 2.2250738585072014e-308, 9.99e99,
                  -1.5e-300] + [rng.uniform(-1, 1) * 10.0 ** rng.randint(-300, 99)
                                for _ in range(300)]
        known = True
        try:
            for start in range(0, len(values), 100):
                chunk = values[start:start + 100]
                row = db.execute_sql(
                    "SELECT json_array(%s)" % ", ".join(["json(printf('%!.17g', ?))"] * len(chunk)),
                    chunk).fetchone()
                if json.loads(row[0]) != chunk:
                    known = False
                    break
        except peewee.OperationalError:  # no JSON functions
            known = False
        _exact[type(db)] = known
    return known


class JsonRows:
    """A ``CompiledSelect`` whose rows SQLite hands over as one JSON text.

    Python's ``sqlite3`` lets go of the GIL around every row it steps through.
    With other threads serving at the same time, each of those is a hand-over
    to another thread and back (a context switch or two): for a page of 100
    rows most of its cost under load, measured with ``benchmarks/``.  Here
    SQLite builds the whole page as one JSON array of row arrays, one step,
    and ``json.loads`` turns it back into the values the cursor would give:
    integers, text and NULL as they are, a REAL printed with 17 significant
    digits (exact; SQLite's own JSON keeps 15).  It costs more CPU than the
    cursor when nothing else runs, so the list route uses it only while other
    requests are in flight.  ``rows`` returns None where it cannot be used
    (not SQLite, no JSON functions, a BLOB or a value JSON cannot hold); then
    the caller steps through the cursor as usual.
    """

    def __init__(self, select: CompiledSelect, columns: Sequence[str],
                 exact: Sequence[str], order_index: int) -> None:
        self._select = select
        items = []
        for column in columns:
            name = '"%s"' % column.replace('"', '""')
            if column in exact:
                # A column that may hold a REAL: that as exact text, anything else
                # as it is.  SQLite's printf is exact below 1e100 (checked by
                # _printf_exact) but not above: such a value makes this query fail
                # (json('-') is malformed), and that page comes from the cursor.
                name = (f"CASE typeof({name}) WHEN 'real' THEN CASE WHEN abs({name}) < 1e100 "
                        f"THEN json(printf('%!.17g', {name})) ELSE json('-') END "
                        f"ELSE {name} END")
            items.append(name)
        self._columns = "json_group_array(json_array(%s))" % ", ".join(items)
        self._order = order_index
        self._sql: Dict[type, Any] = {}

    @classmethod
    def of_model(cls, info: ModelInfo, select: CompiledSelect) -> Optional[JsonRows]:
        """For ``select``, a query of every field of ``info``'s model in key order;
        None for a model with a BLOB field (JSON cannot hold one)."""
        if BYTES in info.kinds.values():
            return None
        # Columns that may hold a REAL are printed exactly: all but text columns
        # and an integer key (SQLite converts anything else they are given).
        pk = info.pk
        exact = [f.column_name for f in info.fields
                 if info.kinds[f.name] != STRING
                 and not (f is pk and info.kinds[f.name] == INTEGER)]
        return cls(select, [f.column_name for f in info.fields], exact,
                   info.fields.index(pk))

    def rows(self, db: peewee.Database, values: Sequence[Any]) -> Optional[List[list]]:
        """The rows as lists (in the select's order), or None: use the cursor."""
        sql = self._sql.get(type(db))
        if sql is None:
            sql = False
            if dialect_of(db).json_pages() and _printf_exact(db):
                sql = "SELECT %s FROM (%s)" % (self._columns, self._select.rendered(db).sql)
            self._sql[type(db)] = sql
        if sql is False:
            return None
        try:
            text = db.execute_sql(sql, self._select.rendered(db).params(values)).fetchone()[0]
        except peewee.OperationalError as exc:
            message = str(exc).lower()
            if "json" not in message:
                raise
            # A value JSON cannot hold (a BLOB, a REAL past 1e100 or infinite):
            # this page from the cursor.
            return None
        rows = json.loads(text)
        # SQLite aggregates a LIMIT subquery in its ORDER BY order; checked, not assumed.
        key = self._order
        try:
            ordered = all(rows[i][key] < rows[i + 1][key] for i in range(len(rows) - 1))
        except TypeError:  # keys of mixed types: the cursor knows SQLite's order
            return None
        if not ordered:
            rows.sort(key=lambda row: row[key])
        return rows
