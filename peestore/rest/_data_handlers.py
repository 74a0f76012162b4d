"""What the ``/db`` data routes do: diagram, CSV export/import, backup and restore.

``peestore.rest._data_routes`` adds the routes; this module is loaded on the
first request to one of them.

Uploads (``/db/import``, ``/db/restore``) are streamed to a file beside the
database, never held in memory.  Downloads (``/db/export.zip``,
``/db/backup.sqlite``) are written to a file beside the database first and
sent from it by the server, at most ``MAX_DOWNLOADS`` at once.
``/db/export.zip``, ``/db/import``, ``/db/restore`` and ``/db/backup.sqlite``
need the ``admin`` role when the plugin has an ``authenticate`` function.
"""
from __future__ import annotations

import datetime
import io
import os
import tempfile
import threading

import bottle

from ..db._connect import get_database
from ..db._dialect import dialect_of
from ..tools._files import temp_file
from ._responses import error, json_response

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Optional, Tuple

__all__ = ["handlers", "MAX_DOWNLOADS"]

MAX_DOWNLOADS = 2    # backup and export downloads at once, per plugin (each holds a file)
_DOWNLOAD_RETRY = 10  # seconds, the Retry-After of a refused download
_NOT_SQLITE = ("{what} works on SQLite databases only; back up PostgreSQL with pg_dump "
               "and MariaDB/MySQL with mariadb-dump (or mysqldump)")


def _stamp() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _flag(fields: Dict[str, str], name: str, default: bool) -> bool:
    """A boolean option from the query string or the form (query wins)."""
    value = bottle.request.query.get(name)
    if value is None:
        value = fields.get(name)
    if value is None or value == "":
        return default
    text = value.strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise bottle.HTTPError(400, f"{name} must be true or false, not {value!r}")


def _sqlite_file(what: str) -> str:
    db = get_database()
    if not dialect_of(db).has_file:
        # error(), not HTTPError: the plugin hides the detail of a 5xx HTTPError.
        raise error(501, _NOT_SQLITE.format(what=what))
    from ..tools._backup import sqlite_path

    return sqlite_path(db, what)


def _download_folder(db: Any) -> str:
    """Where a download or an upload waits as a file: beside a SQLite database (same
    disk, same permissions), else the system's temporary folder."""
    if dialect_of(db).has_file:
        from ..tools._backup import sqlite_path

        return os.path.dirname(os.path.abspath(sqlite_path(db, "export")))
    return tempfile.gettempdir()


def _receive(plugin: Any, directory: str, suffix: str,
             fields: Tuple[str, ...], digest: Optional[Any] = None
             ) -> Tuple[str, Dict[str, str]]:
    """Stream the multipart field ``file`` into a new file in ``directory``; the route
    takes the text ``fields`` besides it (``digest``, a ``hashlib`` object, sees the
    file's bytes on the way)."""
    from ._upload import UploadError, UploadTooLarge, body_limit, read_multipart

    request = bottle.request
    limit = plugin.max_upload_bytes
    length: Optional[int] = request.content_length
    if length is not None and length < 0:
        length = None
    if length is not None and length > body_limit(limit):
        raise bottle.HTTPError(413, f"upload of {length} bytes is over the limit: a file of "
                                    f"at most {limit} bytes (max_upload_bytes) in a form of "
                                    f"at most {body_limit(limit)} bytes")
    from ..db._connect import database
    from ..db._space import check_copy_room
    from ..tools._files import temp_file

    if database.obj is not None:  # a 507 before a byte of the upload is stored
        check_copy_room(database.obj, directory, length or 0, "the upload")
    fd, path = temp_file(directory, "upload", suffix)
    try:
        with os.fdopen(fd, "wb") as out:
            sink: Any = out
            if digest is not None:
                from ..tools._restore import Sha256Writer

                sink = Sha256Writer(out, digest)
            values = read_multipart(request.environ["wsgi.input"],
                                    request.environ.get("CONTENT_TYPE", ""), length,
                                    "file", sink, limit, fields)
            out.flush()
            os.fsync(out.fileno())
    except UploadTooLarge as exc:
        _unlink(path)
        raise bottle.HTTPError(413, f"{exc} (max_upload_bytes)") from None
    except UploadError as exc:
        _unlink(path)
        raise bottle.HTTPError(400, str(exc)) from None
    except BaseException:
        _unlink(path)
        raise
    return path, values


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class _Download(io.FileIO):
    """A file being sent (a backup copy, an export), unlinked as soon as it is open;
    closing it (the download ended, the client left, the server timed the connection
    out) gives back the download's slot."""

    _path: Optional[str] = None
    _release: Optional[Callable[[], None]] = None

    def __init__(self, path: str, release: Callable[[], None]) -> None:
        super().__init__(path, "rb")
        self._release = release
        try:
            os.unlink(path)
        except OSError:  # Windows cannot unlink an open file: done on close
            self._path = path

    def close(self) -> None:
        try:
            super().close()
        finally:
            path, self._path = self._path, None
            if path is not None:
                _unlink(path)
            release, self._release = self._release, None
            if release is not None:
                release()


def handlers(plugin: Any) -> Dict[str, Callable[[], Any]]:
    """The data routes' callbacks for ``plugin``, by name (one set per plugin: its
    download slots are shared by them).

    Each imports its tool when first called: an app that never exports or
    restores does not hold csv, zipfile or the schema introspection.
    """

    def diagram() -> str:
        """The schema diagram, drawn from the live database."""
        bottle.response.content_type = "image/svg+xml; charset=utf-8"
        bottle.response.set_header("Cache-Control", "no-store")
        from ..tools._diagram import diagram_svg

        return diagram_svg()

    downloads = threading.BoundedSemaphore(MAX_DOWNLOADS)

    def download_slot() -> None:
        """Take one of the download slots, or answer 503 with Retry-After."""
        if not downloads.acquire(blocking=False):
            raise error(503, f"{MAX_DOWNLOADS} downloads (backups and exports) are running "
                        "already; try again when one has ended",
                        headers={"Retry-After": str(_DOWNLOAD_RETRY)})

    def send(path: str, content_type: str, filename: str) -> Any:
        """The finished file at ``path`` as the response body, holding the slot taken."""
        try:
            download = _Download(path, downloads.release)
        except BaseException:
            _unlink(path)
            downloads.release()
            raise
        bottle.response.content_type = content_type
        bottle.response.set_header("Content-Disposition", f'attachment; filename="{filename}"')
        bottle.response.set_header("Content-Length", str(os.fstat(download.fileno()).st_size))
        bottle.response.set_header("Cache-Control", "no-store")
        # A file, not an iterator: Bottle hands it to the server's
        # wsgi.file_wrapper, and waitress sends it from its main loop, so the
        # request (its worker thread, its gate and its connection) ends here.
        return download

    def export_zip() -> Any:
        """One CSV per table in a zip, written to a file first, then sent from it."""
        plugin.require_admin()
        db = get_database()
        tables = None
        wanted = bottle.request.query.get("tables")
        if wanted:
            from ..errors import ValidationError
            from ..tools._tables import resolve_tables

            names = [t.strip() for t in wanted.split(",") if t.strip()]
            try:
                tables = resolve_tables(db, names, plugin.models)
            except ValidationError as exc:
                raise bottle.HTTPError(400, f"tables: {exc}") from None
        download_slot()
        from ..tools._export import export_steps

        # A client reading slowly must hold neither a read transaction (it would
        # stop WAL checkpoints and keep the restore gate) nor a worker thread.
        try:
            fd, path = temp_file(_download_folder(db), "export", ".zip")
        except BaseException:
            downloads.release()
            raise
        try:
            with os.fdopen(fd, "wb") as out:
                for _ in export_steps(out, db, tables, models=plugin.models):
                    pass
        except BaseException:
            _unlink(path)
            downloads.release()
            raise
        return send(path, "application/zip", f"export-{_stamp()}.zip")

    def import_zip() -> Any:
        """Import a zip as export makes it: all or nothing; the audit log is skipped."""
        plugin.require_admin()
        from ..tools._import import MODES, load_zip

        db = get_database()
        path, fields = _receive(plugin, _download_folder(db), ".zip", ("mode",))
        try:
            mode = bottle.request.query.get("mode") or fields.get("mode") or "append"
            if mode not in MODES:
                raise bottle.HTTPError(400, f"mode must be append or replace, not {mode!r}")
            result = load_zip(path, mode=mode, max_bytes=plugin.max_upload_bytes,
                              models=plugin.models)
        finally:
            _unlink(path)
        return json_response({"imported": result.imported, "skipped": result.skipped})

    def backup_sqlite() -> Any:
        """A consistent online backup, sent from a copy by the server's main loop."""
        plugin.require_admin()
        live = _sqlite_file("backup")
        download_slot()
        from ..tools._backup import backup

        # A consistent snapshot needs either a copy or a read transaction held
        # for the whole download, which would stop WAL checkpoints (the -wal
        # file grows) for as long as a client takes to read: a copy it is.
        try:
            fd, path = temp_file(os.path.dirname(os.path.abspath(live)), "download", ".sqlite")
            os.close(fd)
        except BaseException:
            downloads.release()
            raise
        try:
            backup(path)
        except BaseException:
            _unlink(path)
            downloads.release()
            raise
        return send(path, "application/x-sqlite3", f"backup-{_stamp()}.sqlite")

    def restore_sqlite() -> Any:
        """Replace the database with an uploaded backup (validated first; audited)."""
        plugin.require_admin()
        live = _sqlite_file("restore")
        import hashlib

        from ..tools._restore import restore_staged

        digest = hashlib.sha256()
        path, fields = _receive(plugin, os.path.dirname(os.path.abspath(live)), ".restore",
                                ("integrity_check", "dry_run"), digest)
        try:
            integrity_check = _flag(fields, "integrity_check", True)
            dry_run = _flag(fields, "dry_run", False)
        except BaseException:
            _unlink(path)
            raise
        return json_response(restore_staged(path, integrity_check=integrity_check,
                                            dry_run=dry_run, wait=plugin.restore_wait,
                                            sha256=digest.hexdigest()))

    return {"diagram": diagram, "export_zip": export_zip, "import_zip": import_zip,
            "backup_sqlite": backup_sqlite, "restore_sqlite": restore_sqlite}
