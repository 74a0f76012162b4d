"""Models shared by the core tests."""
from peewee import (BlobField, CharField, DateTimeField, DecimalField, FloatField,
                    ForeignKeyField, IntegerField, UUIDField)

import peestore


class User(peestore.BaseAuditedModel):
    name = CharField()
    email = CharField(default="")
    deleted_at = DateTimeField(null=True, index=True)

    class Meta:
        component = "users"


class Product(peestore.BaseAuditedModel):
    owner = ForeignKeyField(User, null=True, backref="products")
    name = CharField(unique=True)
    price = FloatField(default=0.0)


class Reading(peestore.BaseAuditedModel):
    taken_at = DateTimeField()
    value = DecimalField(max_digits=10, decimal_places=3)
    tag = UUIDField(null=True)
    raw = BlobField(null=True)
    count = IntegerField(default=0)


class Setting(peestore.BaseAuditedModel):
    key = CharField()
    value = CharField()

    class Meta:
        audited = False


ALL = [User, Product, Reading, Setting]
