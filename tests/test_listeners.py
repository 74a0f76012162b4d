"""After-commit change listeners and restore listeners."""
import logging

import pytest

import peestore
from peestore.audit._listeners import notify_restore

from .models import ALL, Product, Setting, User


def test_called_once_after_commit_with_all_changes(connect_db):
    """One call per transaction, every change in order, after the commit."""
    db = connect_db(ALL)
    calls = []

    @peestore.after_commit(User, Product)
    def on_change(changes):
        # After the commit, a new connection-level read sees the data.
        calls.append([(c.component, c.operation, c.record_id) for c in changes])

    with db.atomic():
        user = User.create(name="a")
        Product.create(name="p", owner=user)
        Setting.create(key="k", value="v")
        assert calls == []
    assert calls == [[("users", "create", str(user.id)), ("product", "create", "1")]]


def test_single_write_is_its_own_transaction(connect_db):
    """A write outside any transaction is reported on its own."""
    connect_db(ALL)
    seen = []
    peestore.after_commit(User)(lambda changes: seen.append(len(changes)))
    user = User.create(name="a")
    user.name = "b"
    user.save()
    assert seen == [1, 1]


def test_change_fields(connect_db):
    """A Change carries values after, before, and the deleted row for a delete."""
    connect_db(ALL)
    seen = []
    peestore.after_commit(Product)(seen.extend)
    product = Product.create(name="p", price=1.0)
    product.price = 2.0
    product.save()
    product.delete_instance()
    create, update, delete = seen
    assert create.before is None and create.values["price"] == 1.0
    assert update.before["price"] == 1.0 and update.values["price"] == 2.0
    assert delete.operation == "delete" and delete.values["name"] == "p"


def test_not_called_on_rollback(connect_db):
    """A rolled-back transaction reaches no listener."""
    db = connect_db(ALL)
    seen = []
    peestore.after_commit(User)(seen.append)
    with pytest.raises(RuntimeError):
        with db.atomic():
            User.create(name="a")
            raise RuntimeError
    assert seen == []


def test_rolled_back_savepoint_is_dropped(connect_db):
    """Changes of a rolled-back savepoint are not reported; the rest are."""
    db = connect_db(ALL)
    seen = []
    peestore.after_commit(User)(lambda changes: seen.append([c.values["name"] for c in changes]))
    with db.atomic():
        User.create(name="kept")
        with pytest.raises(RuntimeError):
            with db.atomic():
                User.create(name="dropped")
                raise RuntimeError
        User.create(name="also kept")
    assert seen == [["kept", "also kept"]]


def test_failed_write_in_transaction_not_reported(connect_db):
    """A write whose hook failed inside a committed transaction is not reported."""
    db = connect_db(ALL)
    seen = []
    peestore.after_commit(User)(lambda changes: seen.append([c.values["name"] for c in changes]))
    from peestore.signals import before_insert

    @before_insert(sender=User)
    def refuse(sender, instance):
        if instance.name == "bad":
            raise ValueError("bad")

    with db.atomic():
        User.create(name="good")
        with pytest.raises(ValueError):
            User.create(name="bad")
    assert seen == [["good"]]


def test_listener_exception_is_logged_and_swallowed(connect_db, caplog):
    """A listener's exception is logged; the write stands and others still run."""
    connect_db(ALL)
    seen = []

    @peestore.after_commit(User)
    def broken(changes):
        raise RuntimeError("listener broke")

    peestore.after_commit(User)(seen.append)
    with caplog.at_level(logging.ERROR, logger="peestore"):
        User.create(name="a")
    assert User.select().count() == 1
    assert len(seen) == 1
    assert "listener broke" in caplog.text


def test_listener_may_write(connect_db):
    """A listener's own writes are a new transaction, reported in turn."""
    connect_db(ALL)
    seen = []

    @peestore.after_commit(User, Product)
    def mirror(changes):
        seen.extend((c.component, c.operation) for c in changes)
        for change in changes:
            if change.component == "users":
                Product.create(name="for-" + change.values["name"])

    User.create(name="a")
    assert Product.select().count() == 1
    assert seen == [("users", "create"), ("product", "create")]


def test_bulk_queries_reach_listeners(connect_db):
    """Bulk updates are reported row by row."""
    connect_db(ALL)
    Product.create_many([{"name": "a"}, {"name": "b"}])
    seen = []
    peestore.after_commit(Product)(lambda changes: seen.append([c.operation for c in changes]))
    Product.update(price=3).execute()
    assert seen == [["update", "update"]]


def test_unaudited_model_reaches_listeners(connect_db):
    """Listeners hear models with auditing turned off too."""
    connect_db(ALL)
    seen = []
    peestore.after_commit(Setting)(seen.extend)
    Setting.create(key="k", value="v")
    assert [c.operation for c in seen] == ["create"]


def test_on_restore_listeners():
    """on_restore listeners are called with no arguments; failures are swallowed."""
    calls = []
    peestore.on_restore(lambda: calls.append("a"))

    @peestore.on_restore
    def broken():
        raise RuntimeError("x")

    peestore.on_restore(lambda: calls.append("b"))
    notify_restore()
    assert calls == ["a", "b"]
