"""``verify_audit``: the audit log's hash chain checked entry by entry.

Loaded on first use: a server that never verifies does not hold it.  How the
chain is made: ``peestore.audit._chain``.
"""
from __future__ import annotations

import hmac
import json

import peewee

from .. import _compat
from ..db._connect import get_database, open_connection
from ._chain import GENESIS, _chain_start, _table, audit_key, entry_hash, timestamp_text

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Dict, Optional, Union

__all__ = ["verify_audit"]

def verify_audit(*, database: Optional[peewee.Database] = None,
                 key: Union[str, bytes, None] = None,
                 expect_head: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Check the audit log's hash chain, entry by entry in id order (streamed).

    Returns ``{"ok": bool, "entries": n, "first_bad_id": id or None, "head":
    {"id": n, "hash": "..."} or None, "chain_start": id or None, "unchained": n}``:
    ``entries`` is how many entries the chain holds, ``chain_start`` the id of
    its first entry (after a prune, the first one kept; before any, the id the
    first will get) and ``unchained`` how many entries before it were written
    before the chain existed (a database from an earlier version).  Where the
    chain starts comes from ``audit_chain``, checked with the key: an entry
    from there on without a hash is bad, and so is the first entry when that
    record is missing or altered (``chain_start`` is None then).  ``key`` is
    the audit key (default: the one ``connect`` was given).  ``expect_head``
    (a ``head`` saved earlier, e.g. printed on a batch record) must still be in
    the chain, unchanged: that finds entries removed at the end.
    """
    db = get_database(database)
    if key is None:
        secret = audit_key(db)
    else:
        secret = key.encode("utf-8") if isinstance(key, str) else key
    table = _table(db)
    result: Dict[str, Any] = {"ok": True, "entries": 0, "first_bad_id": None, "head": None,
                              "chain_start": None, "unchained": 0}

    def bad(entry_id: Any) -> Dict[str, Any]:
        result["ok"] = False
        result["first_bad_id"] = entry_id
        return result

    with open_connection(db):
        start = _chain_start(db, secret)
        # Where a prune removed the start of the chain, its entry names the last
        # entry it removed: the "previous hash" of the first entry kept.
        pruned = {}
        for (after,) in db.execute_sql(
                "SELECT after FROM %s WHERE operation = 'prune' ORDER BY id" % table):
            try:
                record = json.loads(after)
                pruned[int(record["last_removed_id"])] = str(record["last_removed_hash"]
                                                              or GENESIS)
            except (TypeError, ValueError, KeyError):
                continue  # a prune entry altered: its own hash shows it
        columns = ", ".join(_compat.quote_name(db, name) for name in (
            "id", "timestamp", "component", "record_id", "operation", "actor", "reason",
            "before", "after", "hash"))
        cursor = db.execute_sql("SELECT %s FROM %s ORDER BY id" % (columns, table))
        previous = None  # (id, hash) of the entry before, once in the chain
        while True:
            rows = cursor.fetchmany(1000)
            if not rows:
                break
            for (entry_id, stamp, component, record_id, operation, actor, reason, before,
                 after, stored) in rows:
                if previous is None:
                    if start is None:
                        return bad(entry_id)  # the start record removed or altered
                    if entry_id < start and stored is None:
                        result["unchained"] += 1  # written before the chain existed
                        continue
                    if entry_id == start:
                        expected_previous = GENESIS
                    elif entry_id > start and entry_id - 1 in pruned:
                        expected_previous = pruned[entry_id - 1]
                    else:
                        # entries removed at the start, or a hash before the chain
                        return bad(entry_id)
                    result["chain_start"] = entry_id
                    previous = (entry_id - 1, expected_previous)
                if entry_id != previous[0] + 1 or stored is None:
                    return bad(entry_id)  # a gap: entries removed (or one unchained)
                try:
                    expected = entry_hash(secret, previous[1], entry_id, timestamp_text(stamp),
                                          component, record_id, operation, actor, reason,
                                          before, after)
                except (TypeError, ValueError, AttributeError):
                    return bad(entry_id)
                if not hmac.compare_digest(expected, str(stored)):
                    return bad(entry_id)
                previous = (entry_id, stored)
                result["entries"] += 1
                if expect_head is not None and entry_id == expect_head.get("id") and \
                        not hmac.compare_digest(str(expect_head.get("hash")), stored):
                    return bad(entry_id)
        if previous is not None:
            result["head"] = {"id": previous[0], "hash": previous[1]}
        elif start is not None:
            result["chain_start"] = start  # no entry of the chain yet
        if expect_head is not None:
            head_id = expect_head.get("id")
            if previous is None or not isinstance(head_id, int) or head_id > previous[0] \
                    or result["chain_start"] is None or head_id < result["chain_start"]:
                return bad(head_id)
    return result
