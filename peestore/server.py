"""Serving a Bottle app with waitress: ``serve`` (blocks) and ``background`` (tests)."""
from __future__ import annotations

import contextlib
import logging
import threading

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Iterator

__all__ = ["serve", "make_server", "background"]


def make_server(app: Any, host: str = "127.0.0.1", port: int = 8000, threads: int = 4,
                **options: Any) -> Any:
    """A waitress server for ``app``, bound but not yet running (``port=0``: any free port).

    ``options`` go to waitress (e.g. ``channel_timeout``, ``url_scheme``).
    """
    import waitress.server

    if not isinstance(threads, int) or threads < 1:
        raise ValueError("threads must be a whole number >= 1, got %r" % (threads,))
    return waitress.server.create_server(app, host=host, port=port, threads=threads,
                                         **options)


def serve(app: Any, host: str = "127.0.0.1", port: int = 8000, threads: int = 4,
          **options: Any) -> None:
    """Serve ``app`` with waitress until interrupted (Ctrl-C)."""
    server = make_server(app, host=host, port=port, threads=threads, **options)
    # As waitress.serve does: make its "Serving on" line (and errors) visible.
    logging.basicConfig()
    server.print_listen("Serving on http://{}:{}")
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
