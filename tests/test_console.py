"""The operator console's pages over WSGI: every page, deep links, 404/401/403 pages,
the static files, page weight, escaping, configuration (the browser tests drive it)."""
import re

import bottle
import peewee
import pytest
import webtest

import peestore
# At import, not inside a test: the hook fixtures would remove the demo's hooks.
from peestore.demo import MODELS, Machine, make_app
from peestore.db._connect import get_database

PAGES = ["", "machines", "machines/1", "machines/new", "recipes", "recipes/1",
         "operator_logs", "audit", "diagram", "data"]
WEIGHT_LIMIT = 100 * 1024


@pytest.fixture
def console(db_url):
    app = make_app(db_url)
    yield webtest.TestApp(app)
    get_database().close()


def _body_data(page):
    """The ``data-`` attributes of the page's <body>."""
    body = re.search(r"<body([^>]*)>", page.text).group(1)
    return dict(re.findall(r'data-([a-z]+)="([^"]*)"', body))


def test_every_page_answers_the_whole_page(console):
    """Each console path answers a whole HTML page that loads the console's script and
    style from the server itself, with a policy that runs nothing else."""
    for path in PAGES:
        page = console.get("/db/console/" + path)
        assert page.status_int == 200 and page.content_type == "text/html", path
        assert page.text.startswith("<!DOCTYPE html>") and "</html>" in page.text
        assert re.search(r'<script src="/db/console/static/console\.js\?v=\w+" defer>',
                         page.text)
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
        assert page.headers["Cache-Control"] == "no-store"
        assert "http://" not in page.text and "https://" not in page.text  # nothing from elsewhere


def test_deep_links_answer_the_page(console):
    """A table page with filters, sort and offset in its URL (a bookmark, a reload) answers
    the same page; the script reads them from the URL."""
    page = console.get("/db/console/machines?name__contains=press&order_by=-name&offset=50")
    assert _body_data(page)["page"] == "table"
    page = console.get("/db/console/audit?actor=demo&operation=create")
    assert _body_data(page)["page"] == "audit"
    assert console.get("/db/console", status=302).headers["Location"].endswith("/db/console/")


def test_unknown_component_or_id_is_a_404_page(console):
    """An unknown component, an absent id, or an id that cannot be one is a 404 page
    that says so (HTML, never a traceback)."""
    page = console.get("/db/console/valves", status=404)
    assert page.content_type == "text/html"
    assert "There is no component called &#039;valves&#039; here" in page.text
    assert "machines, operator_logs, recipes" in page.text
    for path in ("machines/999", "machines/abc", "machines/99999999999999999999999"):
        page = console.get("/db/console/" + path, status=404)
        assert "There is no machines record with id" in page.text, path
    assert "There is no component" in console.get("/db/console/valves/new", status=404).text
    assert console.get("/db/console/static/other.js", status=404).content_type == "text/html"


def test_a_soft_deleted_record_still_has_its_page(console):
    """A soft-deleted row's page opens (to restore it); a hard-deleted one is a 404."""
    recipe = console.get("/recipes/").json[0]
    console.delete("/recipes/%d" % recipe["id"], headers={"X-User": "t"})
    console.get("/db/console/recipes/%d" % recipe["id"], status=200)
    console.delete("/operator_logs/1", headers={"X-User": "t"})
    console.get("/db/console/operator_logs/1", status=404)


def test_static_files_are_cached_by_version(console):
    """The script and style carry an ETag; under their ?v= version they are cached for
    good, otherwise revalidated; a matching If-None-Match is a 304."""
    page = console.get("/db/console/")
    url = re.search(r'src="(/db/console/static/console\.js\?v=(\w+))"', page.text)
    js = console.get(url.group(1))
    assert js.content_type == "text/javascript"
    assert js.headers["ETag"] == '"%s"' % url.group(2)
    assert "immutable" in js.headers["Cache-Control"]
    assert console.get("/db/console/static/console.js").headers["Cache-Control"] == "no-cache"
    console.get("/db/console/static/console.js", headers={"If-None-Match": js.headers["ETag"]},
                status=304)
    css = console.get(re.search(r'href="(/db/console/static/console\.css\?v=\w+)"',
                                page.text).group(1))
    assert css.content_type == "text/css" and "min-height: 44px" in css.text
    for name in ("..%2f_routes.py", "console.js.map", "__init__.py"):
        console.get("/db/console/static/" + name, status=404)


def test_every_page_weighs_under_100_kb(console):
    """HTML, script and style together: under 100 KB for every page."""
    js = len(console.get("/db/console/static/console.js").body)
    css = len(console.get("/db/console/static/console.css").body)
    for path in PAGES:
        html = len(console.get("/db/console/" + path).body)
        assert html + js + css < WEIGHT_LIMIT, (path, html, js, css)


class Valve(peestore.BaseAuditedModel):
    name = peewee.CharField(max_length=40, help_text='"><script>alert(1)</script>')

    class Meta:
        component = "valves"


def test_model_text_in_a_page_is_escaped(sqlite_db):
    """What the page embeds (field help text, component names) is escaped by the
    template: no markup of its own reaches the page."""
    sqlite_db([Valve])
    app = bottle.Bottle()
    app.install(peestore.RestPlugin(models=[Valve]))
    page = webtest.TestApp(app).get("/db/console/valves/new")
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


class Audit(peestore.BaseAuditedModel):
    name = peewee.CharField()

    class Meta:
        component = "audit"


def test_a_component_named_like_a_console_page_is_refused(sqlite_db):
    """A component called audit, diagram, data or static would hide a console page: the
    plugin refuses it and says what to do; with console=False it is fine."""
    sqlite_db([Audit])
    with pytest.raises(peestore.ConfigurationError, match=r"operator console page "
                       r"\(/db/console/audit\).*Meta\.component.*console=False"):
        peestore.RestPlugin(models=[Audit])
    app = bottle.Bottle()
    app.install(peestore.RestPlugin(models=[Audit], console=False))
    webtest.TestApp(app).get("/audit/")


def test_console_false_adds_no_pages(sqlite_db, tmp_path):
    """RestPlugin(console=False) and bootstrap(enable_console=False): no console routes."""
    sqlite_db(MODELS)
    app = bottle.Bottle()
    app.install(peestore.RestPlugin(models=MODELS, console=False))
    assert not [r for r in app.routes if "/console" in r.rule]
    assert webtest.TestApp(app).get("/db/console/", status=404).json["detail"]
    app = peestore.bootstrap(models=MODELS, database_url="sqlite:///%s" % (tmp_path / "b.db"),
                             enable_console=False)
    assert not [r for r in app.routes if "/console" in r.rule]
    app = peestore.bootstrap(models=MODELS, database_url="sqlite:///%s" % (tmp_path / "c.db"))
    assert [r for r in app.routes if "/console" in r.rule]


USERS = {"ada": ["admin"], "bob": []}


def _authenticate(request):
    name, _password = request.auth or (None, None)
    return {"name": name, "roles": USERS[name]} if name in USERS else None


_authenticate.scheme = 'Basic realm="press-1"'


def _basic(name):
    import base64

    return {"Authorization": "Basic " + base64.b64encode(b"%s:pw" % name.encode()).decode()}


@pytest.fixture
def guarded(sqlite_db):
    sqlite_db(MODELS)
    app = bottle.Bottle()
    app.install(peestore.RestPlugin(models=MODELS, authenticate=_authenticate))
    return webtest.TestApp(app)


def test_console_pages_go_through_authenticate(guarded):
    """With authenticate, a page without accepted credentials is a 401 page that explains
    and names the app's challenge (a browser then asks for a password); the script and
    style load without credentials, so the explanation is styled."""
    page = guarded.get("/db/console/machines", status=401)
    assert page.content_type == "text/html"
    assert page.headers["WWW-Authenticate"] == 'Basic realm="press-1"'
    assert "Sign in needed" in page.text and "no credentials it accepts" in page.text
    guarded.get("/db/console/static/console.css")
    page = guarded.get("/db/console/machines", headers=_basic("ada"))
    data = _body_data(page)
    assert (data["user"], data["auth"], data["admin"]) == ("ada", "1", "1")
    assert 'href="/db/console/data"' in page.text


def test_a_non_admin_gets_no_data_tools(guarded):
    """An identity without the admin role sees no data tools link; their page is a 403
    that explains; the routes themselves still refuse it."""
    bob = _basic("bob")
    page = guarded.get("/db/console/", headers=bob)
    assert _body_data(page)["admin"] == "0"
    assert "/db/console/data" not in page.text and "Data tools" not in page.text
    page = guarded.get("/db/console/data", headers=bob, status=403)
    assert "need the admin role, and bob does not have it" in page.text
    assert guarded.get("/db/backup.sqlite", headers=bob, status=403).json["detail"]
    assert guarded.get("/db/export.zip", headers=bob, status=403).json["detail"]
    guarded.get("/db/console/data", headers=_basic("ada"))


def test_under_a_prefix_and_a_mount(sqlite_db):
    """The pages and their links follow the plugin's prefix and the mount point."""
    sqlite_db(MODELS)
    with peestore.actor("t"):
        machine = Machine.create(name="m", serial="s")
    app = bottle.Bottle()
    app.install(peestore.RestPlugin(models=MODELS, prefix="/api"))
    page = webtest.TestApp(app).get("/api/db/console/machines")
    assert _body_data(page)["root"] == "/api"
    assert 'src="/api/db/console/static/console.js?v=' in page.text
    parent = bottle.Bottle()
    parent.mount("/machine/", app)
    client = webtest.TestApp(parent)
    page = client.get("/machine/api/db/console/machines/%d" % machine.id)
    assert _body_data(page)["root"] == "/machine/api"
    assert 'href="/machine/api/db/console/audit"' in page.text
    client.get(re.search(r'src="([^"]+)"', page.text).group(1))


def test_without_db_routes(sqlite_db):
    """With db_routes=False the pages that need them say so (404) and are not linked."""
    sqlite_db(MODELS)
    app = bottle.Bottle()
    app.install(peestore.RestPlugin(models=MODELS, db_routes=False))
    client = webtest.TestApp(app)
    page = client.get("/db/console/")
    assert "/db/console/audit" not in page.text and 'id="health"' not in page.text
    for name in ("audit", "diagram", "data"):
        assert "db_routes=False" in client.get("/db/console/" + name, status=404).text


def test_the_record_page_checks_on_every_backend(console):
    """The record page's existence check runs on each backend (ids as the URL gives them)."""
    machine = Machine.select().first()
    console.get("/db/console/machines/%d" % machine.id)
    console.get("/db/console/machines/-1", status=404)


def test_a_refusal_from_authenticate_is_a_page(sqlite_db):
    """authenticate raising bottle.HTTPError(403, ...) is a 403 page with its reason."""
    sqlite_db(MODELS)

    def authenticate(request):
        raise bottle.HTTPError(403, "this terminal is not allowed")

    app = bottle.Bottle()
    app.install(peestore.RestPlugin(models=MODELS, authenticate=authenticate))
    page = webtest.TestApp(app).get("/db/console/", status=403)
    assert page.content_type == "text/html"
    assert "The machine app refuses this browser: this terminal is not allowed" in page.text
