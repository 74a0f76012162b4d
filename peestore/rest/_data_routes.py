"""The ``/db`` data routes: diagram, CSV export/import, backup and restore.

The routes are added when the plugin is set up; what they do
(``peestore.rest._data_handlers``) is loaded on the first request to one of
them, so a server whose data tools are never used does not hold their code.
``/db/export.zip``, ``/db/import``, ``/db/restore`` and ``/db/backup.sqlite``
need the ``admin`` role when the plugin has an ``authenticate`` function.
"""
from __future__ import annotations

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Callable

    import bottle

__all__ = ["add_data_routes", "body_limit", "DATA_ROUTES"]

#: (path under the prefix, method, callback name in ``_data_handlers.handlers``)
DATA_ROUTES = (("/db/diagram.svg", "GET", "diagram"),
               ("/db/export.zip", "GET", "export_zip"),
               ("/db/import", "POST", "import_zip"),
               ("/db/backup.sqlite", "GET", "backup_sqlite"),
               ("/db/restore", "POST", "restore_sqlite"))


_MIN_ALLOWANCE = 64 * 1024


def body_limit(file_limit: int) -> int:
    """The most bytes a multipart body may have that carries a file of ``file_limit`` bytes.

    The allowance covers the boundaries, the part headers and the text fields,
    and the chunk framing of a chunked body, which a server counts before it
    takes the framing off: 1/256 of the file limit (chunks of 2 KB or more fit),
    and at least 64 KiB.
    """
    return file_limit + max(_MIN_ALLOWANCE, file_limit // 256)


def add_data_routes(app: bottle.Bottle, plugin: Any) -> None:
    """Add the data routes of SPEC section 6 to ``app`` (called by ``RestPlugin.setup``)."""

    def route_to(name: str) -> Callable[[], Any]:
        def callback() -> Any:
            made = plugin.__dict__.get("data_handlers")
            if made is None:
                from ._data_handlers import handlers

                # Two first requests at once: both use the set stored first.
                made = plugin.__dict__.setdefault("data_handlers", handlers(plugin))
            return made[name]()
        callback.__name__ = callback.__qualname__ = name
        return callback

    for path, method, name in DATA_ROUTES:
        app.route(plugin.route_path(path), method, route_to(name))
