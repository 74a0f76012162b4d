"""Rotating backups: a folder of checked backups, the newest ``keep`` of them.

``backup_rotating`` writes ``backup-YYYYmmddTHHMMSSZ.sqlite`` with
``peestore.backup`` (refused when it would leave less than ``min_free_bytes``
free), then checks the file as a restore would (``check_backup``: header,
schema against the live database's, ``PRAGMA integrity_check``, the rows)
and verifies its audit chain (``verify_audit`` on the file).  A file that fails
is deleted and the error raised; only a file that passed is recorded as
verified (in ``.peestore-backups.json`` beside the backups) and only then are
the oldest beyond ``keep`` removed, so a failing backup never costs a good one.

``BackupTimer`` runs it every so often in a thread of the serving process
(``serve(..., backup_dir=..., backup_every=...)``); ``GET /db/backups`` lists
the folder (``list_backups``).
"""
from __future__ import annotations

import datetime
import json
import logging
import os
import re
import threading
import time

import peewee

from ..db._connect import get_database
from ..errors import ConfigurationError, PeestoreError

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Union
    import pathlib

__all__ = ["backup_rotating", "list_backups", "BackupTimer", "BACKUP_NAME", "MANIFEST",
           "serving"]

log = logging.getLogger("peestore.backup")

#: The name of a rotating backup (its UTC time).
BACKUP_NAME = re.compile(r"backup-(\d{8}T\d{6}Z)\.sqlite")
#: The file, beside the backups, that records those that passed their check.
MANIFEST = ".peestore-backups.json"
_STAMP = "%Y%m%dT%H%M%SZ"
_lock = threading.Lock()  # one rotation at a time in this process

#: The folder the serving process keeps backups in (``serve(backup_dir=...)``), for
#: ``GET /db/backups``: ``{"directory": path or None}``.
serving: Dict[str, Any] = {"directory": None}


def backup_rotating(directory: Union[str, os.PathLike], *, keep: int = 7,
                    database: Optional[peewee.Database] = None) -> pathlib.Path:
    """Write a checked backup of the live SQLite database into ``directory``, keeping
    the newest ``keep``; returns the new file's path.

    The file is ``backup-YYYYmmddTHHMMSSZ.sqlite`` (UTC).  It counts only once
    it passed ``PRAGMA integrity_check``, the schema check of every registered
    model's tables and columns, and the audit chain's verification; a file
    that fails is deleted and ``PeestoreError`` raised, and no older backup is
    removed.  Raises ``DiskFullError`` (nothing written) when the copy would
    leave less than ``connect(min_free_bytes=...)`` free on ``directory``'s disk.
    """
    import pathlib

    from ._backup import backup, sqlite_path

    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise ConfigurationError("keep must be a whole number >= 1, got %r" % (keep,))
    db = get_database(database)
    sqlite_path(db, "backup_rotating()")
    folder = pathlib.Path(directory)
    if not folder.is_dir():
        raise PeestoreError("no folder %s to keep backups in; create it first" % folder)
    with _lock:
        dest = _new_name(folder)
        backup(dest, database=db)
        try:
            report = _check(str(dest), db)
        except BaseException as exc:
            _unlink(str(dest))
            if isinstance(exc, Exception):
                raise PeestoreError("backup %s failed its check and was deleted: %s"
                                    % (dest.name, exc)) from None
            raise
        manifest = _read_manifest(folder)
        manifest[dest.name] = dict(report, bytes=os.path.getsize(str(dest)))
        names = sorted(_backup_names(folder))
        for old in names[:max(len(names) - keep, 0)]:
            _unlink(str(folder / old))
        kept = set(names[-keep:])
        # Entries of files removed (here, or by hand) go too.
        _write_manifest(folder, {k: v for k, v in manifest.items() if k in kept})
    return dest


def list_backups(directory: Union[str, os.PathLike]) -> List[Dict[str, Any]]:
    """The backups in ``directory``, newest first: ``name``, ``size`` (bytes), ``time``
    (ISO 8601 UTC, from the name) and ``verified`` (it passed its check, and its
    size is the one checked)."""
    import pathlib

    folder = pathlib.Path(directory)
    manifest = _read_manifest(folder)
    out = []
    for name in sorted(_backup_names(folder), reverse=True):
        try:
            size = os.stat(str(folder / name)).st_size
        except OSError:
            continue  # removed meanwhile
        when = datetime.datetime.strptime(BACKUP_NAME.fullmatch(name).group(1), _STAMP)
        entry = manifest.get(name)
        out.append({"name": name, "size": size, "time": when.isoformat() + "Z",
                    "verified": isinstance(entry, dict) and entry.get("bytes") == size})
    return out


def _new_name(folder: pathlib.Path) -> pathlib.Path:
    """A name for now that no backup has: at most one backup a second."""
    while True:
        now = datetime.datetime.now(datetime.timezone.utc)
        dest = folder / ("backup-%s.sqlite" % now.strftime(_STAMP))
        if not dest.exists():
            return dest
        time.sleep(1.0 - now.microsecond / 1e6 + 0.01)


def _backup_names(folder: pathlib.Path) -> List[str]:
    try:
        return [entry.name for entry in os.scandir(str(folder))
                if BACKUP_NAME.fullmatch(entry.name) and entry.is_file()]
    except OSError:
        return []


def _check(path: str, db: peewee.Database) -> Dict[str, Any]:
    """Check the backup at ``path`` as a restore would, and verify its audit chain."""
    from ..audit._chain import audit_key
    from ..audit._verify import verify_audit
    from ..db._hardening import HardenedConnection
    from ._restore import check_backup

    check_backup(path, db, integrity_check=True)
    copy = peewee.SqliteDatabase(path, factory=HardenedConnection)
    try:
        chain = verify_audit(database=copy, key=audit_key(db))
    finally:
        copy.close()
    if not chain["ok"]:
        raise PeestoreError("its audit chain is broken at entry %s" % chain["first_bad_id"])
    return {"verified": datetime.datetime.now(datetime.timezone.utc).strftime(_STAMP),
            "audit_entries": chain["entries"], "audit_head": chain["head"]}


def _read_manifest(folder: pathlib.Path) -> Dict[str, Any]:
    try:
        with open(str(folder / MANIFEST), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_manifest(folder: pathlib.Path, manifest: Dict[str, Any]) -> None:
    from ._backup import fsync_dir
    from ._files import temp_file

    fd, tmp = temp_file(folder, "manifest", ".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, str(folder / MANIFEST))
    except BaseException:
        _unlink(tmp)
        raise
    fsync_dir(folder)


def _unlink(path: str) -> None:
    for name in (path, path + "-journal", path + "-wal", path + "-shm"):
        try:
            os.unlink(name)
        except FileNotFoundError:
            pass


class BackupTimer:
    """A thread that runs ``backup_rotating(directory, keep=keep)`` every ``every``
    seconds until ``stop()``; its errors are logged, never raised.  With
    ``every=None`` there is no thread: ``directory`` is only listed.

    The first backup is made once ``every`` seconds have passed since the newest
    backup in the folder (at once if there is none), so a process that restarts
    more often than ``every`` still makes its backups.
    """

    def __init__(self, directory: Union[str, os.PathLike], every: Any, keep: int = 7) -> None:
        if isinstance(every, datetime.timedelta):
            every = every.total_seconds()
        if every is not None and (isinstance(every, bool) or not isinstance(
                every, (int, float)) or not 0 < every < float("inf")):
            raise ConfigurationError("backup_every must be a number of seconds > 0 (or a "
                                     "timedelta), got %r" % (every,))
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ConfigurationError("keep must be a whole number >= 1, got %r" % (keep,))
        if not os.path.isdir(os.fspath(directory)):
            raise ConfigurationError("backup_dir %s is not a folder; create it first"
                                     % os.fspath(directory))
        self.directory = os.path.abspath(os.fspath(directory))
        self.every = None if every is None else float(every)
        self.keep = keep
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> BackupTimer:
        """List ``directory`` at ``GET /db/backups``; start the thread (with ``every``)."""
        serving["directory"] = self.directory
        if self.every is None:
            return self
        self._thread = threading.Thread(target=self._run, name="peestore-backup",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread (a backup running is finished first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        if serving["directory"] == self.directory:
            serving["directory"] = None

    def _first_delay(self) -> float:
        assert self.every is not None
        newest = max(_backup_names(_path(self.directory)), default=None)
        if newest is None:
            return 0.0
        when = datetime.datetime.strptime(BACKUP_NAME.fullmatch(newest).group(1), _STAMP)
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        age = (now - when).total_seconds()
        return min(max(self.every - age, 0.0), self.every)

    def _run(self) -> None:
        every = self.every
        assert every is not None
        delay = self._first_delay()
        while not self._stop.wait(delay):
            started = time.monotonic()
            try:
                path = backup_rotating(self.directory, keep=self.keep)
                log.info("backup %s written and checked", path)
            except Exception as exc:  # a server never stops for a failed backup
                log.error("backup into %s failed: %s", self.directory, exc)
            delay = max(every - (time.monotonic() - started), 0.0)


def _path(directory: str) -> pathlib.Path:
    import pathlib

    return pathlib.Path(directory)
