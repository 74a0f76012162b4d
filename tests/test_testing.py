"""peestore.testing.capture_audit."""
import pytest

from peestore.testing import capture_audit

from .models import ALL, Product


def test_capture_audit_collects_the_blocks_entries(connect_db):
    """Only entries written inside the block are captured, oldest first."""
    db = connect_db(ALL)
    Product.create(name="before")
    with capture_audit() as entries:
        Product.create(name="inside")
        Product.update(price=2).execute()
        with pytest.raises(RuntimeError):
            with db.atomic():
                Product.create(name="rolled back")
                raise RuntimeError
    assert entries.operations() == ["create", "update", "update"]
    assert entries[0].after["name"] == "inside"
