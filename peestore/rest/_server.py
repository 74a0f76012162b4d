"""Serving a Bottle app with waitress: ``serve`` (blocks) and ``background`` (tests)."""
from __future__ import annotations

import contextlib
import functools
import json
import logging
import threading
import time

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Iterator, Optional, Tuple

__all__ = ["serve", "make_server", "background", "request_body_limit"]

# Unsent bytes of a running task's answer at which the main loop helps send.
_HELP_AT = 256 * 1024


@functools.cache
def _quiet_channel() -> type:
    """waitress' ``HTTPChannel``, without the main loop's busy wait on a running task.

    A worker thread sends its answer itself (``write_soon`` flushes under the
    channel's ``outbuf_lock``).  Meanwhile the main loop sees bytes in the
    buffer, calls the channel writable, finds the lock taken, sends nothing
    and asks again at once: a busy loop that holds the GIL the worker needs
    to finish (2-10x the CPU per request with 4 clients at once, measured with
    ``benchmarks/run.py``).  Here a channel with a running task is writable
    only once its unsent answer reaches ``_HELP_AT`` (a slow client; the
    worker keeps trying to send, and waits only at waitress' far higher
    ``outbuf_high_watermark``).  When the task ends, the worker wakes the
    loop (``service`` pulls the trigger), which sends whatever is left.

    Its errors are JSON (``_json_error_task``), and a connection that waitress'
    ``channel_timeout`` ends is closed even when its client has stopped
    reading: waitress marks an idle channel ``will_close`` and closes it when
    the socket turns writable, which it never does while the client's
    receive window stays full, so the connection and the answer it holds
    (a backup download's file and slot) would stay until the client left.
    """
    from waitress.channel import HTTPChannel

    class QuietChannel(HTTPChannel):
        error_task_class = _json_error_task()  # private: HTTPChannel.error_task_class

        def writable(self) -> bool:
            if self.will_close or self.close_when_flushed:
                idle_since = self.last_activity  # private: HTTPChannel.last_activity
                if self.will_close and not self.requests and self.total_outbufs_len \
                        and idle_since < time.time() - self.adj.channel_timeout:
                    # Timed out with unsent bytes: see above.
                    self.handle_close()  # private: HTTPChannel.handle_close
                    return False
                return True
            pending = self.total_outbufs_len
            if not pending:
                return False
            return not self.requests or pending >= _HELP_AT

    return QuietChannel


class _JsonError:
    """One of waitress' own error answers (an ``Error`` of ``waitress.utilities``),
    given as JSON ``{"detail": ...}`` like every other answer of the API."""

    def __init__(self, error: Any, body_limit: int) -> None:
        self.error = error
        self.body_limit = body_limit

    def to_response(self, *args: Any) -> Tuple[str, list, Any]:
        # waitress' own answer first: its status line, and its body's type
        # (text before waitress 3, bytes since).
        status, _, original = self.error.to_response(*args)  # private: waitress Error
        code = self.error.code
        if code == 413:
            detail = ("request body over the server's limit of %d bytes "
                      "(max_request_body_size)" % (self.body_limit - 1))
        elif code == 500:
            # The app failed; the body may hold a traceback (expose_tracebacks).
            detail = "internal server error"
        else:
            detail = "%s: %s" % (self.error.reason, self.error.body)
        body = json.dumps({"detail": detail})  # ASCII: any waitress can send it
        if isinstance(original, bytes):
            body = body.encode("ascii")
        return status, [("Content-Type", "application/json")], body


@functools.cache
def _json_error_task() -> type:
    """waitress' ``ErrorTask``, answering JSON: its 4xx for a request it refuses
    before the app sees it (a body over ``max_request_body_size``, a malformed
    request), and its 500 when the app itself fails."""
    from waitress.task import ErrorTask  # private: waitress.task.ErrorTask

    class JsonErrorTask(ErrorTask):
        def execute(self) -> None:
            limit = self.channel.adj.max_request_body_size  # private: Task.channel
            self.request.error = _JsonError(self.request.error, limit)  # private: Parser.error
            super().execute()

    return JsonErrorTask


def request_body_limit(app: Any) -> Optional[int]:
    """The ``max_request_body_size`` that ``app``'s plugins ask for, or None.

    Looks at the plugins of ``app`` and of the Bottle apps mounted into it
    (their routes keep their ``app``) for a ``max_request_body_size``
    attribute (``RestPlugin`` has one); the largest wins.  An app wrapped in
    WSGI middleware is not looked into.
    """
    limits = []
    seen = set()
    todo = [app]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        for plugin in getattr(current, "plugins", None) or ():
            limit = getattr(plugin, "max_request_body_size", None)
            if isinstance(limit, int) and not isinstance(limit, bool):
                limits.append(limit)
        for route in getattr(current, "routes", None) or ():
            owner = getattr(route, "app", None)
            if owner is not None:
                todo.append(owner)
    return max(limits) if limits else None


def make_server(app: Any, host: str = "127.0.0.1", port: int = 8000, threads: int = 4,
                **options: Any) -> Any:
    """A waitress server for ``app``, bound but not yet running (``port=0``: any free port).

    ``options`` go to waitress (e.g. ``channel_timeout``, ``url_scheme``).
    Unless ``max_request_body_size`` is among them, it is set from the app's
    ``RestPlugin`` limits (``request_body_limit``), so waitress refuses a body
    larger than any the plugin takes before it reads (and buffers) it.
    waitress' own error answers are JSON ``{"detail": ...}``.
    """
    import waitress.server

    if not isinstance(threads, int) or threads < 1:
        raise ValueError("threads must be a whole number >= 1, got %r" % (threads,))
    if "max_request_body_size" not in options:
        limit = request_body_limit(app)
        if limit is not None:
            options["max_request_body_size"] = limit
    server = waitress.server.create_server(app, host=host, port=port, threads=threads,
                                           **options)
    channel = _quiet_channel()
    # One listening socket: the server itself; several: a MultiSocketServer
    # whose map holds one server per socket.
    for listener in [server] + list(getattr(server, "map", {}).values()):
        if isinstance(listener, waitress.server.BaseWSGIServer):
            listener.channel_class = channel
    return server


def serve(app: Any, host: str = "127.0.0.1", port: int = 8000, threads: int = 4,
          **options: Any) -> None:
    """Serve ``app`` with waitress until interrupted (Ctrl-C).

    Prints one line first: the URL and the database it serves (never a password).
    """
    from ._banner import start_line

    server = make_server(app, host=host, port=port, threads=threads, **options)
    # As waitress.serve does: make waitress' errors visible.
    logging.basicConfig()
    print(start_line(server), flush=True)
    try:
        server.run()
    finally:
        server.close()


@contextlib.contextmanager
def background(app: Any, host: str = "127.0.0.1", port: int = 0, threads: int = 4,
               **options: Any) -> Iterator[str]:
    """Serve ``app`` in a thread for the block; yields its base URL (``http://host:port``).

    For tests and scripts: the server is stopped and its thread joined on exit.
    """
    server = make_server(app, host=host, port=port, threads=threads, **options)
    thread = threading.Thread(target=server.run, name="peestore-server", daemon=True)
    thread.start()
    try:
        host_text = server.effective_host
        if ":" in str(host_text):
            host_text = "[%s]" % host_text
        yield "http://%s:%s" % (host_text, server.effective_port)
    finally:
        # Close from the server's own loop thread: closing its sockets from
        # here races with the select() it is blocked in.
        try:
            server.trigger.pull_trigger(server.close)
        except OSError:  # the loop already closed the trigger: it has stopped
            pass
        thread.join(timeout=10)
