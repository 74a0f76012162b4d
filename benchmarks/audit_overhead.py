"""What the audit trail costs a create: audited ``Model.create`` vs the same plain peewee one.

    python benchmarks/audit_overhead.py [--rows 5000] [--repeat 3] [--json]

Both models have the demo ``Machine``'s fields and live in one temporary
SQLite file with peestore's default pragmas; each create is a call of its
own, as an app makes it (its own transaction).  Prints the best time per
create over ``--repeat`` runs and their ratio.
"""
import argparse
import datetime
import json
import os
import sys
import tempfile
import time

import peewee

import peestore


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class AuditedMachine(peestore.BaseAuditedModel):
    name = peewee.CharField(max_length=100, unique=True)
    serial = peewee.CharField(max_length=50, unique=True)
    status = peewee.CharField(max_length=20, default="idle")
    location = peewee.CharField(max_length=100, null=True)
    max_speed_rpm = peewee.FloatField(default=3000.0)
    created_at = peewee.DateTimeField(default=_now)


class PlainMachine(peewee.Model):
    name = peewee.CharField(max_length=100, unique=True)
    serial = peewee.CharField(max_length=50, unique=True)
    status = peewee.CharField(max_length=20, default="idle")
    location = peewee.CharField(max_length=100, null=True)
    max_speed_rpm = peewee.FloatField(default=3000.0)
    created_at = peewee.DateTimeField(default=_now)

    class Meta:
        database = peestore.database
        table_name = "plain_machine"


def _per_create(model: type, rows: int, round_: int) -> float:
    start = time.perf_counter()
    for i in range(rows):
        model.create(name="m-%d-%d" % (round_, i), serial="s-%d-%d" % (round_, i),
                     location="hall B", max_speed_rpm=2000.0)
    return (time.perf_counter() - start) / rows * 1e6


def main(argv: list) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        db = peestore.connect("sqlite:///" + os.path.join(tmp, "overhead.db"),
                              models=[AuditedMachine, PlainMachine])
        audited, plain = [], []
        with peestore.actor("bench"):
            for round_ in range(args.repeat):
                # Alternate so that both see the same file growth and noise.
                audited.append(_per_create(AuditedMachine, args.rows, round_))
                plain.append(_per_create(PlainMachine, args.rows, round_))
        db.close()
    figures = {"rows": args.rows, "audited_us": min(audited), "plain_us": min(plain)}
    if args.json:
        print(json.dumps(figures))
    else:
        print("audited create: %.1f us   plain peewee create: %.1f us   ratio %.2f"
              % (figures["audited_us"], figures["plain_us"],
                 figures["audited_us"] / figures["plain_us"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
