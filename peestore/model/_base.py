"""``BaseAuditedModel``: a peewee model whose writes are audited and hooked."""
from __future__ import annotations

import peewee

from .. import signals
from ..audit._log import AuditLog, utcnow
from ..db._connect import database
from ..errors import ConfigurationError
from ._insert import insert_row
from ._query import SoftDeleteQuery
from ._values import from_json_value, json_safe, row_values
from ..audit._write import record_write, write_transaction

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Dict, Iterable, List, Optional, Union
    from ._bulk import AuditedDelete, AuditedInsert, AuditedSoftDelete, AuditedUpdate


__all__ = ["BaseAuditedModel", "AuditedModelBase", "models_by_component"]

_by_component: Dict[str, type] = {}


def models_by_component() -> Dict[str, type]:
    """Every concrete audited model class defined so far, by component name."""
    return dict(_by_component)


class AuditedModelBase(peewee.ModelBase):
    """Metaclass: reads ``Meta.component`` and ``Meta.audited``, finds soft delete."""

    def __new__(mcs, name, bases, attrs, **kwargs):
        own_meta = attrs.get("Meta")
        component = getattr(own_meta, "component", None) if own_meta is not None else None
        cls = super().__new__(mcs, name, bases, attrs, **kwargs)
        meta = cls._meta
        meta.component = component or meta.table_name
        meta.audited = bool(getattr(meta, "audited", True))
        meta.soft_delete = "deleted_at" in meta.fields
        if bases and bases[0] is not peewee.Model and name != "BaseAuditedModel":
            if meta.primary_key is False or meta.composite_key:
                raise ConfigurationError(
                    "%s: audited models need a single-column primary key" % name)
            _by_component[meta.component] = cls
        return cls


class BaseAuditedModel(peewee.Model, metaclass=AuditedModelBase):
    """Subclass this: every write is atomic with its audit entry and its hooks."""

    class Meta:
        database = database

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        loaded = "__no_default__" in kwargs
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

        return AuditedUpdate(cls, cls._normalize_data(__data, update))

    @classmethod
    def insert(cls, __data: Optional[Dict] = None, **insert: Any) -> AuditedInsert:
        """An INSERT query; executing it writes a ``create`` entry."""
        from ._bulk import AuditedInsert

        return AuditedInsert(cls, cls._normalize_data(__data, insert))

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

    # -- helpers ----------------------------------------------------------

    def to_dict(self, only: Optional[Iterable[str]] = None) -> Dict[str, Any]:
        """The row as a JSON-safe dict (ISO 8601 datetimes, decimals as strings...).

        Every field is present (``None`` when unset); ``only`` picks field names.
        """
        names = self._meta.sorted_field_names
        if only is not None:
            wanted = set(only)
            names = [name for name in names if name in wanted]
        return json_safe(self.__data__, names)

    def _record_id(self) -> str:
        return str(self._pk)

    def _stored_row(self) -> Optional[Dict[str, Any]]:
        """The row as it is in the database now (field name -> value), or None."""
        cls = type(self)
        names = cls._meta.sorted_field_names
        snapshot = self._ps_loaded
        if snapshot is not None and all(n in snapshot for n in names):
            return snapshot
        if self._pk is None:
            return None
        row = (peewee.ModelSelect(cls, cls._meta.sorted_fields)
               .where(self._pk_expr()).dicts().first())
        return row

    def _mark_saved(self) -> None:
        self._ps_loaded = self.__data__.copy()

    # -- writes -----------------------------------------------------------

    def save(self, force_insert: bool = False, only: Any = None, *,
             actor: Optional[str] = None) -> Union[int, bool]:
        """Insert or update the row, with hooks and an audit entry, atomically."""
        cls = type(self)
        meta = cls._meta
        pk_field = meta.primary_key
        creating = force_insert or self._pk is None
        field_dict = self.__data__.copy()
        if only is not None:
            field_dict = self._prune_fields(field_dict, only)
        elif meta.only_save_dirty and not force_insert:
            field_dict = self._prune_fields(field_dict, self.dirty_fields)
            if not field_dict:
                self._dirty.clear()
                return False

        with write_transaction(meta.database):
            if creating:
                signals.before_insert.send(self)
                field_dict = self._fields_to_write(field_dict, only)
                # (__data__ holds the key as _pk gives it, without its property.)
                no_key = self.__data__.get(pk_field.name) is None
                if meta.auto_increment and no_key:
                    field_dict.pop(pk_field.name, None)
                new_pk = insert_row(cls, field_dict)
                if new_pk is not None and (meta.auto_increment or no_key):
                    self._pk = new_pk
                    self._dirty.discard(pk_field.name)
                rows = 1
                after = self.to_dict()
                signals.after_insert.send(self)
                self._ps_saved = (after, record_write(cls, "create", self._record_id(),
                                                      None, after, actor))
            else:
                before_row = self._stored_row()
                signals.before_update.send(self)
                field_dict = self._fields_to_write(field_dict, only)
                field_dict.pop(pk_field.name, None)
                if not field_dict:
                    raise ValueError("no data to save!")
                rows = self._update_row(before_row, field_dict, "update", actor)
            self._dirty -= set(field_dict)
        self._mark_saved()
        return rows

    def _update_row(self, before_row: Optional[Dict[str, Any]], field_dict: Dict[str, Any],
                    operation: str, actor: Optional[str]) -> int:
        """UPDATE the row with ``field_dict``, then after-hooks and one audit entry."""
        cls = type(self)
        rows = (peewee.ModelUpdate(cls, cls._normalize_data(None, field_dict))
                .where(self._pk_expr()).execute())
        if rows and before_row is not None:
            signals.after_update.send(self)
            after_row = dict(before_row)
            after_row.update(field_dict)
            after = row_values(cls, after_row)
            self._ps_saved = (after, record_write(cls, operation, self._record_id(),
                                                  row_values(cls, before_row), after, actor))
        return rows

    def _fields_to_write(self, field_dict: Dict[str, Any], only: Any) -> Dict[str, Any]:
        # Before-hooks may change the instance; write what they left: the fields
        # meant before, and any the hooks set.
        if only is not None:
            data = self._prune_fields(self.__data__, only)
        else:
            dirty = self._dirty
            data = {k: v for k, v in self.__data__.items() if k in field_dict or k in dirty}
        if self._meta.refs:
            self._populate_unsaved_relations(data)
        return data

    def delete_instance(self, recursive: bool = False, delete_nullable: bool = False, *,
                        permanently: bool = False, actor: Optional[str] = None) -> int:
        """Delete the row: soft on a soft-delete model unless ``permanently``."""
        cls = type(self)
        meta = cls._meta
        with write_transaction(meta.database):
            before_row = self._stored_row()
            if before_row is None:
                return 0
            if meta.soft_delete and not permanently:
                if before_row.get("deleted_at") is not None:
                    return 0
                signals.before_delete.send(self)
                now = utcnow()
                rows = (peewee.ModelUpdate(cls, {meta.fields["deleted_at"]: now})
                        .where(self._pk_expr()).execute())
                self.__data__["deleted_at"] = now
                self._dirty.discard("deleted_at")
                after_row = dict(before_row, deleted_at=now)
                signals.after_delete.send(self)
                record_write(cls, "soft_delete", self._record_id(), row_values(cls, before_row),
                             row_values(cls, after_row), actor)
                self._mark_saved()
                return rows
            signals.before_delete.send(self)
            if recursive:
                self._delete_dependents(delete_nullable)
            rows = peewee.ModelDelete(cls).where(self._pk_expr()).execute()
            if rows:
                signals.after_delete.send(self)
                record_write(cls, "delete", self._record_id(), row_values(cls, before_row),
                             None, actor)
            self._ps_loaded = None
            return rows

    def _delete_dependents(self, delete_nullable: bool) -> None:
        # Through the models' own bulk queries, so dependents are audited too.
        for query, fk in self.dependencies(exclude_null_children=not delete_nullable):
            if fk.null and not delete_nullable:
                fk.model.update(**{fk.name: None}).where(query).execute()
            elif issubclass(fk.model, BaseAuditedModel):
                fk.model.delete(permanently=True).where(query).execute()
            else:
                fk.model.delete().where(query).execute()

    def restore(self, *, actor: Optional[str] = None) -> bool:
        """Un-delete a soft-deleted row; ``False`` when it was not deleted."""
        cls = type(self)
        meta = cls._meta
        if not meta.soft_delete:
            raise TypeError("%s has no deleted_at field, so it cannot be restored; "
                            "add deleted_at = DateTimeField(null=True) for soft delete"
                            % cls.__name__)
        with write_transaction(meta.database):
            before_row = self._stored_row()
            if before_row is None or before_row.get("deleted_at") is None:
                return False
            signals.before_update.send(self)
            self.__data__["deleted_at"] = None
            self._dirty.discard("deleted_at")
            self._update_row(before_row, {"deleted_at": None}, "restore", actor)
        self._mark_saved()
        return True

    @classmethod
    def create_many(cls, rows: Iterable[Union[Dict[str, Any], BaseAuditedModel]], *,
                    actor: Optional[str] = None) -> List[BaseAuditedModel]:
        """Insert every row (dicts or instances) in one transaction; returns the instances."""
        saved = []
        with write_transaction(cls._meta.database):
            for row in rows:
                instance = row if isinstance(row, cls) else cls(**row)
                instance.save(force_insert=True, actor=actor)
                saved.append(instance)
        return saved

    @classmethod
    def delete_many(cls, ids: Iterable[Any], permanently: bool = False, *,
                    actor: Optional[str] = None) -> int:
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
                    count += instance.delete_instance(permanently=permanently, actor=actor)
        return count

    # -- history ---------------------------------------------------------

    def history(self) -> List[AuditLog]:
        """This record's audit entries, newest first."""
        meta = type(self)._meta
        return list(AuditLog.select()
                    .where((AuditLog.component == meta.component) &
                           (AuditLog.record_id == self._record_id()))
                    .order_by(AuditLog.id.desc()))

    def revert_to(self, audit_id: int, *, actor: Optional[str] = None) -> BaseAuditedModel:
        """Set the record back to the ``after`` state of one of its own audit entries."""
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
                self.save(force_insert=True, actor=actor)
                return self
            undelete = meta.soft_delete and current.get("deleted_at") is not None \
                and state.get("deleted_at") is None
            if not undelete:
                self._ps_loaded = current
                for name, value in state.items():
                    setattr(self, name, value)
                self.save(actor=actor)
                return self
            for name, value in state.items():
                setattr(self, name, value)
            signals.before_update.send(self)
            fields = {k: v for k, v in self.__data__.items() if k in state}
            self._update_row(current, fields, "restore", actor)
            self._dirty -= set(fields)
        self._mark_saved()
        return self
