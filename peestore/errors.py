"""The exception tree: every error peestore raises on purpose is a ``PeestoreError``."""
from __future__ import annotations

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Dict, Optional

__all__ = [
    "PeestoreError",
    "ConfigurationError",
    "ValidationError",
    "MigrationError",
    "RestoreError",
    "NotSQLiteError",
    "BusyError",
    "TooLargeError",
    "DiskFullError",
]


class PeestoreError(Exception):
    """Base class of peestore's own errors; the message says how to fix it."""


class ConfigurationError(PeestoreError):
    """peestore is used before it is set up, or set up with bad arguments."""


class ValidationError(PeestoreError, ValueError):
    """A value or a set of values does not fit the model.

    ``errors`` maps each offending field name to a message.
    """

    def __init__(self, message: str, errors: Optional[Dict[str, str]] = None) -> None:
        super().__init__(message)
        self.errors: Dict[str, str] = dict(errors or {})


class MigrationError(PeestoreError):
    """``connect(migrate=True)`` found changes it will not make automatically.

    ``refused`` lists each change, as text.
    """

    def __init__(self, refused) -> None:
        self.refused = list(refused)
        lines = "\n".join("  - %s" % item for item in self.refused)
        super().__init__(
            "migrate=True only adds tables, nullable or defaulted columns and "
            "indexes; these changes need a hand-written migration "
            "(playhouse.migrate) and nothing was changed:\n%s" % lines)


class RestoreError(PeestoreError):
    """A backup file was rejected by ``restore``; the live database is untouched."""


class NotSQLiteError(PeestoreError):
    """A SQLite-only operation (backup, restore) was asked of another database."""


class BusyError(PeestoreError):
    """The database is busy (a restore found requests in flight that did not end in
    time); nothing was changed and the same call may be tried again.

    ``retry_after`` is a hint, in whole seconds (the REST API's ``Retry-After``).
    """

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooLargeError(PeestoreError):
    """An upload (or a part of one) is over a size limit; nothing was changed.

    The message names the limit and how to raise it.
    """


class DiskFullError(PeestoreError):
    """The disk holding the database (or a backup) is full, or under
    ``connect(min_free_bytes=...)``; nothing was changed.

    Reads go on; writes work again as soon as space is freed.  ``free_bytes``
    is the space left (None when it could not be measured), ``min_free_bytes``
    the limit, ``path`` the folder whose file system is full.
    """

    def __init__(self, message: str, *, free_bytes: Optional[int] = None,
                 min_free_bytes: int = 0, path: Optional[str] = None) -> None:
        super().__init__(message)
        self.free_bytes = free_bytes
        self.min_free_bytes = min_free_bytes
        self.path = path
