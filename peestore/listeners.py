"""After-commit change listeners and restore listeners.

peewee runs no code when a transaction commits or a savepoint rolls back, so
``connect`` gives the database transaction and savepoint objects that keep the
changes written inside them: a rolled-back savepoint drops its own changes,
a rolled-back transaction drops all of them, and a commit hands them to the
listeners once the data is safely on disk.
"""
from __future__ import annotations

import logging
import threading
import types

import peewee

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Tuple

__all__ = ["Change", "after_commit", "on_restore", "notify_restore", "record_change",
           "track_transactions", "listening", "remove_listener"]

log = logging.getLogger("peestore")


class Change:
    """One committed write: what changed, to which record, and how."""

    __slots__ = ("model", "component", "operation", "record_id", "values", "before")

    def __init__(self, model: type, component: str, operation: str, record_id: str,
                 values: Optional[Dict[str, Any]], before: Optional[Dict[str, Any]]) -> None:
        self.model = model
        self.component = component
        self.operation = operation
        self.record_id = record_id
        self.values = values
        self.before = before

    def __repr__(self) -> str:
        return "Change(%s %s %s)" % (self.component, self.operation, self.record_id)


_listeners: List[Tuple[Tuple[type, ...], Callable[[List[Change]], Any]]] = []
_restore_listeners: List[Callable[[], Any]] = []
class _Local(threading.local):
    # A class-level default: a thread that never kept a change finds None, not
    # an AttributeError (which getattr would raise and catch on every write).
    pending: Optional[List[Change]] = None


_local = _Local()


def after_commit(*models: type) -> Callable:
    """Register ``fn(changes)`` to run after each commit that wrote one of ``models``.

    ``changes`` is the list of :class:`Change` to those models, in order.
    With no models, the listener hears every model (``Meta.audited = False`` ones too).
    """
    def decorator(fn: Callable[[List[Change]], Any]) -> Callable[[List[Change]], Any]:
        _listeners.append((tuple(models), fn))
        return fn
    if len(models) == 1 and not isinstance(models[0], type) and callable(models[0]):
        fn, models = models[0], ()
        return decorator(fn)
    return decorator


def remove_listener(fn: Callable) -> None:
    """Unregister a listener added with ``after_commit`` or ``on_restore``."""
    _listeners[:] = [item for item in _listeners if item[1] is not fn]
    _restore_listeners[:] = [item for item in _restore_listeners if item is not fn]


def on_restore(fn: Callable[[], Any]) -> Callable[[], Any]:
    """Register ``fn()`` to run after a database restore."""
    _restore_listeners.append(fn)
    return fn


def notify_restore() -> None:
    """Call every ``on_restore`` listener; their exceptions are logged."""
    for fn in list(_restore_listeners):
        try:
            fn()
        except Exception:
            log.exception("on_restore listener %r failed", fn)


def listening() -> bool:
    """True when any after-commit listener is registered (else changes are not kept)."""
    return bool(_listeners)


def _pending() -> List[Change]:
    pending = _local.pending
    if pending is None:
        pending = _local.pending = []
    return pending


def record_change(database: peewee.Database, change: Change) -> None:
    """Keep ``change`` until the enclosing transaction commits or rolls back."""
    _pending().append(change)
    if database.transaction_depth() == 0:
        _flush()


def _discard() -> None:
    del _pending()[:]


def _flush() -> None:
    pending = _pending()
    if not pending:
        return
    changes = list(pending)
    del pending[:]
    for models, fn in list(_listeners):
        mine = changes if not models else [c for c in changes if issubclass(c.model, models)]
        if not mine:
            continue
        try:
            fn(mine)
        except Exception:
            log.exception("after_commit listener %r failed", fn)


class _TrackedTransaction(peewee._transaction):
    def __enter__(self):
        if self.db.transaction_depth() == 0:
            _discard()
        return super().__enter__()

    def commit(self, begin: bool = True) -> None:
        super().commit(begin)
        _flush()

    def rollback(self, begin: bool = True) -> None:
        _discard()
        super().rollback(begin)


class _TrackedSavepoint(peewee._savepoint):
    _mark = 0

    def _begin(self) -> None:
        super()._begin()
        self._mark = len(_pending())

    def rollback(self, begin: bool = True) -> None:
        del _pending()[self._mark:]
        super().rollback(begin)


def _transaction(self, *args, **kwargs):
    return _TrackedTransaction(self, *args, **kwargs)


def _savepoint(self, sid=None):
    return _TrackedSavepoint(self, sid)


def track_transactions(database: peewee.Database) -> None:
    """Make ``database``'s transactions and savepoints keep their changes."""
    database.transaction = types.MethodType(_transaction, database)
    database.savepoint = types.MethodType(_savepoint, database)

