"""Peak memory (and time) of CSV imports, legitimate and hostile, over idle.

    python benchmarks/import_memory.py [--rows 100000] [--dir DIR] [--json] [--timeout 600]

Builds the files in a temporary folder, then runs each import in a fresh
process: it connects to an empty database with the demo's models (so their
hooks and checks run), reads its resident memory (idle), resets the
kernel's high-water mark, calls ``peestore.import_csv`` and reports the peak
over idle, the time and the outcome.  The cases:

- ``legit``: an export of ``--rows`` machines (also timed: the export);
- ``big_rows``: 50 operator log lines whose messages are just under the
  1 MiB field limit (random text, so they do not compress past the ratio);
- ``bomb``: a 1 MB zip whose one field inflates to 1 GiB of zeros;
- ``wide_header``: a header of 1,000,000 columns;
- ``big_field``: one 100 MB field;
- ``wide_row``: a valid header, then a row of 1,000,000 short fields;
- ``ucs4_record``: one record of four fields just under the 1 MiB limit,
  each with one emoji (Python keeps such a string in 4 bytes a character);
- ``blank_lines``: the header, then 255 MiB of blank lines (CR with an LF
  now and then, under the inflation ratio): no record at all.

Run it against another checkout with ``PYTHONPATH=that/checkout`` (only
``--cases legit`` makes sense for a version without the limits).

Linux only (``/proc/self/status``, ``/proc/self/clear_refs``).
"""
import argparse
import base64
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile

CASES = ("legit", "big_rows", "bomb", "wide_header", "big_field", "wide_row", "ucs4_record",
         "blank_lines")
HEADER = "id,name,serial,status,location,max_speed_rpm,created_at\r\n"
CHUNK = 1 << 20


def _status(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field)


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _member(folder: str, name: str, parts, deflate: bool = True,
            member: str = "machine.csv") -> str:
    """A zip with one member (``machine.csv``) written from ``parts`` (an iterable of str)."""
    path = os.path.join(folder, name)
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as zf:
        with zf.open(member, "w", force_zip64=True) as out:
            for part in parts:
                out.write(part.encode("utf-8"))
    return path


def _repeat(unit: str, total: int):
    block = unit * (CHUNK // len(unit))
    left = total
    while left > 0:
        take = block if left >= len(block) else unit * (left // len(unit))
        yield take
        left -= len(take)


def _hostile(folder: str, case: str) -> str:
    """The zip of one hostile case (or ``big_rows``), written in chunks."""
    tail = ",SN,idle,,1,2026-01-01T00:00:00\r\n"
    if case == "big_rows":
        return _member(folder, "big_rows.zip", ["id,machine_id,operator,level,message,"
                                                "created_at\r\n"] + [
            "%d,,bench,info,%s,2026-01-01T00:00:00\r\n"
            % (i, base64.b64encode(os.urandom(780000)).decode("ascii")) for i in range(50)],
            member="operatorlog.csv")
    if case == "bomb":
        return _member(folder, "bomb.zip", [HEADER, "1,"] + list(_repeat("0", 1 << 30))
                       + [tail])
    if case == "wide_header":
        return _member(folder, "wide_header.zip", (
            ",".join("c%d" % i for i in range(start, start + 1000))
            + ("," if start < 999000 else "\r\n") for start in range(0, 1000000, 1000)))
    if case == "big_field":
        return _member(folder, "big_field.zip", [HEADER, "1,"] + list(_repeat("x", 100 << 20))
                       + [tail], deflate=False)
    if case == "ucs4_record":
        field = "a" * (CHUNK - 40) + "\U0001F600"
        return _member(folder, "ucs4_record.zip", [HEADER, "7,%s,%s,%s,%s,1.0,"
                       "2026-01-01T00:00:00\r\n" % (field, field, field, field)],
                       deflate=False)
    if case == "blank_lines":
        rng = random.Random(1)
        block = "".join("\n" if rng.random() < 0.01 else "\r" for _ in range(CHUNK))
        return _member(folder, "blank_lines.zip", [HEADER] + [block] * 255)
    # Stored: deflated, it would be refused for its ratio before its fields are read.
    return _member(folder, "wide_row.zip", [HEADER] + list(_repeat("ab,", 3 * 1000000))
                   + ["\r\n"], deflate=False)


def build(folder: str, rows: int, cases) -> dict:
    """The source database, its export (timed) and each case's zip: {case: path}."""
    import peestore
    from peestore.demo import MODELS

    source = os.path.join(folder, "source.db")
    peestore.connect("sqlite:///" + source, models=MODELS).close()
    conn = sqlite3.connect(source)
    with conn:
        conn.executemany(
            "INSERT INTO machine (name, serial, status, location, max_speed_rpm, created_at)"
            " VALUES (?, ?, 'idle', 'hall B', 2000.0, '2026-11-28 12:00:00.000000')",
            (("machine-%d" % i, "SN-%07d" % i) for i in range(rows)))
    conn.close()
    db = peestore.connect("sqlite:///" + source, models=MODELS, create_tables=False)
    started = time.perf_counter()
    peestore.export_csv(os.path.join(folder, "legit.zip"), tables=["machine"])
    export_s = time.perf_counter() - started
    db.close()
    paths = {"legit": os.path.join(folder, "legit.zip")}
    for case in cases:
        if case != "legit":
            paths[case] = _hostile(folder, case)
    return {"paths": paths, "export_s": export_s}


def measure(case: str, folder: str, path: str) -> dict:
    """Import ``path`` into a fresh database in this process; peak over idle in kB."""
    import peestore
    from peestore.demo import MODELS

    target = os.path.join(folder, "target-%s.db" % case)
    if os.path.exists(target):
        os.unlink(target)
    db = peestore.connect("sqlite:///" + target, models=MODELS)
    db.connect(reuse_if_open=True)
    idle = _status("VmRSS")
    _reset_peak()
    started = time.perf_counter()
    try:
        counts = peestore.import_csv(path)
        outcome = "imported %s" % counts
    except peestore.PeestoreError as exc:
        public = next(k.__name__ for k in type(exc).__mro__ if k.__name__ in peestore.__all__)
        outcome = "%s: %s" % (public, str(exc)[:100])
    seconds = time.perf_counter() - started
    return {"peak_kb": _status("VmHWM") - idle, "seconds": round(seconds, 3),
            "outcome": outcome}


def main(argv: list) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100000)
    parser.add_argument("--dir", help="folder for the temporary files")
    parser.add_argument("--cases", default=",".join(CASES),
                        help="comma-separated subset of: " + ", ".join(CASES))
    parser.add_argument("--timeout", type=float, default=600,
                        help="seconds each case may run before it is stopped")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return 0
    figures = {"rows": args.rows}
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        cases = args.cases.split(",")
        unknown = sorted(set(cases) - set(CASES))
        if unknown:
            parser.error("unknown case %s; cases: %s" % (", ".join(unknown), ", ".join(CASES)))
        built = build(folder, args.rows, cases)
        figures["export_s"] = round(built["export_s"], 3)
        for case in cases:
            path = built["paths"][case]
            try:
                out = subprocess.run(
                    [sys.executable, __file__, "--measure", case, folder, path],
                    check=True, stdout=subprocess.PIPE, text=True, timeout=args.timeout).stdout
                figures[case] = json.loads(out.strip().splitlines()[-1])
            except subprocess.TimeoutExpired:
                figures[case] = {"peak_kb": None, "seconds": None,
                                 "outcome": "still running after %gs: stopped" % args.timeout}
            figures[case]["zip_bytes"] = os.path.getsize(path)
    if args.json:
        print(json.dumps(figures))
        return 0
    print("export of %d rows: %.2f s" % (args.rows, figures["export_s"]))
    for case in cases:
        got = figures[case]
        peak = "?" if got["peak_kb"] is None else "%+.1f MB" % (got["peak_kb"] / 1024)
        took = "?" if got["seconds"] is None else "%.2f s" % got["seconds"]
        print("%-12s zip %9d bytes  peak over idle %9s  %8s  %s" % (
            case, got["zip_bytes"], peak, took, got["outcome"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
