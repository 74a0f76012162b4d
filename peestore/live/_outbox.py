"""The MQTT publisher's outbox: the audit log, and one row per publisher holding the
id of the last change its broker acknowledged (table ``mqtt_outbox``)."""
from __future__ import annotations

import peewee

from ..audit._log import OUTBOX_TABLE, AuditLog
from ..db._connect import database, open_connection

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import List, Optional, Sequence, Tuple

__all__ = ["Outbox", "MqttOutbox"]


class MqttOutbox(peewee.Model):
    """One publisher's place in the audit log: every change up to ``last_id`` that
    it publishes was acknowledged by the broker."""

    name = peewee.CharField(max_length=200, primary_key=True)
    last_id = peewee.BigIntegerField(default=0)

    class Meta:
        database = database
        table_name = OUTBOX_TABLE


class Outbox:
    """The audit log read as an outbox by one publisher (``name``), on ``db``.

    Every query names ``db`` itself (``execute(db)``): the publisher may read
    a database other than the one the models are bound to.
    """

    def __init__(self, db: peewee.Database, name: str,
                 components: Optional[Sequence[str]] = None) -> None:
        self.db = db
        self.name = name
        self.components = list(components) if components else None

    def create(self) -> int:
        """Make the table and this publisher's row if missing; its ``last_id``."""
        # The caller's own connection, if it has one open, stays open.
        with open_connection(self.db):
            peewee.SchemaManager(MqttOutbox, self.db).create_all(safe=True)
            last = self.acknowledged()
            if last is None:
                try:
                    MqttOutbox.insert(name=self.name, last_id=0).execute(self.db)
                except peewee.IntegrityError:  # another publisher of the same name made it
                    pass
                last = self.acknowledged() or 0
            return last

    def acknowledged(self) -> Optional[int]:
        """The stored id of the last acknowledged change (None: no row yet)."""
        value = (MqttOutbox.select(MqttOutbox.last_id).where(MqttOutbox.name == self.name)
                 .scalar(self.db))
        return None if value is None else int(value)

    def save(self, last_id: int) -> None:
        """Store ``last_id``; the stored id never moves back."""
        (MqttOutbox.update(last_id=last_id)
         .where((MqttOutbox.name == self.name) & (MqttOutbox.last_id < last_id))
         .execute(self.db))

    def read(self, after: int, limit: int) -> Tuple[List[AuditLog], int]:
        """(up to ``limit`` entries after id ``after`` that this publisher sends, in id
        order; the id up to which the log has been read).

        Audited writes commit in id order (each holds the head of the hash chain
        until it commits), so every entry up to the highest id seen first is
        committed: reading no further than it skips none.
        """
        high = AuditLog.select(peewee.fn.MAX(AuditLog.id)).scalar(self.db) or 0
        if high <= after:
            return [], high
        where = (AuditLog.id > after) & (AuditLog.id <= high)
        if self.components is not None:
            where &= AuditLog.component.in_(self.components)
        entries = list(AuditLog.select().where(where).order_by(AuditLog.id).limit(limit)
                       .execute(self.db))
        return entries, (entries[-1].id if len(entries) == limit else high)
