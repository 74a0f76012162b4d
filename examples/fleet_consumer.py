"""A central service for a fleet: the changes every device publishes, in one database.

    python examples/fleet_consumer.py --db postgresql://app@central/plant \\
        [--broker mqtt://127.0.0.1:1883] [--topic plant] [--seconds N]

Each device runs ``peestore publish --broker mqtt://plant-broker:1883
--topic 'plant/DEVICE/{component}/{record_id}'``.  This service subscribes to
``plant/+/#`` (QoS 1, a persistent session named ``--client-id``, so the broker
keeps what arrives while it is down) and writes each change into the table
``fleet_change``, keyed by (device, audit id): a change sent twice (a device's
publisher may resend after a crash) is stored once (``INSERT ... ON CONFLICT
DO NOTHING``).  A change is acknowledged to the broker only once it is stored.
It runs until SIGTERM or Ctrl-C, or for ``--seconds``.
"""
import argparse
import json
import signal
import sys
import time
from urllib.parse import urlsplit

import peewee

import peestore


class FleetChange(peewee.Model):
    """One change of one device: the SPEC 12 event, keyed by (device, audit id)."""

    device = peewee.CharField(max_length=100)
    audit_id = peewee.BigIntegerField()
    component = peewee.CharField(max_length=100)
    operation = peewee.CharField(max_length=20)
    record_id = peewee.CharField(max_length=100)
    actor = peewee.CharField(max_length=200, null=True)
    reason = peewee.TextField(null=True)
    timestamp = peewee.CharField(max_length=40)
    before = peewee.TextField(null=True)     # the event's "before", JSON text
    after = peewee.TextField(null=True)      # the event's "values", JSON text

    class Meta:
        database = peestore.database
        table_name = "fleet_change"
        primary_key = peewee.CompositeKey("device", "audit_id")


def store(device: str, event: dict) -> int:
    """Store one change; 1 if it is new, 0 if it was stored already."""
    row = {"device": device, "audit_id": int(event["id"]),
           "component": str(event["component"]), "operation": str(event["operation"]),
           "record_id": str(event["record_id"]), "actor": event.get("actor"),
           "reason": event.get("reason"), "timestamp": str(event["timestamp"]),
           "before": json.dumps(event.get("before")), "after": json.dumps(event.get("values"))}
    # ON CONFLICT DO NOTHING on PostgreSQL, INSERT OR IGNORE on SQLite, INSERT IGNORE
    # on MariaDB: the row count says whether it was new.
    cursor = FleetChange._meta.database.execute(FleetChange.insert(row).on_conflict_ignore())
    return cursor.rowcount


def broker_address(url: str) -> tuple:
    """(host, port, user, password) of mqtt://[user:password@]host[:port]."""
    try:
        parts = urlsplit(url)
        port = parts.port or 1883
    except ValueError as exc:
        raise peestore.ConfigurationError("bad broker URL %r: %s" % (url, exc)) from None
    if parts.scheme != "mqtt" or not parts.hostname:
        raise peestore.ConfigurationError("bad broker URL %r: expected mqtt://host:port" % url)
    return parts.hostname, port, parts.username, parts.password


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not the usage block
        self.exit(2, "%s: error: %s (see --help)\n" % (self.prog, message))


def main() -> int:
    parser = Parser(prog="fleet_consumer.py", description=__doc__.splitlines()[0])
    parser.add_argument("--db", metavar="URL", default=None,
                        help="the central database (default: $PEESTORE_DATABASE_URL, "
                             "else sqlite:///peestore.db)")
    parser.add_argument("--broker", metavar="URL", default="mqtt://127.0.0.1:1883",
                        help="the plant's broker (default mqtt://127.0.0.1:1883)")
    parser.add_argument("--topic", default="plant",
                        help="the devices publish under TOPIC/DEVICE/... (default plant)")
    parser.add_argument("--client-id", default="peestore-fleet-consumer",
                        help="names the broker session that keeps changes while this is down")
    parser.add_argument("--seconds", type=float, default=None,
                        help="stop after this many seconds (default: run until stopped)")
    args = parser.parse_args()
    prog = parser.prog
    if not args.topic or any(c in args.topic for c in "+#\0"):
        parser.error("--topic must be a topic prefix without wildcards")
    try:
        import paho.mqtt.client as mqtt

        host, port, user, password = broker_address(args.broker)
        db = peestore.connect(args.db, models=[FleetChange])
    except ImportError:
        print("%s: error: needs paho-mqtt: pip install 'peestore[mqtt]'" % prog,
              file=sys.stderr)
        return 1
    except (peestore.PeestoreError, peewee.PeeweeException) as exc:
        print("%s: error: %s" % (prog, str(exc).strip().splitlines()[0]), file=sys.stderr)
        return 1
    level = args.topic.strip("/").count("/") + 1   # the device's topic level
    counts = {"new": 0, "again": 0, "bad": 0}

    def on_connect(client, userdata, flags, code, *rest):
        client.subscribe(args.topic.strip("/") + "/+/#", 1)

    def on_subscribe(client, *rest):
        if not counts.get("subscribed"):   # once: the first line says it is listening
            counts["subscribed"] = 1
            print("consuming %s/+/# from mqtt://%s:%d into %s" % (
                args.topic.strip("/"), host, port, db.database), flush=True)

    def on_message(client, userdata, message):
        try:
            device = message.topic.split("/")[level]
            event = json.loads(message.payload.decode("utf-8"))
            if not isinstance(event, dict) or not isinstance(event.get("id"), int):
                raise ValueError("no audit id")
        except (ValueError, IndexError, UnicodeDecodeError) as exc:
            counts["bad"] += 1   # not a peestore change: skipped, never fatal
            print("%s: skipped a message on %s: %s" % (prog, message.topic, exc),
                  file=sys.stderr)
            return
        # A database error propagates out of client.loop() before the change is
        # acknowledged: the broker keeps it for the next run.
        with db.connection_context():
            counts["new" if store(device, event) else "again"] += 1

    if hasattr(mqtt, "CallbackAPIVersion"):   # paho-mqtt 2
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=args.client_id,
                             clean_session=False)
    else:
        client = mqtt.Client(client_id=args.client_id, clean_session=False)
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    if user is not None:
        client.username_pw_set(user, password)
    stopped = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *a: stopped.append(True))
    deadline = None if args.seconds is None else time.monotonic() + args.seconds
    connected = down = False
    try:
        while not stopped and (deadline is None or time.monotonic() < deadline):
            if not connected:
                try:
                    client.connect(host, port, 30)
                    connected, down = True, False
                except OSError as exc:
                    if not down:   # one line per outage, not one per retry
                        print("%s: broker unreachable (%s); retrying" % (prog, exc),
                              file=sys.stderr)
                        down = True
                    time.sleep(1)
                    continue
            if client.loop(0.2) != mqtt.MQTT_ERR_SUCCESS:
                connected = False
    except peewee.PeeweeException as exc:
        print("%s: error: database: %s (the broker keeps the change for the next run)"
              % (prog, str(exc).strip().splitlines()[0]), file=sys.stderr)
        return 1
    client.disconnect()
    print("stored %(new)d changes (%(again)d were stored already, %(bad)d skipped)" % counts,
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
