"""``peestore serve APP``: serve a Bottle app, or a module of models, with waitress."""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import types

from ._main import PORT, THREADS, arg, command, float_range, int_range
from ..errors import ConfigurationError

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, List, Optional, Sequence


def _models_in(value: Any) -> List[type]:
    from ..model._base import BaseAuditedModel

    if isinstance(value, types.ModuleType):
        candidates = list(vars(value).values())
        models = [c for c in candidates if isinstance(c, type)
                  and issubclass(c, BaseAuditedModel) and c is not BaseAuditedModel
                  and c.__module__ == value.__name__]
    elif isinstance(value, (list, tuple)):
        models = list(value)
    else:
        return []
    return [m for m in models if isinstance(m, type) and issubclass(m, BaseAuditedModel)]


def load_app(spec: str, db_url: Any = None,
             allowed_hosts: Optional[Sequence[str]] = None) -> Any:
    """The app named by ``module:attr`` (or ``module``), ready to serve.

    A Bottle app is served as it is; a module or a list of models gets
    ``bootstrap``.  The database: ``db_url`` when given; else the one the app
    connected itself when imported (``peestore.connect`` or ``bootstrap`` at
    import); else the default (``$PEESTORE_DATABASE_URL``, else
    ``sqlite:///peestore.db``).  ``allowed_hosts``, when given, is the
    ``RestPlugin`` option of the app made, and replaces that of a Bottle
    app's ``RestPlugin``s.
    """
    import bottle

    from ..db._connect import connect, database
    from ..rest import RestPlugin, bootstrap
    from ..rest._hosts import HostCheck

    module_name, _, attr = spec.partition(":")
    if not module_name:
        raise ConfigurationError("APP is module:attr (e.g. myapp:app), got %r" % spec)
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError("cannot import %s: %s" % (module_name, exc)) from exc
    except Exception as exc:  # the app's own code failed: say where, in one line
        raise ConfigurationError("importing %s failed: %s: %s" % (
            module_name, type(exc).__name__, str(exc).strip().split("\n")[0])) from exc
    value: Any = module
    for part in filter(None, attr.split(".")):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise ConfigurationError("%s has no attribute %r" % (module_name, attr)) from None
    if isinstance(value, bottle.Bottle):
        plugins = [p for p in value.plugins if isinstance(p, RestPlugin)]
        if allowed_hosts is not None:
            hosts = HostCheck(allowed_hosts)
            for plugin in plugins:
                plugin.hosts = hosts
        models = plugins[0].models if plugins else []
        if db_url is not None or database.obj is None:
            connect(db_url, models=models)
        return value
    models = _models_in(value)
    if not models:
        raise ConfigurationError("%s is neither a Bottle app nor a module or list of "
                                 "peestore models" % spec)
    # A module that connected at import keeps its database (and its pragmas).
    return bootstrap(models=models, database_url=db_url if db_url is not None
                     else database.obj, allowed_hosts=allowed_hosts)


@command("serve", "serve APP (module:attr: a Bottle app or a module of models) with waitress")
@arg("app", metavar="APP", help="module:attr of a Bottle app, or a module of models")
@arg("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
@arg("--port", type=PORT, default=8000,
     help="TCP port, 0-65535 (0: any free port; default 8000)")
@arg("--threads", type=THREADS, default=4, help="worker threads, 1-1000 (default 4)")
@arg("--allowed-host", metavar="NAME", action="append", default=None,
     help="a name (or IP address) the server answers to in the Host header, any port; "
          "repeat for more; replaces the default (IP addresses, localhost, this "
          "machine's names); '*' for any")
@arg("--backup-dir", metavar="DIR",
     help="folder of rotating backups, listed at GET /db/backups")
@arg("--backup-every", type=float_range(1, 366 * 86400), metavar="SECONDS",
     help="write a checked backup into --backup-dir this often")
@arg("--backup-keep", type=int_range(1, 10000), default=7, metavar="N",
     help="backups kept in --backup-dir (default 7)")
def run(args: argparse.Namespace) -> int:
    from ..rest._banner import start_line
    from ..rest._server import backup_timer, make_server

    timer = backup_timer(args.backup_dir, args.backup_every, args.backup_keep)
    app = load_app(args.app, args.db, args.allowed_host)
    server = make_server(app, host=args.host, port=args.port, threads=args.threads)
    print(start_line(server), flush=True)
    if timer is not None:
        timer.start()
    try:
        server.run()
    finally:
        if timer is not None:
            timer.stop()
        server.close()
    return 0
