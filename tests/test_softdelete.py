"""SoftDeleteQuery: soft-deleted rows are hidden however a query is built."""
import peestore
from peestore import SoftDeleteQuery

from .models import ALL, Product, User


def setup_users():
    alive = User.create(name="alive")
    gone = User.create(name="gone")
    gone.delete_instance()
    return alive, gone


def test_select_returns_soft_delete_query(connect_db):
    """select() is a SoftDeleteQuery, a peewee ModelSelect."""
    connect_db(ALL)
    assert isinstance(User.select(), SoftDeleteQuery)
    assert isinstance(Product.select(), SoftDeleteQuery)


def test_hidden_by_default(connect_db):
    """Plain selects, counts and filters hide soft-deleted rows."""
    connect_db(ALL)
    alive, gone = setup_users()
    assert [u.name for u in User.select()] == ["alive"]
    assert User.select().count() == 1
    assert User.select().where(User.name == "gone").count() == 0
    assert not User.select().where(User.name == "gone").exists()


def test_with_deleted_in_any_order(connect_db):
    """with_deleted before or after where() gives the same rows."""
    connect_db(ALL)
    setup_users()
    a = User.select().where(User.name == "gone").with_deleted()
    b = User.select().with_deleted().where(User.name == "gone")
    assert [u.name for u in a] == [u.name for u in b] == ["gone"]
    assert User.select().with_deleted().count() == 2


def test_only_deleted(connect_db):
    """only_deleted returns just the soft-deleted rows."""
    connect_db(ALL)
    setup_users()
    assert [u.name for u in User.select().only_deleted()] == ["gone"]
    assert User.select().only_deleted().where(User.name == "alive").count() == 0


def test_chaining_keeps_the_filter(connect_db):
    """order_by, limit, select of columns and clones keep hiding deleted rows."""
    connect_db(ALL)
    setup_users()
    query = User.select(User.name).order_by(User.name.desc()).limit(10)
    assert [u.name for u in query] == ["alive"]
    assert [u.name for u in query.clone()] == ["alive"]
    assert list(User.select(User.name).tuples()) == [("alive",)]


def test_subquery_keeps_the_filter(connect_db):
    """Used as a subquery, the filter is still applied."""
    connect_db(ALL)
    alive, gone = setup_users()
    Product.create(name="p1", owner=alive)
    Product.create(name="p2", owner=gone)
    live_ids = User.select(User.id)
    assert [p.name for p in Product.select().where(Product.owner.in_(live_ids))] == ["p1"]


def test_get_variants_hide_deleted(connect_db):
    """get, get_or_none, get_by_id and Model[pk] hide soft-deleted rows."""
    connect_db(ALL)
    alive, gone = setup_users()
    assert User.get(User.name == "alive").id == alive.id
    assert User.get_or_none(User.name == "gone") is None
    assert User.get_or_none(User.id == gone.id) is None
    for lookup in (lambda: User.get_by_id(gone.id), lambda: User[gone.id],
                   lambda: User.get(User.id == gone.id)):
        try:
            lookup()
        except User.DoesNotExist:
            pass
        else:
            raise AssertionError("a soft-deleted row was returned")
    assert User.get_by_id(gone.id, include_deleted=True).name == "gone"


def test_join_to_soft_delete_model(connect_db):
    """Joining to or from a soft-delete model works and filters the selected model."""
    connect_db(ALL)
    alive, gone = setup_users()
    Product.create(name="p1", owner=alive)
    Product.create(name="p2", owner=gone)
    rows = Product.select(Product, User).join(User).order_by(Product.name)
    assert [(p.name, p.owner.name) for p in rows] == [("p1", "alive"), ("p2", "gone")]
    live_owners = Product.select().join(User).where(User.deleted_at.is_null())
    assert [p.name for p in live_owners] == ["p1"]
    users = User.select().join(Product).where(Product.name.in_(["p1", "p2"]))
    assert [u.name for u in users] == ["alive"]


def test_prefetch_style_backref(connect_db):
    """A backref query from a parent row works (Product has no soft delete)."""
    connect_db(ALL)
    alive, _ = setup_users()
    Product.create(name="p1", owner=alive)
    assert [p.name for p in alive.products] == ["p1"]


def test_deleted_rows_are_not_restored_by_save(connect_db):
    """Saving a soft-deleted row keeps it deleted and hidden."""
    connect_db(ALL)
    _, gone = setup_users()
    gone.name = "renamed"
    gone.save()
    assert User.get_or_none(User.name == "renamed") is None
    assert peestore.AuditLog.select().where(peestore.AuditLog.operation == "update").count() == 1
