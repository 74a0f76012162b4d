"""``peestore audit``: read the audit log, newest first; ``peestore audit verify``:
check its hash chain."""
from __future__ import annotations

import argparse
import json
import sys

import peewee

from ._main import MAX_INT64, arg, command, int_range, printable, printable_json
from ..errors import PeestoreError

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Dict, List

_WIDTHS = {"component": 20, "record_id": 12, "actor": 16, "reason": 30, "changed": 40}


def _cell(value: Any, width: int) -> str:
    text = "" if value is None else str(value)
    text = printable(text.replace("\n", " "))
    return text if len(text) <= width else text[:width - 3] + "..."


def _table(entries: List[Dict[str, Any]]) -> str:
    columns = ["id", "timestamp", "operation", "component", "record_id", "actor", "reason",
               "changed"]
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


def _write(text: str) -> None:
    """``text`` to stdout in pieces: a reader that leaves early (``peestore audit |
    head``) is noticed at the next one (BrokenPipeError), which one large write
    does not always do."""
    for start in range(0, len(text), 16384):
        sys.stdout.write(text[start:start + 16384])
    sys.stdout.flush()


def _head(text: str) -> Dict[str, Any]:
    """``--expect-head ID:HASH`` as verify_audit takes it."""
    entry_id, _, digest = text.partition(":")
    try:
        number = int(entry_id)
    except ValueError:
        number = -1
    if number < 1 or len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
        raise argparse.ArgumentTypeError(
            "expected ID:HASH (an entry id and its 64-character hash, as verify prints "
            "them), got %r" % text)
    return {"id": number, "hash": digest}


@command("audit", "show audit log entries, newest first; 'audit verify' checks the hash chain")
@arg("action", nargs="?", choices=["verify"],
     help="verify: check the audit log's hash chain (exit status 1 when it is broken)")
@arg("--component", metavar="C", help="only this component (model)")
@arg("--record-id", metavar="N", help="only this record (its primary key)")
@arg("--actor", metavar="A", help="only entries by this actor")
@arg("--limit", type=int_range(1, MAX_INT64), default=100, metavar="N",
     help="at most N entries (default 100)")
@arg("--json", action="store_true", help="print a JSON array with before and after")
@arg("--key-env", metavar="NAME", default=None,
     help="verify: the environment variable holding the audit key "
          "(default PEESTORE_AUDIT_KEY)")
@arg("--expect-head", metavar="ID:HASH", type=_head,
     help="verify: a head saved earlier that must still be in the chain, unchanged")
def run(args: argparse.Namespace) -> int:
    if args.action == "verify":
        return _verify(args)
    return _show(args)


def _verify(args: argparse.Namespace) -> int:
    import os

    from ..audit._chain import KEY_VARIABLE
    from ..audit._verify import verify_audit
    from ._data import _connect

    key = None
    if args.key_env:
        key = os.environ.get(args.key_env)
        if not key:
            raise PeestoreError("the environment variable %s holds no audit key"
                                % args.key_env)
    elif os.environ.get(KEY_VARIABLE):
        key = os.environ[KEY_VARIABLE]
    _connect(args)
    try:
        result = verify_audit(key=key, expect_head=args.expect_head)
    except peewee.PeeweeException as exc:
        raise PeestoreError(f"cannot read the audit log: {exc}") from None
    if args.json:
        _write(printable_json(json.dumps(result, indent=1)) + "\n")
    else:
        head = result["head"]
        print("chain %s: %d entries%s%s" % (
            "ok" if result["ok"] else "BROKEN", result["entries"],
            "" if result["chain_start"] is None else ", from entry %d" % result["chain_start"],
            "" if not result["unchained"] else
            " (%d earlier entries have no hash: written before the chain)"
            % result["unchained"]))
        if not result["ok"]:
            print("first bad entry: %s" % result["first_bad_id"])
        if head is not None:
            print(printable("head: %d:%s" % (head["id"], head["hash"])))
    return 0 if result["ok"] else 1


def _show(args: argparse.Namespace) -> int:
    from ..audit._log import AuditLog
    from ._data import _connect

    db = _connect(args)
    query = AuditLog.select().order_by(AuditLog.id.desc())
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
        _write(printable_json(json.dumps(entries, ensure_ascii=False, indent=1)) + "\n")
    elif entries:
        print(_table(entries))
    else:
        print("no audit entries", file=sys.stderr)
    return 0
