"""How much an audited bulk update costs over the same unaudited peewee query.

    python benchmarks/bulk_update.py [--rows 10000] [--repeat 3]

Prints the best time of each over ``--repeat`` runs and their ratio, on a
temporary SQLite file with peestore's default pragmas.
"""
import argparse
import os
import sys
import tempfile
import time

import peewee

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import peestore  # noqa: E402


class Item(peestore.BaseAuditedModel):
    name = peewee.CharField()
    price = peewee.FloatField(default=0.0)


class PlainItem(peewee.Model):
    name = peewee.CharField()
    price = peewee.FloatField(default=0.0)

    class Meta:
        database = peestore.database
        table_name = "plain_item"


def best(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = peestore.connect("sqlite:///%s" % os.path.join(tmp, "bench.db"),
                              models=[Item, PlainItem])
        rows = [{"name": "item%d" % i} for i in range(args.rows)]
        with db.atomic():
            PlainItem.insert_many(rows).execute()
        start = time.perf_counter()
        Item.insert_many(rows).execute()
        insert_time = time.perf_counter() - start
        counter = iter(range(10 ** 9))
        plain = best(lambda: PlainItem.update(price=next(counter)).execute(), args.repeat)
        audited_const = best(lambda: Item.update(price=next(counter)).execute(), args.repeat)
        audited_expr = best(lambda: Item.update(price=Item.price + 1).execute(), args.repeat)
        db.close()
    print("rows: %d (SQLite %s, peewee %s)" % (args.rows, peewee.sqlite3.sqlite_version,
                                               peewee.__version__))
    print("%-40s %8.3f s" % ("audited insert_many", insert_time))
    print("%-40s %8.3f s" % ("unaudited peewee update", plain))
    print("%-40s %8.3f s  (%.1fx)" % ("audited update, constant value", audited_const,
                                      audited_const / plain))
    print("%-40s %8.3f s  (%.1fx)" % ("audited update, expression", audited_expr,
                                      audited_expr / plain))
    print("audit cost per updated row: %.1f us" % (
        (audited_const - plain) / args.rows * 1e6))


if __name__ == "__main__":
    main()
