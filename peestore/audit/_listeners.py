"""After-commit change listeners and restore listeners.

peewee runs no code when a transaction commits or a savepoint rolls back, so
``connect`` wraps the transaction and savepoint objects the database hands
out (``Database.transaction()`` and ``Database.savepoint()``, through which
``atomic()`` goes too) in objects that keep the changes written inside them:
a rolled-back savepoint drops its own changes, a rolled-back transaction drops
all of them, and a commit hands them to the listeners once the data is safely
on disk.  The wrappers delegate everything else to peewee's own objects.
"""
from __future__ import annotations

import functools
import logging
import threading

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Tuple

    import peewee

__all__ = ["Change", "after_commit", "on_restore", "notify_restore", "record_change",
           "track_transactions", "listening", "remove_listener", "in_owned_transaction",
           "transaction_state", "keep_listeners"]

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
    # Class-level defaults: a thread that never kept a change finds None, not
    # an AttributeError (which getattr would raise and catch on every write).
    pending: Optional[List[Change]] = None
    # How many of this thread's open transactions and savepoints peestore opened
    # itself for a unit of work (``owned`` ones), where nested writes need no
    # savepoint of their own (``in_owned_transaction``).  0 inside a write's
    # hooks: ``peestore.audit._write`` clears it there.
    owned: int = 0
    # (database, id, hash) of the last audit entry this thread's open transaction
    # wrote: the head of the hash chain once it commits (``peestore.audit._chain``).
    head: Optional[Tuple[Any, int, str]] = None


#: This thread's transaction state (``pending`` changes, ``owned`` depth, ``head``).
transaction_state = _local = _Local()


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


def keep_listeners() -> Callable[[], None]:
    """Remember the listeners registered now; the function returned brings back
    exactly those (``peestore.testing.isolated_listeners``)."""
    saved = list(_listeners), list(_restore_listeners)

    def put_back() -> None:
        _listeners[:], _restore_listeners[:] = saved
    return put_back


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
    if not database.in_transaction():
        _flush()


def _discard() -> None:
    del _pending()[:]
    _forget_head()


def _forget_head() -> None:
    # Rolled back: what the database's last entry is now is not known here.
    head = _local.head
    if head is not None:
        _local.head = None
        head[0].__dict__.pop("_peestore_head", None)


def _flush() -> None:
    head = _local.head
    if head is not None:
        _local.head = None
        head[0].__dict__["_peestore_head"] = head[1:]
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


def in_owned_transaction() -> bool:
    """True inside a transaction peestore itself opened for a unit of work (a write,
    a REST request's lock-check-write): a write nested in it needs no savepoint of
    its own, since any failure aborts the whole unit."""
    return _local.owned > 0


class _Wrapper:
    """Delegates to one of peewee's transaction or savepoint objects.

    ``owned`` is set by peestore when it opens one for a unit of work (see
    ``in_owned_transaction``).
    """

    __slots__ = ("_inner", "_db", "owned")

    def __init__(self, inner: Any, db: peewee.Database) -> None:
        self._inner = inner
        self._db = db
        self.owned = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __call__(self, fn: Callable) -> Callable:
        # As a decorator: a fresh transaction (or savepoint) per call.
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            with self._fresh():
                return fn(*args, **kwargs)
        return inner


class _Transaction(_Wrapper):
    """A transaction whose commit hands its changes to the listeners."""

    __slots__ = ("_outermost", "_begin_args")

    def __init__(self, inner: Any, db: peewee.Database, args: tuple, kwargs: dict) -> None:
        self._inner = inner
        self._db = db
        self.owned = False
        self._outermost = False
        self._begin_args = (args, kwargs)

    def _fresh(self) -> _Transaction:
        args, kwargs = self._begin_args
        return self._db.transaction(*args, **kwargs)

    def __enter__(self) -> _Transaction:
        self._outermost = not self._db.in_transaction()
        if self._outermost:
            _discard()
        self._inner.__enter__()
        if self.owned:
            _local.owned += 1
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        if self.owned:
            _local.owned -= 1
        outermost = self._outermost
        try:
            result = self._inner.__exit__(exc_type, exc, tb)
        except BaseException as error:
            if outermost:
                _discard()
            _raise_disk_full(error, self._db, exc)
            raise
        if outermost:
            if exc_type is None:
                _flush()
            else:
                _discard()
        if exc is not None:
            _raise_disk_full(exc, self._db)
        return result

    def commit(self, begin: bool = True) -> None:
        self._inner.commit(begin)
        _flush()

    def rollback(self, begin: bool = True) -> None:
        _discard()
        self._inner.rollback(begin)


class _Savepoint(_Wrapper):
    """A savepoint whose rollback drops the changes written inside it."""

    __slots__ = ("_mark",)

    def __init__(self, inner: Any, db: peewee.Database) -> None:
        super().__init__(inner, db)
        self._mark = 0

    def _fresh(self) -> _Savepoint:
        return self._db.savepoint()

    def __enter__(self) -> _Savepoint:
        self._inner.__enter__()
        self._mark = len(_pending())
        if self.owned:
            _local.owned += 1
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        if self.owned:
            _local.owned -= 1
        if exc_type is not None:
            del _pending()[self._mark:]
            _forget_head()
        try:
            result = self._inner.__exit__(exc_type, exc, tb)
        except BaseException as error:
            del _pending()[self._mark:]
            _forget_head()
            _raise_disk_full(error, self._db, exc)
            raise
        if exc is not None:
            _raise_disk_full(exc, self._db)
        return result

    def rollback(self, begin: bool = True) -> None:
        del _pending()[self._mark:]
        _forget_head()
        self._inner.rollback(begin)


def _raise_disk_full(error: BaseException, db: peewee.Database,
                     original: Optional[BaseException] = None) -> None:
    """Raise ``DiskFullError`` in place of SQLite's "database or disk is full".

    The transaction is rolled back by then: nothing of it was written.  SQLite
    may have rolled it back itself, and peewee's own rollback then fails
    ("no transaction is active"): the error that caused it (``original``, or
    the context of ``error``) decides.
    """
    import sqlite3

    import peewee

    from ..db._space import full_error, is_disk_full

    chain, exc = [original], error
    for _ in range(4):  # peewee's error, sqlite3's under it, what they interrupted
        if exc is None:
            break
        chain.append(exc)
        exc = exc.__context__
    for exc in chain:
        if isinstance(exc, (peewee.OperationalError, sqlite3.OperationalError)) \
                and is_disk_full(exc):
            raise full_error(exc, db) from None


def _transaction(original: Callable, db: peewee.Database, *args: Any, **kwargs: Any
                 ) -> _Transaction:
    return _Transaction(original(*args, **kwargs), db, args, kwargs)


def _savepoint(original: Callable, db: peewee.Database, *args: Any, **kwargs: Any
               ) -> _Savepoint:
    return _Savepoint(original(*args, **kwargs), db)


def _session_commit(original: Callable) -> bool:
    committed = original()
    if committed:
        _flush()
    return committed


def _session_rollback(original: Callable) -> bool:
    _discard()
    return original()


def track_transactions(db: peewee.Database) -> None:
    """Make ``db``'s transactions and savepoints keep their changes (idempotent).

    The database's own public methods are wrapped on this instance:
    ``transaction()``, ``savepoint()`` (``atomic()`` uses both) and
    ``session_commit()``/``session_rollback()``.
    """
    if db.__dict__.get("_peestore_tracked"):
        return
    for name, wrapper in (("transaction", _transaction), ("savepoint", _savepoint)):
        setattr(db, name, functools.partial(wrapper, getattr(db, name), db))
    db.session_commit = functools.partial(_session_commit, db.session_commit)
    db.session_rollback = functools.partial(_session_rollback, db.session_rollback)
    db.__dict__["_peestore_tracked"] = True

