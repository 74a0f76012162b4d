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
