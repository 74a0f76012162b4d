"""Who is blamed in the audit log, and why: an explicit ``actor=``/``reason=``, else
the innermost ``with actor(name, reason=...)`` block."""
from __future__ import annotations

import contextlib
from contextvars import ContextVar, Token

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Iterator, Optional, Tuple

__all__ = ["actor", "current_actor", "current_reason", "DEFAULT_ACTOR", "MAX_REASON"]

DEFAULT_ACTOR = "internal"
#: The longest reason the X-Reason header and ``--reason`` take: a reason is a
#: sentence or two; anything longer is not a reason but a payload.
MAX_REASON = 2000

# A context variable rather than a thread-local, so asyncio tasks and threads
# started by the caller each see their own actor.
# (name, reason) of the innermost block.
_actor: ContextVar[Tuple[Optional[str], Optional[str]]] = ContextVar(
    "peestore_actor", default=(None, None))


@contextlib.contextmanager
def actor(name: str, reason: Optional[str] = None) -> Iterator[str]:
    """Blame the writes made inside the block on ``name``, for ``reason``.

    Blocks nest; the innermost wins (its reason too, None included).  An
    explicit ``actor=`` or ``reason=`` keyword on a write still takes
    precedence.
    """
    if not isinstance(name, str) or not name:
        raise TypeError("actor() needs a non-empty string, got %r" % (name,))
    if reason is not None and not isinstance(reason, str):
        raise TypeError("actor(reason=...) takes a string, got %r" % (reason,))
    token = _actor.set((name, reason or None))
    try:
        yield name
    finally:
        _actor.reset(token)


def enter_actor(name: Optional[str], reason: Optional[str] = None) -> Token:
    """``actor(name, reason)`` as two calls (``leave_actor(token)`` ends it), for the
    request wrapper, which runs once per request; nothing is checked."""
    return _actor.set((name, reason))


def leave_actor(token: Token) -> None:
    """End what ``enter_actor`` began."""
    _actor.reset(token)


def current_actor(explicit: Optional[str] = None) -> str:
    """Return the actor a write made now would be blamed on."""
    if explicit:
        return explicit
    return _actor.get()[0] or DEFAULT_ACTOR


def current_reason(explicit: Optional[str] = None) -> Optional[str]:
    """Return the reason a write made now would record (None: none given)."""
    if explicit:
        return explicit
    return _actor.get()[1]
