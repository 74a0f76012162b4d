"""Who is blamed in the audit log."""
import threading

import peestore
from peestore import AuditLog

from .models import ALL, User


def actors():
    return [e.actor for e in AuditLog.select().order_by(AuditLog.id)]


def test_default_actor_is_internal(connect_db):
    """With no actor anywhere, entries blame 'internal'."""
    connect_db(ALL)
    User.create(name="a")
    assert actors() == ["internal"]


def test_context_actor_and_nesting(connect_db):
    """The innermost actor() block wins, and the outer one comes back."""
    connect_db(ALL)
    with peestore.actor("outer"):
        User.create(name="a")
        with peestore.actor("inner"):
            User.create(name="b")
        User.create(name="c")
    assert actors() == ["outer", "inner", "outer"]


def test_keyword_beats_context(connect_db):
    """actor= on a write wins over the block."""
    connect_db(ALL)
    with peestore.actor("block"):
        user = User.create(name="a")
        user.name = "b"
        user.save(actor="keyword")
        user.delete_instance(actor="deleter")
        user.restore(actor="restorer")
        User.create_many([{"name": "x"}], actor="batch")
        User.delete_many([user.id], actor="bulk")
    assert actors() == ["block", "keyword", "deleter", "restorer", "batch", "bulk"]


def test_actor_is_per_thread(sqlite_db):
    """A thread does not see another thread's actor block."""
    sqlite_db(ALL)
    seen = []
    with peestore.actor("main"):
        thread = threading.Thread(target=lambda: seen.append(peestore.current_actor()))
        thread.start()
        thread.join()
        assert peestore.current_actor() == "main"
    assert seen == ["internal"]
