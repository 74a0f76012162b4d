"""Helpers for testing code that uses peestore."""
from __future__ import annotations

import contextlib

from .audit._log import AuditLog

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Iterator, List, Optional

    import peewee

__all__ = ["capture_audit", "capture_statements", "isolated_hooks", "isolated_listeners"]


class CapturedAudit(list):
    """The audit entries a block wrote (a list of ``AuditLog``), oldest first."""

    def operations(self) -> List[str]:
        """The entries' operations, in order."""
        return [entry.operation for entry in self]


@contextlib.contextmanager
def capture_audit() -> Iterator[CapturedAudit]:
    """Collect the audit entries written inside the block.

    ```python
    with capture_audit() as entries:
        User.create(name="a")
    assert entries.operations() == ["create"]
    ```
    The list fills when the block ends; entries rolled back are not in it.
    """
    captured = CapturedAudit()
    last = AuditLog.select(AuditLog.id).order_by(AuditLog.id.desc()).limit(1).scalar() or 0
    try:
        yield captured
    finally:
        captured.extend(AuditLog.select().where(AuditLog.id > last).order_by(AuditLog.id))


@contextlib.contextmanager
def capture_statements(database: Optional[peewee.Database] = None) -> Iterator[List[str]]:
    """Collect every SQL statement SQLite runs on this thread's connection in the block.

    ```python
    with capture_statements() as statements:
        User.create(name="a")
    assert statements[0] == "BEGIN IMMEDIATE"
    ```
    Unlike peewee's query log, SQLite's own trace sees every statement, also
    those peestore runs through the DB-API cursor and ``BEGIN``/``COMMIT``.
    SQLite only; the connection is opened if this thread has none.
    """
    from .db._connect import get_database

    db = get_database(database)
    opened = db.is_closed()
    db.connect(reuse_if_open=True)
    connection = db.connection()
    statements: List[str] = []
    connection.set_trace_callback(statements.append)
    try:
        yield statements
    finally:
        connection.set_trace_callback(None)
        if opened and not db.is_closed():
            db.close()


@contextlib.contextmanager
def isolated_hooks() -> Iterator[None]:
    """Hook receivers connected inside the block are gone after it (those connected
    before stay), e.g. as an autouse pytest fixture."""
    from . import _compat, signals

    hooks = [signals.before_insert, signals.after_insert, signals.before_update,
             signals.after_update, signals.before_delete, signals.after_delete]
    saved = [_compat.signal_receivers(hook) for hook in hooks]
    try:
        yield
    finally:
        for hook, receivers in zip(hooks, saved):
            _compat.set_signal_receivers(hook, receivers)


@contextlib.contextmanager
def isolated_listeners() -> Iterator[None]:
    """``after_commit`` and ``on_restore`` listeners registered inside the block are
    gone after it (those registered before stay)."""
    from .audit._listeners import keep_listeners

    put_back = keep_listeners()
    try:
        yield
    finally:
        put_back()
