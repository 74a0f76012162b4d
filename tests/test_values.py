"""Value conversion between field types and JSON."""
import datetime
import decimal
import uuid

import peewee
import pytest

from peestore.model._values import from_json_value, to_json_value


@pytest.mark.parametrize("field, text, expected", [
    (peewee.IntegerField(), "42", 42),
    (peewee.IntegerField(), 42, 42),
    (peewee.FloatField(), "2.5", 2.5),
    (peewee.BooleanField(), "true", True),
    (peewee.BooleanField(), False, False),
    (peewee.DecimalField(), "1.10", decimal.Decimal("1.10")),
    (peewee.DateTimeField(), "2026-01-02T03:04:05", datetime.datetime(2026, 1, 2, 3, 4, 5)),
    (peewee.DateTimeField(), "2026-01-02T04:04:05+01:00", datetime.datetime(2026, 1, 2, 3, 4, 5)),
    (peewee.DateTimeField(), "2026-01-02T03:04:05Z", datetime.datetime(2026, 1, 2, 3, 4, 5)),
    (peewee.DateField(), "2026-01-02", datetime.date(2026, 1, 2)),
    (peewee.TimeField(), "03:04:05", datetime.time(3, 4, 5)),
    (peewee.UUIDField(), "12345678-1234-5678-1234-567812345678",
     uuid.UUID("12345678-1234-5678-1234-567812345678")),
    (peewee.BlobField(), "AP8=", b"\x00\xff"),
    (peewee.CharField(), "x", "x"),
    (peewee.CharField(), None, None),
])
def test_from_json_value(field, text, expected):
    """Values convert to the field's Python type."""
    assert from_json_value(field, text) == expected


@pytest.mark.parametrize("field, bad", [
    (peewee.IntegerField(), "4x"),
    (peewee.IntegerField(), True),
    (peewee.FloatField(), "nan"),
    (peewee.FloatField(), [1]),
    (peewee.BooleanField(), "maybe"),
    (peewee.DecimalField(), "1,5"),
    (peewee.DateTimeField(), "yesterday"),
    (peewee.UUIDField(), "nope"),
    (peewee.BlobField(), "***"),
    (peewee.CharField(), {"a": 1}),
])
def test_from_json_value_rejects(field, bad):
    """A value that does not fit raises ValueError saying what was expected."""
    with pytest.raises(ValueError, match="expected"):
        from_json_value(field, bad)


def test_to_json_value_round_trip():
    """to_json_value gives JSON-safe values."""
    assert to_json_value(datetime.date(2026, 1, 2)) == "2026-01-02"
    assert to_json_value(decimal.Decimal("3.0")) == "3.0"
    assert to_json_value(b"ab") == "YWI="
    assert to_json_value({"a": [datetime.time(1, 2)]}) == {"a": ["01:02:00"]}


@pytest.mark.parametrize("text, expected", [
    ("10:00:00.5", datetime.time(10, 0, 0, 500000)),
    ("10:00:00,25", datetime.time(10, 0, 0, 250000)),
    ("10:00:00.1234567", datetime.time(10, 0, 0, 123456)),
    ("10:00:00.123", datetime.time(10, 0, 0, 123000)),
    ("10:00:00", datetime.time(10, 0, 0)),
])
def test_a_time_takes_any_number_of_fraction_digits_on_every_python(text, expected):
    """Python before 3.11 parses only three or six digits after the seconds: peestore
    takes the same values on every Python it runs on."""
    from peestore.model._values import _parse_time

    assert _parse_time(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("2024-01-01T10:00:00.5", datetime.datetime(2024, 1, 1, 10, 0, 0, 500000)),
    ("2024-01-01 10:00:00.12", datetime.datetime(2024, 1, 1, 10, 0, 0, 120000)),
    ("2024-01-01T10:00:00.1234567+01:00", datetime.datetime(2024, 1, 1, 9, 0, 0, 123456)),
    ("2024-01-01T10:00:00.5Z", datetime.datetime(2024, 1, 1, 10, 0, 0, 500000)),
])
def test_a_datetime_takes_any_number_of_fraction_digits_on_every_python(text, expected):
    from peestore.model._values import _parse_datetime

    assert _parse_datetime(text) == expected
