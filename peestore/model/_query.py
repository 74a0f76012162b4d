"""``SoftDeleteQuery``: a ``ModelSelect`` that hides soft-deleted rows.

The filter is added when the SQL is generated, not when the query is built,
so it holds however the query is chained, cloned, counted or used as a
subquery, and ``with_deleted()`` may come before or after ``where()``.
"""
import peewee

from .. import _compat

__all__ = ["SoftDeleteQuery", "HIDE", "WITH", "ONLY"]

HIDE, WITH, ONLY = "hide", "with", "only"


class SoftDeleteQuery(peewee.ModelSelect):
    """A ``ModelSelect`` that leaves out rows whose ``deleted_at`` is set."""

    _deleted = HIDE

    @_compat.chainable
    def with_deleted(self) -> "SoftDeleteQuery":
        """Include soft-deleted rows too."""
        self._deleted = WITH

    @_compat.chainable
    def only_deleted(self) -> "SoftDeleteQuery":
        """Return only soft-deleted rows."""
        self._deleted = ONLY

    def _deleted_condition(self):
        field = self.model._meta.fields.get("deleted_at")
        if field is None or self._deleted == WITH:
            return None
        return field.is_null(self._deleted == HIDE)

    def __sql__(self, ctx):
        condition = self._deleted_condition()
        if condition is None:
            return super().__sql__(ctx)
        clone = self.clone()
        clone._deleted = WITH
        where = _compat.query_where(clone)
        _compat.set_query_where(clone, condition if where is None else where & condition)
        return clone.__sql__(ctx)
