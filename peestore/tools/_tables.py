"""The live database's tables as the data tools see them: columns, fields, order.

Export and import work on every table in the database, not only on the
models the app registered: a column is converted by its model field when a
registered model (or ``AuditLog``) has it, else by the field that
``playhouse.reflection`` infers from the column type.  A table may be named
by its table name or by its model's component (the name in the REST URLs).
"""
from __future__ import annotations


import peewee
from playhouse.reflection import Introspector

from .. import _compat
from ..audit._log import data_tables

from ..db._connect import open_connection, registered_models  # noqa: F401 (re-exported)
from ..errors import ValidationError

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Sequence

__all__ = ["TableInfo", "describe_tables", "foreign_key_order", "open_connection",
           "models_by_table", "resolve_tables", "names_list"]


class TableInfo:
    """One table: its columns in table order, a field per column, its model if any."""

    def __init__(self, name: str, columns: List[str], fields: Dict[str, peewee.Field],
                 model: Optional[type], primary_key: List[str], parents: List[str]) -> None:
        self.name = name
        self.columns = columns
        self.fields = fields
        self.model = model
        self.primary_key = primary_key
        self.parents = parents  # tables this one's foreign keys point to

    @property
    def component(self) -> str:
        """The audit log's name for this table: its model's component, else the table name."""
        meta = getattr(self.model, "_meta", None)
        return getattr(meta, "component", None) or self.name

    def __repr__(self) -> str:
        return f"TableInfo({self.name!r}, {self.columns!r})"


def models_by_table(models: Optional[Sequence[type]] = None) -> Dict[str, type]:
    """Table name -> model: ``AuditLog``, the registered models, then ``models``."""
    from ..audit._log import AuditLog

    found = {AuditLog._meta.table_name: AuditLog}
    for model in list(registered_models()) + list(models or ()):
        found[model._meta.table_name] = model
    return found


def names_list(names: Sequence[str], most: int = 10) -> str:
    """``names`` joined by commas, at most ``most`` of them, then "and N more"."""
    shown = ", ".join(str(name) for name in names[:most])
    if len(names) > most:
        shown += " and %d more" % (len(names) - most)
    return shown


def resolve_tables(db: peewee.Database, names: Sequence[str],
                   models: Optional[Sequence[type]] = None) -> List[str]:
    """The table named by each of ``names``: a table name, or a model's component.

    A table name wins over a component of the same spelling; a table named
    twice counts once.  Raises ``ValidationError`` with a message that lists
    the tables and the components there are.  Call it with a connection open.
    """
    existing = data_tables(db)
    tables = set(existing)
    components = {}
    for table, model in models_by_table(models).items():
        component = getattr(model._meta, "component", None)
        if component and table in tables:
            components.setdefault(component, table)
    out: List[str] = []
    unknown = []
    for name in names:
        table = name if name in tables else components.get(name)
        if table is None:
            unknown.append(name)
        elif table not in out:
            out.append(table)
    if unknown:
        named = sorted("%s (table %s)" % (c, t) for c, t in components.items() if c != t)
        raise ValidationError("no table or component %s; tables: %s; components: %s" % (
            names_list(unknown), names_list(sorted(existing), 50) or "none",
            names_list(named, 50) or "none known (component names come from the app's "
                                     "models)"), {"tables": "unknown: " + names_list(unknown)})
    return out


def describe_tables(db: peewee.Database, tables: Optional[Sequence[str]] = None,
                    models: Optional[Sequence[type]] = None) -> Dict[str, TableInfo]:
    """Describe ``tables`` (default: every table of ``db``), in the database's table order.

    ``models`` adds to the registered models.  Raises ``KeyError`` naming the
    first requested table that does not exist.  Call it with a connection open.
    """
    existing = data_tables(db)
    names = list(existing) if tables is None else list(tables)
    for name in names:
        if name not in existing:
            raise KeyError(name)
    by_table = models_by_table(models)
    columns = {name: [c.name for c in db.get_columns(name)] for name in names}
    fields: Dict[str, Dict[str, peewee.Field]] = {}
    unmodelled = []
    for name in names:
        model = by_table.get(name)
        by_column = _compat.fields_by_column(model) if model is not None else {}
        fields[name] = {c: by_column[c] for c in columns[name] if c in by_column}
        if len(fields[name]) < len(columns[name]):
            unmodelled.append(name)
    if unmodelled:
        reflected = Introspector.from_database(db).generate_models(table_names=unmodelled)
        inferred = {m._meta.table_name: m for m in reflected.values()}
        for name in unmodelled:
            found = _compat.fields_by_column(inferred[name]) if name in inferred else {}
            for column in columns[name]:
                if column not in fields[name]:
                    fields[name][column] = found.get(column) or peewee.BareField(
                        column_name=column)
    out = {}
    for name in names:
        parents = sorted({fk.dest_table for fk in db.get_foreign_keys(name)})
        out[name] = TableInfo(name, columns[name], fields[name], by_table.get(name),
                              list(db.get_primary_keys(name)), parents)
    return out


def foreign_key_order(infos: Dict[str, TableInfo]) -> List[str]:
    """The tables of ``infos`` with every parent before its children (cycles: by name)."""
    remaining = {name: {p for p in info.parents if p in infos and p != name}
                 for name, info in infos.items()}
    order: List[str] = []
    while remaining:
        ready = sorted(name for name, parents in remaining.items() if not parents)
        if not ready:  # a cycle: take the first by name and go on
            ready = [sorted(remaining)[0]]
        for name in ready:
            del remaining[name]
            order.append(name)
            for parents in remaining.values():
                parents.discard(name)
    return order
