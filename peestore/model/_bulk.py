"""Audited bulk queries: ``Model.update()``, ``delete()``, ``insert()``, ``insert_many()``.

peewee's signals do not fire for bulk queries, so audit libraries usually let
them through unrecorded.  Here each one runs in a transaction that reads the
affected rows' before-state in one statement (locking them where the
database can), runs the write restricted to exactly those rows, and writes one
audit entry per row.
"""
from __future__ import annotations

import functools
import operator
import sqlite3

import peewee

from ..audit._log import utcnow
from ..errors import PeestoreError
from ..audit._listeners import listening
from ._values import row_values
from ..audit._write import record_writes, write_transaction

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional

__all__ = ["AuditedUpdate", "AuditedSoftDelete", "AuditedDelete", "AuditedInsert"]

# Primary keys per statement: well under SQLite's 32766 bound parameters.
CHUNK = 5000


def _has_returning(database: peewee.Database) -> bool:
    if isinstance(database, peewee.DatabaseProxy):
        database = database.obj
    if database.returning_clause:
        return True
    return isinstance(database, peewee.SqliteDatabase) and \
        sqlite3.sqlite_version_info >= (3, 35, 0)


def _needs_audit(model: type) -> bool:
    return model._meta.audited or listening()


def _chunks(items: List[Any], size: int = CHUNK):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _read_rows(model: type, where: Any, database: peewee.Database,
               lock: bool = True) -> List[Dict[str, Any]]:
    """The rows matching ``where``, all fields, as dicts, in one statement."""
    query = peewee.ModelSelect(model, model._meta.sorted_fields)
    if where is not None:
        query = query.where(where)
    if lock and database.for_update:
        query = query.for_update()
    return list(query.dicts().execute(database))


def _rows_by_pk(model: type, pks: List[Any], database: peewee.Database) -> Dict[Any, Dict]:
    pk = model._meta.primary_key
    found = {}
    for chunk in _chunks(pks):
        query = peewee.ModelSelect(model, model._meta.sorted_fields).where(pk.in_(chunk))
        for row in query.dicts().execute(database):
            found[row[pk.name]] = row
    return found


class _AuditedWrite:
    """Shared by the audited bulk queries: the actor and the fast path."""

    _actor: Optional[str] = None

    @peewee.Node.copy
    def actor(self, name: str):
        """Blame this query's audit entries on ``name``."""
        self._actor = name

    def _run_on(self, pks: List[Any], database) -> int:
        """Run this write restricted to the rows with primary keys ``pks``, in chunks."""
        pk = self.model._meta.primary_key
        write = peewee.ModelUpdate if isinstance(self, peewee.ModelUpdate) else peewee.ModelDelete
        count = 0
        for chunk in _chunks(pks):
            clone = self.clone()
            clone._where = pk.in_(chunk) if self._where is None else (
                self._where & pk.in_(chunk))
            count += write._execute(clone, database)
        return count


class AuditedUpdate(_AuditedWrite, peewee.ModelUpdate):
    """``Model.update(...)``: one ``update`` entry per affected row."""

    _operation = "update"

    def _execute(self, database):
        model = self.model
        if not _needs_audit(model):
            return super()._execute(database)
        pk = model._meta.primary_key
        with write_transaction(database):
            before = _read_rows(model, self._where, database)
            if not before:
                return 0
            pks = [row[pk.name] for row in before]
            count = self._run_on(pks, database)
            after = self._after_rows(before, pks, database)
            writes = []
            for row in before:
                new = after.get(row[pk.name])
                if new is not None:
                    writes.append((self._operation, str(row[pk.name]),
                                   row_values(model, row), row_values(model, new)))
            record_writes(model, writes, self._actor)
        return count

    def _after_rows(self, before: List[Dict], pks: List[Any], database) -> Dict[Any, Dict]:
        pk = self.model._meta.primary_key
        values = {}
        for key, value in self._update.items():
            if isinstance(value, peewee.Node) or not isinstance(key, peewee.Field):
                # An expression (price * 1.1): read what the database made of it.
                return _rows_by_pk(self.model, pks, database)
            values[key.name] = value
        return {row[pk.name]: dict(row, **values) for row in before}


class AuditedSoftDelete(AuditedUpdate):
    """``Model.delete()`` on a soft-delete model: sets ``deleted_at`` on live rows."""

    _operation = "soft_delete"

    def __init__(self, model: type) -> None:
        field = model._meta.fields["deleted_at"]
        super().__init__(model, {field: utcnow()})
        self._where = field.is_null()

    @peewee.Node.copy
    def where(self, *expressions):
        if self._where is not None:
            expressions = (self._where,) + expressions
        self._where = functools.reduce(operator.and_, expressions)

    def _execute(self, database):
        # The time of the delete, not of building the query.
        field = self.model._meta.fields["deleted_at"]
        self._update = {field: utcnow()}
        return super()._execute(database)


class AuditedDelete(_AuditedWrite, peewee.ModelDelete):
    """``Model.delete(permanently=True)`` (or on a model without soft delete)."""

    def _execute(self, database):
        model = self.model
        if not _needs_audit(model):
            return super()._execute(database)
        pk = model._meta.primary_key
        with write_transaction(database):
            before = _read_rows(model, self._where, database)
            if not before:
                return 0
            count = self._run_on([row[pk.name] for row in before], database)
            record_writes(model, [("delete", str(row[pk.name]), row_values(model, row), None)
                                  for row in before], self._actor)
        return count


class AuditedInsert(_AuditedWrite, peewee.ModelInsert):
    """``Model.insert(...)`` and ``insert_many(...)``: one ``create`` entry per row."""

    def _execute(self, database):
        model = self.model
        if not _needs_audit(model):
            return super()._execute(database)
        if self._on_conflict is not None:
            raise PeestoreError(
                "insert(...).on_conflict() on audited model %s: an upsert's rows cannot be "
                "audited reliably; use Model.get_or_none() and save(), or Meta.audited = False"
                % model.__name__)
        if isinstance(self._insert, peewee.SelectQuery):
            raise PeestoreError(
                "insert_from() on audited model %s is not audited; select the rows and "
                "use insert_many() with them instead" % model.__name__)
        rows = self._normalized_rows()
        if not rows:
            return super()._execute(database)
        meta = model._meta
        pk = meta.primary_key
        with write_transaction(database):
            result, pks = self._insert_rows(rows, database)
            writes = []
            names = meta.sorted_field_names
            for row, key in zip(rows, pks):
                row[pk.name] = key
                full = {name: row.get(name) for name in names}
                writes.append(("create", str(key), None, row_values(model, full)))
            record_writes(model, writes, self._actor)
        return result

    def _normalized_rows(self) -> List[Dict[str, Any]]:
        """Every row as {field name: value}, defaults filled in as peewee would."""
        meta = self.model._meta
        data = self._insert
        if isinstance(data, dict):
            data = [data]
        columns = self._columns
        rows = []
        for item in data:
            if isinstance(item, dict):
                row = {}
                for key, value in item.items():
                    field = key if isinstance(key, peewee.Field) else meta.combined[key]
                    row[field.name] = value
            else:
                if not columns:
                    columns = [f for f in meta.sorted_fields
                               if not (meta.auto_increment and f is meta.primary_key)]
                row = {}
                for key, value in zip(columns, item):
                    field = key if isinstance(key, peewee.Field) else meta.combined[key]
                    row[field.name] = value
            for field in meta.sorted_fields:
                if field.name not in row and field.default is not None:
                    default = field.default
                    row[field.name] = default() if callable(default) else default
            rows.append(row)
        return rows

    def _insert_rows(self, rows: List[Dict[str, Any]], database):
        """Insert ``rows``; return (what peewee would return, each row's primary key)."""
        model = self.model
        pk = model._meta.primary_key
        single = isinstance(self._insert, dict)
        if all(row.get(pk.name) is not None for row in rows):
            query = peewee.ModelInsert(model, self._field_rows(rows, single))
            return query.execute(database), [row[pk.name] for row in rows]
        if _has_returning(database):
            keys = []
            width = max(1, len(rows[0]))
            # Bound parameters per statement stay under SQLite's and PostgreSQL's limits.
            for chunk in _chunks(rows, max(1, 30000 // width)):
                query = peewee.ModelInsert(model, self._field_rows(chunk, False)).returning(pk)
                query._row_type = peewee.ROW.TUPLE
                # RETURNING yields the rows of a multi-row VALUES insert in order.
                keys.extend(r[0] for r in query.execute(database))
            if single:
                return keys[0], keys
            # As peewee: PostgreSQL gives every key, SQLite the last row's id.
            return ([(k,) for k in keys] if database.returning_clause else keys[-1]), keys
        # Without RETURNING (MySQL, MariaDB), one statement per row is the portable
        # way to learn every generated key; all of them run in one transaction.
        keys = [peewee.ModelInsert(model, self._field_rows([row], True)).execute(database)
                for row in rows]
        # As peewee: MySQL reports the first row's id.
        return keys[0], keys

    def _field_rows(self, rows: List[Dict[str, Any]], single: bool):
        meta = self.model._meta
        out = [{meta.fields[name]: value for name, value in row.items()
                if not (value is None and meta.fields[name] is meta.primary_key)}
               for row in rows]
        return out[0] if single else out
