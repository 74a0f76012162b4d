"""Audited bulk queries: ``Model.update()``, ``delete()``, ``insert()``, ``insert_many()``.

peewee's signals do not fire for bulk queries, so audit libraries usually let
them through unrecorded.  Here each one is one ``write``: it reads the
affected rows' before-state in one statement (locking them where the
database can), runs the statement restricted to exactly those rows, and
writes one audit entry per row.
"""
from __future__ import annotations

import functools
import operator

import peewee

from .. import _compat
from ..audit._listeners import listening
from ..audit._log import utcnow
from ..audit._write import write
from ..db._connect import get_database
from ..db._dialect import dialect_of
from ..errors import PeestoreError
from ._stored import store_values
from ._values import row_values

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Dict, Iterator, List, Optional, Tuple

__all__ = ["AuditedUpdate", "AuditedSoftDelete", "AuditedDelete", "AuditedInsert"]

# Primary keys per statement: well under SQLite's 32766 bound parameters.
CHUNK = 5000


def _needs_audit(model: type) -> bool:
    return model._meta.audited or listening()


def _cascades(model: type) -> bool:
    # Audited models' rows that the database would delete or null with these.
    from ._cascade import cascades

    return bool(cascades(model))


def _chunks(items: List[Any], size: int = CHUNK) -> Iterator[List[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _read_rows(model: type, where: Any, db: peewee.Database, order_by: Any = (),
               limit: Optional[int] = None, offset: Optional[int] = None
               ) -> List[Dict[str, Any]]:
    """The rows matching ``where`` (in ``order_by``, ``limit``/``offset`` of them), all
    fields, as dicts, in one statement, locked for this transaction where the
    database can."""
    query = peewee.ModelSelect(model, model._meta.sorted_fields)
    if where is not None:
        query = query.where(where)
    if order_by:
        query = query.order_by(*order_by)
    if limit is not None or offset is not None:
        query = query.limit(limit).offset(offset)
    if dialect_of(db).locks_rows(db):
        query = query.for_update()
    return list(query.dicts().execute(db))


def _rows_by_pk(model: type, pks: List[Any], db: peewee.Database) -> Dict[Any, Dict]:
    pk = model._meta.primary_key
    found = {}
    for chunk in _chunks(pks):
        query = peewee.ModelSelect(model, model._meta.sorted_fields).where(pk.in_(chunk))
        for row in query.dicts().execute(db):
            found[row[pk.name]] = row
    return found


class _AuditedWrite(_compat.ExecuteHook):
    """Shared by the audited bulk queries: the actor and the restricted statement."""

    _actor: Optional[str] = None
    _reason: Optional[str] = None

    @_compat.chainable
    def actor(self, name: str, reason: Optional[str] = None) -> None:
        """Blame this query's audit entries on ``name`` (for ``reason``)."""
        self._actor = name
        if reason is not None:
            self._reason = reason

    @_compat.chainable
    def reason(self, text: str) -> None:
        """Record ``text`` as the reason in this query's audit entries."""
        self._reason = text

    def _read_rows(self, db: peewee.Database) -> List[Dict[str, Any]]:
        """The rows this statement changes, as ``_read_rows`` reads them; with its
        ``order_by``/``limit``/``offset``, exactly the rows they pick."""
        return _read_rows(self.model, _compat.query_where(self), db,
                          *_compat.query_ordering(self))

    def _run_on(self, pks: List[Any], db: peewee.Database) -> int:
        """Run this statement restricted to the rows with primary keys ``pks``, in chunks.

        The keys are the rows its ``order_by``/``limit`` picked when they were
        read: the statement runs without them (PostgreSQL and SQLite have no
        UPDATE ... LIMIT; a LIMIT on a chunk would pick again).
        """
        pk = self.model._meta.primary_key
        where = _compat.query_where(self)
        count = 0
        for chunk in _chunks(pks):
            clone = self.clone()
            _compat.set_query_ordering(clone, (), None, None)
            _compat.set_query_where(clone, pk.in_(chunk) if where is None
                                    else where & pk.in_(chunk))
            count += clone.run_plain(db)
        return count


class AuditedUpdate(_AuditedWrite, peewee.ModelUpdate):
    """``Model.update(...)``: one ``update`` entry per affected row."""

    _operation = "update"

    def run_audited(self, database: peewee.Database) -> int:
        model = self.model
        if not _needs_audit(model):
            return self.run_plain(database)
        db = get_database(database)
        self._store_values(db)

        def run(_: None) -> Tuple[int, list]:
            pk_name = model._meta.primary_key.name
            before = self._read_rows(db)
            if not before:
                return 0, []
            pks = [row[pk_name] for row in before]
            count = self._run_on(pks, db)
            after = self._after_rows(before, pks, db)
            return count, [(str(row[pk_name]), row_values(model, row),
                            row_values(model, after[row[pk_name]]))
                           for row in before if row[pk_name] in after]

        return write(model, self._operation, run, actor=self._actor, reason=self._reason).result

    def _store_values(self, db: peewee.Database) -> None:
        """The values to set, as their columns will give them back (``_stored``)."""
        values = _compat.update_values(self)
        plain = {key.name: value for key, value in values.items()
                 if isinstance(key, peewee.Field) and key.model is self.model}
        if plain:
            store_values(self.model, db, plain)
            fields = self.model._meta.fields
            values = dict(values)
            values.update((fields[name], value) for name, value in plain.items())
            _compat.set_update_values(self, values)

    def _after_rows(self, before: List[Dict], pks: List[Any], db: peewee.Database
                    ) -> Dict[Any, Dict]:
        pk_name = self.model._meta.primary_key.name
        values = {}
        for key, value in _compat.update_values(self).items():
            if isinstance(value, peewee.Node) or not isinstance(key, peewee.Field):
                # An expression (price * 1.1): read what the database made of it.
                return _rows_by_pk(self.model, pks, db)
            values[key.name] = value
        return {row[pk_name]: dict(row, **values) for row in before}


class AuditedSoftDelete(AuditedUpdate):
    """``Model.delete()`` on a soft-delete model: sets ``deleted_at`` on live rows."""

    _operation = "soft_delete"

    def __init__(self, model: type) -> None:
        field = model._meta.fields["deleted_at"]
        super().__init__(model, {field: utcnow()})
        _compat.set_query_where(self, field.is_null())

    @_compat.chainable
    def where(self, *expressions: Any) -> None:
        current = _compat.query_where(self)
        if current is not None:
            expressions = (current,) + expressions
        _compat.set_query_where(self, functools.reduce(operator.and_, expressions))

    def run_audited(self, database: peewee.Database) -> int:
        # The time of the delete, not of building the query.
        _compat.set_update_values(self, {self.model._meta.fields["deleted_at"]: utcnow()})
        return super().run_audited(database)


class AuditedDelete(_AuditedWrite, peewee.ModelDelete):
    """``Model.delete(permanently=True)`` (or on a model without soft delete)."""

    def run_audited(self, database: peewee.Database) -> int:
        model = self.model
        if not _needs_audit(model) and not (model._meta.backrefs and _cascades(model)):
            return self.run_plain(database)
        db = get_database(database)

        def run(_: None) -> Tuple[int, list]:
            pk_name = model._meta.primary_key.name
            before = self._read_rows(db)
            if not before:
                return 0, []
            if model._meta.backrefs:
                from ._cascade import cascade

                cascade(model, before, self._actor, self._reason, db)
            count = self._run_on([row[pk_name] for row in before], db)
            return count, [(str(row[pk_name]), row_values(model, row), None)
                           for row in before]

        return write(model, "delete", run, actor=self._actor, reason=self._reason).result


class AuditedInsert(_AuditedWrite, peewee.ModelInsert):
    """``Model.insert(...)`` and ``insert_many(...)``: one ``create`` entry per row."""

    def run_audited(self, database: peewee.Database) -> Any:
        model = self.model
        if not _needs_audit(model):
            return self.run_plain(database)
        if _compat.on_conflict(self) is not None:
            raise PeestoreError(
                "insert(...).on_conflict() on audited model %s: an upsert's rows cannot be "
                "audited reliably; use Model.get_or_none() and save(), or Meta.audited = False"
                % model.__name__)
        data = _compat.insert_data(self)
        if isinstance(data, peewee.SelectQuery):
            return self._insert_from(data, get_database(database))
        rows = self._normalized_rows()
        if not rows:
            return self.run_plain(database)
        db = get_database(database)
        for row in rows:
            # Sent and audited as the columns will give them back (``_stored``).
            store_values(model, db, row)
        return write(model, "create", lambda _: self._insert_rows(rows, db),
                     actor=self._actor, reason=self._reason).result

    def _insert_from(self, select: peewee.SelectQuery, db: peewee.Database) -> Any:
        """``insert_from(select, fields)``: the selected rows, read in the write's
        transaction, inserted as ``insert_many`` inserts them (one ``create`` each)."""
        model = self.model

        def run(_: None) -> Tuple[Any, list]:
            rows = self._normalized_rows(list(select.tuples().execute(db)))
            if not rows:
                return 0, []
            for row in rows:
                store_values(model, db, row)
            return self._insert_rows(rows, db)

        return write(model, "create", run, actor=self._actor, reason=self._reason).result

    def _normalized_rows(self, data: Any = None) -> List[Dict[str, Any]]:
        """Every row as {field name: value}, defaults filled in as peewee would."""
        meta = self.model._meta
        if data is None:
            data = _compat.insert_data(self)
        if isinstance(data, dict):
            data = [data]
        columns = _compat.insert_columns(self)
        auto = _compat.auto_increment(self.model)
        rows = []
        for item in data:
            if isinstance(item, dict):
                pairs = item.items()
            else:
                if not columns:
                    columns = [f for f in meta.sorted_fields
                               if not (auto and f is meta.primary_key)]
                pairs = zip(columns, item)
            row = {}
            for key, value in pairs:
                field = key if isinstance(key, peewee.Field) else \
                    _compat.field_named(self.model, key)
                row[field.name] = value
            for field in meta.sorted_fields:
                if field.name not in row and field.default is not None:
                    default = field.default
                    row[field.name] = default() if callable(default) else default
            rows.append(row)
        return rows

    def _insert_rows(self, rows: List[Dict[str, Any]], db: peewee.Database
                     ) -> Tuple[Any, list]:
        """Insert ``rows``; returns (what peewee would return, one change per row).

        Each change's ``after`` is the row as the database stored it where the
        database says so (``RETURNING`` every column), so no key is matched to
        its row by position: PostgreSQL does not promise to return the rows of
        a multi-row INSERT in the order of its VALUES.
        """
        model = self.model
        meta = model._meta
        pk_name = meta.primary_key.name
        names = _compat.field_names(model)
        single = isinstance(_compat.insert_data(self), dict)
        if all(row.get(pk_name) is not None for row in rows):
            result = peewee.ModelInsert(model, self._field_rows(rows, single)).execute(db)
            return result, [(str(row[pk_name]), None,
                             row_values(model, {n: row.get(n) for n in names}))
                            for row in rows]
        changes: List[Tuple[str, None, Dict[str, Any]]] = []
        if dialect_of(db).returns_keys(db):
            width = max(1, len(rows[0]))
            # Bound parameters per statement stay under SQLite's and PostgreSQL's limits.
            for chunk in _chunks(rows, max(1, 30000 // width)):
                query = (peewee.ModelInsert(model, self._field_rows(chunk, False))
                         .returning(*meta.sorted_fields).dicts())
                changes.extend((str(stored[pk_name]), None, row_values(model, stored))
                               for stored in query.execute(db))
            keys = [change[2][pk_name] for change in changes]
            if single:
                return keys[0], changes
            # As peewee: PostgreSQL gives every key, SQLite the last row's id.
            return ([(k,) for k in keys] if _compat.returns_by_default(db) else keys[-1]), \
                changes
        # Without RETURNING (MySQL, MariaDB), one statement per row is the portable
        # way to learn every generated key; all of them run in one transaction.
        keys = []
        for row in rows:
            key = peewee.ModelInsert(model, self._field_rows([row], True)).execute(db)
            keys.append(key)
            stored = dict(row)
            stored[pk_name] = key
            changes.append((str(key), None, row_values(model, {n: stored.get(n)
                                                               for n in names})))
        # As peewee: MySQL reports the first row's id.
        return keys[0], changes

    def _field_rows(self, rows: List[Dict[str, Any]], single: bool) -> Any:
        fields = self.model._meta.fields
        out = [{fields[name]: value for name, value in row.items()
                if not (value is None and fields[name] is self.model._meta.primary_key)}
               for row in rows]
        return out[0] if single else out
