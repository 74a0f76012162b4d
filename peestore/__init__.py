"""peestore: audited models, a REST API and safe data tools on peewee + bottle."""
from .actor import actor, current_actor
from .audit import AuditLog
from .backup import backup
from .db import connect, database
from .diagram import diagram_svg
from .errors import (ConfigurationError, MigrationError, NotSQLiteError, PeestoreError,
                     RestoreError, ValidationError)
from .export import export_csv
from .importer import import_csv
from .listeners import Change, after_commit, on_restore
from .models import BaseAuditedModel
from .prune import prune_audit
from .rest import RestPlugin, bootstrap
from .restore import restore
from .server import serve
from .softdelete import SoftDeleteQuery

__version__ = "0.1.0"

__all__ = [
    "AuditLog",
    "BaseAuditedModel",
    "Change",
    "ConfigurationError",
    "MigrationError",
    "NotSQLiteError",
    "PeestoreError",
    "RestPlugin",
    "RestoreError",
    "SoftDeleteQuery",
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
