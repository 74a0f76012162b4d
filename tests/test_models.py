"""Audited writes on BaseAuditedModel."""
import datetime
import decimal
import uuid

import peewee
import pytest

import peestore
from peestore import AuditLog
from peestore.testing import capture_audit
from peestore.model._values import from_json_value

from .models import ALL, Product, Reading, Setting, User


def entries():
    return list(AuditLog.select().order_by(AuditLog.id))


def test_create_writes_one_entry(connect_db):
    """create: one entry, no before, the row after, the pk as text."""
    connect_db(ALL)
    user = User.create(name="Ada", email="ada@x")
    (entry,) = entries()
    assert entry.operation == "create"
    assert entry.component == "users"
    assert entry.record_id == str(user.id)
    assert entry.before is None
    assert entry.after == {"id": user.id, "name": "Ada", "email": "ada@x", "deleted_at": None}
    assert isinstance(entry.timestamp, datetime.datetime)


def test_save_new_and_existing(connect_db):
    """save() on a new row is a create, on a loaded row an update with before/after."""
    connect_db(ALL)
    user = User(name="a")
    user.save()
    loaded = User.get_by_id(user.id)
    loaded.name = "b"
    assert loaded.save() == 1
    create, update = entries()
    assert create.operation == "create"
    assert update.operation == "update"
    assert update.before["name"] == "a"
    assert update.after["name"] == "b"
    assert update.to_dict(with_changed=True)["changed"] == ["name"]


def test_update_before_is_row_as_loaded(connect_db):
    """An instance that was never loaded still gets the stored row as before."""
    connect_db(ALL)
    user = User.create(name="a", email="e")
    User(id=user.id, name="z", email="e").save()
    update = entries()[-1]
    assert update.before["name"] == "a"
    assert update.after["name"] == "z"


def test_update_of_missing_row_writes_nothing(connect_db):
    """Saving an instance whose row is gone changes and audits nothing."""
    connect_db(ALL)
    assert User(id=999, name="ghost").save() == 0
    assert entries() == []


def test_hard_delete(connect_db):
    """delete_instance on a model without deleted_at deletes, with before and no after."""
    connect_db(ALL)
    product = Product.create(name="p", price=2.5)
    assert product.delete_instance() == 1
    assert Product.select().count() == 0
    entry = entries()[-1]
    assert entry.operation == "delete"
    assert entry.before["name"] == "p"
    assert entry.after is None


def test_permanent_delete_of_soft_delete_model(connect_db):
    """permanently=True removes the row even on a soft-delete model."""
    connect_db(ALL)
    user = User.create(name="a")
    user.delete_instance(permanently=True)
    assert User.select().with_deleted().count() == 0
    assert entries()[-1].operation == "delete"


def test_soft_delete_and_restore(connect_db):
    """Soft delete sets deleted_at; restore clears it; each audited once."""
    connect_db(ALL)
    user = User.create(name="a")
    assert user.delete_instance() == 1
    assert user.deleted_at is not None
    stored = User.get_by_id(user.id, include_deleted=True)
    assert stored.deleted_at is not None
    assert user.delete_instance() == 0  # already deleted: nothing more
    assert user.restore() is True
    assert user.restore() is False
    assert User.get_by_id(user.id).deleted_at is None
    ops = [e.operation for e in entries()]
    assert ops == ["create", "soft_delete", "restore"]
    soft = entries()[1]
    assert soft.before["deleted_at"] is None and soft.after["deleted_at"] is not None


def test_soft_delete_time_is_utc(connect_db):
    """deleted_at is now in UTC (naive, as peewee stores datetimes)."""
    connect_db(ALL)
    user = User.create(name="a")
    user.delete_instance()
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    stored = User.get_by_id(user.id, include_deleted=True).deleted_at
    assert abs((now - stored).total_seconds()) < 60


def test_restore_on_model_without_soft_delete(connect_db):
    """restore() on a model with no deleted_at is a TypeError."""
    connect_db(ALL)
    product = Product.create(name="p")
    with pytest.raises(TypeError, match="deleted_at"):
        product.restore()


def test_create_many(connect_db):
    """create_many takes dicts or instances and returns saved instances."""
    connect_db(ALL)
    made = Product.create_many([{"name": "a"}, Product(name="b", price=3.0)])
    assert [p.name for p in made] == ["a", "b"]
    assert all(p.id for p in made)
    assert [e.operation for e in entries()] == ["create", "create"]


def test_create_many_is_all_or_nothing(connect_db):
    """A failing row rolls back the whole batch and its entries."""
    connect_db(ALL)
    with pytest.raises(peewee.IntegrityError):
        Product.create_many([{"name": "dup"}, {"name": "dup"}])
    assert Product.select().count() == 0
    assert entries() == []


def test_delete_many(connect_db):
    """delete_many counts what it deleted, skipping missing and deleted ids."""
    connect_db(ALL)
    users = User.create_many([{"name": str(i)} for i in range(4)])
    users[0].delete_instance()
    ids = [u.id for u in users] + [999]
    assert User.delete_many(ids) == 3
    assert User.select().count() == 0
    assert User.delete_many(ids, permanently=True) == 4
    assert User.select().with_deleted().count() == 0
    ops = [e.operation for e in entries()]
    assert ops.count("soft_delete") == 4 and ops.count("delete") == 4


def test_unaudited_model(connect_db):
    """Meta.audited = False: writes work, nothing lands in the audit log."""
    connect_db(ALL)
    setting = Setting.create(key="k", value="v")
    setting.value = "w"
    setting.save()
    setting.delete_instance()
    assert entries() == []


def test_component_defaults_to_table_name():
    """Without Meta.component the component is the table name."""
    assert Product._meta.component == "product"
    assert User._meta.component == "users"


def test_component_not_inherited():
    """A subclass gets its own component, not its parent's."""
    class Admin(User):
        pass
    assert Admin._meta.component == "admin"
    assert Admin._meta.soft_delete


def test_composite_key_rejected():
    """An audited model needs a single-column primary key."""
    with pytest.raises(peestore.ConfigurationError, match="primary key"):
        class Pair(peestore.BaseAuditedModel):
            a = peewee.IntegerField()
            b = peewee.IntegerField()

            class Meta:
                primary_key = peewee.CompositeKey("a", "b")


def test_write_inside_caller_transaction_rolls_back_with_it(connect_db):
    """Nested in db.atomic(), a write and its entry roll back with the caller."""
    db = connect_db(ALL)
    with pytest.raises(RuntimeError):
        with db.atomic():
            User.create(name="a")
            raise RuntimeError("caller fails")
    assert User.select().with_deleted().count() == 0
    assert entries() == []


def test_failed_write_inside_caller_transaction(connect_db):
    """A failing write inside db.atomic() leaves the caller's other writes alone."""
    db = connect_db(ALL)
    with db.atomic():
        Product.create(name="one")
        with pytest.raises(peewee.IntegrityError):
            Product.create(name="one")
        Product.create(name="two")
    assert Product.select().count() == 2
    assert [e.operation for e in entries()] == ["create", "create"]


def test_to_dict_is_json_safe(connect_db, backend):
    """Datetimes, decimals, UUIDs and bytes become strings; they convert back.
    The instance holds what the database stored (what a fresh read gives)."""
    connect_db(ALL)
    tag = uuid.uuid4()
    taken = datetime.datetime(2026, 1, 2, 3, 4, 5, 600000)
    reading = Reading.create(taken_at=taken, value=decimal.Decimal("1.250"), tag=tag,
                             raw=b"\x00\xff")
    data = reading.to_dict()
    if backend == "mysql":  # DATETIME keeps whole seconds
        taken = taken.replace(microsecond=0)
        assert data["taken_at"] == "2026-01-02T03:04:05"
    else:
        assert data["taken_at"] == "2026-01-02T03:04:05.600000"
    # SQLite's NUMERIC keeps 1.25 (a REAL); the servers' DECIMAL(10, 3) 1.250.
    assert data["value"] == ("1.25" if backend == "sqlite" else "1.250")
    assert data == Reading.get_by_id(reading.id).to_dict()
    assert data["tag"] == str(tag)
    assert data["raw"] == "AP8="
    after = entries()[-1].after
    fields = Reading._meta.fields
    assert from_json_value(fields["taken_at"], after["taken_at"]) == taken
    assert from_json_value(fields["value"], after["value"]) == decimal.Decimal("1.250")
    assert from_json_value(fields["tag"], after["tag"]) == tag
    assert from_json_value(fields["raw"], after["raw"]) == b"\x00\xff"


def test_to_dict_only(connect_db):
    """to_dict(only=...) picks fields; a foreign key is the related id."""
    connect_db(ALL)
    user = User.create(name="a")
    product = Product.create(name="p", owner=user)
    assert product.to_dict(only=["name", "owner"]) == {"name": "p", "owner": user.id}
    # In field order whatever the order asked for; names that are not fields are left out.
    assert list(product.to_dict(only=["name", "nope", "owner"])) == ["owner", "name"]


def test_history_and_count(connect_db):
    """history() lists this record's entries newest first, not other records'."""
    connect_db(ALL)
    a = User.create(name="a")
    User.create(name="b")
    a.name = "a2"
    a.save()
    assert [e.operation for e in a.history()] == ["update", "create"]


class Tagged(peestore.BaseAuditedModel):
    id = peewee.UUIDField(primary_key=True, default=uuid.uuid4)
    label = peewee.CharField()


def test_uuid_primary_key(connect_db):
    """A UUID primary key works on every backend and is the record_id as text."""
    connect_db([Tagged])
    tagged = Tagged.create(label="a")
    tagged.label = "b"
    tagged.save()
    assert Tagged.get_by_id(tagged.id).label == "b"
    assert [e.record_id for e in entries()] == [str(tagged.id)] * 2
    with capture_audit() as bulk:
        Tagged.insert_many([{"label": "c"}]).execute()
    assert uuid.UUID(bulk[0].record_id)
