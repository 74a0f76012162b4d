"""Restore checks the rows too: values the app could not have written (and could not
read back) are refused, naming the table, the row and the column, unless
``integrity_check=False`` says to trust the file's contents.

Every hostile file is a real ``peestore.backup()`` altered with plain ``sqlite3``.
"""
import datetime
import decimal
import json
import shutil
import sqlite3
import urllib.error
import urllib.request
import uuid

import bottle
import peewee
import pytest
from playhouse.sqlite_ext import AutoIncrementField

import peestore
from peestore.cli._main import main
from peestore.rest._server import background


class Maker(peestore.BaseAuditedModel):
    name = peewee.CharField(unique=True)

    class Meta:
        table_name = "rc_maker"


class Gadget(peestore.BaseAuditedModel):
    name = peewee.CharField(unique=True)
    note = peewee.TextField(null=True)
    count = peewee.IntegerField(default=0)
    big = peewee.BigIntegerField(null=True)
    ratio = peewee.FloatField(null=True)
    price = peewee.DecimalField(max_digits=10, decimal_places=2, null=True)
    ok = peewee.BooleanField(default=True)
    at = peewee.DateTimeField(null=True)
    day = peewee.DateField(null=True)
    clock = peewee.TimeField(null=True)
    uid = peewee.UUIDField(null=True)
    buid = peewee.BinaryUUIDField(null=True)
    blob = peewee.BlobField(null=True)
    stamp = peewee.TimestampField(null=True)
    code = peewee.FixedCharField(max_length=4, null=True)
    maker = peewee.ForeignKeyField(Maker, null=True)

    class Meta:
        table_name = "gadget"
        component = "gadgets"


class Ticket(peestore.BaseAuditedModel):
    id = AutoIncrementField()
    title = peewee.CharField()

    class Meta:
        table_name = "rc_ticket"


MODELS = [Maker, Gadget, Ticket]


@pytest.fixture
def live(sqlite_db, tmp_path):
    """A live database with every kind of field filled as the app writes it, and
    ``good.sqlite``: a backup of it."""
    db = sqlite_db(MODELS)
    maker = Maker.create(name="acme")
    Gadget.create(name="full", note="naïve 😀 text\x00with a NUL", count=3, big=1 << 60,
                  ratio=0.5, price=decimal.Decimal("12.34"), ok=False,
                  at=datetime.datetime(2024, 5, 1, 10, 0, 0, 123456),
                  day=datetime.date(2024, 5, 1), clock=datetime.time(10, 30, 0, 5),
                  uid=uuid.uuid4(), buid=uuid.uuid4(), blob=b"\xff\xfe\x00not utf-8",
                  stamp=datetime.datetime(2024, 5, 1, 10, 0, 0), code="AB12", maker=maker)
    Gadget.create(name="empty")
    Gadget.create(name="midnight", at=datetime.datetime(2024, 5, 1), ratio=-3)
    Ticket.create(title="first")
    peestore.backup(tmp_path / "good.sqlite")
    return db


def _altered(tmp_path, *statements):
    path = tmp_path / "bad.sqlite"
    shutil.copy(str(tmp_path / "good.sqlite"), str(path))
    conn = sqlite3.connect(str(path), isolation_level=None)
    for sql in statements:
        conn.execute(sql)
    conn.close()
    return path


def test_the_values_the_app_writes_are_accepted(live, tmp_path):
    """Every field kind as peewee stores it (and NaN in an audit entry, which
    peestore's JSON writes) passes the row checks."""
    with live.connection_context():
        live.execute_sql("UPDATE audit_log SET after = '{\"ratio\":NaN}' WHERE id = 1")
    peestore.backup(tmp_path / "good.sqlite")
    assert peestore.restore(tmp_path / "good.sqlite")["restored"] is True
    full = Gadget.get(Gadget.name == "full")
    assert full.blob == b"\xff\xfe\x00not utf-8" and full.note.endswith("a NUL")


ROW = "table gadget, row id 1, column "
CASES = {
    "text in a REAL column": ("UPDATE gadget SET ratio = 'fast' WHERE id = 1",
                              ROW + "ratio: a value of type text where it expects a finite "
                                    "number (FloatField)"),
    "an infinite float": ("UPDATE gadget SET ratio = 9e999 WHERE id = 1",
                          ROW + "ratio: '"),
    "text in an INTEGER column": ("UPDATE gadget SET count = 'many' WHERE id = 1",
                                  ROW + "count: a value of type text where it expects an "
                                        "integer"),
    "a fraction in an INTEGER column": ("UPDATE gadget SET count = 1.5 WHERE id = 1",
                                        ROW + "count: a value of type real"),
    "text in a boolean": ("UPDATE gadget SET ok = 'yes' WHERE id = 1", ROW + "ok: "),
    "text in a decimal": ("UPDATE gadget SET price = 'cheap' WHERE id = 1", ROW + "price: "),
    "a blob in a CharField": ("UPDATE gadget SET name = x'00ff00' WHERE id = 1",
                              ROW + "name: a value of type blob where it expects text"),
    "text that is not UTF-8": ("UPDATE gadget SET note = CAST(x'41ff42' AS TEXT) WHERE id = 1",
                               ROW + "note: text that is not UTF-8 (byte 1)"),
    "a date time that is not one": ("UPDATE gadget SET at = '=HYPERLINK(1)' WHERE id = 1",
                                    ROW + "at: '=HYPERLINK(1)' is not an ISO 8601 date and "
                                          "time (DateTimeField)"),
    "a date that is not one": ("UPDATE gadget SET day = '2024-13-45' WHERE id = 1",
                               ROW + "day: '2024-13-45' is not an ISO 8601 date"),
    "a time that is not one": ("UPDATE gadget SET clock = 'noon' WHERE id = 1",
                               ROW + "clock: 'noon' is not an ISO 8601 time"),
    "a UUID that is not one": ("UPDATE gadget SET uid = 'not-a-uuid' WHERE id = 1",
                               ROW + "uid: 'not-a-uuid' is not a UUID"),
    "a short binary UUID": ("UPDATE gadget SET buid = x'0102' WHERE id = 1",
                            ROW + "buid: "),
    "text in a BlobField": ("UPDATE gadget SET blob = 'text' WHERE id = 1",
                            ROW + "blob: a value of type text where it expects bytes"),
    "text in a timestamp": ("UPDATE gadget SET stamp = 'then' WHERE id = 1", ROW + "stamp: "),
    "a foreign key to nothing": ("UPDATE gadget SET maker_id = 999 WHERE id = 1",
                                 "table gadget, row id 1: a foreign key to rc_maker names a "
                                 "row that is not there"),
    "an AUTOINCREMENT counter at its end": (
        "UPDATE sqlite_sequence SET seq = 9223372036854775807 WHERE name = 'rc_ticket'",
        "table rc_ticket: its AUTOINCREMENT counter is 9223372036854775807"),
    "an audit entry that is not JSON": (
        "UPDATE audit_log SET before = '{not json' WHERE id = 1",
        "table audit_log, row id 1, column before: not JSON"),
    "an audit entry that is a JSON array": (
        "UPDATE audit_log SET after = '[1, 2]' WHERE id = 1",
        "table audit_log, row id 1, column after: JSON that is not an object"),
    "an audit entry nested too deep": (
        "UPDATE audit_log SET after = '{\"a\":' || replace(hex(zeroblob(300)), '00', '[') "
        "|| replace(hex(zeroblob(300)), '00', ']') || '}' WHERE id = 1",
        "table audit_log, row id 1, column after: JSON nested deeper than 100 levels"),
    "an audit entry that is not UTF-8": (
        "UPDATE audit_log SET after = CAST(x'7b22ff' AS TEXT) WHERE id = 1",
        "table audit_log, row id 1, column after: text that is not UTF-8"),
    "an audit time that is not one": (
        "UPDATE audit_log SET timestamp = 'yesterday' WHERE id = 1",
        "table audit_log, row id 1, column timestamp: 'yesterday' is not an ISO 8601"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_value_the_app_could_not_have_written_is_refused(live, tmp_path, case):
    """The refusal names table, row and column; nothing changes.  With
    integrity_check=False ("trust the file's contents") the same file is taken."""
    sql, message = CASES[case]
    path = _altered(tmp_path, sql)
    for dry_run in (True, False):
        with pytest.raises(peestore.RestoreError) as info:
            peestore.restore(path, dry_run=dry_run)
        assert message in str(info.value), str(info.value)
        assert "the backup holds data the app could not have written" in str(info.value)
    assert Gadget.select().count() == 3
    assert peestore.restore(path, integrity_check=False)["restored"] is True


def test_the_command_line_without_models_checks_columns_by_their_types(live, db_path,
                                                                       tmp_path, capsys):
    """`peestore restore` (no models registered): each column is checked by the type
    export reads it with; one line, exit 1, nothing changed."""
    live.close()
    url = "sqlite:///%s" % db_path
    path = _altered(tmp_path, "UPDATE gadget SET ratio = 'fast' WHERE id = 1")
    assert main(["restore", "--db", url, str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "table gadget, row id 1, column ratio" in err
    assert main(["restore", "--db", url, str(tmp_path / "good.sqlite"), "--dry-run"]) == 0
    path = _altered(tmp_path, "UPDATE audit_log SET before = '[1]' WHERE id = 2")
    assert main(["restore", "--db", url, str(path)]) == 1
    assert "table audit_log, row id 2, column before" in capsys.readouterr().err


def _multipart(data):
    boundary = "peestoretestboundary"
    body = (("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.sqlite\"\r\n"
             "Content-Type: application/octet-stream\r\n\r\n" % boundary).encode()
            + data + ("\r\n--%s--\r\n" % boundary).encode())
    return body, "multipart/form-data; boundary=%s" % boundary


def _post(base, data):
    body, content_type = _multipart(data)
    request = urllib.request.Request(base + "/db/restore", data=body, method="POST",
                                     headers={"Content-Type": content_type, "X-User": "ops"})
    try:
        with urllib.request.urlopen(request, timeout=60) as res:
            return res.status, dict(res.headers), json.loads(res.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def test_over_http_a_bad_row_is_a_422_and_the_api_keeps_answering(live, tmp_path):
    """The attack that made GET /gadgets/ and /db/audit answer 500 is now a 422."""
    live.close()
    app = bottle.Bottle()
    app.install(peestore.RestPlugin(models=MODELS))
    path = _altered(tmp_path, "UPDATE gadget SET name = x'00ff00' WHERE id = 1")
    with background(app) as base:
        status, _, body = _post(base, path.read_bytes())
        assert status == 422
        assert "table gadget, row id 1, column name" in body["detail"]
        for route in ("/gadgets/", "/db/audit"):
            with urllib.request.urlopen(base + route, timeout=30) as res:
                assert res.status == 200


def test_over_http_a_live_database_open_elsewhere_is_a_503(live, db_path, tmp_path):
    """Another process holding the live file open is the server's state: 503 with
    Retry-After (try again), not 422 (a bad file); nothing changes."""
    live.close()
    app = bottle.Bottle()
    app.install(peestore.RestPlugin(models=MODELS))
    other = sqlite3.connect(str(db_path))
    other.execute("SELECT count(*) FROM gadget").fetchone()
    try:
        with background(app) as base:
            status, headers, body = _post(base, (tmp_path / "good.sqlite").read_bytes())
            assert status == 503 and int(headers["Retry-After"]) >= 1
            assert "nothing was changed" in body["detail"]
    finally:
        other.close()
    assert not (db_path.parent / (db_path.name + ".pre-restore")).exists()
