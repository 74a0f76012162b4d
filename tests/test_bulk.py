"""Bulk queries on audited models write one entry per affected row."""
import peewee
import pytest

import peestore
from peestore import AuditLog
from peestore.testing import capture_audit

from .models import ALL, Product, Setting, User


def test_bulk_update_constant(connect_db):
    """update().where() audits each matching row with its before and after."""
    connect_db(ALL)
    Product.create_many([{"name": "a", "price": 1}, {"name": "b", "price": 2},
                         {"name": "c", "price": 3}])
    with capture_audit() as entries:
        count = Product.update(price=9.5).where(Product.price >= 2).execute()
    assert count == 2
    assert entries.operations() == ["update", "update"]
    assert sorted((e.before["name"], e.before["price"], e.after["price"]) for e in entries) == [
        ("b", 2.0, 9.5), ("c", 3.0, 9.5)]


def test_bulk_update_expression_reads_result(connect_db):
    """An expression update records what the database computed."""
    connect_db(ALL)
    Product.create_many([{"name": "a", "price": 1.5}, {"name": "b", "price": 2.5}])
    with capture_audit() as entries:
        Product.update(price=Product.price * 2).execute()
    assert sorted(e.after["price"] for e in entries) == [3.0, 5.0]


def test_bulk_update_where_on_changed_column(connect_db):
    """Updating the column the WHERE tests still audits exactly the matched rows."""
    connect_db(ALL)
    Product.create_many([{"name": "a", "price": 1}, {"name": "b", "price": 5}])
    with capture_audit() as entries:
        assert Product.update(price=10).where(Product.price < 2).execute() == 1
    assert [e.before["name"] for e in entries] == ["a"]


def test_bulk_update_no_rows(connect_db):
    """An update matching nothing writes nothing."""
    connect_db(ALL)
    with capture_audit() as entries:
        assert Product.update(price=1).where(Product.name == "none").execute() == 0
    assert entries == []


def test_bulk_delete_on_soft_delete_model_soft_deletes(connect_db):
    """Model.delete() on a soft-delete model soft-deletes the live rows."""
    connect_db(ALL)
    User.create_many([{"name": "a"}, {"name": "b"}, {"name": "c"}])
    User.get(User.name == "c").delete_instance()
    with capture_audit() as entries:
        assert User.delete().where(User.name != "zzz").execute() == 2
    assert entries.operations() == ["soft_delete", "soft_delete"]
    assert User.select().count() == 0
    assert User.select().with_deleted().count() == 3


def test_bulk_delete_permanently(connect_db):
    """delete(permanently=True) removes rows, soft-deleted ones included."""
    connect_db(ALL)
    User.create_many([{"name": "a"}, {"name": "b"}])
    User.get(User.name == "a").delete_instance()
    with capture_audit() as entries:
        assert User.delete(permanently=True).execute() == 2
    assert entries.operations() == ["delete", "delete"]
    assert all(e.after is None for e in entries)
    assert User.select().with_deleted().count() == 0


def test_bulk_delete_plain_model(connect_db):
    """delete() on a model without soft delete is a real, audited delete."""
    connect_db(ALL)
    Product.create_many([{"name": "a"}, {"name": "b"}])
    with capture_audit() as entries:
        assert Product.delete().where(Product.name == "a").execute() == 1
    assert entries.operations() == ["delete"]
    assert entries[0].before["name"] == "a"


def test_insert_and_insert_many_return_ids(connect_db, backend):
    """insert returns the new id; insert_many audits each row with its id."""
    connect_db(ALL)
    new_id = Product.insert(name="one", price=1).execute()
    assert Product.get_by_id(new_id).name == "one"
    with capture_audit() as entries:
        Product.insert_many([{"name": "two"}, {"name": "three", "price": 3}]).execute()
    ids = {p.name: p.id for p in Product.select()}
    assert [(e.record_id, e.after["name"]) for e in entries] == [
        (str(ids["two"]), "two"), (str(ids["three"]), "three")]
    assert entries[0].after["price"] == 0.0  # the field default, as stored
    assert entries[0].after["owner"] is None


def test_insert_many_tuples_with_fields(connect_db):
    """insert_many with tuples and fields= is audited too."""
    connect_db(ALL)
    with capture_audit() as entries:
        Product.insert_many([("x", 1.0), ("y", 2.0)],
                            fields=[Product.name, Product.price]).execute()
    assert [e.after["name"] for e in entries] == ["x", "y"]


def test_insert_with_explicit_ids(connect_db):
    """Rows that bring their own primary key keep it."""
    connect_db(ALL)
    with capture_audit() as entries:
        Product.insert_many([{"id": 50, "name": "a"}, {"id": 60, "name": "b"}]).execute()
    assert [e.record_id for e in entries] == ["50", "60"]


def test_bulk_is_atomic_with_its_entries(connect_db):
    """A failing bulk insert leaves neither rows nor entries."""
    connect_db(ALL)
    Product.create(name="dup")
    with pytest.raises(peewee.IntegrityError):
        Product.insert_many([{"name": "new"}, {"name": "dup"}]).execute()
    assert Product.select().count() == 1
    assert AuditLog.select().count() == 1


def test_bulk_actor(connect_db):
    """Bulk entries blame the actor block, or .actor() on the query."""
    connect_db(ALL)
    Product.create(name="a")
    with peestore.actor("panel"):
        with capture_audit() as entries:
            Product.update(price=1).execute()
            Product.update(price=2).actor("script").execute()
    assert [e.actor for e in entries] == ["panel", "script"]


def test_upsert_is_refused(connect_db):
    """on_conflict inserts on an audited model raise a clear error and change nothing."""
    connect_db(ALL)
    with pytest.raises(peestore.PeestoreError, match="on_conflict"):
        Product.insert(name="a").on_conflict_ignore().execute()
    assert Product.select().count() == 0


def test_unaudited_model_bulk_is_plain_peewee(connect_db):
    """Bulk queries on an unaudited model write no entries."""
    connect_db(ALL)
    Setting.insert_many([{"key": "a", "value": "1"}]).execute()
    Setting.update(value="2").execute()
    Setting.delete().execute()
    assert AuditLog.select().count() == 0


def test_raw_sql_is_not_audited(connect_db):
    """db.execute_sql bypasses the audit, as documented."""
    db = connect_db(ALL)
    Product.create(name="a")
    db.execute_sql("UPDATE product SET price = 5")
    assert AuditLog.select().count() == 1


def test_bulk_update_many_rows(connect_db):
    """A 10,000-row bulk update writes 10,000 entries."""
    connect_db(ALL)
    Product.insert_many([{"name": "p%05d" % i} for i in range(10000)]).execute()
    with capture_audit() as entries:
        assert Product.update(price=1.0).execute() == 10000
    assert len(entries) == 10000
    assert {e.operation for e in entries} == {"update"}


def test_recursive_delete_audits_dependents(connect_db):
    """delete_instance(recursive=True) audits the dependents it removes or unlinks."""
    connect_db(ALL)
    user = User.create(name="owner")
    Product.create(name="p", owner=user)
    with capture_audit() as entries:
        user.delete_instance(recursive=True, permanently=True)
    assert entries.operations() == ["update", "delete"]
    assert Product.get().owner_id is None
