"""history() and revert_to()."""
import pytest

from peestore import AuditLog
from peestore.testing import capture_audit

from .models import ALL, Product, User


def test_history_newest_first(connect_db):
    """Entries of this record only, newest first."""
    connect_db(ALL)
    user = User.create(name="a")
    other = User.create(name="other")
    user.name = "b"
    user.save()
    user.delete_instance()
    assert [e.operation for e in user.history()] == ["soft_delete", "update", "create"]
    assert [e.operation for e in other.history()] == ["create"]


def test_changed_fields(connect_db):
    """to_dict(with_changed=True) names the fields that differ."""
    connect_db(ALL)
    product = Product.create(name="p", price=1.0)
    product.price = 2.0
    product.save()
    newest = product.history()[0].to_dict(with_changed=True)
    assert newest["changed"] == ["price"]


def test_revert_to_earlier_state(connect_db):
    """revert_to sets the record back to an entry's after state, as one update."""
    connect_db(ALL)
    product = Product.create(name="p", price=1.0)
    first = product.history()[0]
    product.price = 5.0
    product.name = "q"
    product.save()
    with capture_audit() as entries:
        product.revert_to(first.id, actor="undo")
    assert entries.operations() == ["update"]
    assert entries[0].actor == "undo"
    stored = Product.get_by_id(product.id)
    assert (stored.name, stored.price) == ("p", 1.0)


def test_revert_undeletes(connect_db):
    """Reverting a soft-deleted record to a live state restores it in one entry."""
    connect_db(ALL)
    user = User.create(name="a")
    created = user.history()[0]
    user.name = "b"
    user.save()
    user.delete_instance()
    with capture_audit() as entries:
        user.revert_to(created.id)
    assert entries.operations() == ["restore"]
    stored = User.get_by_id(user.id)
    assert stored.name == "a" and stored.deleted_at is None


def test_revert_recreates_hard_deleted_row(connect_db):
    """A hard-deleted row comes back at its primary key."""
    connect_db(ALL)
    product = Product.create(name="p", price=3.0)
    created = product.history()[0]
    product.delete_instance()
    product.revert_to(created.id)
    assert Product.get_by_id(product.id).price == 3.0


def test_revert_to_other_records_entry(connect_db):
    """Another record's entry (or none) is a ValueError and changes nothing."""
    connect_db(ALL)
    a = Product.create(name="a")
    b = Product.create(name="b")
    with pytest.raises(ValueError, match="not an entry"):
        a.revert_to(b.history()[0].id)
    with pytest.raises(ValueError):
        a.revert_to(99999)
    assert AuditLog.select().count() == 2


def test_revert_to_delete_entry(connect_db):
    """An entry with no after state (a delete) cannot be reverted to."""
    connect_db(ALL)
    product = Product.create(name="p")
    product.delete_instance()
    delete_entry = product.history()[0]
    with pytest.raises(ValueError, match="no state"):
        product.revert_to(delete_entry.id)
