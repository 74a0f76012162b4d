"""Serving a Bottle app with waitress: ``serve`` (blocks) and ``background`` (tests)."""
from __future__ import annotations

import contextlib
import functools
import logging
import threading

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Iterator

__all__ = ["serve", "make_server", "background"]

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
    """
    from waitress.channel import HTTPChannel

    class QuietChannel(HTTPChannel):
        def writable(self) -> bool:
            if self.will_close or self.close_when_flushed:
                return True
            pending = self.total_outbufs_len
            if not pending:
                return False
            return not self.requests or pending >= _HELP_AT

    return QuietChannel


def make_server(app: Any, host: str = "127.0.0.1", port: int = 8000, threads: int = 4,
                **options: Any) -> Any:
    """A waitress server for ``app``, bound but not yet running (``port=0``: any free port).

    ``options`` go to waitress (e.g. ``channel_timeout``, ``url_scheme``).
    """
    import waitress.server

    if not isinstance(threads, int) or threads < 1:
        raise ValueError("threads must be a whole number >= 1, got %r" % (threads,))
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
    from .banner import start_line

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
