"""The audit log's hash chain (its verification: ``peestore.audit._verify``).

Every entry's ``hash`` covers the hash of the entry before it (by id) and its
own ``id, timestamp, component, record_id, operation, actor, reason, before,
after``: an HMAC-SHA256 keyed by ``connect(audit_key=...)`` (or the
``PEESTORE_AUDIT_KEY`` environment variable), plain SHA-256 without a key.
Changing, removing or inserting an entry in the middle breaks the chain at
that entry; removing entries at the end is seen only against a head kept
elsewhere (``verify_audit(expect_head=...)``).

Entries get consecutive ids, given by peestore (the last id plus one), so a
removed entry leaves a gap and an added one cannot fit.  One chain, whatever
writes: on SQLite every audited write holds the write lock from its first
statement (``BEGIN IMMEDIATE``), so the last entry it reads is the last one;
on PostgreSQL and MariaDB the head (last id and hash) is a row of its own,
``audit_head``, that each write moves (``UPDATE``) and so locks: a second
writer waits until the first commits and then sees the new head.  On SQLite
the head is read inside the write's transaction every time (one indexed
lookup of the last row): another process may have pruned the log or restored
a backup since, and a head remembered from before would fork the chain.  On
the server databases a process remembers the head it committed last: the
``UPDATE`` of ``audit_head`` finds out when another process moved it.

Where the chain starts is kept in ``audit_chain`` (its first id and a mark of
that id made with the key), written when the audit log is made or upgraded:
an entry at or after that id without a hash is tampering, not an entry from
before the chain.
"""
from __future__ import annotations

import hashlib
import hmac
import os

import peewee

from .. import _compat
from ..db._dialect import dialect_of
from ._listeners import transaction_state

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Optional, Tuple, Union

__all__ = ["entry_hash", "timestamp_text", "set_audit_key", "audit_key", "read_head",
           "claim_head", "store_head", "forget_head", "known_head_id",
           "start_mark", "write_chain_start", "GENESIS", "KEY_VARIABLE"]

#: The "previous hash" of the first entry of a chain.
GENESIS = ""
#: The environment variable ``connect`` reads the audit key from.
KEY_VARIABLE = "PEESTORE_AUDIT_KEY"


def set_audit_key(db: peewee.Database, key: Union[str, bytes, None]) -> None:
    """Key ``db``'s chain with ``key`` (None: ``$PEESTORE_AUDIT_KEY``, else no key)."""
    if key is None:
        key = os.environ.get(KEY_VARIABLE) or None
    if isinstance(key, str):
        key = key.encode("utf-8")
    db.__dict__["_peestore_audit_key"] = key


def audit_key(db: peewee.Database) -> Optional[bytes]:
    """The key ``db``'s chain is made with, or None (plain SHA-256)."""
    return db.__dict__.get("_peestore_audit_key")


def timestamp_text(value: Any) -> str:
    """An entry's timestamp as the chain covers it: the text SQLite stores, or the
    ``isoformat(" ")`` of the datetime a server database gives back."""
    return value if isinstance(value, str) else value.isoformat(" ")


# An entry's fields joined by NUL, each absent one as STX: unambiguous as long as
# no field holds either character.  JSON text, hashes, ids and timestamps never
# do; the few that could (a record id, an actor, a reason) are checked, and an
# entry with one is encoded with each field's length instead (another first
# byte, so the two encodings never meet).
_NONE = "\x02"


def entry_hash(key: Optional[bytes], previous: str, entry_id: int, timestamp: str,
               component: str, record_id: str, operation: str, actor: str,
               reason: Optional[str], before: Optional[str], after: Optional[str]) -> str:
    """The hash of one entry (hex): ``before`` and ``after`` as the JSON text stored."""
    free_text = (component, record_id, operation, actor, reason or "")
    if any("\x00" in text or "\x02" in text for text in free_text):
        message = "L" + "".join(["-" if field is None else "%d:%s" % (len(field), field)
                                 for field in (previous, str(entry_id), timestamp, component,
                                               record_id, operation, actor, reason, before,
                                               after)])
    else:
        message = "\x00".join((
            "J", previous, str(entry_id), timestamp, component, record_id, operation, actor,
            _NONE if reason is None else reason, _NONE if before is None else before,
            _NONE if after is None else after))
    data = message.encode("utf-8")
    if key is None:
        return hashlib.sha256(data).hexdigest()
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def read_head(db: peewee.Database, cached: bool = True,
              cursor: Any = None) -> Tuple[int, str, bool]:
    """``(id, hash, sure)`` of the chain's last entry (``(0, GENESIS, True)`` for
    none), inside the write's transaction; the next entry is ``id + 1``.  An
    entry without a hash (written before the chain existed) starts the chain
    again.

    On SQLite the last entry, read under the write lock (``sure``).  On the
    server databases the head this process saw committed last is used without
    a query (``sure`` is False then); ``claim_head`` and the INSERT of the
    entries find out when another process has written since, and the caller
    reads the head again with ``cached=False``: the ``audit_head`` row, ``FOR
    UPDATE``.  ``cursor``: the DB-API cursor of the write, to read with.
    """
    pending = transaction_state.head
    if pending is not None and pending[0] is db:
        return pending[1], pending[2], True  # this transaction's own last entry
    if dialect_of(db).has_file:
        # Never a remembered head: another process may have restored a backup or
        # pruned the log since, and nothing else would tell.
        sql = db.__dict__.get("_peestore_last_entry_sql")
        if sql is None:
            sql = db.__dict__["_peestore_last_entry_sql"] = _LAST_ENTRY_SQL % _table(db)
        row = (cursor or db.cursor()).execute(sql).fetchone()
        return (int(row[0]), row[1] or GENESIS, True) if row is not None else (0, GENESIS, True)
    if cached:
        known = db.__dict__.get("_peestore_head")
        if known is not None:
            return known[0], known[1], False
    row = db.execute_sql(_HEAD_SQL % _head_table(db)).fetchone()
    if row is None:  # a fresh database: the head row is made with the first entry
        last = db.execute_sql(_LAST_ENTRY_SQL % _table(db)).fetchone()
        db.execute_sql("INSERT INTO %s (id, entry_id, hash) VALUES (1, %s, %s)" % (
            _head_table(db), _compat.parameter(db), _compat.parameter(db)),
            (last[0], last[1]) if last else (0, None))
        row = last
    if row is None:
        return 0, GENESIS, True
    return int(row[0]), row[1] or GENESIS, True


def claim_head(db: peewee.Database, head_id: int, new_id: int, new_hash: str,
               sure: bool) -> bool:
    """On the server databases, move the ``audit_head`` row from ``head_id`` to the
    new head (which locks it until the transaction ends); False, changing
    nothing, when it is no longer at ``head_id`` (another process wrote since
    this one saw it: read it again).  On SQLite the write lock is held already."""
    if dialect_of(db).has_file:
        return True
    param = _compat.parameter(db)
    sql = "UPDATE %s SET entry_id = %s, hash = %s WHERE id = 1" % (_head_table(db), param,
                                                                   param)
    if sure:
        db.execute_sql(sql, (new_id, new_hash))
        return True
    cursor = db.execute_sql(sql + " AND entry_id = %s" % param, (new_id, new_hash, head_id))
    return cursor.rowcount == 1


def store_head(db: peewee.Database, entry_id: int, entry_hash: str) -> None:
    """The new head, for this transaction: the process' own once it commits
    (``peestore.audit._listeners``)."""
    transaction_state.head = (db, entry_id, entry_hash)


def known_head_id(db: peewee.Database) -> Optional[int]:
    """The id of the last entry this process committed or read as the head, or None."""
    known = db.__dict__.get("_peestore_head")
    return known[0] if known is not None else None


def forget_head(db: peewee.Database) -> None:
    """Forget the head this process saw last (the database file was replaced)."""
    db.__dict__.pop("_peestore_head", None)


def start_mark(key: Optional[bytes], start_id: int) -> str:
    """The mark ``audit_chain`` keeps of the id the chain starts at (hex): made like
    an entry's hash, from another first byte, so it never equals one."""
    data = ("S\x00peestore audit chain start\x00%d" % start_id).encode("ascii")
    if key is None:
        return hashlib.sha256(data).hexdigest()
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def write_chain_start(db: peewee.Database, had_table: bool, had_hashes: bool) -> None:
    """Record where the chain starts, once, when ``connect`` makes or upgrades the
    audit log (``had_table``: ``audit_chain`` existed before; ``had_hashes``: the
    audit log had its ``hash`` column).

    A new log starts at 1; an older one (no ``hash`` column) after its last
    entry; one made by a build without ``audit_chain`` at its first entry with
    a hash (1 when none has: those entries are taken as chained).  An
    ``audit_chain`` that exists without its row is left so: ``verify_audit``
    reports that.
    """
    from ._log import AuditChain, AuditLog

    if had_table or AuditChain.select().where(AuditChain.id == 1).exists():
        return
    start = 1
    if not had_hashes:
        last = AuditLog.select(peewee.fn.MAX(AuditLog.id)).scalar()
        start = (last or 0) + 1
    else:
        first = (AuditLog.select(peewee.fn.MIN(AuditLog.id))
                 .where(AuditLog.hash.is_null(False)).scalar())
        start = first or 1
    (AuditChain.insert(id=1, start_id=start, mark=start_mark(audit_key(db), start))
     .on_conflict_ignore().execute())


def _chain_start(db: peewee.Database, secret: Optional[bytes]) -> Optional[int]:
    """The id the chain starts at, or None when ``audit_chain`` lacks it or its mark
    is not the one ``secret`` makes."""
    from ._log import AuditChain

    if AuditChain._meta.table_name not in db.get_tables():
        return None
    row = db.execute_sql("SELECT start_id, mark FROM %s WHERE id = 1" % _compat.quote_name(
        db, AuditChain._meta.table_name)).fetchone()
    if row is None:
        return None
    try:
        start = int(row[0])
    except (TypeError, ValueError):
        return None
    if not hmac.compare_digest(start_mark(secret, start), str(row[1])):
        return None
    return start


_LAST_ENTRY_SQL = "SELECT id, hash FROM %s ORDER BY id DESC LIMIT 1"
_HEAD_SQL = "SELECT entry_id, hash FROM %s WHERE id = 1 FOR UPDATE"


def _table(db: peewee.Database) -> str:
    from ._log import AuditLog

    return _compat.quote_name(db, AuditLog._meta.table_name)


def _head_table(db: peewee.Database) -> str:
    from ._log import AuditHead

    return _compat.quote_name(db, AuditHead._meta.table_name)
