"""Serving a Bottle app with waitress: ``serve`` (blocks) and ``background`` (tests).

The server peestore makes is set for a controller that anyone on its network
can reach:

- a body limit per route: waitress reads (and buffers to a temporary file) a
  request's whole body before the app runs, so the limit is decided from the
  request's line and headers alone.  An upload route (``POST /db/restore``,
  ``POST /db/import``, and any route with the config ``peestore_upload=True``)
  may take ``max_upload_bytes``; every other request the plugin's
  ``max_body_bytes``.  An upload route is also authenticated on its headers
  before its body is read (``RestPlugin.refuse_early``): an anonymous or
  non-admin client, a browser on another site's page and a request naming a
  foreign ``Host`` cannot make the server store anything.  A request whose
  ``Host`` no plugin answers (``RestPlugin.refuse_host``) is refused from its
  headers on any route, when every app mounted into the served one has a
  plugin.
- ``header_timeout`` (default ``HEADER_TIMEOUT``): a connection must send each
  request's line and headers within it, counted from when it opens or its last
  answer was sent; slow senders (and idle keep-alive connections) cannot hold
  the ``connection_limit`` (default ``CONNECTION_LIMIT``) slots.
- ``channel_timeout`` (default ``CHANNEL_TIMEOUT``, waitress' own is 120 s):
  a connection that neither sends nor takes a byte for that long is closed,
  with what its answer holds (a backup download's copy and slot).
"""
from __future__ import annotations

import contextlib
import logging
import threading

from .. import _compat

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

__all__ = ["serve", "make_server", "background", "backup_timer", "request_body_limit",
           "request_screen",
           "HEADER_TIMEOUT", "CHANNEL_TIMEOUT", "CONNECTION_LIMIT"]

#: Seconds a client has to send a request's line and headers.
HEADER_TIMEOUT = 10
#: Seconds a connection may send and take nothing before it is closed.
CHANNEL_TIMEOUT = 30
#: Connections open at once; past it the server stops accepting until one closes.
CONNECTION_LIMIT = 100

log = logging.getLogger("peestore.rest")


def _plugins(app: Any) -> Iterator[Tuple[Any, Any, str]]:
    """``(bottle app, plugin or None, prefix)`` for ``app`` and each app mounted into
    it: ``prefix`` is what a request path has in front of that app's route rules."""
    seen = set()
    todo = [(app, "")]
    while todo:
        current, prefix = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        found = False
        for plugin in getattr(current, "plugins", None) or ():
            if isinstance(getattr(plugin, "max_request_body_size", None), int):
                found = True
                yield current, plugin, prefix
        if not found:
            yield current, None, prefix
        todo.extend((mounted, prefix + sub) for mounted, sub in _compat.mounts(current))


def request_body_limit(app: Any) -> Optional[int]:
    """The ``max_request_body_size`` that ``app``'s plugins ask for, or None.

    Looks at the plugins of ``app`` and of the Bottle apps mounted into it
    for a ``max_request_body_size`` attribute (``RestPlugin`` has one); the
    largest wins.  An app wrapped in WSGI middleware is not looked into.
    """
    limits = [plugin.max_request_body_size for _, plugin, _ in _plugins(app)
              if plugin is not None and not isinstance(plugin.max_request_body_size, bool)]
    return max(limits) if limits else None


class _Screen:
    """Each request's body limit and, for an upload route or a ``Host`` no plugin
    answers, the refusal its headers earn (``peestore._compat.server_channel``'s
    ``screen``)."""

    def __init__(self, json_limit: int, uploads: Dict[Tuple[str, str], Any],
                 router: Any, hosts: List[Any]) -> None:
        self.json_limit = json_limit
        self.uploads = uploads  # (method, path) -> (limit, plugin, route config)
        self.router = router    # rules with wildcards, or None
        self.hosts = hosts      # the plugins, when every app has one; else empty

    def __call__(self, method: str, path: str, host: Optional[str],
                 environ: Callable[[], Dict[str, Any]]) -> Tuple[int, str, Any]:
        target = self.uploads.get((method, path))
        if target is None and self.router is not None:
            import bottle

            try:
                target = self.router.match({"REQUEST_METHOD": method, "PATH_INFO": path})[0]
            except bottle.HTTPError:  # no upload route there (404/405)
                target = None
        if target is None:
            refusal = None
            if self.hosts and all(plugin.hosts.refusal(host) for plugin in self.hosts):
                # What the route's plugin answers first, given before the body.
                refusal = _wire(self.hosts[0].refuse_host({"HTTP_HOST": host}))
            return self.json_limit, "max_body_bytes", refusal
        limit, plugin, config = target
        refusal = None
        if plugin is not None:
            response = plugin.refuse_early(environ(), config)
            if response is not None:
                refusal = _wire(response)
        return limit, "max_upload_bytes", refusal


def _wire(response: Any) -> Tuple[str, List[Tuple[str, str]], bytes]:
    """A Bottle response as ``(status line, headers, body bytes)``."""
    body = response.body
    if isinstance(body, str):
        body = body.encode("utf-8")
    elif not isinstance(body, bytes):
        body = b""
    headers = [(name, value) for name, value in response.headerlist
               if name.lower() not in ("content-length", "connection", "transfer-encoding")]
    return response.status_line, headers, body


def request_screen(app: Any) -> Optional[_Screen]:
    """The per-request body limits of ``app``'s ``RestPlugin``s (None without one).

    A route whose config has ``peestore_upload`` (the plugin's ``/db/restore``
    and ``/db/import``, or an app's own route added with
    ``peestore_upload=True``) may take a body as large as waitress'
    ``max_request_body_size``; the plugin that applies to it checks the
    request's headers first (``RestPlugin.refuse_early``).  Every other
    request may send at most the largest ``max_body_bytes`` of the plugins,
    and is refused from its headers when its ``Host`` is one that no plugin
    answers (``RestPlugin.refuse_host``) and every app has a plugin (an app
    mounted without one answers any ``Host``).
    """
    import bottle

    outer = request_body_limit(app)
    json_limits = []
    uploads: Dict[Tuple[str, str], Any] = {}
    router = None
    seen_routes = set()
    hosts: List[Any] = []
    every_app = True
    for current, plugin, prefix in _plugins(app):
        if plugin is not None:
            json_limits.append(plugin.max_body_bytes + 1)
            if hasattr(plugin, "refuse_host"):
                hosts.append(plugin)
            else:
                every_app = False
        else:
            every_app = False
        for route in getattr(current, "routes", None) or ():
            config = getattr(route, "config", None) or {}
            if not config.get("peestore_upload") or id(route) in seen_routes:
                continue
            seen_routes.add(id(route))
            owner = next((p for p in route.all_plugins() if hasattr(p, "refuse_early")),
                         None)
            limit = owner.max_request_body_size if owner is not None else outer
            rule = prefix + route.rule
            target = (limit, owner, config)
            if "<" in rule or ":" in rule or route.method == "ANY":
                if router is None:
                    router = bottle.Router()
                router.add(rule, route.method, target)
            else:
                uploads[(route.method, rule)] = target
    if not json_limits:
        return None
    return _Screen(max(json_limits), uploads, router, hosts if every_app else [])


def _remove_stale_files() -> None:
    """Remove the temporary files a killed peestore left beside the database."""
    import os
    import tempfile

    from ..db._connect import database
    from ..tools._files import database_file, remove_stale

    db = database.obj
    path = database_file(db) if db is not None else None
    if path is not None:
        path = os.path.abspath(path)
        removed = remove_stale(os.path.dirname(path), database_name=os.path.basename(path))
        if removed:
            log.info("removed %d temporary file(s) left beside %s: %s", len(removed), path,
                     ", ".join(removed))
    remove_stale(tempfile.gettempdir())


def make_server(app: Any, host: str = "127.0.0.1", port: int = 8000, threads: int = 4, *,
                header_timeout: Optional[float] = HEADER_TIMEOUT, **options: Any) -> Any:
    """A waitress server for ``app``, bound but not yet running (``port=0``: any free port).

    ``threads`` serve requests; each open change stream (``GET /db/changes``)
    adds one more for as long as it is open.
    ``options`` go to waitress (e.g. ``channel_timeout``, ``url_scheme``).
    ``channel_timeout`` defaults to ``CHANNEL_TIMEOUT`` (30 s) and
    ``connection_limit`` to ``CONNECTION_LIMIT`` (100).  Unless
    ``max_request_body_size`` is among them, it is set from the app's
    ``RestPlugin`` limits (``request_body_limit``); below it, each request
    gets its route's limit once its headers are in (``request_screen``), so
    waitress refuses a body larger than its route takes before it reads (and
    buffers) it.  ``header_timeout``: seconds a client has to send a
    request's line and headers (None: no limit).  waitress' own error
    answers are JSON ``{"detail": ...}``.  Temporary files a killed peestore
    left beside the database are removed.
    """
    import waitress.server

    if not isinstance(threads, int) or threads < 1:
        raise ValueError("threads must be a whole number >= 1, got %r" % (threads,))
    if header_timeout is not None and (
            isinstance(header_timeout, bool) or not isinstance(header_timeout, (int, float))
            or not 0 < header_timeout < float("inf")):
        raise ValueError("header_timeout must be a number of seconds > 0 (or None), got %r"
                         % (header_timeout,))
    options.setdefault("channel_timeout", CHANNEL_TIMEOUT)
    options.setdefault("connection_limit", CONNECTION_LIMIT)
    if "max_request_body_size" not in options:
        limit = request_body_limit(app)
        if limit is not None:
            options["max_request_body_size"] = limit
    server = waitress.server.create_server(app, host=host, port=port, threads=threads,
                                           **options)
    _compat.use_channel(server, _compat.server_channel(header_timeout, request_screen(app)))
    _remove_stale_files()
    return server


def serve(app: Any, host: str = "127.0.0.1", port: int = 8000, threads: int = 4, *,
          backup_dir: Any = None, backup_every: Any = None, backup_keep: int = 7,
          **options: Any) -> None:
    """Serve ``app`` with waitress until interrupted (Ctrl-C).

    ``options`` are ``make_server``'s (``header_timeout``) and waitress'.
    Prints one line first: the URL and the database it serves (never a password).
    ``backup_dir``: the folder of rotating backups that ``GET /db/backups``
    lists; with ``backup_every`` (seconds, or a ``timedelta``) a thread writes
    one there that often (``peestore.backup_rotating``, keeping
    ``backup_keep``); a failed backup is logged, the server goes on.
    """
    from ._banner import start_line

    timer = backup_timer(backup_dir, backup_every, backup_keep)
    server = make_server(app, host=host, port=port, threads=threads, **options)
    # As waitress.serve does: make waitress' errors visible.
    logging.basicConfig()
    print(start_line(server), flush=True)
    if timer is not None:
        timer.start()
    try:
        server.run()
    finally:
        if timer is not None:
            timer.stop()
        server.close()


def backup_timer(backup_dir: Any, backup_every: Any, keep: int = 7) -> Any:
    """The ``peestore.tools._rotate.BackupTimer`` for ``serve``'s backup options (not
    started), or None without ``backup_dir``; bad options raise ``ConfigurationError``."""
    if backup_dir is None:
        if backup_every is not None:
            from ..errors import ConfigurationError

            raise ConfigurationError("backup_every needs backup_dir: the folder to keep "
                                     "the backups in")
        return None
    from ..tools._rotate import BackupTimer

    return BackupTimer(backup_dir, backup_every, keep)


@contextlib.contextmanager
def background(app: Any, host: str = "127.0.0.1", port: int = 0, threads: int = 4, *,
               backup_dir: Any = None, backup_every: Any = None, backup_keep: int = 7,
               **options: Any) -> Iterator[str]:
    """Serve ``app`` in a thread for the block; yields its base URL (``http://host:port``).

    For tests and scripts: on exit the requests running end, every connection
    is closed, and the server's thread is joined.  The backup options are
    ``serve``'s.
    """
    timer = backup_timer(backup_dir, backup_every, backup_keep)
    server = make_server(app, host=host, port=port, threads=threads, **options)
    thread = threading.Thread(target=server.run, name="peestore-server", daemon=True)
    thread.start()
    if timer is not None:
        timer.start()
    try:
        host, port = _compat.server_addresses(server)[0]
        if ":" in str(host):
            host = "[%s]" % host
        yield "http://%s:%s" % (host, port)
    finally:
        if timer is not None:
            timer.stop()
        _compat.stop_server(server)
        thread.join(timeout=10)
