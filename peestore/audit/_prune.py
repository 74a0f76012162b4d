"""Pruning the audit log: a controller's flash is finite."""
from __future__ import annotations

import datetime

import peewee

from ._log import AuditLog, utcnow
from ._write import write, write_transaction

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Optional

__all__ = ["prune_audit"]

# OFFSET takes a signed 64-bit integer on every backend.
_MAX_ROWS = 2 ** 63 - 1


def prune_audit(*, keep_rows: Optional[int] = None,
                older_than: Optional[datetime.timedelta] = None) -> int:
    """Delete the oldest audit entries beyond ``keep_rows`` or older than ``older_than``.

    With both, an entry goes when either rule says so.  Only the oldest entries
    go, by id, so the hash chain of the rest stays whole; a ``prune`` entry
    (component ``audit_log``) records how many went and the id and hash of the
    last one, which the first entry left follows.  Returns how many entries
    were deleted.  A
    negative ``older_than`` (or one reaching before the year 1), or a
    ``keep_rows`` outside 0..2**63-1, is a ``ValueError`` that deletes nothing.
    """
    if keep_rows is None and older_than is None:
        raise ValueError("prune_audit() needs keep_rows=N or older_than=timedelta(...)")
    if keep_rows is not None and (isinstance(keep_rows, bool) or not isinstance(keep_rows, int)
                                  or not 0 <= keep_rows <= _MAX_ROWS):
        raise ValueError("keep_rows must be a whole number from 0 to 2**63-1, got %r"
                         % (keep_rows,))
    cutoff = None
    if older_than is not None:
        if not isinstance(older_than, datetime.timedelta):
            raise ValueError("older_than must be a datetime.timedelta, got %r" % (older_than,))
        # A negative age would put the cutoff in the future: every entry would go.
        if older_than < datetime.timedelta(0):
            raise ValueError("older_than must not be negative, got %r" % (older_than,))
        try:
            cutoff = utcnow() - older_than
        except OverflowError:
            raise ValueError("older_than reaches before the year 1, got %r"
                             % (older_than,)) from None
    with write_transaction(AuditLog._meta.database):
        # Only ever the oldest entries, by id: the chain that stays is whole.
        boundaries = []
        if cutoff is not None:
            # The entries before the first one that is not old enough (a clock that
            # went back may leave an old entry after it: it stays).
            first_kept = (AuditLog.select(peewee.fn.MIN(AuditLog.id))
                          .where(AuditLog.timestamp >= cutoff).scalar())
            boundaries.append(_last_id() if first_kept is None else first_kept - 1)
        if keep_rows is not None:
            # The newest id that goes: everything at or below it is older.
            boundary = (AuditLog.select(AuditLog.id).order_by(AuditLog.id.desc())
                        .offset(keep_rows).limit(1).scalar())
            boundaries.append(0 if boundary is None else boundary)
        boundary = max(boundaries)
        last = (AuditLog.select(AuditLog.id, AuditLog.hash).where(AuditLog.id <= boundary)
                .order_by(AuditLog.id.desc()).limit(1).first())
        if last is None:
            return 0
        count = AuditLog.select().where(AuditLog.id <= boundary).count()
        # The entry that says so is written first, chained to the newest entry,
        # so the chain goes on whatever goes; it names the last entry removed,
        # whose hash the first entry left follows.
        write("audit_log", "prune", lambda _: (count, [("*", None, {
            "deleted": count, "last_removed_id": last.id, "last_removed_hash": last.hash})]))
        return AuditLog.delete().where(AuditLog.id <= boundary).execute()


def _last_id() -> int:
    return AuditLog.select(peewee.fn.MAX(AuditLog.id)).scalar() or 0
