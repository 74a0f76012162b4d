"""Who is blamed in the audit log: an explicit ``actor=``, else ``with actor(...)``."""
from __future__ import annotations

import contextlib
from contextvars import ContextVar, Token

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Iterator, Optional

__all__ = ["actor", "current_actor", "DEFAULT_ACTOR"]

DEFAULT_ACTOR = "internal"

# A context variable rather than a thread-local, so asyncio tasks and threads
# started by the caller each see their own actor.
_actor: ContextVar[Optional[str]] = ContextVar("peestore_actor", default=None)


@contextlib.contextmanager
def actor(name: str) -> Iterator[str]:
    """Blame the writes made inside the block on ``name``.

    Blocks nest; the innermost wins.  An explicit ``actor=`` keyword on a
    write still takes precedence.
    """
    if not isinstance(name, str) or not name:
        raise TypeError("actor() needs a non-empty string, got %r" % (name,))
    token = _actor.set(name)
    try:
        yield name
    finally:
        _actor.reset(token)


def enter_actor(name: str) -> Token:
    """``actor(name)`` as two calls (``leave_actor(token)`` ends it), for the request
    wrapper, which runs once per request; ``name`` is not checked."""
    return _actor.set(name)


def leave_actor(token: Token) -> None:
    """End what ``enter_actor`` began."""
    _actor.reset(token)


def current_actor(explicit: Optional[str] = None) -> str:
    """Return the actor a write made now would be blamed on."""
    if explicit:
        return explicit
    return _actor.get() or DEFAULT_ACTOR
