"""Every private name of peewee, playhouse, bottle and waitress that peestore uses.

A private name is one with a leading underscore, or an attribute the
dependency's documentation does not describe.  (peewee documents
``Model._meta`` and the ``__sql__`` protocol, and uses ``Model.__data__`` in
its recipes: those count as public.)

peestore builds on its dependencies' public APIs; where one does not reach
(the speed of the write path, the server's channel), the private name is used
here and only here, behind a small function or constant with a docstring that
says what it is for.  At import, ``check()`` makes sure each one exists in
the installed versions and raises ``ConfigurationError`` naming the
dependency and its version otherwise, so an upgrade that removes one fails at
start, with a message, not in the middle of a write.

The waitress names are checked when the server is first made (``check_waitress``):
a process that only uses the models never imports waitress.
"""
from __future__ import annotations

import peewee

from .errors import ConfigurationError

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Dict, Iterable, Set

__all__ = ["check", "dirty_names", "LOADED", "pk_condition",
           "prune_fields", "populate_relations", "normalize_data", "query_where",
           "set_query_where", "update_values", "insert_data", "insert_columns",
           "on_conflict", "tuples_query", "exception_wrapper", "chainable", "ExecuteHook",
           "set_update_values", "signal_receivers", "set_signal_receivers"]


# -- peewee: model instances ----------------------------------------------------

#: The keyword peewee passes to a model's constructor for a row read from the
#: database (its defaults are not applied then): ``LOADED in kwargs``.
LOADED = "__no_default__"


def dirty_names(instance: peewee.Model) -> Set[str]:
    """The names of the fields set since the row was loaded or saved (``_dirty``)."""
    return instance._dirty


def pk_condition(instance: peewee.Model) -> peewee.Expression:
    """``primary_key == instance's key`` (``Model._pk_expr``)."""
    return instance._pk_expr()


def prune_fields(instance: peewee.Model, data: Dict[str, Any], only: Iterable[Any]
                 ) -> Dict[str, Any]:
    """``data`` narrowed to the fields ``only`` names, as ``save(only=...)`` does."""
    return instance._prune_fields(data, only)


def populate_relations(instance: peewee.Model, data: Dict[str, Any]) -> None:
    """Fill in foreign keys to related instances saved since they were assigned, as
    ``save()`` does (``Model._populate_unsaved_relations``)."""
    instance._populate_unsaved_relations(data)


def normalize_data(model: type, data: Any, kwargs: Dict[str, Any]) -> Any:
    """``Model.update``/``insert`` arguments as ``{field: value}`` (``_normalize_data``)."""
    return model._normalize_data(data, kwargs)


# -- peewee: queries ---------------------------------------------------------------

def query_where(query: peewee.Query) -> Any:
    """A query's WHERE expression, or None (``Query._where``)."""
    return query._where


def set_query_where(query: peewee.Query, where: Any) -> None:
    """Replace a query's WHERE expression in place (a clone peestore just made)."""
    query._where = where


def update_values(query: peewee.ModelUpdate) -> Dict[Any, Any]:
    """An UPDATE's ``{field: value or expression}`` (``_update``)."""
    return query._update


def set_update_values(query: peewee.ModelUpdate, values: Dict[Any, Any]) -> None:
    """Replace an UPDATE's values in place."""
    query._update = values


def insert_data(query: peewee.ModelInsert) -> Any:
    """An INSERT's rows: a dict, a list of dicts or tuples, or a query (``_insert``)."""
    return query._insert


def insert_columns(query: peewee.ModelInsert) -> Any:
    """An INSERT's explicit columns, or None (``_columns``)."""
    return query._columns


def on_conflict(query: peewee.ModelInsert) -> Any:
    """An INSERT's ON CONFLICT clause, or None (``_on_conflict``)."""
    return query._on_conflict


def tuples_query(query: peewee.Query) -> peewee.Query:
    """``query`` returning plain tuples even where peewee would build models
    (a RETURNING insert: ``_row_type``)."""
    query._row_type = peewee.ROW.TUPLE
    return query


#: peewee's decorator for a query method that returns a changed copy (``Node.copy``).
chainable = peewee.Node.copy


class ExecuteHook:
    """Put this before a peewee write query class to take over its execution:
    ``execute()`` calls ``run_audited(database)``, which may call
    ``run_plain(database)`` to run the statement as peewee would
    (``BaseQuery._execute``)."""

    def _execute(self, database: peewee.Database) -> Any:
        return self.run_audited(database)

    def run_plain(self, database: peewee.Database) -> Any:
        return super()._execute(database)

    def run_audited(self, database: peewee.Database) -> Any:
        raise NotImplementedError


# -- playhouse.signals -------------------------------------------------------------

def signal_receivers(signal: Any) -> Any:
    """What a ``playhouse.signals.Signal`` has connected, to give back to
    ``set_signal_receivers`` (``_receivers``, ``_receiver_list``)."""
    return set(signal._receivers), list(signal._receiver_list)


def set_signal_receivers(signal: Any, receivers: Any) -> None:
    """Make a signal's receivers exactly what ``signal_receivers`` returned."""
    signal._receivers, signal._receiver_list = set(receivers[0]), list(receivers[1])


#: peewee's context manager that turns a driver's exception into peewee's own.
exception_wrapper = peewee.__exception_wrapper__


# -- the check ---------------------------------------------------------------------

def _version(module: Any) -> str:
    return str(getattr(module, "__version__", "unknown"))


def _require(dependency: str, module: Any, owner: Any, names: Iterable[str]) -> None:
    missing = [name for name in names if not hasattr(owner, name)]
    if missing:
        raise ConfigurationError(
            "peestore needs %s of %s %s, which lacks %s; install a version in the range "
            "peestore declares (pip install 'peestore' resolves it)" % (
                getattr(owner, "__name__", owner), dependency, _version(module),
                ", ".join(missing)))


def check() -> None:
    """Raise ``ConfigurationError`` unless every private peewee name used here exists."""
    _require("peewee", peewee, peewee.Model, ("_pk_expr", "_prune_fields",
                                              "_populate_unsaved_relations",
                                              "_normalize_data", "_pk"))
    _require("peewee", peewee, peewee, ("__exception_wrapper__", "ROW"))
    _require("peewee", peewee, peewee.Node, ("copy",))
    _require("peewee", peewee, peewee.ROW, ("TUPLE",))
    for query_class in (peewee.ModelUpdate, peewee.ModelDelete, peewee.ModelInsert):
        _require("peewee", peewee, query_class, ("_execute",))

    class _Probe(peewee.Model):
        pass

    for kwargs in ({}, {LOADED: True}):
        probe = _Probe(**kwargs)
        _require("peewee", peewee, probe, ("_dirty",))
    query = _Probe.insert({})
    _require("peewee", peewee, query, ("_insert", "_columns", "_on_conflict", "_where"))
    _require("peewee", peewee, _Probe.update({}), ("_update", "_where"))
    from playhouse.signals import Signal

    _require("peewee (playhouse.signals)", peewee, Signal(), ("_receivers", "_receiver_list"))


check()
