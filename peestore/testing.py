"""Helpers for testing code that uses peestore."""
from __future__ import annotations

import contextlib

from .audit._log import AuditLog

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Iterator, List

__all__ = ["capture_audit"]


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
