"""SQLite connections that do not trust the schema of the file they open.

A database file carries SQL that SQLite runs by itself: triggers, views,
CHECK constraints, defaults, generated columns, index expressions.  With
``trusted_schema=OFF`` that SQL may call only the functions SQLite marks
innocuous (not the application's own functions, not ``load_extension`` or
``fts3_tokenizer``) and use no virtual table that is not marked safe.
Defensive mode (``SQLITE_DBCONFIG_DEFENSIVE``, which Python exposes from
3.12 as ``Connection.setconfig``) also refuses the statements that can
corrupt a file on purpose: ``PRAGMA writable_schema=ON``,
``journal_mode=OFF``, writes to shadow tables and to ``sqlite_dbpage``.

Every SQLite connection peestore opens is a :class:`HardenedConnection`
(the ``factory`` of ``sqlite3.connect``), so both settings are in force
before any statement runs, and ``trusted_schema`` cannot be turned back on
through ``pragmas``.
"""
from __future__ import annotations

import sqlite3

from ..errors import ConfigurationError

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Dict, Optional

__all__ = ["HardenedConnection", "harden", "hardened_factory", "open_sqlite",
           "check_pragmas", "limit_statements", "DEFENSIVE_AVAILABLE"]

# Both names exist from Python 3.12; looked up, not imported, for 3.9.
_DEFENSIVE = getattr(sqlite3, "SQLITE_DBCONFIG_DEFENSIVE", None)
#: Whether this Python can switch SQLite's defensive mode on (3.12+).
DEFENSIVE_AVAILABLE = _DEFENSIVE is not None and hasattr(sqlite3.Connection, "setconfig")

_OFF = frozenset(("0", "off", "false", "no"))
# Python 3.11+ (Connection.setlimit); looked up, not imported, for 3.9.
_SQL_LENGTH = getattr(sqlite3, "SQLITE_LIMIT_SQL_LENGTH", None)


def harden(conn: sqlite3.Connection) -> None:
    """Turn ``trusted_schema`` off (and defensive mode on, where available) on ``conn``."""
    conn.execute("PRAGMA trusted_schema=OFF")
    if DEFENSIVE_AVAILABLE:
        conn.setconfig(_DEFENSIVE, True)


class HardenedConnection(sqlite3.Connection):
    """A ``sqlite3.Connection`` that is hardened (see :func:`harden`) as it opens."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        harden(self)


def hardened_factory(factory: Optional[type] = None) -> type:
    """A connection class for ``sqlite3.connect(factory=...)``: ``factory`` (a
    ``sqlite3.Connection`` subclass, or None), hardened as it opens."""
    if factory is None or factory is sqlite3.Connection:
        return HardenedConnection
    if issubclass(factory, HardenedConnection):
        return factory
    return type("Hardened" + factory.__name__, (HardenedConnection, factory), {})


def open_sqlite(path: str, **kwargs: Any) -> sqlite3.Connection:
    """``sqlite3.connect(path, **kwargs)``, hardened before its first statement."""
    return sqlite3.connect(path, factory=HardenedConnection, **kwargs)


def limit_statements(conn: sqlite3.Connection, longest: int) -> None:
    """Make SQLite refuse, on ``conn``, any statement longer than ``longest`` bytes,
    those of the schema it loads included (where Python can set the limit: 3.11+).

    SQLite's parser takes many times a statement's length in memory; restore
    bounds the schema of a backup itself before SQLite reads it, and this is
    a second fence that holds whatever the file's schema table says.
    """
    if _SQL_LENGTH is not None and hasattr(conn, "setlimit"):
        conn.setlimit(_SQL_LENGTH, longest)


def check_pragmas(pragmas: Optional[Dict[str, Any]]) -> None:
    """Refuse pragmas that would trust a file's schema again (``trusted_schema=1``)."""
    for name, value in (pragmas or {}).items():
        if str(name).strip().lower() != "trusted_schema":
            continue
        if str(value).strip().lower() in _OFF:
            continue
        raise ConfigurationError(
            "trusted_schema=%r: peestore keeps trusted_schema OFF on every SQLite connection "
            "(a database file's triggers, views and defaults must not call the application's "
            "functions); leave it out of pragmas" % (value,))
