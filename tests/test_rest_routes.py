"""The model routes (SPEC section 6) over WSGI, on every backend."""
import pytest
import webtest

import peestore
from peestore import AuditLog

from .rest_models import REST_MODELS, Bin, Part, Tag

W = {"X-User": "tester"}


@pytest.fixture
def api(connect_db):
    """A WebTest app with the plugin and the REST test models on a fresh database."""
    connect_db(REST_MODELS)
    app = peestore.bootstrap(models=REST_MODELS, database_url=peestore.database.obj,
                             create_tables=False)
    return webtest.TestApp(app)


def _part(api, **fields):
    body = {"name": "p%d" % len(list(Part.select().with_deleted()))}
    body.update(fields)
    return api.post_json("/parts/", body, headers=W).json


def test_create_201_location_etag(api):
    """POST: 201, the row, Location of the new record, an ETag, one audit entry by X-User."""
    res = api.post_json("/parts/", {"name": "bolt", "price": 1.5, "qty": 3}, headers=W)
    assert res.status_int == 201
    row = res.json
    assert row["name"] == "bolt" and row["price"] == 1.5 and row["qty"] == 3
    assert row["active"] is True and row["deleted_at"] is None and row["grade"] == "a"
    assert res.headers["Location"].endswith("/parts/%d" % row["id"])
    assert res.headers["ETag"] == api.get(res.headers["Location"]).headers["ETag"]
    (entry,) = AuditLog.select()
    assert (entry.operation, entry.actor, entry.record_id) == ("create", "tester",
                                                                str(row["id"]))
    # The answer is the row as audited, and as a GET gives it.
    assert entry.after == row == api.get(res.headers["Location"]).json


def test_create_ignores_id_and_deleted_at(api):
    """An auto id and deleted_at in a POST body are read-only: ignored."""
    row = api.post_json("/parts/", {"id": 99, "name": "x", "deleted_at": "2020-01-01T00:00:00"},
                        headers=W).json
    assert row["id"] != 99 and row["deleted_at"] is None


def test_get_and_404(api):
    """GET one: 200 with ETag; 404 for an absent id and an id that cannot be a key."""
    row = _part(api)
    res = api.get("/parts/%d" % row["id"])
    assert res.json == row and res.headers["ETag"].startswith('"')
    assert res.content_type == "application/json"
    assert api.get("/parts/12345", status=404).json["detail"]
    assert "detail" in api.get("/parts/abc", status=404).json


def test_get_if_none_match_304(api):
    """If-None-Match with the current ETag: 304."""
    row = _part(api)
    etag = api.get("/parts/%d" % row["id"]).headers["ETag"]
    api.get("/parts/%d" % row["id"], headers={"If-None-Match": etag}, status=304)


def test_soft_deleted_hidden_unless_include_deleted(api):
    """A soft-deleted row is 404 on GET unless include_deleted=true; lists hide it."""
    row = _part(api)
    assert api.delete("/parts/%d" % row["id"], headers=W).json == {"status": "deleted"}
    api.get("/parts/%d" % row["id"], status=404)
    got = api.get("/parts/%d?include_deleted=true" % row["id"]).json
    assert got["deleted_at"] is not None
    assert api.get("/parts/").json == []
    assert len(api.get("/parts/?include_deleted=true").json) == 1
    api.delete("/parts/%d" % row["id"], headers=W, status=404)


def test_put_replaces_and_upserts(api):
    """PUT: 200 replacing every writable field (left-out ones get defaults); 201 at a new id."""
    row = _part(api, price=9.0, qty=4, note="n")
    res = api.put_json("/parts/%d" % row["id"], {"id": 555, "name": "renamed"}, headers=W)
    assert res.status_int == 200
    assert res.json["id"] == row["id"] and res.json["name"] == "renamed"
    assert res.json["price"] == 0.0 and res.json["qty"] == 0 and res.json["note"] is None
    created = api.put_json("/parts/777", {"name": "at777"}, headers=W)
    assert created.status_int == 201 and created.json["id"] == 777
    assert created.headers["Location"].endswith("/parts/777")
    # The next POST gets a fresh id (the PostgreSQL sequence moved past 777).
    assert _part(api)["id"] > 777


def test_put_missing_required_422(api):
    """PUT without a required field: 422 naming it."""
    row = _part(api)
    res = api.put_json("/parts/%d" % row["id"], {"price": 1.0}, headers=W, status=422)
    assert res.json["errors"] == {"name": "required"}


def test_put_on_soft_deleted_409(api):
    """PUT on a soft-deleted row: 409 (restore it first)."""
    row = _part(api)
    api.delete("/parts/%d" % row["id"], headers=W)
    api.put_json("/parts/%d" % row["id"], {"name": "x"}, headers=W, status=409)


def test_patch_changes_only_given_fields(api):
    """PATCH: only the given fields change; 404 when absent; no entry when nothing changes."""
    row = _part(api, qty=1, note="keep")
    res = api.patch_json("/parts/%d" % row["id"], {"qty": 2}, headers=W)
    assert res.json["qty"] == 2 and res.json["note"] == "keep"
    before = AuditLog.select().count()
    api.patch_json("/parts/%d" % row["id"], {"qty": 2}, headers=W)
    assert AuditLog.select().count() == before
    api.patch_json("/parts/4242", {"qty": 2}, headers=W, status=404)
    (entry,) = AuditLog.select().where(AuditLog.operation == "update")
    assert entry.actor == "tester"


def test_delete_hard_model(api):
    """DELETE on a model without deleted_at deletes the row."""
    part = _part(api)
    b = api.post_json("/bins/", {"part": part["id"], "label": "L1"}, headers=W).json
    assert b["part"] == part["id"]
    api.delete("/bins/%d" % b["id"], headers=W)
    assert Bin.select().count() == 0
    api.delete("/bins/%d" % b["id"], headers=W, status=404)


def test_restore_route(api):
    """restore: true once, false when not deleted; 404 absent; 409 without soft delete."""
    row = _part(api)
    url = "/parts/%d/restore" % row["id"]
    assert api.post(url, headers=W).json == {"status": "ok", "restored": False}
    api.delete("/parts/%d" % row["id"], headers=W)
    assert api.post(url, headers=W).json == {"status": "ok", "restored": True}
    api.get("/parts/%d" % row["id"])
    api.post("/parts/999/restore", headers=W, status=404)
    b = api.post_json("/bins/", {"part": row["id"], "label": "L"}, headers=W).json
    api.post("/bins/%d/restore" % b["id"], headers=W, status=409)


def test_history_and_revert(api):
    """history: newest first with changed; revert to an entry's state; 422 for another's."""
    row = _part(api, qty=1)
    api.patch_json("/parts/%d" % row["id"], {"qty": 5, "note": "x"}, headers=W)
    history = api.get("/parts/%d/history" % row["id"]).json
    assert [h["operation"] for h in history] == ["update", "create"]
    assert sorted(history[0]["changed"]) == ["note", "qty"]
    res = api.post_json("/parts/%d/revert" % row["id"], {"audit_id": history[1]["id"]},
                        headers=W)
    assert res.json["qty"] == 1 and res.json["note"] is None
    other = _part(api)
    other_entry = api.get("/parts/%d/history" % other["id"]).json[0]["id"]
    res = api.post_json("/parts/%d/revert" % row["id"], {"audit_id": other_entry},
                        headers=W, status=422)
    assert "detail" in res.json
    api.get("/parts/31337/history", status=404)
    bad = api.post_json("/parts/%d/revert" % row["id"], {"audit_id": "1", "x": 1},
                        headers=W, status=422).json
    assert bad["errors"] == {"audit_id": "expected an integer", "x": "unknown field"}
    api.post_json("/parts/%d/revert" % row["id"], {}, headers=W, status=422)


def test_history_paging(api):
    """history takes limit (1..1000) and offset."""
    row = _part(api)
    for qty in range(1, 4):
        api.patch_json("/parts/%d" % row["id"], {"qty": qty}, headers=W)
    assert len(api.get("/parts/%d/history?limit=2" % row["id"]).json) == 2
    assert len(api.get("/parts/%d/history?offset=3" % row["id"]).json) == 1
    api.get("/parts/%d/history?limit=0" % row["id"], status=400)
    api.get("/parts/%d/history?limit=1001" % row["id"], status=400)


def test_revert_recreates_hard_deleted(api):
    """revert on a hard-deleted row brings it back at its id."""
    part = _part(api)
    b = api.post_json("/bins/", {"part": part["id"], "label": "L"}, headers=W).json
    entry = api.get("/bins/%d/history" % b["id"]).json[0]
    api.delete("/bins/%d" % b["id"], headers=W)
    res = api.post_json("/bins/%d/revert" % b["id"], {"audit_id": entry["id"]}, headers=W)
    assert res.json == b
    assert api.get("/bins/%d" % b["id"]).json == b


def test_etag_if_match(api):
    """If-Match: a stale ETag is 412 and changes nothing, the current one works, * too."""
    row = _part(api)
    url = "/parts/%d" % row["id"]
    old = api.get(url).headers["ETag"]
    new = api.patch_json(url, {"qty": 7}, headers=dict(W, **{"If-Match": old})).headers["ETag"]
    assert new != old and new == api.get(url).headers["ETag"]
    stale = dict(W, **{"If-Match": old})
    api.patch_json(url, {"qty": 8}, headers=stale, status=412)
    api.put_json(url, {"name": "z"}, headers=stale, status=412)
    api.delete(url, headers=stale, status=412)
    api.post(url + "/restore", headers=stale, status=412)
    first = api.get(url + "/history").json[-1]["id"]
    api.post_json(url + "/revert", {"audit_id": first}, headers=stale, status=412)
    assert api.get(url).json["qty"] == 7
    api.patch_json(url, {"qty": 9}, headers=dict(W, **{"If-Match": "*"}))
    api.put_json("/parts/9999", {"name": "n"}, headers=dict(W, **{"If-Match": "*"}),
                 status=412)
    api.delete(url, headers=dict(W, **{"If-Match": api.get(url).headers["ETag"]}))


def test_text_primary_key(api):
    """A model keyed by text: POST takes the key, PUT creates at it, 409 on a duplicate."""
    res = api.post_json("/tags/", {"code": "hot", "title": "Hot"}, headers=W)
    assert res.headers["Location"].endswith("/tags/hot")
    api.post_json("/tags/", {"code": "hot", "title": "again"}, headers=W, status=409)
    api.put_json("/tags/cold", {"title": "Cold"}, headers=W, status=201)
    assert Tag.get_by_id("cold").title == "Cold"
    api.post_json("/tags/", {"title": "no code"}, headers=W, status=422)


def test_unique_violation_409_and_fk_422(api):
    """A duplicate unique value is 409; a foreign key to nothing is 422."""
    _part(api, name="dup")
    res = api.post_json("/parts/", {"name": "dup"}, headers=W, status=409)
    assert "detail" in res.json
    api.post_json("/bins/", {"part": 4040, "label": "x"}, headers=W, status=422)
    assert AuditLog.select().count() == 1


def test_max_records(connect_db):
    """max_records: a POST (or a PUT that creates) over the limit is 409."""
    connect_db(REST_MODELS)
    app = peestore.bootstrap(models=REST_MODELS, database_url=peestore.database.obj,
                             create_tables=False, max_records_per_model=2)
    api = webtest.TestApp(app)
    _part(api)
    _part(api)
    assert "max_records" in api.post_json("/parts/", {"name": "c"}, headers=W,
                                          status=409).json["detail"]
    api.put_json("/parts/50", {"name": "c"}, headers=W, status=409)
    assert Part.select().count() == 2


def test_fast_and_filtered_reads_agree(api):
    """Pre-rendered reads (get, plain page) give what the filtered query path gives."""
    row = _part(api, price=2.25, qty=-3, active=False, made="2024-02-03T04:05:06.789",
                note="ünïcode ✓")
    by_id = api.get("/parts/%d" % row["id"]).json
    assert by_id == row
    assert api.get("/parts/").json == [row]
    assert api.get("/parts/?id=%d" % row["id"]).json == [row]
    assert api.get("/parts/?limit=5&offset=0").json == [row]
    api.delete("/parts/%d" % row["id"], headers=W)
    deleted = api.get("/parts/?include_deleted=true").json
    assert deleted == api.get("/parts/?include_deleted=true&qty=-3").json
    assert deleted[0]["deleted_at"] and deleted[0]["made"].startswith("2024-02-03T04:05:06")
