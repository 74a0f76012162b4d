"""``GET /db/changes``: the change stream of SPEC 12, as Server-Sent Events.

The route checks the request (filters, resume id, a free place) and answers
with a body that ``peestore.live._stream.frames`` writes.  The request's
connection and restore gate are given back before the first byte: a stream
holds neither (its catch-up reads take them page by page).

A stream keeps the waitress worker thread that answers it for as long as it
is open, so it gives waitress one more thread for that time: with every
stream open, the routes still have the ``threads`` they were served with.
At most ``max_streams`` are open at once; one more is answered 503 with
``Retry-After``.
"""
from __future__ import annotations

import math
import threading

import bottle

from .. import _compat
from ..audit._log import OPERATIONS
from ._filters import query_params
from ._responses import error

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Callable, FrozenSet, Iterator, Optional

__all__ = ["changes", "CHANGES_PARAMS", "LOG_COMPONENTS", "StreamPlaces"]

CHANGES_PARAMS = ("components", "operations", "since")
#: The components of the entries peestore itself writes: a restore, a prune.
LOG_COMPONENTS = ("db", "audit_log")
_MAX_ID = (1 << 63) - 1


class StreamPlaces:
    """How many streams are open, out of ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Take a place; False when all are taken."""
        with self._lock:
            if self.open >= self.limit:
                return False
            self.open += 1
            return True

    def give(self) -> None:
        """Give a place back."""
        with self._lock:
            self.open -= 1


class _Body:
    """The stream's body: its frames, then (on close) its place given back."""

    def __init__(self, frames: Iterator[bytes], release: Callable[[], None]) -> None:
        self._frames = frames
        self._release: Optional[Callable[[], None]] = release

    def __iter__(self) -> Iterator[bytes]:
        return self._frames

    def close(self) -> None:
        release, self._release = self._release, None
        if release is None:
            return
        try:
            self._frames.close()  # type: ignore[attr-defined]
        finally:
            release()


def _names(param: str, text: str, known: Any) -> FrozenSet[str]:
    names = frozenset(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise error(400, "query parameter %s: name at least one of %s"
                    % (param, ", ".join(sorted(known))))
    unknown = sorted(names - frozenset(known))
    if unknown:
        raise error(400, "query parameter %s: unknown %s; use %s"
                    % (param, ", ".join(repr(name) for name in unknown),
                       ", ".join(sorted(known))))
    return names


def _event_id(label: str, text: str) -> int:
    text = text.strip()
    if not text.isdigit() or not text.isascii() or len(text) > 19 or int(text) > _MAX_ID:
        raise error(400, "%s: expected an event id (a whole number >= 0), got %r"
                    % (label, text[:40]))
    return int(text)


def changes(plugin: Any) -> Any:
    """GET /db/changes: every committed change as a ``change`` event (SPEC 12)."""
    from ..live._stream import frames, hub

    query = query_params()
    for name in query:
        if name not in CHANGES_PARAMS:
            raise error(400, "unknown query parameter %r; use %s"
                        % (name, ", ".join(CHANGES_PARAMS)))
    components = operations = since = None
    if "components" in query:
        known = {model._meta.component for model in plugin.models} | set(LOG_COMPONENTS)
        components = _names("components", query["components"], known)
    if "operations" in query:
        operations = _names("operations", query["operations"], OPERATIONS)
    # A reconnecting EventSource keeps its URL (and ?since=): its Last-Event-ID wins.
    environ = bottle.request.environ
    if "HTTP_LAST_EVENT_ID" in environ:
        since = _event_id("the Last-Event-ID header", environ["HTTP_LAST_EVENT_ID"])
    elif "since" in query:
        since = _event_id("query parameter since", query["since"])
    # Made on the first stream (an app nobody streams from never loads this module).
    places = plugin.__dict__.setdefault("stream_places", StreamPlaces(plugin.max_streams))
    if not places.take():
        retry = str(max(1, math.ceil(plugin.heartbeat)))
        raise error(503, "all %d change streams are open; try again later" % places.limit,
                    headers={"Retry-After": retry})
    try:
        sub = hub.join(components, operations, since)
    except BaseException:
        places.give()
        raise

    def release() -> None:
        try:
            hub.leave(sub)
        finally:
            places.give()
            give_thread()

    watch = _compat.StreamWatch(environ)
    give_thread = watch.hold_thread()
    body = _Body(frames(sub, plugin.heartbeat, watch.gone, watch.unsent), release)
    return bottle.HTTPResponse(body, 200, {"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
