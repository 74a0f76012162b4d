"""``connect(migrate=True)``: additive schema changes only, all or nothing.

``playhouse.schema_diff`` finds what differs between the models and the
database; new tables, new nullable or defaulted columns and new indexes are
applied with ``playhouse.migrate``, anything else is refused before a single
change is made.
"""
from __future__ import annotations


import peewee

from ..errors import ConfigurationError, MigrationError

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import List

__all__ = ["migrate_models", "plan"]


def _diff(db: peewee.Database, models: List[type]):
    try:
        from playhouse.schema_diff import diff_models
    except ImportError:  # peewee before schema_diff
        raise ConfigurationError("migrate=True needs playhouse.schema_diff: "
                                 "pip install -U peewee") from None
    return diff_models(db, models)


def plan(db: peewee.Database, models: List[type]):
    """Return (diff, refused): the schema diff and the changes migrate will not make."""
    diff = _diff(db, models)
    refused = []
    for field in diff.add_columns:
        if not field.null and field.default is None:
            refused.append("add column %s.%s: NOT NULL without a default (existing rows "
                           "would have no value); give it null=True or a default"
                           % (field.model._meta.table_name, field.column_name))
        elif field.primary_key or isinstance(field, peewee.ForeignKeyField) and not field.null:
            refused.append("add column %s.%s: a key column cannot be added to existing rows"
                           % (field.model._meta.table_name, field.column_name))
    for table, column in diff.drop_columns:
        refused.append("drop column %s.%s: the model no longer has it (drop it by hand "
                       "with playhouse.migrate if you mean it)" % (table, column))
    for index in diff.drop_indexes:
        refused.append("%s: the models no longer declare it" % index.display("drop"))
    return diff, refused


def migrate_models(db: peewee.Database, models: List[type]) -> List[str]:
    """Bring the tables of ``models`` up to date; returns the changes made."""
    from playhouse.migrate import SchemaMigrator

    with db.connection_context() if db.is_closed() else _Nothing():
        diff, refused = plan(db, models)
        if refused:
            raise MigrationError(refused)
        if not diff:
            return []
        migrator = SchemaMigrator.from_database(db)
        done = []
        # SQLite and PostgreSQL roll DDL back; MySQL commits each statement,
        # which is why every refusal is decided before anything runs.
        with db.atomic():
            if diff.create_tables:
                db.create_tables(diff.create_tables, safe=True)
                done.extend("create table %s" % m._meta.table_name for m in diff.create_tables)
            for field in diff.add_columns:
                migrator.add_column(field.model._meta.table_name, field.column_name,
                                    field).run()
                done.append("add column %s.%s" % (field.model._meta.table_name,
                                                  field.column_name))
            # Columns added with index=True bring their index; add only what is left.
            for index in _diff(db, models).add_indexes:
                migrator.add_index(index.table, list(index.columns), index.unique).run()
                done.append(index.display("add"))
        return done


class _Nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
