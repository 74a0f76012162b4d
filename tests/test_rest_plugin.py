"""RestPlugin as a Bottle plugin: API v2, prefix, mount, connections, gate, streaming."""
import threading

import bottle
import pytest
import webtest

import peestore
from peestore.db._connect import get_database
from peestore.db._gate import gate

from .rest_models import REST_MODELS, Part

W = {"X-User": "tester"}


def test_plugin_api_v2():
    """name, api = 2, setup, apply, close."""
    plugin = peestore.RestPlugin(models=REST_MODELS)
    assert plugin.name == "peestore" and plugin.api == 2
    assert callable(plugin.setup) and callable(plugin.apply) and callable(plugin.close)


def test_install_twice_is_refused(sqlite_db):
    """Two RestPlugins on one app would add the routes twice: PluginError."""
    app = bottle.Bottle()
    app.install(peestore.RestPlugin(models=REST_MODELS))
    with pytest.raises(bottle.PluginError):
        app.install(peestore.RestPlugin(models=REST_MODELS))


@pytest.mark.parametrize("kwargs", [
    {"models": [object]},
    {"models": REST_MODELS, "max_records": -1},
    {"models": REST_MODELS, "max_body_bytes": 0},
    {"models": REST_MODELS, "max_upload_bytes": "big"},
    {"models": REST_MODELS, "authenticate": "yes"},
])
def test_bad_arguments(kwargs):
    """Bad plugin arguments are a ConfigurationError that says what is wrong."""
    with pytest.raises(peestore.ConfigurationError):
        peestore.RestPlugin(**kwargs)


def test_same_component_twice_is_refused():
    """Two models with one component cannot share the URL."""
    class Other(peestore.BaseAuditedModel):
        class Meta:
            component = "parts"
            table_name = "other_parts"

    with pytest.raises(peestore.ConfigurationError, match="component"):
        peestore.RestPlugin(models=[Part, Other])


def test_prefix(sqlite_db):
    """prefix= puts every route (model, /db, /openapi.json) under it."""
    sqlite_db(REST_MODELS)
    app = bottle.Bottle()
    plugin = peestore.RestPlugin(models=REST_MODELS, prefix="api/v1/")
    app.install(plugin)
    assert plugin.prefix == "/api/v1" and plugin.route_path("/x") == "/api/v1/x"
    api = webtest.TestApp(app)
    res = api.post_json("/api/v1/parts/", {"name": "a"}, headers=W)
    assert res.headers["Location"].endswith("/api/v1/parts/%d" % res.json["id"])
    api.get(res.headers["Location"])
    api.get("/api/v1/db/health")
    doc = api.get("/api/v1/openapi.json").json
    assert "/api/v1/parts/{id}" in doc["paths"]
    api.get("/parts/", status=404)


@pytest.mark.parametrize("mount_prefix", ["/machine/", "/machine"])
def test_mounted(sqlite_db, mount_prefix):
    """Mounted under a prefix (both of Bottle's mount styles) the routes, Location and
    the OpenAPI server URL follow the mount point."""
    sqlite_db(REST_MODELS)
    child = bottle.Bottle()
    child.install(peestore.RestPlugin(models=REST_MODELS))
    parent = bottle.Bottle()
    peestore.rest.install_error_pages(parent)
    parent.mount(mount_prefix, child)
    api = webtest.TestApp(parent)
    res = api.post_json("/machine/parts/", {"name": "a"}, headers=W)
    assert res.headers["Location"].endswith("/machine/parts/%d" % res.json["id"])
    assert api.get(res.headers["Location"]).json["name"] == "a"
    assert api.get("/machine/openapi.json").json["servers"] == [{"url": "/machine"}]
    assert "detail" in api.get("/machine/nowhere", status=404).json


def test_connection_closed_after_each_request(sqlite_db):
    """The plugin closes the connection it opened; one opened before is left open."""
    db = sqlite_db(REST_MODELS)
    api = webtest.TestApp(peestore.bootstrap(models=REST_MODELS, database_url=db,
                                             create_tables=False))
    if not db.is_closed():
        db.close()
    api.post_json("/parts/", {"name": "a"}, headers=W)
    assert db.is_closed()
    api.get("/parts/")
    assert db.is_closed()
    api.get("/parts/nope", status=404)
    assert db.is_closed()
    db.connect()
    api.get("/parts/")
    assert not db.is_closed()


def test_user_routes_get_a_connection_and_json_errors(sqlite_db):
    """apply wraps the user's own routes: they may query, and errors are JSON."""
    db = sqlite_db(REST_MODELS)
    app = bottle.Bottle()

    @app.get("/count")
    def count():
        return {"parts": Part.select().count()}

    app.install(peestore.RestPlugin(models=REST_MODELS))
    db.close()
    api = webtest.TestApp(app)
    assert api.get("/count").json == {"parts": 0}
    assert db.is_closed()


def test_streamed_response_keeps_connection_and_gate(sqlite_db):
    """A route that returns a generator keeps its connection (and the gate) until the
    body is sent; then both are released."""
    db = sqlite_db(REST_MODELS)
    Part.create(name="a")
    db.close()
    app = bottle.Bottle()
    seen = []

    @app.get("/stream")
    def stream():
        def rows():
            for part in Part.select():
                seen.append(not db.is_closed())
                yield part.name + "\n"
        return rows()

    app.install(peestore.RestPlugin(models=REST_MODELS))
    assert webtest.TestApp(app).get("/stream").text == "a\n"
    assert seen == [True]
    assert db.is_closed()
    with gate.exclusive():  # nothing holds the gate any more
        pass


def test_requests_wait_for_a_restore(sqlite_db):
    """While the gate is held exclusive (a restore), requests wait, then go on."""
    sqlite_db(REST_MODELS)
    api = webtest.TestApp(peestore.bootstrap(models=REST_MODELS,
                                             database_url=get_database(),
                                             create_tables=False))
    done = threading.Event()
    results = []

    def request():
        results.append(api.get("/parts/").status_int)
        done.set()

    with gate.exclusive():
        thread = threading.Thread(target=request)
        thread.start()
        assert not done.wait(0.3)
    assert done.wait(5)
    thread.join(5)
    assert results == [200]


def test_bootstrap_creates_app_and_tables(tmp_path):
    """bootstrap connects, creates the tables and installs the plugin on a new app."""
    app = peestore.bootstrap(models=REST_MODELS,
                             database_url="sqlite:///%s" % (tmp_path / "boot.db"))
    assert isinstance(app, bottle.Bottle)
    assert any(isinstance(p, peestore.RestPlugin) for p in app.plugins)
    api = webtest.TestApp(app)
    api.post_json("/parts/", {"name": "a"}, headers=W, status=201)
    get_database().close()


def test_bootstrap_without_db_routes(tmp_path):
    """enable_db_routes=False leaves out /db."""
    app = peestore.bootstrap(bottle.Bottle(), models=REST_MODELS, enable_db_routes=False,
                             database_url="sqlite:///%s" % (tmp_path / "boot.db"))
    webtest.TestApp(app).get("/db/health", status=404)
    get_database().close()
