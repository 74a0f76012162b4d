"""``BaseAuditedModel``: a peewee model whose writes are audited and hooked.

Every write method is a ``peestore.audit._write.write`` call: the method says
how to load the row, what SQL to run and what changed; ``write`` runs that in
one transaction with the hooks, the audit entry and the change listeners.
"""
from __future__ import annotations

import peewee

from .. import _compat
from ..audit._actor import current_actor, current_reason
from ..audit._log import AuditLog, utcnow
from ..audit._write import write, write_transaction
from ..db._connect import database, get_database
from ..errors import ConfigurationError, PeestoreError
from ._insert import insert_row
from ._query import SoftDeleteQuery
from ._stored import store_values
from ._values import from_json_value, json_safe, row_values

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

    from ..audit._write import Written
    from ._bulk import AuditedDelete, AuditedInsert, AuditedSoftDelete, AuditedUpdate


__all__ = ["BaseAuditedModel", "AuditedModelBase"]


class AuditedModelBase(peewee.ModelBase):
    """Metaclass: reads ``Meta.component`` and ``Meta.audited``, finds soft delete."""

    def __new__(mcs, name, bases, attrs, **kwargs):
        own_meta = attrs.get("Meta")
        component = getattr(own_meta, "component", None) if own_meta is not None else None
        cls = super().__new__(mcs, name, bases, attrs, **kwargs)
        meta = cls._meta
        meta.component = component or meta.table_name
        meta.audited = bool(getattr(meta, "audited", True))
        meta.require_reason = bool(getattr(meta, "require_reason", False))
        meta.soft_delete = "deleted_at" in meta.fields
        if bases and bases[0] is not peewee.Model and name != "BaseAuditedModel":
            if meta.primary_key is False or _compat.composite_key(cls):
                raise ConfigurationError(
                    "%s: audited models need a single-column primary key" % name)
        return cls


class BaseAuditedModel(peewee.Model, metaclass=AuditedModelBase):
    """Subclass this: every write is atomic with its audit entry and its hooks."""

    class Meta:
        database = database

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        loaded = _compat.LOADED in kwargs
        super().__init__(*args, **kwargs)
        # The row as read from the database: the "before" of the next write.
        self._ps_loaded = self.__data__.copy() if loaded else None

    # -- reads -----------------------------------------------------------

    @classmethod
    def select(cls, *fields: Any) -> SoftDeleteQuery:
        """A ``SoftDeleteQuery``: soft-deleted rows are hidden unless asked for."""
        is_default = not fields
        if not fields:
            fields = cls._meta.sorted_fields
        return SoftDeleteQuery(cls, fields, is_default=is_default)

    @classmethod
    def get_by_id(cls, pk: Any, include_deleted: bool = False) -> BaseAuditedModel:
        """The row with primary key ``pk``; soft-deleted rows only with ``include_deleted``."""
        query = cls.select()
        if include_deleted:
            query = query.with_deleted()
        return query.where(cls._meta.primary_key == pk).get()

    # -- bulk queries -----------------------------------------------------

    @classmethod
    def update(cls, __data: Optional[Dict] = None, **update: Any) -> AuditedUpdate:
        """An UPDATE query; executing it writes one ``update`` entry per affected row."""
        # The bulk queries load on first use: an app that never runs one
        # does not hold their code.
        from ._bulk import AuditedUpdate

        return AuditedUpdate(cls, _compat.normalize_data(cls, __data, update))

    @classmethod
    def insert(cls, __data: Optional[Dict] = None, **insert: Any) -> AuditedInsert:
        """An INSERT query; executing it writes a ``create`` entry."""
        from ._bulk import AuditedInsert

        return AuditedInsert(cls, _compat.normalize_data(cls, __data, insert))

    @classmethod
    def insert_many(cls, rows: Iterable[Any], fields: Optional[List] = None
                    ) -> AuditedInsert:
        """A multi-row INSERT; executing it writes one ``create`` entry per row."""
        from ._bulk import AuditedInsert

        return AuditedInsert(cls, insert=list(rows), columns=fields)

    @classmethod
    def delete(cls, permanently: bool = False
               ) -> Union[AuditedDelete, AuditedSoftDelete]:
        """A DELETE query; on a soft-delete model it soft-deletes unless ``permanently``."""
        from ._bulk import AuditedDelete, AuditedSoftDelete

        if cls._meta.soft_delete and not permanently:
            return AuditedSoftDelete(cls)
        return AuditedDelete(cls)

    @classmethod
    def insert_from(cls, query: Any, fields: List[Any]) -> AuditedInsert:
        """``INSERT ... SELECT``: executing it writes one ``create`` entry per row
        (the rows are selected, then inserted as ``insert_many`` inserts them)."""
        from ._bulk import AuditedInsert

        columns = [getattr(cls, field) if isinstance(field, str) else field
                   for field in fields]
        return AuditedInsert(cls, insert=query, columns=columns)

    @classmethod
    def truncate_table(cls, **options: Any) -> None:
        """Refused on an audited model (its rows would go without audit entries);
        ``Meta.audited = False`` models truncate as in peewee."""
        if cls._meta.audited:
            raise PeestoreError(
                "truncate_table() on audited model %s would delete its rows without audit "
                "entries; use %s.delete(permanently=True).execute() (one delete entry per "
                "row)" % (cls.__name__, cls.__name__))
        super().truncate_table(**options)

    # -- helpers ----------------------------------------------------------

    def to_dict(self, only: Optional[Iterable[str]] = None) -> Dict[str, Any]:
        """The row as a JSON-safe dict (ISO 8601 datetimes, decimals as strings...).

        Every field is present (``None`` when unset); ``only`` picks field names.
        """
        names = _compat.field_names(type(self))
        if only is not None:
            wanted = set(only)
            names = [name for name in names if name in wanted]
        return json_safe(self.__data__, names)

    def _record_id(self) -> str:
        return str(self.get_id())

    def _stored_row(self) -> Optional[Dict[str, Any]]:
        """The row as it is in the database now (field name -> value), or None."""
        cls = type(self)
        names = _compat.field_names(cls)
        snapshot = self._ps_loaded
        if snapshot is not None and all(n in snapshot for n in names):
            return snapshot
        if self.get_id() is None:
            return None
        return (peewee.ModelSelect(cls, cls._meta.sorted_fields)
                .where(_compat.pk_condition(self)).dicts().first())

    def _mark_saved(self) -> None:
        self._ps_loaded = self.__data__.copy()

    # -- writes -----------------------------------------------------------

    def save(self, force_insert: bool = False, only: Any = None, *,
             actor: Optional[str] = None, reason: Optional[str] = None) -> Union[int, bool]:
        """Insert or update the row, with hooks and an audit entry, atomically."""
        written = self._save(force_insert, only, actor, reason)
        return written if written is False else written.result

    def _save(self, force_insert: bool = False, only: Any = None,
              actor: Optional[str] = None, reason: Optional[str] = None
              ) -> Union[Written, bool]:
        """``save``, returning the whole ``Written`` (False: nothing to save)."""
        # Not peewee's save() wrapped: that one renders a new INSERT or UPDATE
        # query per call, which costs more than running it on SQLite; the field
        # selection below is the same as peewee's.
        data = self.__data__
        dirty = _compat.dirty_names(self)
        fields = data.copy()
        if only is not None:
            fields = _compat.prune_fields(self, fields, only)
        elif self._meta.only_save_dirty and not force_insert:
            fields = _compat.prune_fields(self, fields, self.dirty_fields)
            if not fields:
                dirty.clear()
                return False
        cls = type(self)
        saved: List[str] = []
        if force_insert or self.get_id() is None:
            pk_name = self._meta.primary_key.name
            key = data.get(pk_name)
            try:
                written = write(cls, "create", lambda _: self._insert(fields, only, saved),
                                instance=self, actor=actor, reason=reason)
            except BaseException:
                # Rolled back: no key from the database stays on the instance.
                data[pk_name] = key
                raise
        else:
            written = write(cls, "update",
                            lambda before: self._update(before, fields, only, saved),
                            instance=self, load=self._stored_row, actor=actor,
                            reason=reason)
        dirty.difference_update(saved)
        self._ps_loaded = data.copy()
        return written

    def _insert(self, fields: Dict[str, Any], only: Any, saved: List[str]
                ) -> Tuple[int, list]:
        """INSERT the row (after the before-hooks); the change it made.  The names of
        the fields written go into ``saved``."""
        meta = self._meta
        pk_field = meta.primary_key
        fields = self._fields_to_write(fields, only)
        # Sent, audited and kept as the columns will give them back.
        expression = store_values(type(self), get_database(meta.database), fields)
        self.__data__.update(fields)
        no_key = self.__data__.get(pk_field.name) is None
        auto = _compat.auto_increment(type(self))
        if auto and no_key:
            fields.pop(pk_field.name, None)
        new_pk = insert_row(type(self), fields)
        if new_pk is not None and (auto or no_key):
            setattr(self, pk_field.name, new_pk)
            # The key the database gave is not a change the caller made.
            saved.append(pk_field.name)
        saved.extend(fields)
        if expression:
            self._read_back(fields)
        return 1, [(self._record_id(), None, self.to_dict())]

    def _update(self, before: Dict[str, Any], fields: Dict[str, Any], only: Any,
                saved: List[str]) -> Tuple[int, list]:
        """UPDATE the row with what the before-hooks left; the change it made."""
        fields = self._fields_to_write(fields, only)
        fields.pop(self._meta.primary_key.name, None)
        if not fields:
            raise ValueError("no data to save!")
        saved.extend(fields)
        return self._update_row(before, fields)

    def _update_row(self, before: Dict[str, Any], fields: Dict[str, Any]
                    ) -> Tuple[int, list]:
        cls = type(self)
        # Sent, audited and kept as the columns will give them back.
        expression = store_values(cls, get_database(cls._meta.database), fields)
        self.__data__.update(fields)
        rows = (peewee.ModelUpdate(cls, _compat.normalize_data(cls, None, fields))
                .where(_compat.pk_condition(self)).execute())
        if not rows:
            return 0, []
        after = dict(before)
        after.update(fields)
        if expression:
            after.update(self._read_back(fields))
        return rows, [(self._record_id(), row_values(cls, before), row_values(cls, after))]

    def _read_back(self, fields: Dict[str, Any]) -> Dict[str, Any]:
        """After a write with SQL expressions as values (``price + 1``): what the
        database made of ``fields``, read back onto the instance."""
        cls = type(self)
        row = (peewee.ModelSelect(cls, cls._meta.sorted_fields)
               .where(_compat.pk_condition(self)).dicts().first()) or {}
        values = {name: row[name] for name in fields if name in row}
        self.__data__.update(values)
        return values

    def _fields_to_write(self, fields: Dict[str, Any], only: Any) -> Dict[str, Any]:
        # Before-hooks may change the instance; write what they left: the fields
        # meant before, and any the hooks set.
        data = self.__data__
        if only is not None:
            out = _compat.prune_fields(self, data, only)
        else:
            dirty = _compat.dirty_names(self)
            out = {k: v for k, v in data.items() if k in fields or k in dirty}
        if _compat.has_foreign_keys(type(self)):
            _compat.populate_relations(self, out)
        return out

    def delete_instance(self, recursive: bool = False, delete_nullable: bool = False, *,
                        permanently: bool = False, actor: Optional[str] = None,
                        reason: Optional[str] = None) -> int:
        """Delete the row: soft on a soft-delete model unless ``permanently``."""
        return self._delete(recursive, delete_nullable, permanently, actor, reason).result

    def _delete(self, recursive: bool = False, delete_nullable: bool = False,
                permanently: bool = False, actor: Optional[str] = None,
                reason: Optional[str] = None) -> Written:
        cls = type(self)
        if cls._meta.soft_delete and not permanently:
            data = self.__data__
            deleted_at = data.get("deleted_at")
            try:
                written = write(cls, "soft_delete", self._soft_delete, instance=self,
                                load=self._live_row, actor=actor, reason=reason)
            except BaseException:
                data["deleted_at"] = deleted_at  # rolled back: not deleted after all
                raise
            if written.changes:
                _compat.dirty_names(self).discard("deleted_at")
                self._mark_saved()
            return written

        def run(before: Dict[str, Any]) -> Tuple[int, list]:
            if recursive:
                self._delete_dependents(delete_nullable, actor, reason)
            if cls._meta.backrefs:
                from ._cascade import cascade

                cascade(cls, [before], actor, reason)
            rows = peewee.ModelDelete(cls).where(_compat.pk_condition(self)).execute()
            return rows, [(self._record_id(), row_values(cls, before), None)] if rows else []

        written = write(cls, "delete", run, instance=self, load=self._stored_row, actor=actor,
                        reason=reason)
        if written.changes:
            self._ps_loaded = None
        return written

    def _live_row(self) -> Optional[Dict[str, Any]]:
        """The stored row if it is not soft-deleted, else None (nothing to delete)."""
        row = self._stored_row()
        return row if row is not None and row.get("deleted_at") is None else None

    def _soft_delete(self, before: Dict[str, Any]) -> Tuple[int, list]:
        now = utcnow()
        self.deleted_at = now
        return self._update_row(before, {"deleted_at": now})

    def _delete_dependents(self, delete_nullable: bool, actor: Optional[str],
                           reason: Optional[str]) -> None:
        # Through the models' own bulk queries, so dependents are audited too,
        # blamed on the delete's actor for its reason.
        actor, reason = current_actor(actor), current_reason(reason)
        for query, fk in self.dependencies(exclude_null_children=not delete_nullable):
            audited = issubclass(fk.model, BaseAuditedModel)
            if fk.null and not delete_nullable:
                statement = fk.model.update(**{fk.name: None})
            elif audited:
                statement = fk.model.delete(permanently=True)
            else:
                statement = fk.model.delete()
            statement = statement.where(query)
            if audited:
                statement = statement.actor(actor, reason)
            statement.execute()

    def restore(self, *, actor: Optional[str] = None, reason: Optional[str] = None) -> bool:
        """Un-delete a soft-deleted row; ``False`` when it was not deleted."""
        return bool(self._restore(actor, reason=reason).changes)

    def _restore(self, actor: Optional[str] = None, state: Optional[Dict[str, Any]] = None,
                 reason: Optional[str] = None) -> Written:
        """Un-delete the row, setting ``state`` (field -> value) too: one ``restore``.

        The before-hooks (``before_update``) see the instance as it will be
        stored: ``deleted_at`` cleared, ``state`` set.
        """
        cls = type(self)
        if not cls._meta.soft_delete:
            raise TypeError("%s has no deleted_at field, so it cannot be restored; "
                            "add deleted_at = DateTimeField(null=True) for soft delete"
                            % cls.__name__)
        values = dict(state or {}, deleted_at=None)

        def load() -> Optional[Dict[str, Any]]:
            row = self._stored_row()
            if row is None or row.get("deleted_at") is None:
                return None  # not deleted: nothing to restore
            for name, value in values.items():
                setattr(self, name, value)
            return row

        def run(before: Dict[str, Any]) -> Tuple[int, list]:
            data = self.__data__
            return self._update_row(before, {name: data[name] for name in values})

        data = self.__data__
        kept = {name: data.get(name) for name in values}
        try:
            written = write(cls, "restore", run, instance=self, load=load, actor=actor,
                            reason=reason)
        except BaseException:
            data.update(kept)  # rolled back: the instance is as it was
            raise
        if written.changes:
            _compat.dirty_names(self).difference_update(values)
            self._mark_saved()
        return written

    @classmethod
    def create_many(cls, rows: Iterable[Union[Dict[str, Any], BaseAuditedModel]], *,
                    actor: Optional[str] = None, reason: Optional[str] = None
                    ) -> List[BaseAuditedModel]:
        """Insert every row (dicts or instances) in one transaction; returns the instances."""
        saved = []
        with write_transaction(cls._meta.database):
            for row in rows:
                instance = row if isinstance(row, cls) else cls(**row)
                instance.save(force_insert=True, actor=actor, reason=reason)
                saved.append(instance)
        return saved

    @classmethod
    def delete_many(cls, ids: Iterable[Any], permanently: bool = False, *,
                    actor: Optional[str] = None, reason: Optional[str] = None) -> int:
        """Delete the rows with these primary keys in one transaction; returns how many."""
        ids = list(ids)
        pk = cls._meta.primary_key
        count = 0
        with write_transaction(cls._meta.database):
            for start in range(0, len(ids), 500):
                query = cls.select().where(pk.in_(ids[start:start + 500]))
                if permanently:
                    query = query.with_deleted()
                for instance in list(query):
                    count += instance.delete_instance(permanently=permanently, actor=actor,
                                                      reason=reason)
        return count

    # -- history ---------------------------------------------------------

    def history(self) -> List[AuditLog]:
        """This record's audit entries, newest first."""
        meta = type(self)._meta
        return list(AuditLog.select()
                    .where((AuditLog.component == meta.component) &
                           (AuditLog.record_id == self._record_id()))
                    .order_by(AuditLog.id.desc()))

    def revert_to(self, audit_id: int, *, actor: Optional[str] = None,
                  reason: Optional[str] = None) -> BaseAuditedModel:
        """Set the record back to the ``after`` state of one of its own audit entries."""
        self._revert(audit_id, actor, reason)
        return self

    def _revert(self, audit_id: int, actor: Optional[str] = None,
                reason: Optional[str] = None) -> Union[Written, bool]:
        """``revert_to``, returning what the write did: a ``create`` when the row is
        gone, a ``restore`` when it must be un-deleted, else an ``update``."""
        cls = type(self)
        meta = cls._meta
        entry = AuditLog.get_or_none(AuditLog.id == audit_id)
        if entry is None or entry.component != meta.component or \
                entry.record_id != self._record_id():
            raise ValueError("audit entry %r is not an entry of %s %s"
                             % (audit_id, meta.component, self._record_id()))
        if entry.after is None:
            raise ValueError("audit entry %r records a delete; it has no state to revert to"
                             % (audit_id,))
        state = {}
        for name, value in entry.after.items():
            field = meta.fields.get(name)
            if field is not None and field is not meta.primary_key:
                state[name] = from_json_value(field, value)
        with write_transaction(meta.database):
            current = self._stored_row()
            if current is None:
                for name, value in state.items():
                    setattr(self, name, value)
                return self._save(force_insert=True, actor=actor, reason=reason)
            if meta.soft_delete and current.get("deleted_at") is not None \
                    and state.get("deleted_at") is None:
                self._ps_loaded = current
                return self._restore(actor, state, reason)
            self._ps_loaded = current
            for name, value in state.items():
                setattr(self, name, value)
            return self._save(actor=actor, reason=reason)

