"""Bad input, by property tests (hypothesis): a clear 4xx error that changes nothing.

- ``parse_list_query`` takes any parameter names and values (operator
  suffixes, SQL-looking text, unicode, NUL, huge numbers): it answers a
  ``ListQuery`` or a 400 naming the parameter, and a query it answers runs
  on SQLite and leaves every table and row as it was.
- ``validate_body`` takes any JSON object in every mode: a 422
  ``ValidationError`` whose ``errors`` name the offending fields, or values
  that the model saves, and whose saved row can be PUT back as it is.
- Over HTTP (WebTest): any bytes, malformed JSON, wrong content types, huge
  or oversized bodies and raw query strings get 2xx or 4xx, never 5xx, JSON
  with ``detail`` on an error, and a rejected write changes nothing.

Generation is derandomized, so a run is the same on every machine; each test
runs a modest number of examples (the whole file takes seconds).
``PEESTORE_PROPERTY_EXAMPLES=2000`` runs that many examples per test instead.
"""
import base64
import datetime
import decimal
import io
import json
import os
import re
import string
from urllib.parse import quote, urlencode

import bottle
import peewee
import pytest
import webtest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from peewee import (BigIntegerField, BlobField, BooleanField, CharField, DateField,
                    DateTimeField, DecimalField, FloatField, ForeignKeyField, IntegerField,
                    TextField, TimeField, UUIDField)

import peestore
from peestore.errors import ValidationError
from peestore.rest._fields import (BOOLEAN, BYTES, DATE, DATETIME, DECIMAL, INTEGER, NUMBER,
                                  STRING, TIME, UUID, ModelInfo)
from peestore.rest._filters import (OPERATORS, RESERVED, ListQuery, operators_for,
                                   parse_list_query)
from peestore.rest._responses import is_unique_violation
from peestore.rest._routes import CREATE, PATCH, REPLACE, validate_body
from peestore.model._values import dumps

_EXAMPLES = int(os.environ.get("PEESTORE_PROPERTY_EXAMPLES", "0") or 0)


def examples(n: int) -> settings:
    """Derandomized settings with ``n`` examples (or ``PEESTORE_PROPERTY_EXAMPLES``)."""
    return settings(max_examples=_EXAMPLES or n, derandomize=True, database=None,
                    deadline=None, print_blob=False,
                    # One database per test, shared by its examples on purpose:
                    # every property compares the tables before and after.
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


class Gadget(peestore.BaseAuditedModel):
    """Every field kind the REST API knows, soft-deleted."""

    name = CharField(max_length=20, unique=True)
    count = IntegerField(null=True)
    big = BigIntegerField(default=0)
    ratio = FloatField(null=True)
    price = DecimalField(max_digits=12, decimal_places=3, null=True)
    flag = BooleanField(default=False)
    day = DateField(null=True)
    at = DateTimeField(null=True)
    clock = TimeField(null=True)
    token = UUIDField(null=True)
    blob = BlobField(null=True)
    note = TextField(null=True)
    kind = CharField(max_length=5, default="a", choices=[("a", "A"), ("b", "B")])
    deleted_at = DateTimeField(null=True, index=True)

    class Meta:
        component = "gadgets"


class Label(peestore.BaseAuditedModel):
    """A text primary key and a foreign key."""

    code = CharField(max_length=8, primary_key=True)
    gadget = ForeignKeyField(Gadget, null=True, backref="labels")
    text = CharField(max_length=30, default="")

    class Meta:
        component = "labels"


MODELS = [Gadget, Label]
TABLES = ("gadget", "label", "audit_log")
INFO = ModelInfo(Gadget)
LABEL_INFO = ModelInfo(Label)
W = {"X-User": "prop"}


@pytest.fixture
def db(sqlite_db):
    """A SQLite database with three gadgets (one soft-deleted) and two labels."""
    database = sqlite_db(MODELS)
    with peestore.actor("seed"):
        first = Gadget.create(name="alpha", count=1, big=1 << 40, ratio=0.5,
                              price=decimal.Decimal("1.250"), flag=True,
                              day=datetime.date(2024, 5, 17),
                              at=datetime.datetime(2024, 5, 17, 8, 30, 15),
                              clock=datetime.time(8, 30), token="12345678-1234-5678-1234-"
                              "567812345678", blob=b"\x00\x01", note="o'brien; DROP TABLE "
                              "gadget; --", kind="b")
        Gadget.create(name="be_ta%", count=-5, note="100% cotton \\ _")
        Gadget.create(name="gone").delete_instance()
        Label.create(code="L1", gadget=first, text="one")
        Label.create(code="L2", text="two")
    return database


def snapshot(database):
    """Everything a request could change: the schema and every row of every table."""
    schema = database.execute_sql("SELECT type, name, sql FROM sqlite_master "
                                  "ORDER BY type, name").fetchall()
    rows = {table: database.execute_sql('SELECT * FROM "%s" ORDER BY 1' % table).fetchall()
            for table in TABLES}
    return schema, rows


# -- strategies ----------------------------------------------------------------

FIELD_NAMES = [f.name for f in Gadget._meta.sorted_fields]
INJECTION = [
    "' OR 1=1 --", "1; DROP TABLE gadget; --", "1' ; DROP TABLE audit_log; --",
    '" OR ""="', "1) OR (1=1", "%' OR '%'='", "x'); DELETE FROM gadget; --",
    "1 UNION SELECT * FROM audit_log", "'; PRAGMA writable_schema=1; --", "alpha' --",
    "\\", "\\'", "%", "_", "%%", "\x00", "a\x00b", "NULL", "null", "-", "--", "/*", "*/",
    "`", "[", "]", "name", "gadget.name", "(SELECT 1)", "1 OR 1", "$1", "?", ":name",
]
NUMBERS = [
    "0", "-0", "-1", "1.5", "1e308", "1e309", "-1e999", "1e-400", "nan", "NaN", "inf",
    "-Infinity", str(1 << 63), str((1 << 63) - 1), str(-(1 << 63)), str(-(1 << 63) - 1),
    "9" * 30, "9" * 5000, "0x10", "1_000", " 7 ", "+3", "00012", "1.250", "١٢٣", "²",
]
DATES = [
    "2024-05-17", "2024-05-17T08:30:15", "2024-05-17 08:30:15", "2024-05-17T08:30:15Z",
    "2024-05-17T08:30:15.123456+05:30", "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00", "2024-02-30", "08:30", "08:30:00", "24:00", "12:00:00+01:00",
    "12:61", "12345678-1234-5678-1234-567812345678", "not-a-uuid", "AAE=", "!!",
]
WORDS = ["true", "false", "yes", "no", "on", "off", "1", "0", "", " ", ",", ",,",
         "id,name", "-id,name", "-", "name,-", "-count,at", "id, name", "nope", "-nope"]

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-(1 << 70), 1 << 70),
    st.floats(allow_nan=False), st.text(max_size=30),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(st.lists(children, max_size=3),
                               st.dictionaries(st.text(max_size=6), children, max_size=3)),
    max_leaves=8,
)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# A zone like Europe/Berlin gives a time no offset (it needs a date): fixed offsets too.
zones = st.one_of(st.none(), st.timezones(), st.integers(-1439, 1439).map(
    lambda minutes: datetime.timezone(datetime.timedelta(minutes=minutes))))


def good_values(info: ModelInfo, field: peewee.Field) -> st.SearchStrategy:
    """Values of the field's JSON type (still possibly out of its column's range)."""
    kind = info.kinds[field.name]
    if field.choices:
        strategy = st.sampled_from([c[0] for c in field.choices])
    elif kind == INTEGER:
        strategy = st.integers(-(1 << 63), (1 << 63) - 1) | st.integers(-10, 10)
    elif kind == NUMBER:
        strategy = st.floats(allow_nan=False, allow_infinity=False) | st.integers()
    elif kind == DECIMAL:
        strategy = st.one_of(
            st.decimals(allow_nan=False, allow_infinity=False, places=3,
                        min_value=-(10 ** 8), max_value=10 ** 8).map(str),
            st.decimals(allow_nan=False, allow_infinity=False).map(str),
            st.integers(-(10 ** 9), 10 ** 9), st.floats(-1e6, 1e6))
    elif kind == BOOLEAN:
        strategy = st.booleans()
    elif kind == STRING:
        strategy = st.text(max_size=getattr(field, "max_length", None) or 60)
    elif kind == DATETIME:
        strategy = st.datetimes(timezones=zones).map(
            lambda d: d.isoformat(sep=" " if d.microsecond % 2 else "T"))
    elif kind == DATE:
        strategy = st.dates().map(lambda d: d.isoformat())
    elif kind == TIME:
        strategy = st.times(timezones=zones).map(lambda t: t.isoformat())
    elif kind == UUID:
        strategy = st.uuids().map(str)
    elif kind == BYTES:
        strategy = st.binary(max_size=20).map(_b64)
    else:  # pragma: no cover  (every kind is above)
        strategy = json_values
    if field.null:
        strategy = strategy | st.none()
    return strategy


UNKNOWN_KEYS = st.one_of(st.sampled_from(["machine_id", "gadget_id", "Name", "name ",
                                          "__class__", "id'--", "", "\ud800"]),
                         st.text(max_size=8))


def valid_bodies(info: ModelInfo) -> st.SearchStrategy:
    """Objects with every required field and some others, each of its JSON type."""
    required = {name: good_values(info, info.by_name[name]) for name in info.required}
    optional = {f.name: good_values(info, f) for f in info.fields if f.name not in required}
    return st.fixed_dictionaries(required, optional=optional)


def _replace(body: dict, key: str, value) -> dict:
    return dict(body, **{key: value})


def field_aware_bodies(info: ModelInfo) -> st.SearchStrategy:
    """Valid objects; valid objects with one field of a wrong type or an unknown key;
    and objects whose every field is of its type or of any other."""
    mixed = {f.name: st.one_of(good_values(info, f), good_values(info, f), json_values)
             for f in info.fields}
    valid = valid_bodies(info)
    return st.one_of(
        valid,
        st.builds(_replace, valid, st.sampled_from(info.names), json_values),
        st.builds(_replace, valid, UNKNOWN_KEYS, json_values),
        st.builds(lambda known, unknown: dict(unknown, **known),
                  st.fixed_dictionaries({}, optional=mixed),
                  st.dictionaries(UNKNOWN_KEYS, json_values, max_size=2)),
    )


def any_bodies(info: ModelInfo) -> st.SearchStrategy:
    return st.one_of(field_aware_bodies(info),
                     st.dictionaries(st.one_of(st.sampled_from(info.names), st.text(max_size=8)),
                                     json_values, max_size=6))


def _as_query_text(value) -> str:
    if value is True or value is False:
        return "true" if value else "false"
    return "" if value is None else str(value)


def good_items(info: ModelInfo) -> st.SearchStrategy:
    """A filter, order_by, fields, limit, offset or include_deleted that parses
    (mostly: text values may hold a NUL, strings may be too long, ...)."""
    def for_field(field):
        kind = info.kinds[field.name]
        value = good_values(info, field).map(_as_query_text)
        ops = [(field.name, value)]
        for op in operators_for(kind):
            name = "%s__%s" % (field.name, op)
            if op == "is_null":
                ops.append((name, st.sampled_from(["true", "false", "1", "no"])))
            elif op in ("in", "not_in"):
                ops.append((name, st.lists(value, min_size=1, max_size=4).map(",".join)))
            elif op in ("contains", "startswith", "endswith", "like"):
                ops.append((name, st.one_of(value, st.sampled_from(["%", "_", "\\", "a%b",
                                                                    "%'--", "\\%"]))))
            else:
                ops.append((name, value))
        return st.sampled_from(ops).flatmap(lambda pair: st.tuples(st.just(pair[0]), pair[1]))

    names = st.lists(st.sampled_from(info.names), min_size=1, max_size=4, unique=True)
    return st.one_of(
        st.sampled_from(info.fields).flatmap(for_field),
        st.sampled_from(info.fields).flatmap(for_field),
        st.tuples(st.just("order_by"), st.lists(
            st.tuples(st.sampled_from(["", "-"]), st.sampled_from(info.names)).map("".join),
            min_size=1, max_size=3).map(",".join)),
        st.tuples(st.just("fields"), names.map(",".join)),
        st.tuples(st.sampled_from(["limit", "offset"]), st.integers(0, 4).map(str)),
        st.tuples(st.just("include_deleted"), st.sampled_from(["true", "false"])),
    )


query_names = st.one_of(
    st.sampled_from(FIELD_NAMES),
    st.sampled_from(RESERVED),
    st.builds(lambda name, op: "%s__%s" % (name, op), st.sampled_from(FIELD_NAMES),
              st.one_of(st.sampled_from(OPERATORS), st.text(max_size=8))),
    st.sampled_from(INJECTION),
    st.text(max_size=20),
)
query_values = st.one_of(
    st.sampled_from(INJECTION + NUMBERS + DATES + WORDS),
    st.text(max_size=40),
    st.lists(st.sampled_from(NUMBERS + DATES + INJECTION + WORDS), min_size=1, max_size=5)
    .map(",".join),
    st.integers().map(str),
    st.floats().map(repr),
    st.uuids().map(str),
    st.binary(max_size=12).map(_b64),
    st.datetimes(timezones=st.one_of(st.none(), st.timezones())).map(
        lambda d: d.isoformat()),
)
any_items = st.tuples(query_names, query_values)


def query_items(info: ModelInfo) -> st.SearchStrategy:
    """Lists of parameters that parse, and lists with a few that may not."""
    good = good_items(info)
    return st.one_of(st.lists(good, max_size=6),
                     st.lists(st.one_of(good, good, good, any_items), max_size=6),
                     st.lists(any_items, max_size=4))


# -- the list query parser -------------------------------------------------------

def run_list(info: ModelInfo, spec: ListQuery):
    """The query ``GET /C/`` runs for ``spec`` (as in ModelRoutes.list): rows, total."""
    model = info.model
    names = spec.names or info.names
    query = model.select(*[info.by_name[n] for n in names])
    count = model.select(peewee.fn.COUNT(peewee.SQL("*")))
    if spec.include_deleted and info.soft_delete:
        query, count = query.with_deleted(), count.with_deleted()
    if spec.where:
        query, count = query.where(*spec.where), count.where(*spec.where)
    query = query.order_by(*(spec.order_by + [info.pk.asc()]))
    if spec.limit is not None:
        query = query.limit(spec.limit)
    if spec.offset:
        query = query.offset(spec.offset)
    rows = list(query.tuples())
    body = dumps([info.row_dict(row, names, info.converters_for(names)) for row in rows])
    return json.loads(body), count.scalar()


def _is_400(exc: bottle.HTTPResponse) -> bool:
    return exc.status_code == 400 and bool(json.loads(exc.body)["detail"])


@examples(400)
@given(items=query_items(INFO))
def test_list_query_parser_answers_a_query_or_a_400(db, items):
    """Any query string: a ListQuery that runs and changes nothing, or a 400 with detail."""
    try:
        spec = parse_list_query(INFO, items)
    except bottle.HTTPResponse as exc:
        assert _is_400(exc), (exc.status_code, exc.body)
        event("400")
        return
    event("a query with %s filters" % ("some" if spec.where else "no"))
    assert isinstance(spec, ListQuery)
    before = snapshot(db)
    rows, total = run_list(INFO, spec)
    assert snapshot(db) == before
    names = spec.names or INFO.names
    assert all(list(row) == names for row in rows)
    if spec.limit is None and not spec.offset:
        assert total == len(rows)
    else:
        assert total >= len(rows)


@examples(150)
@given(items=query_items(LABEL_INFO))
def test_list_query_parser_text_key_and_foreign_key(db, items):
    """The same for a model keyed by text, with a foreign key."""
    try:
        spec = parse_list_query(LABEL_INFO, items)
    except bottle.HTTPResponse as exc:
        assert _is_400(exc), (exc.status_code, exc.body)
        return
    before = snapshot(db)
    run_list(LABEL_INFO, spec)
    assert snapshot(db) == before


@pytest.mark.parametrize("value", INJECTION)
def test_injection_text_is_a_value(db, value):
    """SQL-looking text is compared as a value, with every text operator: it finds
    only the rows that hold it literally, and no table changes."""
    before = snapshot(db)
    for op in ("eq", "ne", "contains", "startswith", "endswith", "like", "in"):
        param = "note" if op == "eq" else "note__%s" % op
        try:
            spec = parse_list_query(INFO, [(param, value)])
        except bottle.HTTPResponse as exc:
            assert _is_400(exc) and "\x00" in value
            continue
        rows, _ = run_list(INFO, spec)
        notes = [row["note"] for row in rows]
        if op == "eq":
            assert notes == [n for n in ("o'brien; DROP TABLE gadget; --",) if n == value]
        elif op == "contains":
            assert all(value.lower() in n.lower() for n in notes)
    assert snapshot(db) == before


# -- JSON body validation ----------------------------------------------------------

def _save_and_read_back(info: ModelInfo, values, mode: str):
    """Save ``values`` as the REST route would; the saved row as JSON, or None
    when a constraint refused it (a unique one: 409; a foreign key: 422)."""
    model = info.model
    try:
        with model._meta.database.atomic():
            if mode == CREATE:
                instance = model(**values)
                instance.save(force_insert=True)
            else:
                instance = model.select().with_deleted().order_by(info.pk).first()
                for name, value in values.items():
                    setattr(instance, name, value)
                instance.save()
    except peewee.IntegrityError as exc:
        assert is_unique_violation(exc) or "FOREIGN KEY" in str(exc), exc
        return None
    except peestore.ValidationError as exc:
        # A value its column cannot keep (a decimal wider than max_digits): a 422.
        assert exc.errors and set(exc.errors) <= set(values), exc
        return None
    row = model.select().with_deleted().where(info.pk == instance._pk).tuples().get()
    return json.loads(dumps(info.row_dict(row)))


# What /openapi.json promises for the values a GET answers (date-time-local, date,
# time-local, uuid, a decimal and base64 as strings).
OUTPUT_FORMATS = {
    DATETIME: re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?\Z"),
    DATE: re.compile(r"\d{4}-\d\d-\d\d\Z"),
    TIME: re.compile(r"\d\d:\d\d:\d\d(\.\d{1,6})?\Z"),
    UUID: re.compile(r"[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}\Z"),
    DECIMAL: re.compile(r"-?\d+(\.\d+)?(E[-+]?\d+)?\Z"),
    BYTES: re.compile(r"[A-Za-z0-9+/]*={0,2}\Z"),
}


def _check_body(database, info: ModelInfo, data, mode: str) -> None:
    try:
        values = validate_body(info, data, mode)
    except ValidationError as exc:
        errors = exc.errors
        assert errors and str(exc)
        assert all(isinstance(k, str) and isinstance(v, str) and v for k, v in errors.items())
        for key in data:
            if key not in info.by_name:
                assert "unknown field" in errors[key]
        for key in errors:
            assert key in data or (key in info.required and mode != PATCH), key
        event("422")
        return
    writable = {f.name for f in info.writable}
    assert set(values) <= writable
    if mode == REPLACE:
        assert set(values) == writable - {info.pk.name}
    with database.atomic() as transaction:
        row = _save_and_read_back(info, values, mode)
        event("valid, refused by a constraint" if row is None else "valid, saved")
        if row is not None:
            for name, value in row.items():
                pattern = OUTPUT_FORMATS.get(info.kinds[name])
                assert value is None or pattern is None or pattern.match(value), (name, value)
            # What a GET answers can be PUT back as it is.
            again = validate_body(info, row, REPLACE)
            for name, value in values.items():
                if name in again and not isinstance(value, (float, decimal.Decimal)):
                    assert again[name] == value, (name, again[name], value)
        transaction.rollback()


@examples(400)
@given(data=field_aware_bodies(INFO), mode=st.sampled_from([CREATE, REPLACE, PATCH]))
def test_validate_body_field_aware(db, data, mode):
    """Objects of the model's fields, right and wrong types: a 422 naming each bad
    field, or values the model saves and a GET gives back in a form PUT accepts."""
    _check_body(db, INFO, data, mode)


@examples(200)
@given(data=st.dictionaries(st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=10)),
                            json_values, max_size=6),
       mode=st.sampled_from([CREATE, REPLACE, PATCH]))
def test_validate_body_any_json_object(db, data, mode):
    """Any JSON object (nested lists and objects, huge integers, floats, unicode)."""
    _check_body(db, INFO, data, mode)


@examples(150)
@given(data=any_bodies(LABEL_INFO), mode=st.sampled_from([CREATE, REPLACE, PATCH]))
def test_validate_body_text_key(db, data, mode):
    """A text primary key (written in the POST body) and a foreign key."""
    _check_body(db, LABEL_INFO, data, mode)


# -- over HTTP ----------------------------------------------------------------------

MAX_BODY = 2048


@pytest.fixture
def api(db):
    app = bottle.Bottle()
    app.install(peestore.RestPlugin(models=MODELS, max_body_bytes=MAX_BODY))
    return webtest.TestApp(app)


WRITES = [
    ("POST", "/gadgets/"), ("PUT", "/gadgets/1"), ("PATCH", "/gadgets/1"),
    ("PUT", "/gadgets/2"), ("PATCH", "/gadgets/3"), ("PUT", "/gadgets/424242"),
    ("PATCH", "/gadgets/424242"), ("POST", "/gadgets/1/revert"), ("POST", "/gadgets/1/restore"),
    ("DELETE", "/gadgets/2"), ("POST", "/labels/"), ("PUT", "/labels/L1"),
    ("PATCH", "/labels/L2"), ("PUT", "/labels/new%20one"), ("PUT", "/gadgets/abc"),
    ("PUT", "/gadgets/%s" % (1 << 64)),
]
CONTENT_TYPES = [
    "application/json", "application/json; charset=utf-8", "application/merge-patch+json",
    "APPLICATION/JSON", "application/json; charset=latin-1", "text/plain", "text/json",
    "application/x-www-form-urlencoded", "multipart/form-data", "application/jsonx", "",
    "application/json;", ";", "application/", "*/*",
]


def _mangle(text: str, where: int, junk: str) -> str:
    where = where % (len(text) + 1)
    return text[:where] + junk + text[where + 1:]


json_texts = st.one_of(
    any_bodies(INFO).map(json.dumps),
    any_bodies(LABEL_INFO).map(json.dumps),
    json_values.map(json.dumps),
    st.builds(_mangle, any_bodies(INFO).map(json.dumps), st.integers(0, 200),
              st.sampled_from(["", "{", "}", "[", "]", ",", ":", '"', "\\", "NaN", "\x00",
                               "\ud800", "1e999", "-"])),
    st.sampled_from([
        "", " ", "{", "}", "{}", "[]", "null", "true", "1", '"x"', "{'name': 'x'}",
        '{"name": NaN}', '{"name": Infinity}', '{"count": -Infinity}', '{"count": 1e999}',
        '{"count": %s}' % ("9" * 5000), '{"count": 1.0e0}', '{"name": "a", "name": 5}',
        '{"name": "\\ud800"}', '{"\\ud800": 1}', '{"name": "a\\u0000b"}', '{"note": "\\udfff"}',
        '{"name": "x"} trailing', '{"name": "x"}{"name": "y"}', "[" * 50000, "{\"a\":" * 50000,
        '{"audit_id": true}', '{"audit_id": 1e300}', '{"audit_id": -1}', '{"audit_id": "1"}',
        '{"code": "L1", "gadget": 424242}', '{"code": "a\\u0000"}', '{"code": "123456789"}',
        '{"name": "%s"}' % ("x" * 3000), '\ufeff{"name": "bom"}',
    ]),
)
header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255,
                                             blacklist_characters="\x7f"), max_size=30)


def _encodings(texts: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(texts.map(lambda t: t.encode("utf-8", "surrogatepass")),
                     texts.map(lambda t: t.encode("utf-8", "surrogatepass")),
                     texts.map(lambda t: t.encode("utf-16", "surrogatepass")),
                     texts.map(lambda t: t.encode("latin-1", "replace")))


def route_and_body(route) -> st.SearchStrategy:
    """A body for ``route``: mostly JSON meant for its model, or anything at all."""
    method, path = route
    info = LABEL_INFO if path.startswith("/labels") else INFO
    if path.endswith("/revert"):
        audit_ids = st.fixed_dictionaries({"audit_id": st.one_of(
            st.integers(-1, 12), st.integers(), st.sampled_from([1 << 63, -(1 << 63) - 1]))})
        meant = st.one_of(audit_ids, st.builds(_replace, audit_ids, UNKNOWN_KEYS, json_values))
    else:
        meant = field_aware_bodies(info)
    texts = st.one_of(meant.map(json.dumps), meant.map(json.dumps), json_texts)
    return st.tuples(st.just(route), st.one_of(_encodings(texts), st.binary(max_size=300)))


def _state(database):
    return snapshot(database)


def _check_answer(res, note: bool = True) -> None:
    if note:
        event("status %d" % res.status_int)
    assert res.status_int < 500, (res.status, res.text)
    if res.status_int >= 400:
        assert res.content_type == "application/json", res.headers
        assert res.json["detail"]
    if res.status_int == 422:
        assert all(isinstance(v, str) for v in res.json.get("errors", {}).values())


@examples(400)
@given(route_body=st.sampled_from(WRITES).flatmap(route_and_body),
       content_type=st.one_of(st.just("application/json"), st.just("application/json"),
                              st.sampled_from(CONTENT_TYPES), header_text),
       user=st.one_of(st.just("prop"), st.just("prop"), header_text),
       if_match=st.one_of(st.none(), st.none(), st.just("*"), header_text))
def test_http_writes_never_500_and_a_refusal_changes_nothing(db, api, route_body,
                                                             content_type, user, if_match):
    """Any body, content type, X-User and If-Match on every write route: 2xx or 4xx with
    a JSON detail, never 5xx; a refused write leaves every table as it was."""
    (method, path), body = route_body
    headers = {"X-User": user, "Content-Type": content_type}
    if if_match is not None:
        headers["If-Match"] = if_match
    before = _state(db)
    res = api.request(path, method=method, body=body, headers=headers, expect_errors=True)
    _check_answer(res)
    if res.status_int >= 400:
        assert _state(db) == before, (res.status, res.text)


@examples(100)
@given(path=st.sampled_from(["/gadgets/1/revert", "/gadgets/3/revert", "/labels/L1/revert",
                             "/gadgets/424242/revert"]),
       audit_id=st.one_of(st.integers(-3, 12), st.integers(),
                          st.sampled_from([1 << 63, (1 << 63) - 1, -(1 << 63), -(1 << 63) - 1,
                                           10 ** 30, -(10 ** 30)])))
def test_http_revert_any_audit_id(db, api, path, audit_id):
    """Revert to any integer audit id, 64-bit or not: 200 or a 4xx, never 5xx."""
    before = _state(db)
    res = api.post_json(path, {"audit_id": audit_id}, headers=W, expect_errors=True)
    _check_answer(res)
    if res.status_int >= 400:
        assert _state(db) == before


# The routes that read a body (at an id that can be a key: the others are 404 first).
BODY_WRITES = [r for r in WRITES if (r[0] in ("PUT", "PATCH") or r[1].endswith(("/", "revert")))
               and "abc" not in r[1] and str(1 << 64) not in r[1]]


@examples(150)
@given(route=st.sampled_from(BODY_WRITES),
       size=st.integers(MAX_BODY + 1, 4 * MAX_BODY),
       content_type=st.sampled_from(["application/json", "text/plain"]))
def test_http_oversized_body_413(db, api, route, size, content_type):
    """A body over max_body_bytes is 413 (415 first without a JSON type); nothing changes."""
    method, path = route
    body = json.dumps({"note": "x" * size}).encode()
    before = _state(db)
    res = api.request(path, method=method, body=body, headers=dict(
        W, **{"Content-Type": content_type}), expect_errors=True)
    _check_answer(res)
    assert res.status_int == (413 if content_type == "application/json" else 415)
    assert _state(db) == before


def _wsgi(app, method: str, path: str, body: bytes, environ: dict):
    """Call ``app`` with a raw environ (headers WebTest would correct); status, body."""
    base = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "",
            "CONTENT_TYPE": "application/json", "HTTP_X_USER": "prop",
            "wsgi.input": io.BytesIO(body), "wsgi.errors": io.StringIO(),
            "wsgi.url_scheme": "http", "SERVER_NAME": "localhost", "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.version": (1, 0), "wsgi.multithread": False,
            "wsgi.multiprocess": False, "wsgi.run_once": False}
    base.update(environ)
    statuses = []
    chunks = app(base, lambda status, headers, exc_info=None: statuses.append(status))
    try:
        text = b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()
    return int(statuses[0].split()[0]), text


@examples(100)
@given(route=st.sampled_from(BODY_WRITES),
       length=st.one_of(st.sampled_from(["", "abc", "-1", "1e3", " 12", "99999999999999999999",
                                         "0", "+5", str(MAX_BODY + 1)]),
                        st.integers(0, MAX_BODY).map(str)),
       chunked=st.booleans())
def test_http_content_length_lies(db, api, route, length, chunked):
    """A Content-Length that is not a number, negative, too big or other than the body,
    and a chunked body without one: never 5xx, and a refusal changes nothing."""
    method, path = route
    environ = {"CONTENT_LENGTH": length}
    if chunked:
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    before = _state(db)
    status, text = _wsgi(api.app, method, path, b'{"name": "length"}', environ)
    assert status < 500, (status, text)
    if status >= 400:
        assert json.loads(text)["detail"]
        assert _state(db) == before


def _percent(data: bytes) -> str:
    return "".join("%%%02X" % b if chr(b) not in string.ascii_letters + string.digits + "_-"
                   else chr(b) for b in data)


query_strings = st.one_of(
    query_items(INFO).map(urlencode),
    query_items(LABEL_INFO).map(urlencode),
    st.lists(st.tuples(query_names, query_values), max_size=4).map(
        lambda items: "&".join("%s=%s" % (quote(k, safe="_"), quote(v, safe=",-"))
                               for k, v in items)),
    st.binary(max_size=40).map(_percent),
    st.lists(st.tuples(st.sampled_from(FIELD_NAMES + list(RESERVED)), st.binary(max_size=6)),
             max_size=4).map(lambda items: "&".join("%s=%s" % (k, _percent(v))
                                                    for k, v in items)),
    st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=40),
)


@examples(300)
@given(path=st.sampled_from(["/gadgets/", "/labels/", "/gadgets/1", "/gadgets/1/history",
                             "/db/audit", "/labels/L1/history"]),
       query=query_strings)
def test_http_reads_with_any_query_string(db, api, path, query):
    """Any query string, invalid UTF-8 included, on the list, get, history and audit
    routes: 200 or a 4xx with detail, never 5xx, and no change."""
    before = _state(db)
    res = api.get(path + "?" + query, expect_errors=True)
    _check_answer(res)
    assert res.status_int in (200, 400, 404), (res.status, res.text)
    if res.status_int == 200:
        assert isinstance(res.json, (list, dict))
        if path in ("/gadgets/", "/labels/"):
            assert int(res.headers["X-Total-Count"]) >= len(res.json)
    assert _state(db) == before


def test_many_filters_are_a_400_not_a_500(db, api):
    """So many filters or in-values that a database would refuse the SQL: a 400."""
    before = _state(db)
    res = api.get("/gadgets/?" + "&".join(["name=alpha"] * 5000), expect_errors=True)
    _check_answer(res, note=False)
    res = api.get("/gadgets/?count__in=" + ",".join(["1"] * 50000), expect_errors=True)
    _check_answer(res, note=False)
    res = api.get("/gadgets/?" + "&".join(["count__in=1,2"] * 3000), expect_errors=True)
    _check_answer(res, note=False)
    assert _state(db) == before


BAD_TEXT = [
    ("GET", "/gadgets/?name=a%00b", None), ("GET", "/gadgets/?note__like=%25%00", None),
    ("GET", "/gadgets/?note__contains=%00", None), ("GET", "/gadgets/?name__in=a,%00", None),
    ("GET", "/gadgets/?name__startswith=%ED%A0%80", None), ("GET", "/gadgets/?name=%FF", None),
    ("GET", "/gadgets/?na%FFme=1", None), ("GET", "/labels/?code=L1%00", None),
    ("GET", "/labels/L1%00", None), ("GET", "/labels/L1%00/history", None),
    ("GET", "/db/audit?actor=%00", None), ("GET", "/db/audit?record_id=%FF", None),
    ("POST", "/gadgets/", '{"name": "a\\u0000b"}'), ("POST", "/gadgets/", '{"name": "\\ud800"}'),
    ("POST", "/gadgets/", '{"name": "ok", "\\udfff": 1}'),
    ("PATCH", "/gadgets/1", '{"note": "x\\u0000"}'), ("PUT", "/labels/L1%00", '{"text": "t"}'),
    ("POST", "/labels/", '{"code": "a\\u0000", "text": "t"}'),
    ("PATCH", "/labels/L2", '{"text": "\\udbff"}'),
]


def test_bad_text_on_every_backend(connect_db):
    """NUL characters, lone surrogates and bytes that are not UTF-8, in filters, URLs
    and bodies, on SQLite, PostgreSQL and MariaDB: a 4xx that changes nothing."""
    connect_db(MODELS)
    with peestore.actor("seed"):
        first = Gadget.create(name="alpha", note="first")
        Label.create(code="L1", gadget=first)
        Label.create(code="L2")
    app = bottle.Bottle()
    app.install(peestore.RestPlugin(models=MODELS))
    api = webtest.TestApp(app)

    def counts():
        return (Gadget.select().with_deleted().count(), Label.select().count(),
                peestore.AuditLog.select().count(), Gadget.get_by_id(first.id).note,
                Label.get_by_id("L2").text)

    before = counts()
    for method, path, body in BAD_TEXT:
        headers = dict(W, **{"Content-Type": "application/json"}) if body else W
        res = api.request(path, method=method, body=(body or "").encode(), headers=headers,
                          expect_errors=True)
        assert 400 <= res.status_int < 500, (method, path, res.status, res.text)
        assert res.json["detail"], (method, path)
        assert counts() == before, (method, path)
