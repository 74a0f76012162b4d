"""insert_row: the cached one-row INSERT writes what peewee's own INSERT writes."""
import datetime
import uuid

import peewee
import pytest

import peestore
from peestore.model._insert import insert_row


class Owner(peestore.BaseAuditedModel):
    name = peewee.CharField()


class Thing(peestore.BaseAuditedModel):
    owner = peewee.ForeignKeyField(Owner, null=True)
    label = peewee.CharField(default="plain")
    weight = peewee.FloatField(null=True)
    made = peewee.DateTimeField(default=lambda: datetime.datetime(2026, 1, 2, 3, 4, 5, 6))
    token = peewee.UUIDField(null=True)
    flag = peewee.BooleanField(default=False)


@pytest.fixture
def db(connect_db):
    return connect_db([Owner, Thing])


def rows(db):
    return db.execute_sql("SELECT owner_id, label, weight, made, token, flag FROM thing "
                          "ORDER BY id").fetchall()


def test_same_row_as_peewee(db):
    with peestore.actor("t"):
        owner = Owner.create(name="o")
    token = uuid.uuid4()
    data = {"owner": owner, "label": "x", "weight": 2, "token": token, "flag": True}
    key = insert_row(Thing, data)
    other = peewee.ModelInsert(Thing, Thing._normalize_data(None, data)).execute()
    assert isinstance(key, int) and other == key + 1
    first, second = rows(db)
    assert first == second
    assert first[0] == owner.id and first[4] in (token.hex, str(token), token)


def test_defaults_filled_like_peewee(db):
    key = insert_row(Thing, {"weight": 1.5})
    peewee.ModelInsert(Thing, {Thing.weight: 1.5}).execute()
    first, second = rows(db)
    assert first == second
    assert Thing.get_by_id(key).label == "plain"


def test_expression_values_go_through_peewee(db):
    key = insert_row(Thing, {"label": peewee.fn.UPPER("abc")})
    assert Thing.get_by_id(key).label == "ABC"


def test_explicit_key(db):
    assert insert_row(Thing, {"id": 40, "label": "k"}) == 40
    assert Thing.get_by_id(40).label == "k"


def test_the_cache_does_not_mix_column_sets(db):
    a = insert_row(Thing, {"label": "a"})
    b = insert_row(Thing, {"label": "b", "weight": 3.0})
    c = insert_row(Thing, {"label": "c"})
    got = {t.id: (t.label, t.weight) for t in Thing.select()}
    assert got == {a: ("a", None), b: ("b", 3.0), c: ("c", None)}


def test_same_columns_in_another_order_and_a_late_expression(db):
    """The plan is kept per column order as given; an SQL expression met after plain
    values still goes through peewee, with nothing half-written."""
    a = insert_row(Thing, {"weight": 1.0, "label": "first"})
    b = insert_row(Thing, {"label": "second", "weight": 2.0})
    c = insert_row(Thing, {"weight": 3.0, "label": peewee.fn.LOWER("THIRD")})
    got = {t.id: (t.label, t.weight) for t in Thing.select()}
    assert got == {a: ("first", 1.0), b: ("second", 2.0), c: ("third", 3.0)}
