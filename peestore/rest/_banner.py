"""The line a server prints when it starts: where it listens and which database it serves."""
from __future__ import annotations

import os

import peewee

from .. import _compat
from ..db._dialect import dialect_of

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, List, Optional

__all__ = ["database_label", "server_urls", "start_line"]


def database_label(db: Optional[peewee.Database] = None) -> str:
    """``db`` (default: the connected one) as a URL, never with a password.

    A SQLite file is named by its absolute path (``sqlite:////srv/machine.db``),
    so the operator sees which file a relative URL meant.
    """
    from ..db._connect import database

    if db is None:
        db = database.obj
    if db is None:
        return "none connected"
    name = db.database
    dialect = dialect_of(db)
    if dialect.has_file:
        if name and name != ":memory:" and not str(name).startswith("file:"):
            name = os.path.abspath(name)
        return "sqlite:///%s" % name
    scheme = dialect.scheme if dialect.scheme != "other" else type(db).__name__
    params = _compat.connection_params(db)
    user, host, port = params.get("user"), params.get("host"), params.get("port")
    netloc = "%s%s%s" % (user + "@" if user else "", host or "",
                         ":%s" % port if port else "")
    return "%s://%s/%s" % (scheme, netloc, name)


def server_urls(server: Any) -> List[str]:
    """The base URL of each socket a waitress server (``make_server``) listens on."""
    urls = []
    for host, port in _compat.server_addresses(server):
        if host == "unix" and not isinstance(port, int):  # waitress' Unix socket: its path
            urls.append("unix:%s" % port)
            continue
        if ":" in str(host):
            host = "[%s]" % host
        urls.append("http://%s:%s/" % (host, port))
    return urls


def start_line(server: Any, name: str = "peestore",
               db: Optional[peewee.Database] = None) -> str:
    """``name: serving on URL (database URL); Ctrl-C stops``: printed when a server starts."""
    return "%s: serving on %s (database %s); Ctrl-C stops" % (
        name, " and ".join(server_urls(server)), database_label(db))
