"""Parking: a worker thread keeps its SQLite connection between requests, yet
peewee sees it closed, restore and re-connect close it, and nothing leaks."""
import json
import sqlite3
import threading
import urllib.request

import bottle
import peewee
import pytest
import webtest

import peestore
from peestore.db import _pool as parking
from peestore.db._connect import release_idle
from peestore.rest._server import background

from .rest_models import REST_MODELS

W = {"X-User": "tester"}


def _app(db):
    """The REST models plus /conn: the id of the connection the request runs on."""
    app = bottle.Bottle()

    @app.get("/conn")
    def conn():
        return {"conn": id(db.connection()), "parts": peestore.database.obj.execute_sql(
            "SELECT COUNT(*) FROM part").fetchone()[0]}

    app.install(peestore.RestPlugin(models=REST_MODELS))
    return app


def test_a_thread_gets_its_own_connection_back(sqlite_db):
    """Two requests in one thread run on one connection, not checked out of the pool
    again; between them peewee sees the database closed, as without parking."""
    db = sqlite_db(REST_MODELS)
    api = webtest.TestApp(_app(db))
    first = api.get("/conn").json["conn"]
    assert db.is_closed()
    assert api.get("/conn").json["conn"] == first
    api.post_json("/parts/", {"name": "a"}, headers=W)
    assert api.get("/conn").json == {"conn": first, "parts": 1}
    # Outside a request, connect() takes the parked connection too.
    db.connect()
    assert id(db.connection()) == first
    db.close()
    assert api.get("/conn").json["conn"] == first


def test_release_idle_closes_parked_connections(sqlite_db):
    """release_idle (restore, re-connect) closes a parked connection; the thread's next
    request opens another and works."""
    db = sqlite_db(REST_MODELS)
    api = webtest.TestApp(_app(db))
    api.post_json("/parts/", {"name": "a"}, headers=W)
    (parked_db, conn, _), = [v for v in parking._parked.values() if v[0] is db]
    release_idle(db)
    assert not any(v[0] is db for v in parking._parked.values())
    with pytest.raises(sqlite3.ProgrammingError):  # really closed
        conn.execute("SELECT 1")
    assert api.get("/conn").json["parts"] == 1
    assert api.get("/parts/").json[0]["name"] == "a"


def test_restore_with_connections_parked_on_every_thread(sqlite_db, tmp_path):
    """Four worker threads each park a connection; a restore over HTTP still swaps
    the file, and every thread then serves the restored data."""
    db = sqlite_db(REST_MODELS)
    backup = str(tmp_path / "one.sqlite")
    with peestore.actor("t"):
        from .rest_models import Part
        Part.create(name="kept")
    peestore.backup(backup)
    with peestore.actor("t"):
        Part.create(name="dropped")
    db.close()
    with background(_app(db), threads=4) as url:
        barrier = threading.Barrier(4)
        seen = []

        def hold():  # four requests at once: four threads, four parked connections
            barrier.wait(10)
            with urllib.request.urlopen(url + "/conn", timeout=10) as res:
                seen.append(json.loads(res.read())["parts"])

        threads = [threading.Thread(target=hold) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert seen == [2, 2, 2, 2]
        assert sum(1 for v in parking._parked.values() if v[0] is db) >= 2
        with open(backup, "rb") as f:
            data = f.read()
        body = (b'--b\r\nContent-Disposition: form-data; name="file"; filename="one.sqlite"'
                b'\r\nContent-Type: application/octet-stream\r\n\r\n' + data + b"\r\n--b--\r\n")
        request = urllib.request.Request(
            url + "/db/restore", data=body, method="POST",
            headers={"X-User": "t", "Content-Type": "multipart/form-data; boundary=b"})
        with urllib.request.urlopen(request, timeout=30) as res:
            assert res.status == 200
        counts = set()
        for _ in range(12):
            with urllib.request.urlopen(url + "/conn", timeout=10) as res:
                counts.add(json.loads(res.read())["parts"])
        assert counts == {1}
        with urllib.request.urlopen(url + "/parts/", timeout=10) as res:
            assert [p["name"] for p in json.loads(res.read())] == ["kept"]


def test_threads_that_ended_leave_nothing_open(sqlite_db, monkeypatch):
    """A thread that parked and ended (a stopped server) does not keep its connection:
    a later park sweeps it."""
    db = sqlite_db(REST_MODELS)
    left = []

    def serve_once():
        db.connection()
        assert parking.park(db)
        left.append(parking._spot.conn)

    t = threading.Thread(target=serve_once)
    t.start()
    t.join()
    assert id(left[0]) in parking._parked
    monkeypatch.setattr(parking, "_sweep_at", [0])  # (sweeps past 16 entries otherwise)
    db.connection()
    assert parking.park(db)  # this thread parks: the ended thread's is swept
    assert id(left[0]) not in parking._parked
    with pytest.raises(sqlite3.ProgrammingError):  # closed
        left[0].execute("SELECT 1")
    assert parking.unpark(db)
    db.close()


def test_only_an_uncapped_sqlite_pool_parks(tmp_path):
    """A capped or stale-checked pool, a same-thread-only pool and a plain database
    close their connection at the end of each request, as before."""
    path = str(tmp_path / "x.db")
    for url in ("sqlite:///%s?max_connections=4" % path,
                "sqlite:///%s?stale_timeout=60" % path,
                "sqlite:///%s?check_same_thread=1" % path):
        db = peestore.connect(url)
        db.connection()
        assert not parking.park(db), url
        db.close()
    plain = peewee.SqliteDatabase(path)
    plain.connect()
    assert not parking.park(plain)
    plain.close()


def test_no_parking_inside_a_transaction(sqlite_db):
    """A connection with a transaction open is not parked (the caller closes it)."""
    db = sqlite_db(REST_MODELS)
    with db.atomic():
        assert not parking.park(db)
    db.execute_sql("BEGIN")
    assert not parking.park(db)
    db.execute_sql("ROLLBACK")
    assert parking.park(db) and db.is_closed()
    assert parking.unpark(db) and not db.is_closed()
    db.close()
