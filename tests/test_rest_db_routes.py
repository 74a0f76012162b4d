"""GET /db/health and GET /db/audit."""
import datetime

import pytest
import webtest

import peestore
from peestore import AuditLog

from .rest_models import REST_MODELS, Part

W = {"X-User": "tester"}


@pytest.fixture
def api(connect_db):
    db = connect_db(REST_MODELS)
    return webtest.TestApp(peestore.bootstrap(models=REST_MODELS, database_url=db,
                                              create_tables=False))


def test_health_ok(api, backend):
    """200 {"status": "ok"} with the backend and the time a SELECT 1 took."""
    body = api.get("/db/health").json
    assert body["status"] == "ok"
    assert body["database"] == {"sqlite": "sqlite", "postgres": "postgresql",
                                "mysql": "mysql"}[backend]
    assert body["latency_ms"] >= 0


def test_health_503_when_the_database_does_not_answer(tmp_path):
    """503 {"status": "error"} when the connection cannot even be opened."""
    app = peestore.bootstrap(models=REST_MODELS, create_tables=False,
                             database_url="sqlite:///%s" % (tmp_path / "no" / "dir" / "x.db"))
    res = webtest.TestApp(app).get("/db/health", status=503)
    assert res.json["status"] == "error" and "detail" in res.json
    assert "Traceback" not in res.text


def test_health_503_on_a_server_that_is_down():
    """A PostgreSQL URL where nothing listens: 503, not 500."""
    pytest.importorskip("psycopg2")
    app = peestore.bootstrap(models=REST_MODELS, create_tables=False,
                             database_url="postgresql://nobody@127.0.0.1:1/none")
    assert webtest.TestApp(app).get("/db/health", status=503).json["status"] == "error"


def _writes(api):
    a = api.post_json("/parts/", {"name": "a"}, headers={"X-User": "ann"}).json
    b = api.post_json("/parts/", {"name": "b"}, headers={"X-User": "bob"}).json
    api.patch_json("/parts/%d" % a["id"], {"qty": 1}, headers={"X-User": "bob"})
    api.delete("/parts/%d" % b["id"], headers={"X-User": "ann"})
    return a, b


def test_audit_filters(api):
    """component, record_id, actor, operation filter; newest first; with changed."""
    a, b = _writes(api)
    every = api.get("/db/audit").json
    assert [e["operation"] for e in every] == ["soft_delete", "update", "create", "create"]
    assert every[1]["changed"] == ["qty"]
    assert api.get("/db/audit").headers["X-Total-Count"] == "4"
    assert len(api.get("/db/audit?component=parts").json) == 4
    assert api.get("/db/audit?component=bins").json == []
    assert [e["operation"] for e in api.get("/db/audit?record_id=%d" % a["id"]).json] == [
        "update", "create"]
    assert {e["actor"] for e in api.get("/db/audit?actor=bob").json} == {"bob"}
    assert len(api.get("/db/audit?operation=soft_delete").json) == 1


def test_audit_since_until_limit_offset(api):
    """since/until bound the timestamp; limit and offset page; X-Total-Count totals."""
    _writes(api)
    entries = list(AuditLog.select().order_by(AuditLog.id))
    old = datetime.datetime(2000, 1, 1)
    AuditLog.update(timestamp=old).where(AuditLog.id == entries[0].id).execute()
    assert len(api.get("/db/audit?since=2001-01-01T00:00:00").json) == 3
    assert len(api.get("/db/audit?until=2001-01-01T00:00:00Z").json) == 1
    assert len(api.get("/db/audit?since=2000-01-01T01:00:00%2B02:00").json) == 4
    res = api.get("/db/audit?limit=2&offset=1")
    assert [e["id"] for e in res.json] == [entries[2].id, entries[1].id]
    assert res.headers["X-Total-Count"] == "4"


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=x", "offset=-1",
                                   "since=yesterday", "until=2024-13-01",
                                   "operation=explode", "colour=red"])
def test_audit_bad_parameters_400(api, query):
    """limit outside 1..1000, a bad since/until/operation, an unknown parameter: 400."""
    assert "detail" in api.get("/db/audit?" + query, status=400).json


def test_audit_default_limit_100(api):
    """Without limit, 100 entries at most."""
    Part.create_many([{"name": "n%d" % i} for i in range(105)])
    res = api.get("/db/audit")
    assert len(res.json) == 100 and res.headers["X-Total-Count"] == "105"
    assert len(api.get("/db/audit?limit=1000").json) == 105
