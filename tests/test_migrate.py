"""connect(migrate=True): additive changes only, all or nothing."""
import peewee
import pytest

import peestore


def make_models(version):
    """A Machine model as it looks at schema version 1, 2 or a breaking 3."""
    attrs = {"name": peewee.CharField(), "__module__": __name__}
    if version >= 2:
        attrs["serial"] = peewee.CharField(null=True)
        attrs["speed"] = peewee.FloatField(default=1.0)
        attrs["site"] = peewee.CharField(null=True, index=True)
    if version == 3:
        del attrs["name"]  # a dropped column
        attrs["required"] = peewee.IntegerField()  # NOT NULL, no default
    machine = type("Machine", (peestore.BaseAuditedModel,), attrs)
    models = [machine]
    if version >= 2:
        models.append(type("Part", (peestore.BaseAuditedModel,), {
            "machine": peewee.ForeignKeyField(machine), "__module__": __name__}))
    return models


def columns(db, table):
    return {c.name for c in db.get_columns(table)}


def test_additive_changes_applied(connect_db):
    """New tables, nullable/defaulted columns and indexes are added; data stays."""
    v1 = make_models(1)
    db = connect_db(v1)
    v1[0].create(name="m1")
    v2 = make_models(2)
    db = connect_db(v2, migrate=True)
    assert {"serial", "speed", "site"} <= columns(db, "machine")
    assert "part" in db.get_tables()
    assert any(ix.columns == ["site"] for ix in db.get_indexes("machine"))
    machine = v2[0].get()
    assert (machine.name, machine.speed, machine.serial) == ("m1", 1.0, None)
    v2[1].create(machine=machine)
    # A second run has nothing to do.
    connect_db(v2, migrate=True)


def test_breaking_changes_refused_and_nothing_changed(connect_db):
    """A dropped column or a NOT NULL column without default: MigrationError, no change."""
    v1 = make_models(1)
    db = connect_db(v1)
    before = columns(db, "machine")
    with pytest.raises(peestore.MigrationError) as info:
        connect_db(make_models(3), migrate=True)
    message = str(info.value)
    assert "drop column machine.name" in message
    assert "add column machine.required" in message
    assert len(info.value.refused) == 2
    assert columns(db, "machine") == before
    assert "part" not in db.get_tables()
