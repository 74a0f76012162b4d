"""ON DELETE CASCADE and SET NULL, done by peestore so that each row is audited.

A foreign key declared ``on_delete="CASCADE"`` (or ``"SET NULL"``) lets the
database delete (or null) rows of another table when a row is deleted, inside
its own statement: no audit entry would ever say so.  Before an audited hard
delete removes rows, every audited model with such a foreign key to them has
its dependent rows deleted (or its foreign key set to NULL) first, through its
own audited bulk query, in the same transaction and blamed on the same actor
for the same reason; the database's own action then finds nothing left to do.
Those bulk queries cascade in turn.
"""
from __future__ import annotations

import peewee

from .. import _compat
from ..audit._actor import current_actor, current_reason
from ..audit._listeners import listening
from ..db._connect import get_database, registered_models

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Dict, Iterable, List, Optional, Tuple

__all__ = ["cascades", "cascade"]

_ACTIONS = ("CASCADE", "SET NULL")
# Key values per statement: well under SQLite's 32766 bound parameters.
_CHUNK = 5000


def cascades(model: type) -> List[Tuple[peewee.ForeignKeyField, str]]:
    """The foreign keys to ``model`` whose ON DELETE action peestore carries out
    itself (those of audited models), with that action."""
    from ._base import BaseAuditedModel

    found = []
    for fk, dependent in model._meta.backrefs.items():
        action = (fk.on_delete or "").upper()
        if action in _ACTIONS and issubclass(dependent, BaseAuditedModel):
            found.append((fk, action))
    return found


def cascade(model: type, rows: Iterable[Dict[str, Any]], actor: Optional[str],
            reason: Optional[str], database: Optional[peewee.Database] = None) -> None:
    """Before ``rows`` (dicts of field values) of ``model`` are deleted: delete, or
    set to NULL, the rows of audited models that reference them ON DELETE
    CASCADE / SET NULL, audited as ``actor`` for ``reason``."""
    found = cascades(model)
    if not found:
        return
    rows = list(rows)
    actor = current_actor(actor)
    reason = current_reason(reason)
    db = get_database(database or model._meta.database)
    for fk, action in found:
        dependent = fk.model
        if not (dependent._meta.audited or listening() or cascades(dependent)) \
                or not _has_table(dependent, db):
            continue  # nothing to record: the database's own action will do
        target = _compat.target_field(fk).name
        keys = [row[target] for row in rows
                if row.get(target) is not None]
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start:start + _CHUNK]
            if action == "CASCADE":
                query = dependent.delete(permanently=True)
            else:
                query = dependent.update({fk: None})
            query.where(fk.in_(chunk)).actor(actor, reason).execute(db)


def _has_table(model: type, db: peewee.Database) -> bool:
    # A model the app defined but never created (not among connect(models=...)
    # and without a table) has no rows to cascade to.
    if model in registered_models():
        return True
    known = db.__dict__.setdefault("_peestore_tables", set())
    if model in known:
        return True
    if model.table_exists():
        known.add(model)
        return True
    return False
