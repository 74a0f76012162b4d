"""Rows to JSON: the shortcut for SQLite's datetime text gives what peewee + isoformat give."""
import datetime
import random

import peewee

from peestore.rest.fields import _raw_converter


def _slow(field, value):
    value = field.python_value(value)
    return value.isoformat() if isinstance(value, datetime.datetime) else value


def test_sqlite_datetime_text_as_peewee_reads_it():
    field = peewee.DateTimeField()
    field.name = "made"
    convert = _raw_converter(field, "datetime")
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
