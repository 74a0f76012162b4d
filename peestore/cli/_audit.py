"""``peestore audit``: read the audit log, newest first."""
from __future__ import annotations

import argparse
import json
import sys

import peewee

from ._main import MAX_INT64, arg, command, int_range
from ..errors import PeestoreError

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Dict, List

_WIDTHS = {"component": 20, "record_id": 12, "actor": 16, "changed": 40}


def _cell(value: Any, width: int) -> str:
    text = "" if value is None else str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[:width - 3] + "..."


def _table(entries: List[Dict[str, Any]]) -> str:
    columns = ["id", "timestamp", "operation", "component", "record_id", "actor", "changed"]
    rows = []
    for entry in entries:
        row = dict(entry)
        row["timestamp"] = str(entry["timestamp"] or "")[:19].replace("T", " ")
        row["changed"] = ", ".join(entry.get("changed") or [])
        rows.append([_cell(row[c], _WIDTHS.get(c, 30)) for c in columns])
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


@command("audit", "show audit log entries, newest first")
@arg("--component", metavar="C", help="only this component (model)")
@arg("--record-id", metavar="N", help="only this record (its primary key)")
@arg("--actor", metavar="A", help="only entries by this actor")
@arg("--limit", type=int_range(1, MAX_INT64), default=100, metavar="N",
     help="at most N entries (default 100)")
@arg("--json", action="store_true", help="print a JSON array with before and after")
def run(args: argparse.Namespace) -> int:
    from ..audit._log import AuditLog
    from ._data import _connect

    db = _connect(args)
    query = AuditLog.select().order_by(AuditLog.timestamp.desc(), AuditLog.id.desc())
    if args.component:
        query = query.where(AuditLog.component == args.component)
    if args.record_id:
        query = query.where(AuditLog.record_id == str(args.record_id))
    if args.actor:
        query = query.where(AuditLog.actor == args.actor)
    try:
        with db.connection_context():
            entries = [e.to_dict(with_changed=True) for e in query.limit(args.limit)]
    except peewee.PeeweeException as exc:
        raise PeestoreError(f"cannot read the audit log: {exc}") from None
    if args.json:
        json.dump(entries, sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
    elif entries:
        print(_table(entries))
    else:
        print("no audit entries", file=sys.stderr)
    return 0
