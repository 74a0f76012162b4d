"""Rows to JSON: the shortcut for SQLite's datetime text gives what peewee + isoformat give."""
import datetime
import random

import peewee

from peestore.rest._rows import raw_converter


def _slow(field, value):
    value = field.python_value(value)
    return value.isoformat() if isinstance(value, datetime.datetime) else value


def test_sqlite_datetime_text_as_peewee_reads_it():
    field = peewee.DateTimeField()
    field.name = "made"
    convert = raw_converter(field, "datetime")
    cases = ["2026-11-28 12:00:00", "2026-11-28 12:00:00.000000", "2026-11-28 12:00:00.123456",
             "2026-02-30 00:00:00", "2026-13-01 00:00:00", "2026-11-28T12:00:00", "2026-11-28",
             "2026-11-28 12:00:00.5", "2026-11-28 12:00:00+00:00", "junk", "",
             "2026-01-31 23:59:59.000001", "2026-11-28 24:00:00"]
    rng = random.Random(3)
    for _ in range(3000):
        made = datetime.datetime(1990, 1, 1) + datetime.timedelta(seconds=rng.random() * 2e9)
        if rng.random() < 0.3:
            made = made.replace(microsecond=0)
        cases.append(str(made))
    cases.append(datetime.datetime(2026, 1, 2, 3, 4, 5))  # a driver's own datetime
    for value in cases:
        assert convert(value) == _slow(field, value), value


def test_raw_rows_give_what_peewee_rows_give(sqlite_db):
    import peestore
    from peestore.rest._fields import ModelInfo

    from .rest_models import Part

    db = sqlite_db([Part])
    with peestore.actor("t"):
        Part.create(name="a", price=1.5, qty=3, active=False, note="x",
                    made=datetime.datetime(2026, 1, 2, 3, 4, 5, 600))
        Part.create(name="b", made=datetime.datetime(2026, 1, 2, 3, 4, 5))
        Part.create(name="c")
    # Values of another type than the column's, as an import or an old app may leave.
    db.execute_sql("UPDATE part SET qty = 'not a number', price = '2.5' WHERE name = 'c'")
    info = ModelInfo(Part)
    raw = db.execute_sql('SELECT %s FROM part ORDER BY id' % ", ".join(
        '"%s"' % f.column_name for f in info.fields)).fetchall()
    through_peewee = [info.row_dict(row) for row in Part.select().order_by(Part.id).tuples()]
    assert info.raw_rows(raw) == through_peewee
    assert [info.raw_row_dict(row) for row in raw] == through_peewee
    assert through_peewee[0]["active"] is False and through_peewee[2]["price"] == 2.5
