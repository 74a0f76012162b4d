"""Pruning the audit log: a controller's flash is finite."""
from __future__ import annotations

import datetime

from .audit import AuditLog, utcnow
from .writes import write_transaction

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Optional

__all__ = ["prune_audit"]


def prune_audit(*, keep_rows: Optional[int] = None,
                older_than: Optional[datetime.timedelta] = None) -> int:
    """Delete the oldest audit entries beyond ``keep_rows`` or older than ``older_than``.

    With both, an entry goes when either rule says so.  Returns how many
    entries were deleted.  Each rule is one indexed DELETE, not a loop.
    """
    if keep_rows is None and older_than is None:
        raise ValueError("prune_audit() needs keep_rows=N or older_than=timedelta(...)")
    if keep_rows is not None and (isinstance(keep_rows, bool) or not isinstance(keep_rows, int)
                                  or keep_rows < 0):
        raise ValueError("keep_rows must be a whole number >= 0, got %r" % (keep_rows,))
    if older_than is not None and not isinstance(older_than, datetime.timedelta):
        raise ValueError("older_than must be a datetime.timedelta, got %r" % (older_than,))
    deleted = 0
    with write_transaction(AuditLog._meta.database):
        if older_than is not None:
            cutoff = utcnow() - older_than
            deleted += AuditLog.delete().where(AuditLog.timestamp < cutoff).execute()
        if keep_rows is not None:
            # The newest id that goes: everything at or below it is older.
            boundary = (AuditLog.select(AuditLog.id).order_by(AuditLog.id.desc())
                        .offset(keep_rows).limit(1).scalar())
            if boundary is not None:
                deleted += AuditLog.delete().where(AuditLog.id <= boundary).execute()
    return deleted
