"""Pages as one JSON text from SQLite (JsonRows): the same answer as the cursor's,
value for value, whatever the columns hold; the cursor wherever it cannot be used."""
import datetime
import decimal
import json
import random
import threading
import urllib.request
import uuid

import peewee
import webtest

import peestore
from peestore.db._gate import gate
from peestore.rest._compiled import CompiledSelect, JsonRows
from peestore.rest._fields import ModelInfo
from peestore.rest._server import background

from .rest_models import REST_MODELS, Part

W = {"X-User": "tester"}


class Sample(peestore.BaseAuditedModel):
    name = peewee.CharField(null=True)
    note = peewee.TextField(null=True)
    count = peewee.IntegerField(null=True)
    big = peewee.BigIntegerField(null=True)
    ratio = peewee.FloatField(null=True)
    amount = peewee.DecimalField(max_digits=12, decimal_places=4, null=True)
    flag = peewee.BooleanField(null=True)
    at = peewee.DateTimeField(null=True)
    day = peewee.DateField(null=True)
    tick = peewee.TimeField(null=True)
    token = peewee.UUIDField(null=True)


class Blobby(peestore.BaseAuditedModel):
    data = peewee.BlobField(null=True)


def _pages(model):
    info = ModelInfo(model)
    pk = info.pk
    select = CompiledSelect(lambda limit, offset: model.select().order_by(pk.asc())
                            .limit(limit).offset(offset), 2)
    return info, select, JsonRows.of_model(info, select)


def _floats(rng):
    return [0.1, 0.1 + 0.2, 1 / 3, -2.5e-7, 9.87654321e99, -1e-300, 123456789.123456789,
            2000.0, 0.0, 5e-324, 2.2250738585072014e-308] + [
        rng.uniform(-1, 1) * 10.0 ** rng.randint(-300, 99) for _ in range(60)]


def test_json_rows_are_the_cursor_rows(sqlite_db):
    """Every kind of value, NULLs, awkward floats and text, and values SQLite keeps in
    a column of another type: the page from JSON converts to exactly the cursor's."""
    db = sqlite_db([Sample])
    rng = random.Random(11)
    texts = ['plain', 'quote " and \\ backslash', "tab\tnew\nline", "ünïcødé ✓ 漢字 🙂",
             "\x01\x1f control", "", "null", "[1,2]", "1.5"]
    with peestore.actor("t"):
        for i, ratio in enumerate(_floats(rng)):
            Sample.create(
                name=texts[i % len(texts)], note=None if i % 3 else texts[-i % len(texts)],
                count=rng.randint(-10**6, 10**6), big=rng.choice([2**62, -2**63, 2**53 + 1, 7]),
                ratio=ratio, amount=decimal.Decimal("%.4f" % rng.uniform(-9999, 9999)),
                flag=rng.choice([True, False, None]),
                at=datetime.datetime(2026, 1, 2, 3, 4, 5, rng.choice([0, 123456])),
                day=datetime.date(2026, 2, 28), tick=datetime.time(13, 14, 15),
                token=uuid.UUID(int=rng.getrandbits(128)))
        Sample.create()  # every field NULL
    # Values of another type than the column's, written past peewee.
    db.execute_sql("UPDATE sample SET count = 2.75, ratio = 'text', at = 12.5 WHERE id = 3")
    db.execute_sql("UPDATE sample SET ratio = 42 WHERE id = 4")
    info, select, rows = _pages(Sample)
    for limit, offset in ((100, 0), (10, 5), (1, 0), (0, 0), (1000, 40), (5, 999)):
        from_cursor = info.raw_rows(select.rows(db, (limit, offset)))
        from_json = info.raw_rows(rows.rows(db, (limit, offset)))
        assert json.dumps(from_json) == json.dumps(from_cursor), (limit, offset)
    assert len(info.raw_rows(rows.rows(db, (1000, 0)))) == Sample.select().count()
    # Past 1e100 SQLite's printf is not exact: a page holding such a REAL comes
    # from the cursor (None here); pages without it still come from JSON.
    db.execute_sql("UPDATE sample SET ratio = 1.7976931348623157e308 WHERE id = 20")
    assert rows.rows(db, (100, 0)) is None
    assert info.raw_rows(rows.rows(db, (10, 0))) == info.raw_rows(select.rows(db, (10, 0)))


def test_what_json_cannot_hold_goes_to_the_cursor(sqlite_db):
    """A BLOB (in a BLOB column, or one written into a text column) and an infinite
    REAL: rows() says None and the caller uses the cursor; the REST list of a model
    with a BLOB field never tries."""
    db = sqlite_db([Sample, Blobby])
    with peestore.actor("t"):
        Sample.create(name="a")
    _, _, rows = _pages(Sample)
    assert rows.rows(db, (10, 0)) is not None
    db.execute_sql("UPDATE sample SET name = x'00ff' WHERE id = 1")
    assert rows.rows(db, (10, 0)) is None
    db.execute_sql("UPDATE sample SET name = 'a', ratio = 9e999 WHERE id = 1")
    assert rows.rows(db, (10, 0)) is None
    db.execute_sql("UPDATE sample SET ratio = 1.5 WHERE id = 1")
    assert rows.rows(db, (10, 0)) is not None  # only while the value is there
    assert _pages(Blobby)[2] is None


def test_not_sqlite_means_the_cursor(connect_db, backend):
    """On PostgreSQL and MariaDB rows() is None: the cursor as always."""
    db = connect_db([Sample])
    with peestore.actor("t"):
        Sample.create(name="a", ratio=0.5)
    info, select, rows = _pages(Sample)
    got = rows.rows(db, (10, 0))
    if backend == "sqlite":
        assert info.raw_rows(got) == info.raw_rows(select.rows(db, (10, 0)))
    else:
        assert got is None


def test_list_route_same_answer_crowded_or_not(connect_db, monkeypatch):
    """The list route answers the same pages, headers and all, whether it takes them
    from JSON (other requests in flight) or from the cursor."""
    db = connect_db(REST_MODELS)
    api = webtest.TestApp(peestore.bootstrap(models=REST_MODELS, database_url=db,
                                             create_tables=False))
    for i in range(30):
        api.post_json("/parts/", {"name": "p%02d" % i, "price": i / 7, "qty": i,
                                  "made": "2026-11-28T12:00:%02d.250000" % i}, headers=W)
    api.delete("/parts/%d" % Part.select().order_by(Part.id)[3].id, headers=W)
    queries = ["", "?limit=10", "?limit=10&offset=25", "?limit=0", "?limit=100",
               "?limit=5&include_deleted=true", "?offset=2&limit=1000"]
    quiet = {q: api.get("/parts/" + q) for q in queries}
    monkeypatch.setattr(gate, "crowded", lambda: True)
    for q in queries:
        crowded = api.get("/parts/" + q)
        assert crowded.body == quiet[q].body, q
        assert crowded.headers["X-Total-Count"] == quiet[q].headers["X-Total-Count"], q


def test_pages_under_concurrent_load(sqlite_db):
    """With eight clients at once on a real server (so the JSON pages are used), every
    page is the full, ordered page."""
    db = sqlite_db(REST_MODELS)
    with peestore.actor("t"):
        for i in range(120):
            Part.create(name="p%03d" % i, price=i * 0.1)
    expected = [p.to_dict() for p in Part.select().order_by(Part.id).limit(100)]
    db.close()
    app = peestore.bootstrap(models=REST_MODELS, database_url=db, create_tables=False)
    used = []
    real = JsonRows.rows

    def counting(self, *args):
        got = real(self, *args)
        used.append(got is not None)
        return got

    JsonRows.rows = counting
    try:
        with background(app, threads=4) as url:
            bad = []

            def client():
                for _ in range(25):
                    with urllib.request.urlopen(url + "/parts/?limit=100", timeout=20) as res:
                        if json.loads(res.read()) != expected:
                            bad.append(1)

            threads = [threading.Thread(target=client) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
    finally:
        JsonRows.rows = real
    assert not bad
    assert any(used), "no page was taken from JSON: the test did not load the server"
