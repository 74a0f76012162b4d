"""A write that waits out the lock timeout is a 503 to try again, never a 500."""
import sqlite3

import peestore
import webtest

from .rest_models import Part


def test_locked_database_is_503_with_retry_after(tmp_path):
    path = tmp_path / "busy.db"
    app = peestore.bootstrap(models=[Part],
                             database_url="sqlite:///%s?busy_timeout=100" % path)
    client = webtest.TestApp(app)
    other = sqlite3.connect(str(path), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        res = client.post_json("/parts/", {"name": "p1"}, headers={"X-User": "op"},
                               status=503)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert res.headers["Retry-After"] == "1"
    assert "try again" in res.json["detail"] and "locked" not in res.text
    assert client.get("/parts/").json == []  # nothing was written
    client.post_json("/parts/", {"name": "p1"}, headers={"X-User": "op"}, status=201)
