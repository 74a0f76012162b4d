"""Models for the REST tests: a soft-delete model with every common field type,
a hard-delete model with a foreign key to it, and a model keyed by text."""
from peewee import (BooleanField, CharField, DateTimeField, DoubleField, ForeignKeyField,
                    IntegerField, TextField)

import peestore


class Part(peestore.BaseAuditedModel):
    name = CharField(max_length=40, unique=True)
    price = DoubleField(default=0.0)
    qty = IntegerField(default=0)
    active = BooleanField(default=True)
    made = DateTimeField(null=True)
    note = TextField(null=True)
    grade = CharField(max_length=1, default="a", choices=[("a", "A"), ("b", "B")])
    deleted_at = DateTimeField(null=True, index=True)

    class Meta:
        component = "parts"


class Bin(peestore.BaseAuditedModel):
    part = ForeignKeyField(Part, backref="bins")
    label = CharField(max_length=20)

    class Meta:
        component = "bins"


class Tag(peestore.BaseAuditedModel):
    code = CharField(max_length=10, primary_key=True)
    title = CharField(max_length=50)

    class Meta:
        component = "tags"


REST_MODELS = [Part, Bin, Tag]
