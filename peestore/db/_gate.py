"""A shared/exclusive gate: requests pass together, a restore passes alone.

The plugin holds the gate shared for each request; ``restore`` holds it
exclusive while it swaps the database file, so no write is in flight during
the swap and requests that arrive meanwhile wait instead of failing.  A
restore waits for the requests in flight only so long (``timeout``): then it
gives up and the requests that queued behind it go on at once, so a request
that never ends (a client that stopped reading) cannot stall the others
for longer than that.
"""
from __future__ import annotations

import contextlib
import threading
import time

from ..errors import BusyError

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Iterator, Optional

__all__ = ["Gate", "gate"]


class _Holds(threading.local):
    """One thread's holds: shared ones, and shared ones inside its own exclusive hold."""

    # Class-level defaults: a thread's first look finds 0, not an AttributeError.
    count = 0
    reentered = 0


class Gate:
    """A readers-writer lock that lets a waiting exclusive holder in first."""

    def __init__(self) -> None:
        # The condition's own lock, used bare where nobody waits: a C-level
        # ``with``, not Condition's Python methods (the request path).
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._shared = 0
        self._exclusive = False
        self._waiting = 0
        self._owner = None
        self._mine = _Holds()  # this thread's own shared holds

    def enter_shared(self) -> None:
        """Take a shared hold (``leave_shared`` gives it back); ``shared`` as two calls,
        for the request wrapper, which runs once per request."""
        mine = self._mine
        if self._owner is not None and self._owner == threading.get_ident():
            # The exclusive holder may re-enter.
            mine.reentered += 1
            return
        held = mine.count
        with self._lock:
            # A thread already inside passes, or a waiting restore deadlocks on it.
            if not held:
                while self._exclusive or self._waiting:
                    self._cond.wait()
            self._shared += 1
        mine.count = held + 1

    def leave_shared(self) -> None:
        """Give back a hold ``enter_shared`` took."""
        mine = self._mine
        reentered = mine.reentered
        if reentered:
            mine.reentered = reentered - 1
            return
        mine.count -= 1
        with self._lock:
            self._shared -= 1
            if self._waiting:
                self._cond.notify_all()

    def crowded(self) -> bool:
        """True while more than one shared holder is inside (other requests in
        flight besides the caller's); a hint, read without the lock."""
        return self._shared > 1

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        """Hold the gate with any number of other shared holders."""
        self.enter_shared()
        try:
            yield
        finally:
            self.leave_shared()

    @contextlib.contextmanager
    def exclusive(self, timeout: Optional[float] = None) -> Iterator[None]:
        """Hold the gate alone, after every shared holder has left.

        Meanwhile new shared holders wait.  If the others have not left after
        ``timeout`` seconds (None: no limit), raise ``BusyError`` instead: the
        gate is then as it was, and those waiting go on at once.
        """
        me = threading.get_ident()
        if self._owner == me:
            yield
            return
        held = self._mine.count
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        with self._cond:
            self._waiting += 1
            acquired = False
            try:
                # The caller's own shared holds (a restore request) do not count.
                while self._exclusive or self._shared > held:
                    if deadline is None:
                        self._cond.wait()
                        continue
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise BusyError(
                            "the database is busy: requests in flight did not finish "
                            "within %g s; nothing was changed, try again" % timeout,
                            retry_after=max(1, int(round(timeout))))
                    self._cond.wait(left)
                acquired = True
            finally:
                self._waiting -= 1
                if not acquired:
                    # Gave up: the shared holders queued behind it go on now.
                    self._cond.notify_all()
            self._exclusive = True
            self._owner = me
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._owner = None
                self._cond.notify_all()


gate = Gate()
