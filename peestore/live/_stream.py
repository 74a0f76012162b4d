"""The change stream's engine, without HTTP: one reader per process feeds every stream.

The audit log is the source of truth.  While at least one stream is open, one
thread per process (the ``Hub``'s reader) asks the log for the entries after
the last one it read (``id > last``, the primary key's index), every
``POLL_INTERVAL`` seconds and at once after a local commit, and hands each
entry, as a ready-made ``text/event-stream`` frame, to the streams that want
it.  Writes by other processes (the CLI, a second server) are in the log too,
so they arrive within one poll.  Audit ids are given in commit order (the
hash chain serialises audited writes), so ``id > last`` misses nothing.

A stream that starts from an id (``Last-Event-ID``, ``?since=``), or whose
queue overflows, reads the log itself, page by page, up to the last id the
reader has handed out, and then joins the live feed: both steps happen under
the hub's lock, so every entry is sent once.  Changes to ``audited = False``
models come from the after-commit listener (``peestore.audit._listeners``),
live only and without an ``id``.

Nothing runs, and no listener is registered, while no stream is open.
"""
from __future__ import annotations

import collections
import logging
import threading
import time

from ..audit._listeners import after_commit, on_restore, remove_listener
from ..model._values import dumps
from ._events import event_from_change, event_from_entry

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Callable, Deque, FrozenSet, Iterator, List, Optional, Tuple

    Frame = Tuple[Optional[int], bytes]

__all__ = ["Hub", "Subscription", "hub", "frames", "POLL_INTERVAL", "PAGE", "QUEUE_LIMIT",
           "STREAM_BUFFER"]

log = logging.getLogger("peestore.live")

#: Seconds between two looks at the audit log while streams are open.
POLL_INTERVAL = 0.25
#: Entries read from the log at once (by the reader, or by a stream catching up).
PAGE = 200
#: Events waiting for one stream; past it the stream reads the audit log itself
#: (audited changes) or is dropped (``audited = False`` changes, which are not kept).
QUEUE_LIMIT = 1000
#: Bytes a stream's client may leave unread; a client that does not take them
#: within one heartbeat is dropped (it reconnects with ``Last-Event-ID``).
STREAM_BUFFER = 256 * 1024
# audited = False changes waiting for the reader; past it every stream ends.
_INBOX_LIMIT = 10000
# Seconds a waiting stream sleeps before it looks whether its client hung up.
_CHECK = 0.5


def _frame(event: dict) -> bytes:
    head = b"id: %d\n" % event["id"] if event["id"] is not None else b""
    return head + b"event: change\ndata: " + dumps(event).encode("utf-8") + b"\n\n"


def _read(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn()`` in this thread, past the restore gate, on a connection closed after
    unless the thread had one open already."""
    from ..db._connect import get_database
    from ..db._gate import gate

    db = get_database()
    with gate.shared():
        closed = db.is_closed()
        try:
            return fn(*args)
        finally:
            if closed and not db.is_closed():
                db.close()


def _entries(after: int, upto: Optional[int], components: Optional[FrozenSet[str]] = None,
             operations: Optional[FrozenSet[str]] = None) -> List[Any]:
    from ..audit._log import AuditLog

    where = [AuditLog.id > after]
    if upto is not None:
        where.append(AuditLog.id <= upto)
    if components is not None:
        where.append(AuditLog.component.in_(sorted(components)))
    if operations is not None:
        where.append(AuditLog.operation.in_(sorted(operations)))
    return list(AuditLog.select().where(*where).order_by(AuditLog.id).limit(PAGE))


def _last_id() -> int:
    import peewee

    from ..audit._log import AuditLog

    return AuditLog.select(peewee.fn.MAX(AuditLog.id)).scalar() or 0


class Subscription:
    """One open stream's place at the hub: its filters, its queue, where it stands.

    Its state is read and changed under the hub's lock.
    """

    def __init__(self, hub: Hub, components: Optional[FrozenSet[str]] = None,
                 operations: Optional[FrozenSet[str]] = None,
                 since: Optional[int] = None) -> None:
        self.components = components
        self.operations = operations
        self.pending: Deque[Frame] = collections.deque()
        self.queued = 0  # audited events in ``pending``
        # The last audit id this stream has covered (sent, queued, or read past).
        self.cursor = since
        # Reading the log itself (a start from an id, or a queue that overflowed).
        self.behind = since is not None
        self.sent = since  # the last audit id handed to the client
        self.closed: Optional[str] = None  # why the hub ended it
        self.ready = threading.Condition(hub.lock)

    def wants(self, component: str, operation: str) -> bool:
        """Whether the stream's filters let this change through."""
        return ((self.components is None or component in self.components)
                and (self.operations is None or operation in self.operations))

    def offer(self, entry_id: Optional[int], frame: bytes) -> None:
        """Queue one wanted event (hub lock held)."""
        if self.closed is not None:
            return
        if entry_id is not None:
            if self.behind or entry_id <= (self.cursor or 0):
                return
            if self.queued >= QUEUE_LIMIT:
                # Catch up from the log instead: drop the queued audited events.
                self.behind = True
                self.pending = collections.deque(item for item in self.pending
                                                 if item[0] is None)
                self.queued = 0
                self.cursor = self.sent or 0
                return
            self.cursor = entry_id
            self.queued += 1
        elif len(self.pending) >= QUEUE_LIMIT:
            self.end("its client does not keep up")
            return
        self.pending.append((entry_id, frame))
        self.ready.notify()

    def end(self, why: str) -> None:
        """Close the stream (hub lock held)."""
        if self.closed is None:
            self.closed = why
        self.ready.notify()


class Hub:
    """The one reader of a process: polls the audit log while streams are open."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.subscriptions: List[Subscription] = []
        self.last: Optional[int] = None  # the last audit id handed to the streams
        self._thread: Optional[threading.Thread] = None
        self._poke = threading.Event()
        self._restored = False
        self._inbox: List[Tuple[int, str, str, bytes]] = []  # audited = False changes to send
        self._listener = self._heard  # one bound method: remove_listener compares by identity

    # -- streams ---------------------------------------------------------------

    def join(self, components: Optional[FrozenSet[str]] = None,
             operations: Optional[FrozenSet[str]] = None,
             since: Optional[int] = None) -> Subscription:
        """A new stream's subscription; starts the reader if it is the first.

        Called with the database reachable (inside a request): the first
        stream reads where the log ends.
        """
        with self.lock:
            sub = Subscription(self, components, operations, since)
            # Registered again on each join: a test's isolated_listeners may
            # have removed it while the reader ran on.
            remove_listener(self._listener)
            after_commit(self._listener)
            if self._thread is None:
                self.last = _last_id()
                self._restored = False
                self._thread = threading.Thread(target=self._run, name="peestore-changes",
                                                daemon=True)
                self._thread.start()
            if sub.cursor is None or sub.cursor >= (self.last or 0):
                # From now on; an id past the log's end (the log of a restored
                # backup is shorter) starts at the end, not at that id.
                sub.cursor = sub.sent = self.last
                sub.behind = False
            self.subscriptions.append(sub)
            return sub

    def leave(self, sub: Subscription) -> None:
        """Forget a stream; the reader stops after the last one."""
        with self.lock:
            if sub in self.subscriptions:
                self.subscriptions.remove(sub)
            sub.end("closed")

    # -- the reader -------------------------------------------------------------

    def _run(self) -> None:
        from ..db._connect import database, get_database

        db = get_database()
        failing = False
        try:
            while True:
                with self.lock:
                    if not self.subscriptions:
                        self._thread = None
                        self._inbox = []
                        remove_listener(self._listener)
                        return
                    restored, self._restored = self._restored, False
                current = database.obj or db
                switched = current is not db  # connect() was called again: another database
                if (restored or switched) and not db.is_closed():
                    db.close()  # its file may have been replaced
                db = current
                self._poke.wait(POLL_INTERVAL)
                self._poke.clear()
                try:
                    self._poll(switched)
                    with self.lock:
                        self._send_live()
                    if failing:
                        failing = False
                        log.info("the change stream reads the audit log again")
                except Exception as exc:  # a database that went away: try again later
                    if not failing:  # said once, not four times a second
                        failing = True
                        log.warning("reading the audit log for the change stream failed: "
                                    "%s; trying again", exc)
                    time.sleep(POLL_INTERVAL)
        finally:
            if not db.is_closed():
                db.close()

    def _poll(self, switched: bool) -> None:
        from ..db._gate import gate

        if switched:
            with gate.shared():
                last = _last_id()
            with self.lock:
                self.last = last
        while True:
            with gate.shared():
                rows = _entries(self.last or 0, None)
            if not rows:
                return
            with self.lock:
                subs = list(self.subscriptions)
            # Encoded once for every stream, and only when one wants it.
            frames = [(row.id, row.component, row.operation,
                       _frame(event_from_entry(row)) if any(
                           sub.wants(row.component, row.operation) for sub in subs)
                       else b"") for row in rows]
            with self.lock:
                if self._restored:
                    return  # the log changed under us: start again from its end
                for entry_id, component, operation, frame in frames:
                    if self._inbox:
                        self._send_live(entry_id)
                    for sub in self.subscriptions:
                        if sub.wants(component, operation):
                            sub.offer(entry_id, frame or _frame(event_from_entry(
                                next(row for row in rows if row.id == entry_id))))
                self.last = rows[-1].id
            if len(rows) < PAGE:
                return

    def _heard(self, changes: List[Any]) -> None:
        """After a local commit: wake the reader; send ``audited = False`` changes."""
        live = [change for change in changes
                if not getattr(change.model._meta, "audited", True)]
        if len(live) < len(changes):
            self._poke.set()
        if not live:
            return
        from ..audit._actor import current_actor, current_reason
        from ..audit._log import utcnow

        from ..audit._chain import known_head_id
        from ..db._connect import database

        actor, reason, now = current_actor(), current_reason(), utcnow()
        # The last audit entry committed before these changes: they are sent after it.
        after = (known_head_id(database.obj) if database.obj is not None else None) or 0
        frames = [(after, change.component, change.operation,
                   _frame(event_from_change(change, actor, reason, now))) for change in live]
        with self.lock:
            if self._thread is None:
                return
            # Sent by the reader after its next look at the log, so they follow
            # the audited changes committed before them.
            if len(self._inbox) + len(frames) > _INBOX_LIMIT:
                for sub in self.subscriptions:
                    sub.end("changes came faster than the streams could take them")
                self._inbox.clear()
            else:
                self._inbox.extend(frames)
        self._poke.set()

    def _send_live(self, before: Optional[int] = None) -> None:
        """Send the waiting ``audited = False`` changes committed before audit entry
        ``before`` (None: all of them); hub lock held."""
        inbox = self._inbox
        count = 0
        for after, component, operation, frame in inbox:
            if before is not None and after >= before:
                break
            count += 1
            for sub in self.subscriptions:
                if sub.wants(component, operation):
                    sub.offer(None, frame)
        if count:
            del inbox[:count]

    def _on_restore(self) -> None:
        # The log has been replaced: every stream ends (its client reconnects)
        # and the reader goes on from the new log's end, read here, before the
        # restoring thread returns: a write after the restore comes after it.
        with self.lock:
            if self._thread is None:
                return
            self._restored = True
            for sub in self.subscriptions:
                sub.end("the database was restored")
            try:
                self.last = _read(_last_id)
            except Exception as exc:
                log.warning("reading the restored audit log's end failed: %s", exc)
        self._poke.set()


#: The process' hub.
hub = Hub()
on_restore(hub._on_restore)


def frames(sub: Subscription, heartbeat: float, gone: Callable[[], bool],
           unsent: Callable[[], int], source: Hub = hub) -> Iterator[bytes]:
    """The bytes of one stream: its replay from the log, then its live events, with
    a heartbeat comment every ``heartbeat`` seconds; ends when the client hangs up
    (``gone()``), does not take its bytes (``unsent()``), or the hub ends it."""
    lock = source.lock
    next_beat = time.monotonic() + heartbeat
    yield b": peestore change stream\n\n"
    while True:
        batch: List[Frame] = []
        replay = None
        with lock:
            if sub.closed is not None:
                return
            if sub.behind:
                upto = source.last or 0
                if (sub.cursor or 0) >= upto:
                    sub.behind = False  # caught up: the live feed starts after upto
                else:
                    replay = (sub.cursor or 0, upto)
            if replay is None and not sub.pending:
                wait = min(_CHECK, next_beat - time.monotonic())
                if wait > 0:
                    sub.ready.wait(wait)
            if sub.closed is not None:
                return
            while sub.pending:
                item = sub.pending.popleft()
                if item[0] is not None:
                    sub.queued -= 1
                    sub.sent = item[0]
                batch.append(item)
        if gone():
            return
        if replay is not None:
            rows = _read(_entries, replay[0], replay[1], sub.components, sub.operations)
            cursor = rows[-1].id if len(rows) == PAGE else replay[1]
            batch.extend((row.id, _frame(event_from_entry(row))) for row in rows)
            with lock:
                sub.cursor = max(sub.cursor or 0, cursor)
                if rows:
                    sub.sent = max(sub.sent or 0, rows[-1].id)
        for _, frame in batch:
            if not _drained(unsent, gone, heartbeat):
                return
            yield frame
        if time.monotonic() >= next_beat:
            if not _drained(unsent, gone, heartbeat):
                return
            yield b": heartbeat\n\n"
            next_beat = time.monotonic() + heartbeat


def _drained(unsent: Callable[[], int], gone: Callable[[], bool], heartbeat: float) -> bool:
    """Wait (at most one heartbeat) until the client has taken all but
    ``STREAM_BUFFER`` bytes; False when it has not, or hung up."""
    if unsent() <= STREAM_BUFFER:
        return True
    deadline = time.monotonic() + heartbeat
    while time.monotonic() < deadline:
        if gone():
            return False
        time.sleep(0.05)
        if unsent() <= STREAM_BUFFER:
            return True
    log.info("change stream dropped: its client left %d bytes unread for %g s",
             unsent(), heartbeat)
    return False
