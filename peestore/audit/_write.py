"""Where a write meets its audit entry and its change listeners.

Every audited write, from an instance method or a bulk query, ends here once
its SQL has run, inside the write's transaction.
"""
from __future__ import annotations

import peewee

from ._actor import current_actor
from ._log import write_entries, write_entry
from ._listeners import Change, listening, record_change
from ..model._values import dumps

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Dict, Iterable, Optional, Tuple
    # (operation, record_id, before, after); before/after are JSON-safe dicts.
    Write = Tuple[str, str, Optional[Dict[str, Any]], Optional[Dict[str, Any]]]

__all__ = ["record_write", "record_writes", "write_transaction"]


def write_transaction(database: Any) -> Any:
    """The transaction of an audited write: on SQLite ``BEGIN IMMEDIATE``.

    An audited write reads before it writes (the before-state, hooks that
    look rows up).  In a plain (deferred) SQLite transaction that read takes
    a snapshot, and when another connection commits before the write, the
    write fails at once with "database is locked": SQLite cannot wait there,
    the snapshot is stale.  ``BEGIN IMMEDIATE`` takes the write lock first,
    waiting up to ``busy_timeout`` for it, so concurrent writers queue up
    instead.  Inside a transaction that is already open this is a savepoint
    (the outer transaction decides), and on the server databases a plain
    transaction (their row locks do the job).
    """
    db = database.obj if isinstance(database, peewee.DatabaseProxy) else database
    if isinstance(db, peewee.SqliteDatabase) and db.transaction_depth() == 0:
        # What atomic() would hand over to at depth 0, without its wrapper.
        return db.transaction(lock_type="IMMEDIATE")
    return database.atomic()


def record_writes(model: type, writes: Iterable[Write], actor: Optional[str] = None) -> None:
    """Audit ``writes`` to ``model`` and keep them for the after-commit listeners."""
    writes = list(writes)
    if not writes:
        return
    meta = model._meta
    who = current_actor(actor)
    if meta.audited:
        write_entries(({"component": meta.component, "operation": op, "record_id": rid,
                        "before": before, "after": after}
                       for op, rid, before, after in writes), actor=who)
    if listening():
        for op, rid, before, after in writes:
            _keep(model, op, rid, before, after)


def record_write(model: type, operation: str, record_id: str, before: Optional[Dict[str, Any]],
                 after: Optional[Dict[str, Any]], actor: Optional[str] = None
                 ) -> Optional[str]:
    """``record_writes`` for one write; returns the JSON text of ``after`` as audited
    (None when the model is not audited), for a caller that answers with it."""
    meta = model._meta
    text = None
    if meta.audited:
        text = None if after is None else dumps(after)
        write_entry(meta.component, operation, record_id,
                    None if before is None else dumps(before), text, current_actor(actor))
    if listening():
        _keep(model, operation, record_id, before, after)
    return text


def _keep(model: type, operation: str, record_id: str, before: Optional[Dict[str, Any]],
          after: Optional[Dict[str, Any]]) -> None:
    # For the after-commit listeners: a delete's values are its "before".
    meta = model._meta
    record_change(meta.database, Change(model, meta.component, operation, record_id,
                                        before if after is None else after, before))
