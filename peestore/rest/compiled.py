"""SELECTs that peewee generates once and the routes run again with new values.

Building and rendering a peewee query costs more than running it on SQLite;
the hot read routes (get by id, an unfiltered list page) keep the rendered
SQL per database class and only swap the parameter values in.
"""
from __future__ import annotations

import peewee

from ..rendered import Rendered, render

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Sequence

__all__ = ["CompiledSelect"]


class CompiledSelect:
    """``build(*placeholders) -> query``, rendered once per database class."""

    def __init__(self, build: Callable[..., Any], arity: int) -> None:
        self._build = build
        self._arity = arity
        self._cache: Dict[type, Rendered] = {}

    def rows(self, db: peewee.Database, values: Sequence[Any]) -> List[tuple]:
        """Run with ``values`` (database-ready) in place of the placeholders."""
        rendered = self._cache.get(type(db))
        if rendered is None:
            rendered = self._cache[type(db)] = render(db, self._build, self._arity)
        return db.execute_sql(rendered.sql, rendered.params(values)).fetchall()
