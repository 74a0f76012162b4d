"""What ``synchronous=full`` costs: audited creates per second, normal vs full.

Each create is its own transaction (one row and its audit entry), through
the model API, on a SQLite file in WAL mode in ``--dir`` (default: the
current folder; put it on the disk the app will use: a tmpfs makes fsync
free and the comparison meaningless).

    python benchmarks/synchronous.py [--rows 3000] [--repeat 5] [--dir .]
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from peewee import CharField, IntegerField  # noqa: E402

import peestore  # noqa: E402


class Reading(peestore.BaseAuditedModel):
    sensor = CharField(max_length=40)
    value = IntegerField()


def creates_per_second(folder: str, synchronous: str, rows: int) -> float:
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        db = peestore.connect("sqlite:///%s" % os.path.join(tmp, "sync.db"),
                              models=[Reading], pragmas={"synchronous": synchronous})
        try:
            with db.connection_context(), peestore.actor("bench"):
                mode = db.execute_sql("PRAGMA synchronous").fetchone()[0]
                assert mode == {"normal": 1, "full": 2}[synchronous], mode
                start = time.perf_counter()
                for i in range(rows):
                    Reading.create(sensor="s%d" % (i % 10), value=i)
                elapsed = time.perf_counter() - start
        finally:
            if not db.is_closed():
                db.close()
            getattr(db, "close_all", lambda: None)()
    return rows / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", default=".")
    args = parser.parse_args()
    results = {}
    for synchronous in ("normal", "full"):
        runs = [creates_per_second(args.dir, synchronous, args.rows)
                for _ in range(args.repeat)]
        results[synchronous] = statistics.median(runs)
        print("synchronous=%-6s %7.0f audited creates/s (median of %d x %d, %.1f ms each)"
              % (synchronous, results[synchronous], args.repeat, args.rows,
                 1000 / results[synchronous]), flush=True)
    print("full costs %.0f%% of normal's throughput"
          % (100 * (1 - results["full"] / results["normal"])))


if __name__ == "__main__":
    main()
