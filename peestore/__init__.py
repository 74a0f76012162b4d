"""peestore: audited models, a REST API and safe data tools on peewee + bottle."""
from __future__ import annotations


from .audit._actor import actor, current_actor
from .audit._log import AuditLog
from .db._connect import connect, database
from .errors import (BusyError, ConfigurationError, DiskFullError, MigrationError,
                     NotSQLiteError, PeestoreError, RestoreError, TooLargeError, ValidationError)
from .audit._listeners import Change, after_commit, on_restore
from .model._base import BaseAuditedModel
from .rest import RestPlugin, bootstrap
from .rest._server import serve
from .model._query import SoftDeleteQuery

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any

__version__ = "0.1.0"

# The data tools load on first use: a device that only serves the REST API
# never pays the memory of csv, zipfile, the schema checks of a restore and the
# schema introspection.
_LAZY = {"backup": ".tools._backup", "backup_rotating": ".tools._rotate",
         "diagram_svg": ".tools._diagram", "export_csv": ".tools._export",
         "import_csv": ".tools._import", "prune_audit": ".audit._prune",
         "restore": ".tools._restore", "verify_audit": ".audit._verify"}


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
    "DiskFullError",
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
    "backup_rotating",
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
    "verify_audit",
]
