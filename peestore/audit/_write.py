"""The one audited write: every write peestore audits goes through ``write``.

A write, whatever starts it (``save``, ``delete_instance``, ``restore``,
``revert_to``, a bulk query, a CSV import, a database restore), is::

    transaction (BEGIN IMMEDIATE on SQLite; a savepoint inside a caller's)
      load the row as it is          -> nothing to do: stop here
      before-hook (instance writes)
      the SQL                        -> the changes: (record_id, before, after)
      after-hook
      one audit entry per change, each chained to the one before (its hash)
      the changes kept for the after-commit listeners (told after the commit)

and the caller gets a ``Written`` back: what to return, the changes, and the
audit entry's JSON text of a single row's state (a REST answer reuses it).
"""
from __future__ import annotations

import peewee

from .. import signals
from .._compat import exception_wrapper
from ..db._connect import get_database
from ..db._dialect import Dialect, dialect_of
from ..db._space import check_room
from ..errors import ValidationError
from ..model._values import dumps
from ._actor import current_actor, current_reason
from ._chain import (audit_key, claim_head, entry_hash, read_head, store_head,
                     timestamp_text)
from ._listeners import Change, listening, record_change, transaction_state
from ._log import insert_sql, utcnow

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union
    # (record_id, before, after): JSON-safe dicts, None where there is no such state.
    Changes = Sequence[Tuple[str, Optional[Dict[str, Any]], Optional[Dict[str, Any]]]]
    Run = Callable[[Optional[Dict[str, Any]]], Tuple[Any, Changes]]

__all__ = ["write", "hooked", "hook_of", "write_transaction", "Written", "HOOKS"]

#: The hooks an instance's write sends, by operation: (before, after).
HOOKS = {
    "create": (signals.before_insert, signals.after_insert),
    "update": (signals.before_update, signals.after_update),
    "restore": (signals.before_update, signals.after_update),
    "soft_delete": (signals.before_delete, signals.after_delete),
    "delete": (signals.before_delete, signals.after_delete),
}

HOOK_NAMES = {getattr(signals, name): name for name in (
    "before_insert", "after_insert", "before_update", "after_update", "before_delete",
    "after_delete")}

# Audit entries per INSERT statement when one write makes many (bulk queries):
# 7 parameters each, under SQLite's old limit of 999 per statement.
_ENTRIES_PER_STATEMENT = 140


class Written:
    """What one ``write`` did.

    ``result``: what the write's caller returns (rows changed, peewee's
    insert result...); ``changes``: ``(record_id, before, after)`` per row;
    ``after_text``: for a single change of an audited model, its ``after`` as
    the audit entry holds it (JSON text), else None.
    """

    __slots__ = ("result", "changes", "after_text")

    def __init__(self, result: Any, changes: Changes = (),
                 after_text: Optional[str] = None) -> None:
        self.result = result
        self.changes = changes
        self.after_text = after_text

    def __repr__(self) -> str:
        return "Written(%r, %d changes)" % (self.result, len(self.changes))


class _NoTransaction:
    """Inside a unit of work peestore opened itself: nothing more to open."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


_NO_TRANSACTION = _NoTransaction()


def write_transaction(db: Any) -> Any:
    """The transaction of a unit of work: one audited write, or a group of them that
    stands or falls together (``create_many``, a REST request's check and write).

    At depth 0 the dialect's write transaction (SQLite: ``BEGIN IMMEDIATE``);
    inside one of these, nothing more (a failure aborts the whole unit); inside
    a caller's own transaction, a savepoint, so that a write that fails (a hook
    refuses it) leaves nothing behind even if the caller catches the error.
    """
    db = get_database(db)
    return _unit(db, dialect_of(db))


def _unit(db: peewee.Database, dialect: Dialect) -> Any:
    if not db.in_transaction():
        check_room(db)
        unit = dialect.begin(db)
    elif transaction_state.owned:
        return _NO_TRANSACTION
    else:
        check_room(db)
        unit = db.savepoint()
    unit.owned = True
    return unit


def hooked(instance: peewee.Model, operation: str, run: Run,
           before: Optional[Dict[str, Any]] = None) -> Tuple[Any, Changes]:
    """``run(before)`` between the before- and after-hooks of ``operation`` on
    ``instance`` (the after-hook only when something was written)."""
    send_before, send_after = HOOKS[operation]
    hook = send_before
    try:
        send_before.send(instance)
        hook = None
        result, changes = run(before)
        if changes:
            hook = send_after
            send_after.send(instance)
    except Exception as exc:
        if hook is not None:
            # The exception reaches the caller unchanged; it only learns which
            # hook raised it, for a message that can say so (``hook_of``).
            exc.__dict__.setdefault("_peestore_hook", HOOK_NAMES[hook])
        raise
    return result, changes


def hook_of(exc: BaseException) -> Optional[str]:
    """The name of the hook (``before_insert``...) that raised ``exc``, if one did."""
    return getattr(exc, "_peestore_hook", None)


def write(target: Union[type, str], operation: str, run: Run, *,
          instance: Optional[peewee.Model] = None,
          load: Optional[Callable[[], Optional[Dict[str, Any]]]] = None,
          actor: Optional[str] = None, reason: Optional[str] = None,
          database: Optional[peewee.Database] = None,
          audited: Optional[bool] = None) -> Written:
    """Run one audited write of ``target`` (a model class, or the component name of
    an entry that belongs to no model, such as ``"db"`` for a database restore).

    ``load()`` returns the row as it is (handed to ``run``), or None when there
    is nothing to do (no hooks run, nothing is written).  With ``instance``,
    its hooks for ``operation`` run around ``run``.  ``run(before)`` executes
    the SQL and returns ``(result, changes)``.  Each change gets an audit entry
    (when the model is audited) blamed on ``actor`` (else the current actor),
    and is kept for the after-commit listeners.  The entries record ``reason``
    (else the current one); a model with ``Meta.require_reason`` refuses a
    write without one (``ValidationError``, nothing written).  Any exception
    rolls all of it back and reaches the caller unchanged.  ``database``
    overrides the model's (for a component name: the audit log's).
    ``audited`` overrides the model's ``Meta.audited``: a write that must leave
    a trace whatever the model says (a CSV import) passes True.
    """
    reason = current_reason(reason)
    if isinstance(target, str):
        from ._log import AuditLog

        model, component = None, target
        db = get_database(database or AuditLog._meta.database)
        if audited is None:
            audited = True
    else:
        meta = target._meta
        model, component = target, meta.component
        if reason is None and meta.require_reason:
            raise ValidationError(
                "%s needs a reason for every change: give reason=..., peestore.actor(name, "
                "reason=...) or the X-Reason header" % component,
                {"reason": "required"})
        db = get_database(database or meta.database)
        if audited is None:
            audited = meta.audited
    dialect = dialect_of(db)
    state = transaction_state
    with _unit(db, dialect):
        # What runs inside the write (its hooks above all) is not part of a unit
        # of work of its own: writes there take savepoints again, so a hook that
        # catches a nested write's exception cannot leave half of it behind.
        owned, state.owned = state.owned, 0
        try:
            before = None
            if load is not None:
                before = load()
                if before is None:
                    return Written(0)
            if instance is None:
                result, changes = run(before)
            else:
                result, changes = hooked(instance, operation, run, before)
        finally:
            state.owned = owned
        if not changes:
            return Written(result)
        text = None
        if audited:
            text = _insert_entries(db, dialect, component, operation, changes,
                                   current_actor(actor), reason)
        if model is not None and listening():
            for record_id, old, new in changes:
                # A delete's values are its "before".
                record_change(db, Change(model, component, operation, record_id,
                                         old if new is None else new, old))
    return Written(result, changes, text)


def _insert_entries(db: peewee.Database, dialect: Dialect, component: str, operation: str,
                    changes: Changes, actor: str, reason: Optional[str]) -> Optional[str]:
    """One audit entry per change, timestamped now and chained to the one before;
    the JSON text of a single change's ``after``."""
    now = dialect.audit_timestamp(utcnow())
    stamp = timestamp_text(now)
    key = audit_key(db)
    texts = [(record_id, None if before is None else dumps(before),
              None if after is None else dumps(after)) for record_id, before, after in changes]
    # The DB-API cursor, not Database.execute_sql: its query logging costs a
    # sixtieth of a whole REST create, at every write.
    with exception_wrapper:
        cursor = db.cursor()
        head_id, previous, sure = read_head(db, cursor=cursor)
    for start in range(0, len(texts), _ENTRIES_PER_STATEMENT):
        chunk = texts[start:start + _ENTRIES_PER_STATEMENT]
        while True:
            params: List[Any] = []
            entry_id, entry = head_id, previous
            for record_id, before, after in chunk:
                entry_id += 1
                entry = entry_hash(key, entry, entry_id, stamp, component, record_id,
                                   operation, actor, reason, before, after)
                params += (entry_id, now, component, record_id, operation, actor, reason,
                           before, after, entry)
            try:
                with exception_wrapper:
                    if claim_head(db, head_id, entry_id, entry, sure):
                        cursor.execute(insert_sql(db, len(chunk)), params)
                        break
            except peewee.IntegrityError:
                if sure:
                    raise
            # Another process wrote since this one last saw the head: read it.
            with exception_wrapper:
                head_id, previous, sure = read_head(db, cached=False)
        head_id, previous, sure = entry_id, entry, True
    store_head(db, head_id, previous)
    return texts[0][2] if len(texts) == 1 else None
