"""Every write to an audited model is audited as stored (SPEC 3-5), on every backend.

An audit entry's ``after`` is what a fresh read of the row gives; values a
backend cannot store faithfully are refused; dependent rows changed by a
delete (recursive, ON DELETE CASCADE / SET NULL), ``insert_from`` and bulk
queries with ``limit``/``order_by`` are audited row by row.
"""
import datetime
import decimal
import random

import peewee
import pytest
import webtest
from peewee import (CharField, DateTimeField, DecimalField, FloatField, ForeignKeyField,
                    IntegerField, TimeField)

import peestore
from peestore import AuditLog
from peestore.testing import capture_audit

D = decimal.Decimal
W = {"X-User": "tester"}


class Gauge(peestore.BaseAuditedModel):
    name = CharField(default="g")
    amount = DecimalField(max_digits=10, decimal_places=3, null=True)
    level = FloatField(null=True)
    seen_at = DateTimeField(null=True)
    at_time = TimeField(null=True)
    deleted_at = DateTimeField(null=True)

    class Meta:
        component = "gauges"


class Machine(peestore.BaseAuditedModel):
    name = CharField()


class Recipe(peestore.BaseAuditedModel):
    machine = ForeignKeyField(Machine, on_delete="CASCADE", backref="recipes")
    name = CharField()


class Step(peestore.BaseAuditedModel):
    recipe = ForeignKeyField(Recipe, on_delete="CASCADE", backref="steps")
    n = IntegerField()


class Note(peestore.BaseAuditedModel):
    machine = ForeignKeyField(Machine, null=True, on_delete="SET NULL", backref="notes")
    text = CharField()


class Plain(peestore.BaseAuditedModel):
    """No ON DELETE action: peewee's recursive delete handles these."""

    machine = ForeignKeyField(Machine, backref="plains")
    n = IntegerField(default=0)


class Tagged(peestore.BaseAuditedModel):
    machine = ForeignKeyField(Machine, null=True, backref="tagged")
    n = IntegerField(default=0)


class Source(peestore.BaseAuditedModel):
    name = CharField()
    amount = DecimalField(max_digits=10, decimal_places=3)


class Wide(peestore.BaseAuditedModel):
    amount = DecimalField(max_digits=20, decimal_places=5)


MODELS = [Gauge, Machine, Recipe, Step, Note, Plain, Tagged, Source, Wide]


def _stored(instance):
    """The row as a fresh read returns it, as a JSON-safe dict."""
    model = type(instance)
    return model.get_by_id(instance.get_id(), include_deleted=True).to_dict() \
        if "deleted_at" in model._meta.fields else model.get_by_id(instance.get_id()).to_dict()


def _after(instance):
    return instance.history()[0].after


# -- A: after is what is stored -------------------------------------------------

AWKWARD = [
    dict(amount=D("1.123456")), dict(amount=D("1.100")), dict(amount=D("2.000")),
    dict(amount=D("1.1235")), dict(amount=D("-1.0005")), dict(amount=1.5),
    dict(amount="7.25"), dict(amount=3),
    dict(level=1.23456789), dict(level=-76162653.51882502), dict(level=-0.0),
    dict(level=0.1), dict(level=123456789.0), dict(level=3),
    dict(seen_at=datetime.datetime(2024, 1, 1, 10, 0, 0, 999999)),
    dict(seen_at=datetime.datetime(2024, 1, 1, 10, 0, 0, 500000)),
    dict(at_time=datetime.time(10, 0, 0, 600000)),
]


@pytest.mark.parametrize("values", AWKWARD, ids=lambda v: "%s=%r" % next(iter(v.items())))
def test_create_after_is_stored_row(connect_db, values):
    """create: the audit entry's after, the instance and a fresh read agree."""
    connect_db(MODELS)
    gauge = Gauge.create(**values)
    assert _after(gauge) == _stored(gauge) == gauge.to_dict()


@pytest.mark.parametrize("values", AWKWARD, ids=lambda v: "%s=%r" % next(iter(v.items())))
def test_update_after_is_stored_row(connect_db, values):
    """save() on an existing row: after = a fresh read; before = the earlier after."""
    connect_db(MODELS)
    gauge = Gauge.create()
    for name, value in values.items():
        setattr(gauge, name, value)
    gauge.save()
    assert _after(gauge) == _stored(gauge) == gauge.to_dict()
    gauge.name = "again"
    gauge.save()
    assert gauge.history()[0].before == gauge.history()[1].after


def test_bulk_writes_after_is_stored_row(connect_db):
    """insert_many, update() with values, soft delete: every after = its row read back."""
    connect_db(MODELS)
    random.seed(7)
    rows = [dict(amount=D(random.randint(-10 ** 9, 10 ** 9)) / 10 ** random.randint(0, 6),
                 level=random.uniform(-1, 1) * 10 ** random.randint(-20, 20),
                 seen_at=datetime.datetime(2024, 1, 1, 0, 0, 0, random.randint(0, 999999)))
            for _ in range(40)]
    for row in rows:
        row["amount"] = row["amount"] % D(10 ** 6)
    Gauge.insert_many(rows).execute()
    Gauge.update(amount=D("3.14159"), level=2.718281828,
                 seen_at=datetime.datetime(2025, 5, 5, 5, 5, 5, 555555)).where(
        Gauge.id <= 5).execute()
    Gauge.delete().where(Gauge.id <= 3).execute()
    for gauge in Gauge.select().with_deleted():
        assert _after(gauge) == gauge.to_dict(), gauge.history()[0].operation


def test_soft_delete_and_restore_after_is_stored_row(connect_db):
    """The deleted_at a soft delete records is the one stored (MySQL keeps seconds)."""
    connect_db(MODELS)
    gauge = Gauge.create()
    gauge.delete_instance()
    assert _after(gauge) == _stored(gauge) == gauge.to_dict()
    gauge.restore()
    assert _after(gauge) == _stored(gauge)


def test_non_finite_floats_refused_everywhere(connect_db):
    """inf and nan are refused with a ValidationError on every backend; nothing written."""
    connect_db(MODELS)
    for bad in (float("inf"), float("-inf"), float("nan")):
        with pytest.raises(peestore.ValidationError) as info:
            Gauge.create(level=bad)
        assert "level" in info.value.errors
        with pytest.raises(peestore.ValidationError):
            Gauge.insert_many([{"level": 1.0}, {"level": bad}]).execute()
    gauge = Gauge.create(level=1.0)
    gauge.level = float("nan")
    with pytest.raises(peestore.ValidationError):
        gauge.save()
    with pytest.raises(peestore.ValidationError):
        Gauge.update(level=float("inf")).execute()
    assert [g.level for g in Gauge.select()] == [1.0]
    assert AuditLog.select().count() == 1


def test_unstorable_decimals_refused_everywhere(connect_db):
    """Non-finite decimals, and decimals wider than the column, are refused alike."""
    connect_db(MODELS)
    for bad in (D("NaN"), D("Infinity"), D("12345678.5"), "1e20"):
        with pytest.raises(peestore.ValidationError) as info:
            Gauge.create(amount=bad)
        assert "amount" in info.value.errors
    assert Gauge.select().count() == 0 and AuditLog.select().count() == 0
    Gauge.create(amount=D("9999999.999"))


def test_wide_decimals_stored_or_refused(connect_db, backend):
    """Up to 15 significant digits every backend keeps; more only the servers:
    SQLite's REAL would round them unknowably, so it refuses them."""
    connect_db(MODELS)
    random.seed(11)
    for _ in range(30):
        value = D(random.randint(-10 ** 15, 10 ** 15)).scaleb(-random.randint(0, 5))
        row = Wide.create(amount=value)
        assert _after(row) == _stored(row) == row.to_dict()
    long = D("123456789012345.67891")
    if backend == "sqlite":
        with pytest.raises(peestore.ValidationError, match="15"):
            Wide.create(amount=long)
    else:
        row = Wide.create(amount=long)
        assert _after(row) == _stored(row) == row.to_dict()
        assert row.to_dict()["amount"] == "123456789012345.67891"


@pytest.fixture
def api(connect_db):
    connect_db(MODELS)
    app = peestore.bootstrap(models=[Gauge], database_url=peestore.database.obj,
                             create_tables=False)
    return webtest.TestApp(app)


def test_rest_after_is_what_get_returns(api):
    """Over REST: the answer, a GET and the audit entry's after are one and the same."""
    res = api.post_json("/gauges/", {"amount": "1.23456", "level": 1.23456789,
                                     "seen_at": "2024-01-01T10:00:00.999999",
                                     "at_time": "10:00:00.5"}, headers=W)
    got = api.get(res.headers["Location"]).json
    (entry,) = AuditLog.select()
    assert entry.after == res.json == got
    res = api.patch_json(res.headers["Location"], {"amount": "2.0005"}, headers=W)
    entry = AuditLog.select().order_by(AuditLog.id.desc()).first()
    assert entry.after == res.json == api.get(res.request.url).json


def test_rest_unstorable_values_are_422(api):
    """An over-wide decimal is a 422 naming the field, and nothing is written."""
    res = api.post_json("/gauges/", {"amount": "123456789"}, headers=W, status=422)
    assert "amount" in res.json["errors"]
    assert AuditLog.select().count() == 0


# -- B: recursive deletes carry the actor and the reason ---------------------------------

def _machine_with_dependents():
    machine = Machine.create(name="m")
    recipe = Recipe.create(machine=machine, name="r")
    Step.create(recipe=recipe, n=1)
    Plain.create(machine=machine)
    Tagged.create(machine=machine)
    return machine


@pytest.mark.parametrize("nullable", [False, True])
def test_recursive_delete_audits_dependents_as_the_outer_delete(connect_db, nullable):
    """delete_instance(recursive=True): every dependent write has the outer actor and reason."""
    connect_db(MODELS)
    machine = _machine_with_dependents()
    with capture_audit() as entries:
        machine.delete_instance(recursive=True, delete_nullable=nullable, actor="bob",
                                reason="scrapped")
    assert {(e.actor, e.reason) for e in entries} == {("bob", "scrapped")}
    operations = {(e.component, e.operation) for e in entries}
    assert ("tagged", "delete" if nullable else "update") in operations
    assert {("recipe", "delete"), ("step", "delete"), ("plain", "delete"),
            ("machine", "delete")} <= operations
    machine = _machine_with_dependents()
    with capture_audit() as entries:
        with peestore.actor("carol", reason="moved"):
            machine.delete_instance(recursive=True, delete_nullable=nullable)
    assert {(e.actor, e.reason) for e in entries} == {("carol", "moved")}


# -- C: ON DELETE CASCADE / SET NULL ---------------------------------------------------

def _changed_ids(model, entries, operation):
    return {e.record_id for e in entries
            if e.component == model._meta.component and e.operation == operation}


@pytest.mark.parametrize("how", ["instance", "bulk", "many"])
def test_on_delete_cascade_and_set_null_are_audited(connect_db, how):
    """Rows the database deletes or nulls for a deleted parent get their entries,
    with the parent's actor and reason, in the same transaction."""
    connect_db(MODELS)
    machine, other = Machine.create(name="m"), Machine.create(name="o")
    recipes = [Recipe.create(machine=machine, name="r%d" % i) for i in range(3)]
    steps = [Step.create(recipe=recipe, n=i) for i, recipe in enumerate(recipes)]
    notes = [Note.create(machine=machine, text="n%d" % i) for i in range(2)]
    Recipe.create(machine=other, name="kept")
    Note.create(machine=other, text="kept")
    with capture_audit() as entries:
        with peestore.actor("dave", reason="decommissioned"):
            if how == "instance":
                machine.delete_instance()
            elif how == "bulk":
                Machine.delete().where(Machine.name == "m").execute()
            else:
                Machine.delete_many([machine.id])
    assert {(e.actor, e.reason) for e in entries} == {("dave", "decommissioned")}
    assert _changed_ids(Recipe, entries, "delete") == {str(r.id) for r in recipes}
    assert _changed_ids(Step, entries, "delete") == {str(s.id) for s in steps}
    assert _changed_ids(Note, entries, "update") == {str(n.id) for n in notes}
    for entry in entries:
        if entry.component == "note":
            assert entry.before["machine"] == machine.id and entry.after["machine"] is None
            assert entry.after == Note.get_by_id(int(entry.record_id)).to_dict()
    assert [r.name for r in Recipe.select()] == ["kept"]
    assert Step.select().count() == 0
    assert sorted(n.machine_id or 0 for n in Note.select()) == [0, 0, other.id]


def test_failed_cascade_leaves_nothing(connect_db):
    """A refused parent delete (a hook) rolls back the dependents' entries too."""
    connect_db(MODELS)
    machine = Machine.create(name="m")
    Recipe.create(machine=machine, name="r")

    def refuse(sender, instance):
        raise RuntimeError("not today")

    peestore.signals.after_delete.connect(refuse, sender=Machine)
    with pytest.raises(RuntimeError):
        machine.delete_instance()
    assert Recipe.select().count() == 1
    assert AuditLog.select().where(AuditLog.operation == "delete").count() == 0


# -- D: insert_from and truncate_table -------------------------------------------------

def test_insert_from_is_audited(connect_db):
    """insert_from(select, fields): one create per row inserted, after = the stored row."""
    connect_db(MODELS)
    Source.insert_many([{"name": "a", "amount": D("1.5")},
                        {"name": "b", "amount": D("2.25")}]).execute()
    query = Source.select(Source.name, Source.amount).order_by(Source.id)
    with capture_audit() as entries:
        Gauge.insert_from(query, [Gauge.name, Gauge.amount]).execute()
    assert entries.operations() == ["create", "create"]
    gauges = {str(g.id): g.to_dict() for g in Gauge.select()}
    assert {e.record_id: e.after for e in entries} == gauges
    assert sorted(g["name"] for g in gauges.values()) == ["a", "b"]


def test_truncate_table_refused_on_audited_model(connect_db):
    """truncate_table() on an audited model deletes nothing and points at delete()."""
    connect_db(MODELS)
    Gauge.create()
    with pytest.raises(peestore.PeestoreError, match=r"delete\(permanently=True\)"):
        Gauge.truncate_table()
    assert Gauge.select().count() == 1


# -- E: bulk queries with order_by / limit ---------------------------------------------

def _gauges(n=6):
    return [Gauge.create(name="g%d" % i, level=float(i)) for i in range(n)]


def test_update_with_order_by_and_limit_audits_the_rows_changed(connect_db):
    """update().order_by().limit(n): the audited record ids are exactly the rows changed."""
    connect_db(MODELS)
    _gauges()
    with capture_audit() as entries:
        count = (Gauge.update(level=99.0).where(Gauge.level >= 1.0)
                 .order_by(Gauge.name.desc()).limit(2).execute())
    changed = {str(g.id) for g in Gauge.select().where(Gauge.level == 99.0)}
    assert count == 2 == len(entries)
    assert {e.record_id for e in entries} == changed
    assert {g.name for g in Gauge.select().where(Gauge.level == 99.0)} == {"g5", "g4"}


def test_delete_with_order_by_and_limit_audits_the_rows_deleted(connect_db):
    """delete().order_by().limit(n), hard and soft: audited ids = rows gone / deleted."""
    connect_db(MODELS)
    gauges = _gauges()
    with capture_audit() as entries:
        count = Gauge.delete(permanently=True).order_by(Gauge.level).limit(2).execute()
    left = {str(g.id) for g in Gauge.select().with_deleted()}
    gone = {str(g.id) for g in gauges} - left
    assert count == 2 and {e.record_id for e in entries} == gone == {
        str(gauges[0].id), str(gauges[1].id)}
    with capture_audit() as entries:
        count = Gauge.delete().order_by(Gauge.level.desc()).limit(3).execute()
    soft = {str(g.id) for g in Gauge.select().only_deleted()}
    assert count == 3 and {e.record_id for e in entries} == soft


def test_peewee_plain_model_cascade_still_works(connect_db):
    """A plain peewee model depending on an audited one is left to the database."""
    class Loose(peewee.Model):
        machine = ForeignKeyField(Machine, on_delete="CASCADE")

        class Meta:
            database = peestore.database

    try:
        connect_db(MODELS + [Loose])
        machine = Machine.create(name="m")
        Loose.create(machine=machine)
        machine.delete_instance()
        assert Loose.select().count() == 0
    finally:
        Machine._meta.backrefs.pop(Loose.machine, None)
