"""The files peestore reads and writes beside the database and beside an output.

- Where output may go (``check_output``): a new file, or an existing regular
  file; never a device, a FIFO, a socket or a folder (renaming a finished
  copy over ``/dev/null`` replaces the device node with a plain file), and
  never the live database or its ``-wal``, ``-shm`` or ``-journal`` file.
- What input may be read (``check_input``): an existing regular file (opening
  a FIFO blocks until something writes into it).
- Temporary files (``temp_file``): every one peestore makes is named
  ``.peestore-tmp-<kind>-XXXXXXXX<suffix>``, so that what a killed process
  left behind is recognisable, and ``remove_stale`` deletes those older than
  ``STALE_AFTER`` seconds (a file still being written is younger: its
  modification time moves with each write).
"""
from __future__ import annotations

import os
import re
import stat
import tempfile
import time

from ..errors import PeestoreError

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import List, Optional, Tuple, Union
    import peewee
    PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["TEMP_PREFIX", "STALE_AFTER", "temp_file", "remove_stale", "check_output",
           "check_input", "database_file", "is_temp_name"]

#: The start of the name of every temporary file peestore makes.
TEMP_PREFIX = ".peestore-tmp-"
#: Seconds after its last change at which a temporary file counts as left behind.
STALE_AFTER = 3600

# mkstemp's random part: 8 characters of [a-z0-9_].
_RANDOM = r"[a-z0-9_]{8}"
# Names earlier versions gave their temporary files (an upload being received,
# a backup download's copy): removed by the same rule.
_LEGACY = re.compile(r"\.upload\.%s\.(zip|restore)|\.backup\.%s\.sqlite" % (_RANDOM, _RANDOM))
_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def temp_file(directory: PathLike, kind: str, suffix: str = "") -> Tuple[int, str]:
    """A new, empty temporary file in ``directory``: ``(fd, path)``, as ``mkstemp``.

    ``kind`` says what it is for (``upload``, ``backup``...): it is part of the name.
    """
    return tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{kind}-", suffix=suffix,
                            dir=os.fspath(directory))


def is_temp_name(name: str, database_name: Optional[str] = None) -> bool:
    """Whether ``name`` (a file name, no folder) is one of peestore's temporary files.

    ``database_name`` (the live database's file name) also matches the staged
    copy an earlier version's restore made beside it (``.<name>.XXXXXXXX.restore``).
    """
    if name.startswith(TEMP_PREFIX) or _LEGACY.fullmatch(name):
        return True
    if database_name:
        return re.fullmatch(r"\.%s\.%s\.restore" % (re.escape(database_name), _RANDOM),
                            name) is not None
    return False


def remove_stale(directory: PathLike, *, max_age: float = STALE_AFTER,
                 database_name: Optional[str] = None, now: Optional[float] = None
                 ) -> List[str]:
    """Delete peestore's temporary files in ``directory`` not changed for ``max_age``
    seconds; returns the names removed.  Anything it cannot read or delete is left
    alone: this is housekeeping, never a reason to fail."""
    limit = (time.time() if now is None else now) - max_age
    removed = []
    try:
        entries = os.scandir(os.fspath(directory))
    except OSError:
        return removed
    with entries:
        for entry in entries:
            if not is_temp_name(entry.name, database_name):
                continue
            try:
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(info.st_mode) and info.st_mtime < limit:
                    os.unlink(entry.path)
                    removed.append(entry.name)
            except OSError:
                continue
    return removed


def database_file(db: peewee.Database) -> Optional[str]:
    """The file SQLite opens for ``db`` (a ``file:`` URI decoded), or None: not SQLite,
    or no file (``:memory:``, an empty name, ``mode=memory``)."""
    from ..db._dialect import dialect_of

    if not dialect_of(db).has_file:
        return None
    return sqlite_file_name(str(db.database or ""))


def sqlite_file_name(name: str) -> Optional[str]:
    """The file SQLite opens for the name given to ``sqlite3.connect`` (URI filenames
    are on in the SQLite builds Python ships with), or None for a database that lives
    in memory or in a temporary file."""
    if name in ("", ":memory:"):
        return None
    if not name.startswith("file:"):
        return name
    from urllib.parse import parse_qs, unquote

    rest, _, query = name[len("file:"):].partition("?")
    rest = rest.split("#", 1)[0]
    if rest.startswith("//"):  # file://host/path: only an empty host or localhost
        host, _, path = rest[2:].partition("/")
        rest = "/" + path
    path = unquote(rest)
    if path in ("", ":memory:") or "memory" in parse_qs(query).get("mode", []):
        return None
    return path


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a regular file"


def check_output(dest: PathLike, *, database: Optional[peewee.Database] = None,
                 what: str = "the output") -> None:
    """Raise ``PeestoreError`` unless ``dest`` may be written (replaced) as ``what``.

    ``dest`` may not exist yet, or be a regular file (a symbolic link counts as
    what it points to).  It may not be the live database (``database``, else
    the connected one) or one of its ``-wal``, ``-shm``, ``-journal`` files.
    """
    path = os.fspath(dest)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise PeestoreError(f"cannot write {what} to {path}: {exc.strerror or exc}") from None
    if info is not None and not stat.S_ISREG(info.st_mode):
        if stat.S_ISDIR(info.st_mode):
            raise PeestoreError(f"{path} is a folder; give {what} a file name in it")
        raise PeestoreError(f"{path} is {_kind(info.st_mode)}, not a regular file; "
                            f"refusing to replace it with {what}")
    live = _live_file(database)
    if live is None:
        return
    target = os.path.realpath(path)
    for suffix in ("",) + _SQLITE_SIDE_FILES:
        candidate = live + suffix
        same = target == os.path.realpath(candidate)
        if not same and info is not None:
            try:
                same = os.path.samefile(path, candidate)
            except OSError:
                same = False
        if same:
            which = "the live database" if not suffix else f"the live database's {suffix[1:]} file"
            raise PeestoreError(f"{path} is {which} ({os.path.abspath(live)}); write {what} "
                                f"to another file")


def _live_file(database: Optional[peewee.Database]) -> Optional[str]:
    if database is None:
        from ..db._connect import database as proxy

        database = proxy.obj
        if database is None:
            return None
    return database_file(database)


def check_input(src: PathLike, what: str = "the input") -> None:
    """Raise ``PeestoreError`` unless ``src`` is an existing regular file (or a link to one)."""
    path = os.fspath(src)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise PeestoreError(f"no file {path} to read {what} from") from None
    except OSError as exc:
        raise PeestoreError(f"cannot read {what} from {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise PeestoreError(f"{path} is {_kind(info.st_mode)}, not a regular file; give "
                            f"{what} as a file")
