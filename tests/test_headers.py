"""Text headers as UTF-8 (X-User), and WWW-Authenticate on a 401."""
import http.client
import json

import bottle
import peewee
import pytest
import webtest

import peestore
from peestore import AuditLog, ConfigurationError
from peestore.rest._headers import text_header
from peestore.rest._server import background

TIMEOUT = 10


class Station(peestore.BaseAuditedModel):
    name = peewee.CharField()

    class Meta:
        table_name = "hd_station"
        component = "stations"


MODELS = [Station]


def _app(**kwargs):
    app = bottle.Bottle()
    app.install(peestore.RestPlugin(models=MODELS, **kwargs))
    return app


def _create(url, user_bytes):
    """POST a station with the raw bytes ``user_bytes`` as X-User, over a real socket."""
    host, port = url[len("http://"):].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
    try:
        conn.request("POST", "/stations/", body=json.dumps({"name": "s"}),
                     headers={"Content-Type": "application/json", "X-User": user_bytes})
        res = conn.getresponse()
        return res.status, json.loads(res.read())
    finally:
        conn.close()


@pytest.mark.parametrize("name", ["Jürgen", "山田太郎", "Ana-María Ødegård", "山" * 200])
def test_x_user_is_utf8_end_to_end(sqlite_db, name):
    """An X-User sent as UTF-8 bytes is the audit entry's actor, character for character."""
    db = sqlite_db(MODELS)
    with background(_app(), threads=2) as url:
        status, row = _create(url, name.encode("utf-8"))
    assert status == 201
    with db.connection_context():
        entry = AuditLog.get(AuditLog.record_id == str(row["id"]))
    assert entry.actor == name


@pytest.mark.parametrize("raw", [b"\xff\xfe", "Jürgen".encode("latin-1"), b"ab\xe5\xb1"])
def test_x_user_that_is_not_utf8_is_a_400(sqlite_db, raw):
    """Bytes that are not UTF-8 (Latin-1 text included) are refused; nothing is written."""
    db = sqlite_db(MODELS)
    with background(_app(), threads=2) as url:
        status, body = _create(url, raw)
    assert status == 400
    assert body == {"detail": "the X-User header is not UTF-8 text: send it as UTF-8"}
    with db.connection_context():
        assert Station.select().count() == 0 and AuditLog.select().count() == 0


def test_the_actor_limit_counts_characters(sqlite_db):
    """201 characters of three bytes each are over the 200-character limit."""
    sqlite_db(MODELS)
    with background(_app(), threads=2) as url:
        status, body = _create(url, ("山" * 201).encode("utf-8"))
    assert status == 400 and "200 characters" in body["detail"]


def test_text_header():
    """Absent or blank is None; ASCII and already-decoded text pass; the rest is decoded."""
    assert text_header({}, "X-User") is None
    assert text_header({"HTTP_X_USER": "  "}, "X-User") is None
    assert text_header({"HTTP_X_USER": " ada "}, "X-User") == "ada"
    assert text_header({"HTTP_X_REASON": "Jürgen".encode().decode("latin-1")},
                       "X-Reason") == "Jürgen"
    assert text_header({"HTTP_X_USER": "山田"}, "X-User") == "山田"
    with pytest.raises(bottle.HTTPResponse) as caught:
        text_header({"HTTP_X_REASON": "\xff"}, "X-Reason")
    assert caught.value.status_code == 400
    assert "X-Reason header is not UTF-8" in caught.value.body


def _authenticate(request):
    name = request.get_header("X-Name")
    if name == "teapot":
        raise bottle.HTTPError(401, "token expired")
    return {"name": name, "roles": ["admin"]} if name else None


def _client(sqlite_db, scheme=None):
    sqlite_db(MODELS)

    def authenticate(request):
        return _authenticate(request)

    if scheme is not None:
        authenticate.scheme = scheme
    app = _app(authenticate=authenticate)

    @app.get("/open", peestore_auth=False)
    def open_route():
        return {"ok": True}

    @app.get("/admin", peestore_auth=False)
    def admin_route():
        app.plugins[-1].require_admin()
        return {"ok": True}

    return webtest.TestApp(app)


def test_401_names_the_scheme_authenticate_gives(sqlite_db):
    """authenticate.scheme is sent as WWW-Authenticate on every 401."""
    client = _client(sqlite_db, 'Basic realm="press-1"')
    for res in (client.get("/stations/", status=401),
                client.get("/db/backup.sqlite", status=401),
                client.get("/admin", status=401),
                client.get("/stations/", headers={"X-Name": "teapot"}, status=401)):
        assert res.headers["WWW-Authenticate"] == 'Basic realm="press-1"'
        assert res.json["detail"]
    assert client.get("/stations/", headers={"X-Name": "teapot"}, status=401).json == \
        {"detail": "token expired"}
    res = client.get("/stations/", headers={"X-Name": "ada"})
    assert "WWW-Authenticate" not in res.headers


def test_401_without_a_scheme_has_no_challenge(sqlite_db):
    """No scheme named: a 401 without WWW-Authenticate."""
    client = _client(sqlite_db)
    res = client.get("/stations/", status=401)
    assert "WWW-Authenticate" not in res.headers
    assert res.json == {"detail": "authentication required"}


@pytest.mark.parametrize("scheme", ["", 'Basic realm="a"\r\nSet-Cookie: x=1', 5,
                                    'Basic realm="Jürgen"'])
def test_a_scheme_that_cannot_be_a_header_is_refused_at_start(scheme):
    """The plugin refuses a scheme that is not printable ASCII text when it is made."""
    def authenticate(request):
        return None

    authenticate.scheme = scheme
    with pytest.raises(ConfigurationError, match="authenticate.scheme"):
        peestore.RestPlugin(models=MODELS, authenticate=authenticate)


def test_x_user_is_one_actor_however_its_letters_are_composed(sqlite_db):
    """'Jürgen' with a combined ü (NFC) and with u + combining diaeresis (NFD) are
    stored as the same actor, in NFC."""
    db = sqlite_db(MODELS)
    with background(_app(), threads=2) as url:
        for name in ("J\u00fcrgen", "Ju\u0308rgen"):
            status, _ = _create(url, name.encode("utf-8"))
            assert status == 201
    with db.connection_context():
        actors = {entry.actor for entry in AuditLog.select()}
    assert actors == {"J\u00fcrgen"}


@pytest.mark.parametrize("name", ["admin\u200b", "\u202enimda", "a\u200db",
                                  "tab\there", "x\u0085y", "\ufeffbom"])
def test_x_user_with_control_or_format_characters_is_a_400(sqlite_db, name):
    """Zero-width, bidi and control characters would make two actors print alike."""
    db = sqlite_db(MODELS)
    with background(_app(), threads=2) as url:
        status, body = _create(url, name.encode("utf-8"))
    assert status == 400
    assert "X-User header holds the control or format character U+" in body["detail"]
    with db.connection_context():
        assert Station.select().count() == 0 and AuditLog.select().count() == 0


def test_text_header_normalises_and_refuses():
    decomposed = "Ju\u0308rgen".encode().decode("latin-1")
    assert text_header({"HTTP_X_USER": decomposed}, "X-User") == "J\u00fcrgen"
    with pytest.raises(bottle.HTTPResponse) as caught:
        text_header({"HTTP_X_USER": "a\u200bb".encode().decode("latin-1")}, "X-User")
    assert caught.value.status_code == 400 and "U+200B" in caught.value.body
