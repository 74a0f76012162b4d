"""SELECTs that peewee generates once and the routes run again with new values.

Building and rendering a peewee query costs more than running it on SQLite;
the hot read routes (get by id, an unfiltered list page) keep the rendered
SQL per database class and only swap the parameter values in.
"""
from __future__ import annotations


import peewee

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Sequence, Tuple

__all__ = ["CompiledSelect"]


class _Mark:
    """A placeholder parameter, found again in the rendered parameters by identity."""

    __slots__ = ()


class CompiledSelect:
    """``build(*placeholders) -> query``, rendered once per database class."""

    def __init__(self, build: Callable[..., Any], arity: int) -> None:
        self._build = build
        self._arity = arity
        self._cache: Dict[type, Tuple[str, List[Any], List[int]]] = {}

    def _render(self, db: peewee.Database) -> Tuple[str, List[Any], List[int]]:
        marks = [_Mark() for _ in range(self._arity)]
        query = self._build(*[peewee.Value(m, converter=False) for m in marks])
        sql, params = db.get_sql_context().sql(query).query()
        params = list(params)
        positions = []
        for mark in marks:
            found = [i for i, p in enumerate(params) if p is mark]
            if len(found) != 1:
                raise RuntimeError("placeholder rendered %d times" % len(found))
            positions.append(found[0])
        entry = (sql, params, positions)
        self._cache[type(db)] = entry
        return entry

    def rows(self, db: peewee.Database, values: Sequence[Any]) -> List[tuple]:
        """Run with ``values`` (database-ready) in place of the placeholders."""
        entry = self._cache.get(type(db))
        if entry is None:
            entry = self._render(db)
        sql, params, positions = entry
        params = list(params)
        for position, value in zip(positions, values):
            params[position] = value
        return db.execute_sql(sql, params).fetchall()
