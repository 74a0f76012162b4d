"""Serving a Bottle app with waitress: ``serve`` (blocks) and ``background`` (tests)."""
from __future__ import annotations

import contextlib
import logging
import threading

from .. import _compat

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Iterator, Optional

__all__ = ["serve", "make_server", "background", "request_body_limit"]

def request_body_limit(app: Any) -> Optional[int]:
    """The ``max_request_body_size`` that ``app``'s plugins ask for, or None.

    Looks at the plugins of ``app`` and of the Bottle apps mounted into it
    for a ``max_request_body_size`` attribute (``RestPlugin`` has one); the
    largest wins.  An app wrapped in WSGI middleware is not looked into.
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
        todo.extend(_compat.mounted_apps(current))
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
    _compat.use_channel(server, _compat.server_channel())
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
        host, port = _compat.server_addresses(server)[0]
        if ":" in str(host):
            host = "[%s]" % host
        yield "http://%s:%s" % (host, port)
    finally:
        _compat.stop_from_loop(server)
        thread.join(timeout=10)
