"""How fast the import's CSV reader reads, in MB/s of text, by shape of input.

    python benchmarks/csv_reader.py [--mb 8] [--json]

Each shape is ``--mb`` MB of text read by ``peestore.tools._csv.CsvReader``
from memory (no zip, no database), the best CPU time of five:

- ``rows``: ordinary export rows (the demo's machines), CRLF;
- ``rows_cr``: the same rows ending with a bare CR (old Mac files);
- ``quoted``: rows whose text fields are quoted (a comma in each);
- ``blank_lf``: blank lines, LF only;
- ``blank_mixed``: blank lines, mostly CR with an LF now and then at random
  (what a hostile zip uses to stay under the inflation ratio);
- ``short``: one-field records of one character (a one-column table).

Then ``import_blank``: ``peestore.import_csv`` of a zip whose machine.csv is
the header and ``--mb`` MB of ``blank_mixed`` (the time the import holds
the write lock for a file with no record at all), in MB/s of inflated text.
"""
import argparse
import io
import json
import os
import random
import sys
import tempfile
import time
import zipfile

HEADER = "id,name,serial,status,location,max_speed_rpm,created_at\r\n"


def shapes(mb: int) -> dict:
    size = mb << 20
    rng = random.Random(1)
    row = "%d,machine-%d,SN-%07d,idle,hall B,2000.0,2026-11-28T12:00:00\r\n"
    rows = []
    total = 0
    i = 0
    while total < size:
        line = row % (i, i, i)
        rows.append(line)
        total += len(line)
        i += 1
    text = "".join(rows)
    quoted = text.replace("hall B", '"hall, B"')
    mixed = "".join("\n" if rng.random() < 0.01 else "\r" for _ in range(1 << 20)) * mb
    return {
        "rows": text,
        "rows_cr": text.replace("\r\n", "\r"),
        "quoted": quoted,
        "blank_lf": "\n" * size,
        "blank_mixed": mixed,
        "short": "x\n" * (size // 2),
    }


def read_all(text: str, width: int) -> int:
    from peestore.tools._csv import CsvReader

    try:
        reader = CsvReader(io.StringIO(text), "bench.csv", max_field_bytes=1 << 20,
                           max_record_bytes=5 << 20)
    except TypeError:  # a checkout before the record limit was in bytes
        reader = CsvReader(io.StringIO(text), "bench.csv", max_field_bytes=1 << 20,
                           max_record_chars=4 << 20)
    count = 0
    while reader.read(width) is not None:
        count += 1
    return count


def best(fn, rounds: int = 5) -> float:
    """The least CPU time of ``rounds`` runs (CPU time: other processes on the machine
    change it less than they change the wall clock)."""
    times = []
    for _ in range(rounds):
        started = time.process_time()
        fn()
        times.append(time.process_time() - started)
    return min(times)


def import_blank(mb: int, folder: str, mixed: str) -> float:
    import peestore
    from peestore.demo import MODELS

    path = os.path.join(folder, "blank.zip")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("machine.csv", "w") as out:
            out.write(HEADER.encode())
            out.write(mixed.encode())
    peestore.connect("sqlite:///" + os.path.join(folder, "t.db"), models=MODELS)
    started = time.process_time()
    peestore.import_csv(path)
    return time.process_time() - started


def main(argv: list) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    figures = {}
    texts = shapes(args.mb)
    for name, text in texts.items():
        width = 1 if name == "short" else 7
        seconds = best(lambda text=text, width=width: read_all(text, width))
        figures[name] = round(len(text) / seconds / 1e6, 2)
    with tempfile.TemporaryDirectory() as folder:
        seconds = import_blank(args.mb, folder, texts["blank_mixed"])
    figures["import_blank"] = round(len(texts["blank_mixed"]) / seconds / 1e6, 2)
    if args.json:
        print(json.dumps(figures))
        return 0
    for name, rate in figures.items():
        print("%-13s %8.2f MB/s" % (name, rate))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
