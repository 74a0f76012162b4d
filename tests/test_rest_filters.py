"""List filters, order_by, limit/offset, fields and X-Total-Count, on every backend."""
import pytest
import webtest

import peestore

from .rest_models import REST_MODELS, Part

W = {"X-User": "tester"}


@pytest.fixture
def api(connect_db):
    """Five parts; a WebTest app over them."""
    connect_db(REST_MODELS)
    rows = [
        dict(name="Alpha_1", price=1.0, qty=5, active=True, made="2024-01-01T00:00:00",
             note="first"),
        dict(name="beta", price=2.5, qty=0, active=False, note=None),
        dict(name="Gamma%", price=10.0, qty=7, active=True, made="2024-06-01T12:00:00",
             note="has 100% cotton", grade="b"),
        dict(name="delta", price=2.5, qty=2, active=True, note="o'brien; DROP TABLE parts"),
        dict(name="epsilon", price=0.0, qty=9, active=False, note="last"),
    ]
    app = peestore.bootstrap(models=REST_MODELS, database_url=peestore.database.obj,
                             create_tables=False)
    test_app = webtest.TestApp(app)
    for row in rows:
        test_app.post_json("/parts/", row, headers=W)
    return test_app


def names(res):
    return [row["name"] for row in res.json]


@pytest.mark.parametrize("query,expected", [
    ("name=beta", ["beta"]),
    ("name__eq=beta", ["beta"]),
    ("name__ne=beta", ["Alpha_1", "Gamma%", "delta", "epsilon"]),
    ("qty__gt=5", ["Gamma%", "epsilon"]),
    ("qty__gte=5", ["Alpha_1", "Gamma%", "epsilon"]),
    ("qty__lt=2", ["beta"]),
    ("qty__lte=2", ["beta", "delta"]),
    ("price__in=2.5,10", ["beta", "Gamma%", "delta"]),
    ("qty__not_in=0,9,5", ["Gamma%", "delta"]),
    ("name__contains=ELT", ["delta"]),
    ("name__startswith=al", ["Alpha_1"]),
    ("name__endswith=TA", ["beta", "delta"]),
    ("name__like=%a", ["beta", "delta"]),
    ("name__like=_eta", []),                      # _ is no wildcard
    ("name__like=alpha_1", ["Alpha_1"]),           # ... it matches itself
    ("name__like=gamma%25", ["Gamma%"]),
    ("name__contains=%25", ["Gamma%"]),            # contains escapes %
    ("note__is_null=true", ["beta"]),
    ("note__is_null=false", ["Alpha_1", "Gamma%", "delta", "epsilon"]),
    ("active=false", ["beta", "epsilon"]),
    ("made__gte=2024-03-01T00:00:00Z", ["Gamma%"]),
    ("made__lt=2024-03-01", ["Alpha_1"]),
    ("grade=b", ["Gamma%"]),
    ("qty__gt=1&active=true", ["Alpha_1", "Gamma%", "delta"]),
    ("note=o'brien; DROP TABLE parts", ["delta"]),
])
def test_operators(api, query, expected):
    """Each operator of SPEC section 6, typed by the field."""
    assert names(api.get("/parts/?" + query)) == expected


def test_order_by(api):
    """order_by: comma-separated, - for descending, id breaks ties."""
    assert names(api.get("/parts/?order_by=-price,name")) == [
        "Gamma%", "beta", "delta", "Alpha_1", "epsilon"]
    assert names(api.get("/parts/?order_by=qty")) == [
        "beta", "delta", "Alpha_1", "Gamma%", "epsilon"]


def test_limit_offset_total(api):
    """limit/offset page; X-Total-Count counts the filtered rows, not the page."""
    res = api.get("/parts/?limit=2&offset=1&order_by=qty")
    assert names(res) == ["delta", "Alpha_1"]
    assert res.headers["X-Total-Count"] == "5"
    res = api.get("/parts/?active=true&limit=1")
    assert res.headers["X-Total-Count"] == "3" and len(res.json) == 1
    assert api.get("/parts/?offset=10").headers["X-Total-Count"] == "5"
    assert api.get("/parts/?limit=0").json == []
    assert api.get("/parts/?limit=0").headers["X-Total-Count"] == "5"
    assert api.get("/parts/?offset=3").headers["X-Total-Count"] == "5"
    assert api.get("/parts/").headers["X-Total-Count"] == "5"


def test_total_counts_deleted_only_when_asked(api):
    """X-Total-Count follows include_deleted."""
    first = api.get("/parts/?limit=1").json[0]
    api.delete("/parts/%d" % first["id"], headers=W)
    assert api.get("/parts/?limit=1").headers["X-Total-Count"] == "4"
    assert api.get("/parts/?limit=1&include_deleted=1").headers["X-Total-Count"] == "5"


def test_fields(api):
    """fields= selects columns, typed as usual."""
    res = api.get("/parts/?fields=name,made&name=Alpha_1")
    assert res.json == [{"name": "Alpha_1", "made": "2024-01-01T00:00:00"}]


@pytest.mark.parametrize("query,word", [
    ("nope=1", "nope"),
    ("name__around=1", "around"),
    ("qty=abc", "qty"),
    ("qty__in=1,x", "qty"),
    ("qty__contains=1", "contains"),
    ("active=maybe", "active"),
    ("made__gt=yesterday", "made"),
    ("note__is_null=perhaps", "is_null"),
    ("order_by=price,nope", "nope"),
    ("order_by=", "order_by"),
    ("fields=name,nope", "nope"),
    ("limit=-1", "limit"),
    ("limit=ten", "limit"),
    ("offset=-3", "offset"),
    ("include_deleted=sure", "include_deleted"),
    ("qty=99999999999999999999999", "qty"),
    ("offset=99999999999999999999999", "offset"),
])
def test_bad_parameters_400(api, query, word):
    """An unknown field or operator, or an unparsable value, is a 400 that names it."""
    res = api.get("/parts/?" + query, status=400)
    assert word in res.json["detail"]


def test_filters_on_foreign_key(api):
    """A foreign key filters by the id of the row it points to."""
    part = api.get("/parts/?name=beta").json[0]
    api.post_json("/bins/", {"part": part["id"], "label": "B1"}, headers=W)
    api.post_json("/bins/", {"part": part["id"] + 1, "label": "B2"}, headers=W)
    res = api.get("/bins/?part=%d" % part["id"])
    assert [b["label"] for b in res.json] == ["B1"]
    assert Part.select().count() == 5


LONG_FILTERS = ["name", "name__ne", "name__contains", "name__startswith", "name__endswith",
                "name__like", "note__contains", "name__in", "name__not_in", "qty", "qty__gt",
                "price__lte", "made__gte", "active", "note__is_null", "grade"]


@pytest.mark.parametrize("param", LONG_FILTERS)
def test_a_filter_value_over_the_bound_is_a_400(api, param):
    """Every filter's value (each item of an in/not_in list) may have MAX_VALUE_CHARS
    characters: one more is a 400 that names the parameter and the bound, a megabyte
    too, and the answer does not echo the value back."""
    from peestore.rest._filters import MAX_VALUE_CHARS

    assert MAX_VALUE_CHARS == 1000
    for value in ("a" * (MAX_VALUE_CHARS + 1), "a" * (1 << 20),
                  "b," + "7" * (MAX_VALUE_CHARS + 1)):
        if "," in value and not param.endswith("in"):
            continue
        res = api.get("/parts/", params={param: value}, status=400)
        detail = res.json["detail"]
        assert detail.startswith("query parameter %s: " % param), detail
        assert str(MAX_VALUE_CHARS) in detail and len(detail) < 300


def test_values_up_to_the_bound_are_taken(api):
    """A value of exactly MAX_VALUE_CHARS characters is a filter like any other; an
    in-list may be longer as a whole (900 short values)."""
    from peestore.rest._filters import MAX_VALUE_CHARS

    assert api.get("/parts/", params={"note__contains": "x" * MAX_VALUE_CHARS}).json == []
    assert names(api.get("/parts/", params={"name__like": "b" + "%" * 999})) == ["beta"]
    values = ",".join(str(n) for n in range(900))
    assert len(values) > MAX_VALUE_CHARS
    assert len(api.get("/parts/", params={"qty__in": values}).json) == 5


@pytest.mark.parametrize("query", ["order_by=", "fields=", "limit=", "offset=",
                                   "include_deleted="])
def test_other_list_parameters_are_bounded_too(api, query):
    """order_by and fields (each name), limit, offset, include_deleted: a 400 naming the
    parameter for a value over the bound, with no echo of it."""
    param = query[:-1]
    res = api.get("/parts/?" + query + "a" * (1 << 20), status=400)
    assert res.json["detail"].startswith("query parameter %s: " % param)
    assert len(res.json["detail"]) < 300


def test_long_parameter_names_are_not_echoed(api):
    """A megabyte-long unknown parameter name: a 400 of bounded size."""
    res = api.get("/parts/?" + "n" * (1 << 20) + "=1", status=400)
    assert "has no field" in res.json["detail"] and len(res.json["detail"]) < 300
    res = api.get("/parts/?name__" + "o" * (1 << 20) + "=1", status=400)
    assert "unknown operator" in res.json["detail"] and len(res.json["detail"]) < 300


@pytest.mark.parametrize("param", ["component", "record_id", "actor", "operation", "since",
                                   "until", "limit", "offset"])
def test_audit_and_history_filters_are_bounded(api, param):
    """GET /db/audit and GET /C/<id>/history take the same bound."""
    res = api.get("/db/audit", params={param: "a" * 5000}, status=400)
    assert res.json["detail"].startswith("query parameter %s: " % param)
    assert "1000" in res.json["detail"] and len(res.json["detail"]) < 300
    if param in ("limit", "offset"):
        part = api.get("/parts/?name=beta").json[0]
        res = api.get("/parts/%d/history" % part["id"], params={param: "1" * 5000}, status=400)
        assert res.json["detail"].startswith("query parameter %s: " % param)


def test_a_long_filter_over_a_real_server(sqlite_db):
    """Through waitress: a 200 KB contains filter (under waitress' 256 KB header limit)
    is a JSON 400 naming it."""
    import http.client
    import json
    import urllib.parse

    from peestore.rest._server import background

    sqlite_db(REST_MODELS)
    app = peestore.bootstrap(models=REST_MODELS, database_url=peestore.database.obj,
                             create_tables=False)
    with background(app, threads=2) as url:
        conn = http.client.HTTPConnection(url[len("http://"):], timeout=10)
        try:
            conn.request("GET", "/parts/?" + urllib.parse.urlencode(
                {"name__contains": "a" * 200_000}))
            res = conn.getresponse()
            body = json.loads(res.read())
        finally:
            conn.close()
    assert res.status == 400, body
    assert body["detail"].startswith("query parameter name__contains: ")
