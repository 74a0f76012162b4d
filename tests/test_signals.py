"""Hooks: the six signals, inside the write's transaction."""
import peewee
import pytest

from peestore import AuditLog
from peestore.signals import (after_delete, after_insert, after_update, before_delete,
                              before_insert, before_update)

from .models import ALL, Product, Setting, User


def test_insert_hooks_order_and_pk(connect_db):
    """before_insert sees no pk, after_insert sees it; sender is the class."""
    connect_db(ALL)
    calls = []

    @before_insert(sender=User)
    def before(sender, instance):
        calls.append(("before", sender, instance.id))

    @after_insert(sender=User)
    def after(sender, instance):
        calls.append(("after", sender, instance.id))

    user = User.create(name="a")
    assert calls == [("before", User, None), ("after", User, user.id)]


def test_before_hook_may_change_the_row(connect_db):
    """What a before-hook sets is what gets written and audited."""
    connect_db(ALL)

    @before_insert(sender=User)
    def lower(sender, instance):
        instance.email = instance.email.lower()

    user = User.create(name="a", email="A@X")
    assert User.get_by_id(user.id).email == "a@x"
    assert AuditLog.get().after["email"] == "a@x"


def test_validation_hook_rolls_back(connect_db):
    """An exception in a hook reaches the caller; no row and no entry remain."""
    connect_db(ALL)

    @before_insert(sender=User)
    def check_email(sender, instance):
        if "@" not in instance.email:
            raise ValueError("invalid email")

    with pytest.raises(ValueError, match="invalid email"):
        User.create(name="a", email="nope")
    assert User.select().with_deleted().count() == 0
    assert AuditLog.select().count() == 0


def test_after_hook_failure_rolls_back(connect_db):
    """An exception in an after-hook rolls back the row and its entry too."""
    connect_db(ALL)
    user = User.create(name="a")

    @after_update(sender=User)
    def boom(sender, instance):
        raise RuntimeError("boom")

    user.name = "b"
    with pytest.raises(RuntimeError):
        user.save()
    assert User.get_by_id(user.id).name == "a"
    assert [e.operation for e in AuditLog.select()] == ["create"]


def test_update_and_delete_hooks(connect_db):
    """save fires update hooks, delete_instance the delete hooks."""
    connect_db(ALL)
    calls = []
    for name, signal in [("bu", before_update), ("au", after_update),
                         ("bd", before_delete), ("ad", after_delete)]:
        signal.connect(lambda sender, instance, name=name: calls.append(name),
                       name="rec_" + name, sender=Product)
    product = Product.create(name="p")
    product.price = 2.0
    product.save()
    product.delete_instance()
    assert calls == ["bu", "au", "bd", "ad"]


def test_soft_delete_fires_delete_hooks_restore_fires_update(connect_db):
    """A soft delete is a delete to hooks; a restore is an update."""
    connect_db(ALL)
    calls = []
    before_delete.connect(lambda s, i: calls.append("bd"), name="bd", sender=User)
    after_delete.connect(lambda s, i: calls.append("ad"), name="ad", sender=User)
    before_update.connect(lambda s, i: calls.append("bu"), name="bu", sender=User)
    after_update.connect(lambda s, i: calls.append("au"), name="au", sender=User)
    user = User.create(name="a")
    user.delete_instance()
    user.restore()
    assert calls == ["bd", "ad", "bu", "au"]


def test_delete_hook_veto_keeps_row(connect_db):
    """A before_delete hook that raises keeps the row and writes no entry."""
    connect_db(ALL)
    user = User.create(name="keep")

    @before_delete(sender=User)
    def veto(sender, instance):
        raise PermissionError("locked")

    with pytest.raises(PermissionError):
        user.delete_instance()
    assert User.get_by_id(user.id).deleted_at is None
    assert AuditLog.select().count() == 1


def test_batch_calls_fire_per_row(connect_db):
    """create_many and delete_many fire the hooks once per row."""
    connect_db(ALL)
    seen = []
    after_insert.connect(lambda s, i: seen.append(("ins", i.name)), name="i", sender=Product)
    after_delete.connect(lambda s, i: seen.append(("del", i.name)), name="d", sender=Product)
    made = Product.create_many([{"name": "a"}, {"name": "b"}])
    Product.delete_many([p.id for p in made])
    assert seen == [("ins", "a"), ("ins", "b"), ("del", "a"), ("del", "b")]


def test_hook_writes_share_the_transaction(connect_db):
    """A hook's own writes roll back when the write it hooks fails."""
    connect_db(ALL)

    @after_insert(sender=User)
    def make_setting(sender, instance):
        Setting.create(key="owner", value=instance.name)
        Product.create(name="for-" + instance.name)

    @after_insert(sender=User)
    def fail_for_bad(sender, instance):
        if instance.name == "bad":
            raise ValueError("bad user")

    User.create(name="good")
    with pytest.raises(ValueError):
        User.create(name="bad")
    assert [s.value for s in Setting.select()] == ["good"]
    assert [p.name for p in Product.select()] == ["for-good"]
    components = [e.component for e in AuditLog.select().order_by(AuditLog.id)]
    assert components == ["product", "users"]


def test_hooks_without_sender_hear_all_models(connect_db):
    """A receiver without sender is called for every model."""
    connect_db(ALL)
    senders = []
    before_insert.connect(lambda s, i: senders.append(s), name="all")
    User.create(name="a")
    Product.create(name="p")
    assert senders == [User, Product]


def test_integrity_error_passes_through(connect_db):
    """A database error is peewee's own and leaves no entry."""
    connect_db(ALL)
    Product.create(name="x")
    with pytest.raises(peewee.IntegrityError):
        Product.create(name="x")
    assert AuditLog.select().count() == 1
