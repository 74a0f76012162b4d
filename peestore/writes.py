"""Where a write meets its audit entry and its change listeners.

Every audited write, from an instance method or a bulk query, ends here once
its SQL has run, inside the write's transaction.
"""
from typing import Any, Dict, Iterable, Optional, Tuple

from .actor import current_actor
from .audit import write_entries
from .listeners import Change, listening, record_change

__all__ = ["record_writes"]

# (operation, record_id, before, after); before/after are JSON-safe dicts.
Write = Tuple[str, str, Optional[Dict[str, Any]], Optional[Dict[str, Any]]]


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
        db = meta.database
        for op, rid, before, after in writes:
            values = before if after is None else after
            record_change(db, Change(model, meta.component, op, rid, values, before))
