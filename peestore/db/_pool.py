"""A worker thread keeps its SQLite connection from one request to the next.

Checking a connection out of ``playhouse.pool`` and back in costs more than a
create's whole SQL (peewee's connect and close, the pool's heap and locks:
about a tenth of a REST create's CPU, measured with ``benchmarks/``).  So at
the end of a request the REST plugin *parks* the connection the request
used: peewee sees this thread's connection closed, as before, but the pool
keeps it checked out for this thread, which takes it back at its next request
(or its next ``connect``) without going through the pool.

A parked connection is idle (no transaction), so ``close_parked`` (called by
``release_idle``: restore, re-connect) may close it from any thread; its owner
then finds it gone and checks out another.  Only ``SqlitePool``, the pool a
``sqlite://`` URL gives, parks, and only with no ``max_connections`` and no
``stale_timeout`` (a parked connection counts as in use and is never checked
for age); other databases are closed at the end of each request.
"""
from __future__ import annotations

import threading

import peewee
from playhouse.pool import PooledSqliteDatabase

from .. import _compat

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Dict, Tuple

__all__ = ["SqlitePool", "park", "unpark", "close_parked"]


class _Spot(threading.local):
    """The connection this thread parked, and its database."""

    db: Any = None
    conn: Any = None


_spot = _Spot()
# id(connection) -> (database, connection, owner thread), for every parked
# connection.  Taken out with dict.pop, which is atomic (CPython's GIL): the
# owner taking its connection back and close_parked closing it never both win.
_parked: Dict[int, Tuple[peewee.Database, Any, threading.Thread]] = {}
# Entries past which park() looks for threads that ended (see there).
_sweep_at = [16]


class SqlitePool(_compat.ConnectHook, PooledSqliteDatabase):
    """``playhouse.pool.PooledSqliteDatabase`` whose threads may park a connection
    between requests (see the module); to everything else it is that pool."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        max_connections, stale_timeout = _compat.pool_limits(self)
        self._ps_parks = (not max_connections and not stale_timeout and
                          _compat.connection_params(self).get("check_same_thread", True)
                          is False)

    def reuse_connection(self) -> Any:
        # This thread's parked connection, if it is still there, before the pool.
        return _take(self)


def _take(db: peewee.Database) -> Any:
    """The connection this thread parked for ``db``, now no longer parked; or None."""
    spot = _spot
    if spot.db is not db:
        return None
    conn = spot.conn
    spot.db = spot.conn = None
    # None: close_parked closed it meanwhile.
    return conn if _parked.pop(id(conn), None) is not None else None


def unpark(db: peewee.Database) -> bool:
    """Give this thread back the connection it parked for ``db``, as peewee's open
    connection: True if it did (then ``db`` is open here)."""
    if not db.is_closed():
        return False
    conn = _take(db)
    if conn is None:
        return False
    _compat.attach_connection(db, conn)
    return True


def park(db: peewee.Database) -> bool:
    """Instead of closing this thread's connection to ``db``: keep it for this thread.

    peewee sees the connection closed afterwards.  False (nothing done: close
    it as usual) when ``db`` does not park or the connection is in a
    transaction.
    """
    if not db.__dict__.get("_ps_parks"):
        return False
    conn = _compat.detach_connection(db)
    if conn is None:
        return False
    spot = _spot
    if spot.db is not None:  # parked for a database since replaced (connect() again)
        old_db = spot.db
        old = _take(old_db)
        if old is not None:
            _compat.close_pooled(old_db, old)
    spot.db, spot.conn = db, conn
    _parked[id(conn)] = (db, conn, threading.current_thread())
    if len(_parked) > _sweep_at[0]:
        _sweep()
    return True


def _sweep() -> None:
    # One parked connection per thread: threads that ended (a stopped server)
    # may have left theirs behind.  Close those.
    for key, (db, conn, owner) in list(_parked.items()):
        if not owner.is_alive() and _parked.pop(key, None) is not None:
            _compat.close_pooled(db, conn)
    _sweep_at[0] = max(16, 2 * len(_parked))


def close_parked(db: peewee.Database) -> int:
    """Close every connection to ``db`` that a thread parked; how many.

    Call only when no request is in flight on them (e.g. with the restore gate
    held exclusively): their threads are between requests.
    """
    closed = 0
    for key, (owner, conn, _) in list(_parked.items()):
        if owner is db and _parked.pop(key, None) is not None:
            # Out of the pool's bookkeeping, and closed.
            _compat.close_pooled(db, conn)
            closed += 1
    return closed
