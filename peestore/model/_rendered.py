"""Queries peewee renders once, with placeholders, and runs again with new values.

Building and rendering a peewee query costs more than running a small one on
SQLite.  ``render`` builds the query with one marker object per value, renders
it, and notes where each marker landed among the parameters; ``Rendered.params``
then puts new values there.
"""
from __future__ import annotations

import peewee

from .. import _compat

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Callable, List, Sequence

__all__ = ["Rendered", "render"]


class _Mark:
    """A placeholder parameter, found again in the rendered parameters by identity."""

    __slots__ = ()


class Rendered:
    """The SQL of a query and where its placeholders are among the parameters."""

    __slots__ = ("sql", "_params", "_positions", "_direct")

    def __init__(self, sql: str, params: List[Any], positions: List[int]) -> None:
        self.sql = sql
        self._params = params
        self._positions = positions
        # The placeholders are all the parameters, in order (an INSERT): the
        # values are the parameters as they are.
        self._direct = positions == list(range(len(params)))

    def params(self, values: Sequence[Any]) -> Sequence[Any]:
        """The parameters with ``values`` (database-ready) in place of the placeholders."""
        if self._direct:
            return values
        params = list(self._params)
        for position, value in zip(self._positions, values):
            params[position] = value
        return params


def render(db: peewee.Database, build: Callable[..., Any], arity: int) -> Rendered:
    """Render ``build(*placeholders)`` (a peewee query) for ``db``'s SQL dialect."""
    marks = [_Mark() for _ in range(arity)]
    query = build(*[peewee.Value(mark, converter=False) for mark in marks])
    sql, params = _compat.render(db, query)
    params = list(params)
    positions = []
    for mark in marks:
        found = [i for i, p in enumerate(params) if p is mark]
        if len(found) != 1:
            raise RuntimeError("placeholder rendered %d times" % len(found))
        positions.append(found[0])
    return Rendered(sql, params, positions)
