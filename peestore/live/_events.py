"""The change event of SPEC 12: one JSON object per committed change.

The event stream and the MQTT publisher send the same object, built here from
an audit entry (audited models) or from a ``Change`` (``audited = False``
models, which are sent live only and have no ``id``).
"""
from __future__ import annotations

import datetime

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Dict, Optional

    from ..audit._listeners import Change
    from ..audit._log import AuditLog

__all__ = ["event_from_entry", "event_from_change"]


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime.datetime) else value


def event_from_entry(entry: AuditLog) -> Dict[str, Any]:
    """The change event of one audit entry (``id`` is the entry's id)."""
    return {
        "id": entry.id,
        "component": entry.component,
        "operation": entry.operation,
        "record_id": entry.record_id,
        "actor": entry.actor,
        "reason": entry.reason,
        "timestamp": _iso(entry.timestamp),
        "values": entry.after,
        "before": entry.before,
    }


def event_from_change(change: Change, actor: Optional[str], reason: Optional[str],
                      timestamp: datetime.datetime) -> Dict[str, Any]:
    """The change event of a write to an ``audited = False`` model: no ``id``."""
    return {
        "id": None,
        "component": change.component,
        "operation": change.operation,
        "record_id": change.record_id,
        "actor": actor,
        "reason": reason,
        "timestamp": _iso(timestamp),
        "values": change.values,
        "before": change.before,
    }
