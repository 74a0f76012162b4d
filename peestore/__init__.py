"""peestore: audited models, a REST API and safe data tools on peewee + bottle."""
from __future__ import annotations


from .actor import actor, current_actor
from .audit import AuditLog
from .backup import backup
from .db import connect, database
from .errors import (BusyError, ConfigurationError, MigrationError, NotSQLiteError,
                     PeestoreError, RestoreError, TooLargeError, ValidationError)
from .listeners import Change, after_commit, on_restore
from .models import BaseAuditedModel
from .prune import prune_audit
from .rest import RestPlugin, bootstrap
from .restore import restore
from .server import serve
from .softdelete import SoftDeleteQuery

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any

__version__ = "0.1.0"

# The data tools load on first use: a device that only serves the REST API
# never pays the memory of csv, zipfile and the schema introspection.
_LAZY = {"diagram_svg": ".diagram", "export_csv": ".export", "import_csv": ".importer"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError("module 'peestore' has no attribute %r" % name)
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "AuditLog",
    "BaseAuditedModel",
    "BusyError",
    "Change",
    "ConfigurationError",
    "MigrationError",
    "NotSQLiteError",
    "PeestoreError",
    "RestPlugin",
    "RestoreError",
    "SoftDeleteQuery",
    "TooLargeError",
    "ValidationError",
    "actor",
    "after_commit",
    "backup",
    "bootstrap",
    "connect",
    "current_actor",
    "database",
    "diagram_svg",
    "export_csv",
    "import_csv",
    "on_restore",
    "prune_audit",
    "restore",
    "serve",
]
