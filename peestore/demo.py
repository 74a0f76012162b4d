"""The demo machine app that ``peestore demo`` serves.

Three models: a ``Machine``; a ``Recipe`` that belongs to a machine (a
foreign key) and is soft-deleted; an ``OperatorLog`` of what operators did
(not audited: it is a log already).  Hooks check the values before each
write; a rejected write is a 422 that names the field.
"""
from __future__ import annotations

import datetime

import bottle
from peewee import (BooleanField, CharField, DateTimeField, FloatField, ForeignKeyField,
                    IntegerField, TextField)

from .errors import ValidationError
from .model._base import BaseAuditedModel
from .rest import bootstrap
from .signals import before_insert, before_update

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Optional

__all__ = ["Machine", "Recipe", "OperatorLog", "MODELS", "make_app", "seed"]


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class Machine(BaseAuditedModel):
    """A machine on the shop floor."""

    name = CharField(max_length=100, unique=True, help_text="unique machine name")
    serial = CharField(max_length=50, unique=True)
    status = CharField(max_length=20, default="idle",
                       choices=[("idle", "idle"), ("running", "running"),
                                ("stopped", "stopped"), ("fault", "fault")])
    location = CharField(max_length=100, null=True)
    max_speed_rpm = FloatField(default=3000.0)
    created_at = DateTimeField(default=_utcnow)

    class Meta:
        component = "machines"


class Recipe(BaseAuditedModel):
    """A set of process parameters for one machine."""

    machine = ForeignKeyField(Machine, backref="recipes", on_delete="CASCADE")
    name = CharField(max_length=100)
    speed_rpm = FloatField(default=1000.0)
    temperature_c = FloatField(null=True)
    duration_s = IntegerField(default=60)
    active = BooleanField(default=True)
    notes = TextField(null=True)
    deleted_at = DateTimeField(null=True, index=True)  # soft delete

    class Meta:
        component = "recipes"


class OperatorLog(BaseAuditedModel):
    """What an operator did or saw, by machine."""

    machine = ForeignKeyField(Machine, null=True, backref="log", on_delete="SET NULL")
    operator = CharField(max_length=100)
    level = CharField(max_length=10, default="info",
                      choices=[("info", "info"), ("warning", "warning"), ("error", "error")])
    message = TextField()
    created_at = DateTimeField(default=_utcnow, index=True)

    class Meta:
        component = "operator_logs"
        audited = False  # a log of its own: no audit entry per line


MODELS = [Machine, Recipe, OperatorLog]


@before_insert(sender=Machine)
@before_update(sender=Machine)
def check_machine(sender: type, instance: Machine) -> None:
    if not instance.name or not instance.name.strip():
        raise ValidationError("a machine needs a name", {"name": "may not be blank"})
    if instance.max_speed_rpm is not None and instance.max_speed_rpm <= 0:
        raise ValidationError("max_speed_rpm must be positive",
                              {"max_speed_rpm": "must be greater than 0"})


@before_insert(sender=Recipe)
@before_update(sender=Recipe)
def check_recipe(sender: type, instance: Recipe) -> None:
    errors = {}
    machine = None
    if instance.machine_id is not None:
        machine = Machine.select().where(Machine.id == instance.machine_id).first()
    if machine is None:
        errors["machine"] = "no such machine"
    elif not 0 <= instance.speed_rpm <= machine.max_speed_rpm:
        errors["speed_rpm"] = "must be between 0 and the machine's max_speed_rpm (%g)" \
            % machine.max_speed_rpm
    if instance.temperature_c is not None and not -40 <= instance.temperature_c <= 400:
        errors["temperature_c"] = "must be between -40 and 400"
    if instance.duration_s is not None and instance.duration_s <= 0:
        errors["duration_s"] = "must be greater than 0"
    if errors:
        raise ValidationError("invalid recipe: %s" % ", ".join(sorted(errors)), errors)


@before_insert(sender=OperatorLog)
def check_log(sender: type, instance: OperatorLog) -> None:
    if not instance.message or not instance.message.strip():
        raise ValidationError("a log line needs a message", {"message": "may not be blank"})


def seed() -> None:
    """A first machine, two recipes and a log line, when the database is empty."""
    if Machine.select().with_deleted().exists():
        return
    press = Machine.create(name="press-1", serial="PX-0001", location="hall A",
                           max_speed_rpm=2400.0)
    Recipe.create(machine=press, name="steel 2mm", speed_rpm=1200.0, temperature_c=20.0,
                  duration_s=45)
    Recipe.create(machine=press, name="aluminium 1mm", speed_rpm=1800.0, duration_s=30)
    OperatorLog.create(machine=press, operator="demo", message="machine commissioned")


def make_app(database_url: Optional[str] = None) -> bottle.Bottle:
    """The demo app on ``database_url``, seeded, with an index at ``/``.

    The default database is every peestore tool's: ``$PEESTORE_DATABASE_URL``,
    else ``sqlite:///peestore.db``.
    """
    from .audit._actor import actor

    app = bottle.Bottle()

    @app.get("/")
    def index() -> dict:
        return {"app": "peestore demo machine app",
                "components": [m._meta.component for m in MODELS],
                "openapi": bottle.request.fullpath.rstrip("/") + "/openapi.json",
                "health": bottle.request.fullpath.rstrip("/") + "/db/health"}

    bootstrap(app, models=MODELS, database_url=database_url)
    from .db._connect import get_database, release_idle
    with get_database().connection_context(), actor("demo"):
        seed()
    release_idle(get_database())
    return app
