"""Concurrency: many writers at once, through the REST API and the model API.

Every test runs on SQLite, PostgreSQL and MariaDB.

- REST writes through a real waitress server with 8 threads, from 12 client
  threads: every answer is 2xx, never a 5xx, never a "database is locked".
- Lost updates: clients that read a counter (``ETag``) and PATCH it with
  ``If-Match``, retrying on 412, never overwrite each other: the counter ends
  equal to the number of PATCHes answered 200, and the audit log has exactly
  that many ``update`` entries for the row, each one step up from the last.
- Direct model API writes from many threads, each on its own connection
  (peewee connections are per thread): no ``OperationalError``, every row
  and audit entry present.
"""
import http.client
import json
import threading
import time
from urllib.parse import urlsplit

import peewee
import pytest

import peestore
from peestore import AuditLog
from peestore.rest._server import background

from .rest_models import REST_MODELS, Part

TIMEOUT = 30
CLIENTS = 12
SERVER_THREADS = 8


def pooled(url):
    """``url`` with ``playhouse.pool`` on the server backends (the README's advice)."""
    if url.startswith("sqlite"):
        return url
    scheme, rest = url.split("://", 1)
    return "%s+pool://%s?max_connections=%d&stale_timeout=60" % (scheme, rest,
                                                                 SERVER_THREADS + 4)


@pytest.fixture
def serve():
    """``serve(url)``: a waitress server with 8 threads on 127.0.0.1 for the REST
    test models on ``url``; yields its address.  Stopped (and pooled connections
    closed) at the end."""
    databases, servers = [], []

    def _serve(url):
        db = peestore.connect(url, models=REST_MODELS)
        databases.append(db)
        app = peestore.bootstrap(models=REST_MODELS, database_url=db, create_tables=False)
        db.close()
        server = background(app, threads=SERVER_THREADS)
        address = urlsplit(server.__enter__())
        servers.append(server)
        return address

    yield _serve
    for server in servers:
        server.__exit__(None, None, None)
    for db in databases:
        if not db.is_closed():
            db.close()
        if hasattr(db, "close_all"):
            db.close_all()


class Http:
    """One kept-alive client connection; every answer is kept for the checks."""

    def __init__(self, address, user):
        self.conn = http.client.HTTPConnection(address.hostname, address.port,
                                               timeout=TIMEOUT)
        self.user = user
        self.answers = []   # (method, path, status, raw body)

    def __call__(self, method, path, body=None, headers=None):
        hdrs = {"X-User": self.user}
        data = None
        if body is not None:
            data = json.dumps(body)
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        self.conn.request(method, path, body=data, headers=hdrs)
        res = self.conn.getresponse()
        raw = res.read()
        self.answers.append((method, path, res.status, raw))
        return res.status, json.loads(raw) if raw else None, res.getheader("ETag")

    def close(self):
        self.conn.close()


def run_threads(target, count):
    """Run ``target(n)`` in ``count`` threads at once; re-raise the first failure."""
    failures = []
    start = threading.Barrier(count)

    def wrapped(n):
        try:
            start.wait(TIMEOUT)
            target(n)
        except BaseException as exc:  # reported in the main thread
            failures.append(exc)

    threads = [threading.Thread(target=wrapped, args=(n,), daemon=True) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads), "a client thread hung"
    if failures:
        raise failures[0]


def assert_no_server_errors(clients, allowed=(200, 201)):
    bad = [(m, p, s, raw[:200]) for c in clients for (m, p, s, raw) in c.answers
           if s not in allowed or b"locked" in raw.lower()]
    assert bad == []


def audit_count(**where):
    query = AuditLog.select()
    for name, value in where.items():
        query = query.where(getattr(AuditLog, name) == value)
    return query.count()


def test_concurrent_rest_writes(serve, db_url):
    """12 clients on 8 server threads: creates, PATCHes (own and one shared row),
    PUTs, deletes and restores at once; all 2xx, all audited.

    The plain URL: a connection opened and closed per request, as ``peestore
    serve --db URL`` does without a pool.
    """
    server = serve(db_url)
    clients = [Http(server, "client-%d" % n) for n in range(CLIENTS)]
    shared = clients[0]("POST", "/parts/", {"name": "shared"})[1]["id"]
    per_client = 4

    def work(n):
        call = clients[n]
        mine = []
        for i in range(per_client):
            status, row, etag = call("POST", "/parts/", {"name": "c%d-%d" % (n, i),
                                                         "qty": i})
            assert status == 201
            mine.append((row["id"], etag))
        for i, (pk, etag) in enumerate(mine):
            # With the ETag of its own create: nobody else touches this row.
            status, row, _ = call("PATCH", "/parts/%d" % pk, {"qty": 100 + i},
                                  {"If-Match": etag})
            assert status == 200 and row["qty"] == 100 + i
            # Everyone writes the shared row, without If-Match: last one wins.
            assert call("PATCH", "/parts/%d" % shared, {"note": "by %d-%d" % (n, i)})[0] == 200
            assert call("GET", "/parts/%d" % pk)[0] == 200
        pk = mine[0][0]
        assert call("PUT", "/parts/%d" % pk, {"name": "c%d-put" % n, "qty": 7})[0] == 200
        assert call("DELETE", "/parts/%d" % pk)[0] == 200
        assert call("POST", "/parts/%d/restore" % pk)[1]["restored"] is True
        assert call("GET", "/parts/?limit=5")[0] == 200

    try:
        run_threads(work, CLIENTS)
    finally:
        for client in clients:
            client.close()
    assert_no_server_errors(clients)

    db = peestore.database.obj
    with db.connection_context():
        assert Part.select().count() == CLIENTS * per_client + 1
        assert audit_count(component="parts", operation="create") == \
            CLIENTS * per_client + 1
        # Own rows: one update per PATCH and per PUT; the shared row: one per PATCH.
        assert audit_count(component="parts", record_id=str(shared),
                           operation="update") == CLIENTS * per_client
        assert audit_count(component="parts", operation="update") == \
            2 * CLIENTS * per_client + CLIENTS
        assert audit_count(component="parts", operation="soft_delete") == CLIENTS
        assert audit_count(component="parts", operation="restore") == CLIENTS
        notes = {e.after["note"] for e in AuditLog.select().where(
            (AuditLog.record_id == str(shared)) & (AuditLog.operation == "update"))}
        assert Part.get_by_id(shared).note in notes


def test_if_match_loses_no_update(serve, db_url):
    """Read-modify-write with If-Match from 8 clients: no increment is lost.

    Pooled connections on the server backends: a connection handed back to
    the pool after one request must carry nothing into the next.
    """
    server = serve(pooled(db_url))
    writers, increments = 8, 5
    clients = [Http(server, "counter-%d" % n) for n in range(writers)]
    pk = clients[0]("POST", "/parts/", {"name": "counter", "qty": 0})[1]["id"]
    done = [0] * writers
    refused = [0] * writers

    def work(n):
        call = clients[n]
        deadline = time.monotonic() + 60
        while done[n] < increments:
            assert time.monotonic() < deadline, "no progress"
            status, row, etag = call("GET", "/parts/%d" % pk)
            assert status == 200
            status, _, _ = call("PATCH", "/parts/%d" % pk, {"qty": row["qty"] + 1},
                                {"If-Match": etag})
            if status == 200:
                done[n] += 1
            else:
                assert status == 412
                refused[n] += 1

    try:
        run_threads(work, writers)
    finally:
        for client in clients:
            client.close()
    assert_no_server_errors(clients, allowed=(200, 201, 412))
    total = sum(done)
    assert total == writers * increments

    db = peestore.database.obj
    with db.connection_context():
        assert Part.get_by_id(pk).qty == total
        entries = list(AuditLog.select().where(
            (AuditLog.component == "parts") & (AuditLog.record_id == str(pk)) &
            (AuditLog.operation == "update")).order_by(AuditLog.id))
        assert len(entries) == total
        # Each update starts where the one before ended: none overwrote another.
        assert [(e.before["qty"], e.after["qty"]) for e in entries] == \
            [(i, i + 1) for i in range(total)]
        assert {e.actor for e in entries} == {"counter-%d" % n for n in range(writers)}


def test_concurrent_model_api_writes(connect_db):
    """8 threads write through the model API at once, each on its own connection."""
    db = connect_db(REST_MODELS)
    with peestore.actor("setup"):
        shared = Part.create(name="shared", qty=0)
    db.close()
    threads, rounds = 8, 6
    errors = []

    def work(n):
        with db.connection_context(), peestore.actor("thread-%d" % n):
            try:
                for i in range(rounds):
                    part = Part.create(name="t%d-%d" % (n, i), qty=i)
                    part.qty += 10
                    part.save()
                    again = Part.get_by_id(part.id)
                    again.note = "seen"
                    again.save()
                    # An atomic increment: a bulk update, audited per row.
                    Part.update(qty=Part.qty + 1).where(Part.id == shared.id).execute()
                    if i % 2:
                        again.delete_instance()
                        again.restore()
                Part.create_many([{"name": "t%d-many-%d" % (n, j)} for j in range(3)])
                Part.delete_many([p.id for p in Part.select().where(
                    Part.name.startswith("t%d-many-" % n))])
            except peewee.OperationalError as exc:
                errors.append(repr(exc))
                raise

    run_threads(work, threads)
    assert errors == []

    with db.connection_context():
        assert Part.select().count() == threads * rounds + 1
        assert Part.select().with_deleted().count() == threads * (rounds + 3) + 1
        assert Part.get_by_id(shared.id).qty == threads * rounds
        assert audit_count(component="parts", operation="create") == \
            threads * (rounds + 3) + 1
        assert audit_count(component="parts", operation="update") == \
            threads * rounds * 3
        assert audit_count(component="parts", operation="update",
                           record_id=str(shared.id)) == threads * rounds
        assert audit_count(component="parts", operation="soft_delete") == \
            threads * (rounds // 2 + 3)
        assert audit_count(component="parts", operation="restore") == \
            threads * (rounds // 2)
        for n in range(threads):
            assert audit_count(actor="thread-%d" % n) == rounds * 4 + 3 + 3 + \
                2 * (rounds // 2)


def test_sqlite_write_that_reads_first_holds_the_write_lock(sqlite_db, db_path):
    """An audited write on SQLite takes the write lock before its first read.

    A deferred transaction that reads (the before-state, a hook's lookup)
    and then writes fails at once with "database is locked" when another
    connection commits in between.  Here another connection tries to commit
    in exactly that gap, from a hook: it must be the one that waits (and,
    with a short timeout, gives up), while the save goes through.
    """
    import sqlite3

    from peestore.signals import before_update

    sqlite_db(REST_MODELS)
    part = Part.create(name="p")            # a fresh instance: save() re-reads the row
    other = Part.create(name="other")
    outcome = []

    @before_update(sender=Part)
    def meanwhile(sender, instance):
        con = sqlite3.connect(str(db_path), timeout=0.2)
        try:
            con.execute("UPDATE part SET note = 'sneaked in' WHERE id = ?", (other.id,))
            con.commit()
            outcome.append("committed")
        except sqlite3.OperationalError as exc:
            outcome.append(str(exc))
        finally:
            con.close()

    part.qty = 5
    part.save()
    assert outcome == ["database is locked"]
    assert Part.get_by_id(part.id).qty == 5
    assert [e.operation for e in part.history()] == ["update", "create"]
