"""peestore's demo against the floor, side by side in one run: SPEC section 9.

    python benchmarks/run.py                 # the full run (about two minutes)
    python benchmarks/run.py --quick         # a smoke run: small counts (CI)
    python benchmarks/run.py --reference /work/refvenv/bin/python   # + vention-storage

Starts ``peestore demo`` and the floor (``benchmarks/floor.py``: raw sqlite3 +
Bottle + waitress, the same SQL by hand) as servers on loopback ports, each
on a fresh SQLite file, and sends both the same requests from 4 client
processes with one keep-alive connection each: creates (a row and its audit
entry), reads by id, pages of 100 rows.  Then, in processes of their own,
the audit overhead (``audit_overhead.py``) and the peak memory of an export
of 100,000 rows and a backup of a 200 MB database (``data_memory.py``).
Prints the machine, the figures and their ratios, with the targets.
``--reference PYTHON`` adds vention-storage 0.5.1 on uvicorn
(``reference_app.py``, run by a Python that has it installed).
"""
import argparse
import importlib.util
import json
import os
import platform
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from load import Load, request_bytes  # noqa: E402

_URL = re.compile(r"http://127\.0\.0\.1:(\d+)")
_USER = (("X-User", "bench"),)


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    """A process' resident memory in kB, from /proc (Linux)."""
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError("no %s for process %d" % (field, pid))


def server_env() -> Dict[str, str]:
    """The servers' environment: this checkout's peestore and the floor first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([ROOT, HERE, env.get("PYTHONPATH", "")])
    return env


def compile_all() -> None:
    """Byte-compile peestore and the floor (into their ``__pycache__``, as Python does).

    An installed package runs from .pyc files; compiling from source at each
    start (as under PYTHONDONTWRITEBYTECODE) would add the compiler's memory
    to the RSS figures.
    """
    subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(ROOT, "peestore"),
                    os.path.join(HERE, "floor.py")], check=True, stdout=subprocess.DEVNULL)


class Target:
    """One server under test: how to start it and the requests it understands."""

    name = ""
    # Extra statuses a create may answer; none by default.
    create_ok: Tuple[int, ...] = (201,)

    def __init__(self, workdir: str) -> None:
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.process: Optional[subprocess.Popen] = None
        self.port = 0
        self.requests_sent = 0
        self.figures: Dict[str, float] = {}

    def command(self) -> List[str]:
        raise NotImplementedError

    def start(self, timeout: float = 60.0) -> None:
        self.process = subprocess.Popen(self.command(), cwd=self.workdir, env=server_env(),
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True)
        deadline = time.time() + timeout
        seen = []
        while time.time() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            seen.append(line)
            match = _URL.search(line)
            if match:
                self.port = int(match.group(1))
                break
        if not self.port:
            self.stop()
            raise RuntimeError("%s did not start:\n%s" % (self.name, "".join(seen)))
        # Drain its output from now on so a chatty server never blocks on a pipe.
        import threading
        threading.Thread(target=self.process.stdout.read, daemon=True).start()

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    def create(self, i: int) -> bytes:
        body = json.dumps({"name": "bench-%d" % i, "serial": "SN-%06d" % i,
                           "location": "hall B", "max_speed_rpm": 2000.0}).encode()
        return request_bytes("POST", "/machines/", body, _USER)

    def get(self, key: int) -> bytes:
        return request_bytes("GET", "/machines/%d" % key)

    def page(self) -> bytes:
        return request_bytes("GET", "/machines/?limit=100")


class Peestore(Target):
    name = "peestore"

    def command(self) -> List[str]:
        return [sys.executable, "-m", "peestore", "demo", "--port", "0"]


class Floor(Target):
    name = "floor"

    def command(self) -> List[str]:
        # -m: run from its compiled bytecode, as peestore's modules are.
        return [sys.executable, "-m", "floor", "--db", os.path.join(self.workdir, "floor.db")]


class QuietFloor(Floor):
    """The floor on peestore's waitress channel (``peestore.rest._server.make_server``):
    how much of peestore's lead is the server's, not the storage layer's."""

    name = "floor, peestore's server"

    def command(self) -> List[str]:
        return super().command() + ["--peestore-server"]


class Reference(Target):
    name = "vention-storage"
    create_ok = (200,)  # its create answers 200, not 201

    def __init__(self, workdir: str, python: str) -> None:
        super().__init__(workdir)
        self.python = python

    def command(self) -> List[str]:
        return [self.python, os.path.join(HERE, "reference_app.py"), "--db",
                os.path.join(self.workdir, "reference.db"), "--port", "0",
                "--max-seconds", "1800"]

    def page(self) -> bytes:
        return request_bytes("GET", "/machines/")  # no limit: the table holds 100 rows


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used (Linux /proc)."""
    with open("/proc/%d/stat" % pid) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_phase(load: Load, target: Target, label: str, requests: List[bytes],
              ok: Sequence[int]) -> None:
    """Send ``requests``; keep the best rate (and its server CPU per request) under ``label``."""
    before = cpu_seconds(target.process.pid)
    rate, failed, statuses = load.run(target.port, requests, ok)
    cpu_us = (cpu_seconds(target.process.pid) - before) / len(requests) * 1e6
    target.requests_sent += len(requests)
    if failed:
        raise RuntimeError("%s: %d of %d %s requests failed (statuses %s)"
                           % (target.name, failed, len(requests), label, statuses))
    if rate > target.figures.get(label, 0.0):
        target.figures[label] = rate
        target.figures[label + "_cpu_us"] = cpu_us


def in_rounds(load: Load, targets: List[Target], label: str, count: int, rounds: int,
              make: Callable[[Target, int], bytes], ok: Callable[[Target], Sequence[int]]
              ) -> None:
    """``count`` requests per target in ``rounds`` rounds, the targets taking turns,
    so that a burst of other work on the machine cannot favour one of them."""
    per_round = max(1, count // rounds)
    for round_ in range(rounds):
        for target in targets:
            first = round_ * per_round
            run_phase(load, target, label,
                      [make(target, first + i) for i in range(per_round)], ok(target))


def serve_benchmarks(targets: List[Target], counts: Dict[str, int], concurrency: int,
                     rounds: int = 3, seed: int = 7) -> None:
    load = Load(concurrency)
    try:
        for target in targets:
            target.start()
        time.sleep(0.5)
        for target in targets:
            target.figures["rss_start_kb"] = rss_kb(target.process.pid)
        rng = random.Random(seed)
        base = 1000  # names/serials clear of the demo's seed row
        # Warm-up: 99 creates beside the seed row make the 100 rows the pages
        # list (vention-storage's list has no limit: it lists the whole table).
        for target in targets:
            run_phase(load, target, "warmup_create",
                      [target.create(base + i) for i in range(99)], target.create_ok)
        for target in targets:
            run_phase(load, target, "warmup_read",
                      [target.get(1 + i % 100) for i in range(counts["warmup"])], (200,))
        in_rounds(load, targets, "page", counts["page"], rounds,
                  lambda t, i: t.page(), lambda t: (200,))
        n = counts["create"]
        in_rounds(load, targets, "create", n, rounds,
                  lambda t, i: t.create(base + 99 + i), lambda t: t.create_ok)
        created = 100 + max(1, n // rounds) * rounds
        keys = [rng.randint(1, created) for _ in range(counts["read"])]
        in_rounds(load, targets, "read", counts["read"], rounds,
                  lambda t, i: t.get(keys[i]), lambda t: (200,))
        time.sleep(0.5)
        for target in targets:
            target.figures["rss_after_kb"] = rss_kb(target.process.pid)
            target.figures["rss_peak_kb"] = rss_kb(target.process.pid, "VmHWM")
    finally:
        for target in targets:
            target.stop()
        load.close()


def run_script(name: str, args: List[str]) -> Dict[str, Any]:
    """Run a benchmark script with ``--json`` in a process of its own; its figures."""
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, os.path.join(HERE, name), "--json"] + args,
                         env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %d CPUs, %s, Python %s, SQLite %s" % (
        cpu, os.cpu_count() or 0, platform.platform(terse=True),
        platform.python_version(), sqlite3.sqlite_version)


def fmt(value: float, unit: str) -> str:
    if unit == "MB":
        return "%.1f MB" % (value / 1024.0)
    if unit == "/s":
        return "%.0f/s" % value
    if unit == "us":
        return "%.0f us" % value
    return "%s" % value


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run with small counts (checks the scripts work)")
    parser.add_argument("--reference", metavar="PYTHON",
                        help="a Python with vention-storage 0.5.1 and uvicorn installed")
    parser.add_argument("--same-server", action="store_true",
                        help="also run the floor on peestore's waitress channel")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3,
                        help="each figure is the best of this many rounds (default 3)")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args(argv)

    if args.quick:
        counts = {"warmup": 50, "create": 200, "read": 200, "page": 50}
        data_args = ["--rows", "2000", "--backup-mb", "5"]
        audit_args = ["--rows", "200"]
    else:
        # 99 + 300 + 2000 + 4000 + 4000 = 10,399 requests before the "after" figure.
        counts = {"warmup": 300, "create": 4000, "read": 4000, "page": 2000}
        data_args = ["--rows", "100000", "--backup-mb", "200"]
        audit_args = ["--rows", "5000"]

    print("machine: %s" % machine(), flush=True)
    drivers = [name for name in ("psycopg2", "pymysql", "MySQLdb", "psycopg")
               if importlib.util.find_spec(name) is not None]
    if drivers:
        # peewee imports every database driver it finds when it is imported.
        print("note: %s installed here: peewee imports them, so peestore's memory includes "
              "them; measure in a virtualenv with only `pip install .`" % ", ".join(drivers))
    with tempfile.TemporaryDirectory(prefix="peestore-bench-") as tmp:
        targets: List[Target] = [Peestore(os.path.join(tmp, "peestore")),
                                 Floor(os.path.join(tmp, "floor"))]
        if args.same_server:
            targets.append(QuietFloor(os.path.join(tmp, "quiet-floor")))
        if args.reference:
            targets.append(Reference(os.path.join(tmp, "reference"), args.reference))
        compile_all()
        serve_benchmarks(targets, counts, args.concurrency, args.rounds)
        audit = run_script("audit_overhead.py", audit_args)
        data = run_script("data_memory.py", data_args + ["--dir", tmp])

    ours, floor = targets[0].figures, targets[1].figures
    others = targets[2:]
    blank = ["", ""] * len(others)
    rows = [
        # label, key, unit, higher is better, target ratio vs floor
        ("RSS after start", "rss_start_kb", "MB", False, 1.15),
        ("RSS after %d requests" % targets[0].requests_sent, "rss_after_kb", "MB", False,
         1.15),
        ("creates/s (row + audit entry)", "create", "/s", True, 0.6),
        ("reads by id/s", "read", "/s", True, 0.6),
        ("pages of 100 rows/s", "page", "/s", True, 0.6),
    ]
    header = ["figure", "peestore", "floor", "ratio", "target"]
    for other in others:
        header += [other.name, "peestore/that"]
    table = []
    misses = []
    for label, key, unit, higher, goal in rows:
        ratio = ours[key] / floor[key]
        ok = ratio >= goal if higher else ratio <= goal
        if not ok:
            misses.append(label)
        line = [label, fmt(ours[key], unit), fmt(floor[key], unit), "%.2f" % ratio,
                ("%s %.2f" % (">=" if higher else "<=", goal)) + ("" if ok else " MISSED")]
        for other in others:
            line += [fmt(other.figures[key], unit), "%.2f" % (ours[key] / other.figures[key])]
        table.append(line)
    for label, key in (("server CPU per create", "create_cpu_us"),
                       ("server CPU per read", "read_cpu_us"),
                       ("server CPU per page", "page_cpu_us")):
        line = [label, fmt(ours[key], "us"), fmt(floor[key], "us"),
                "%.2f" % (ours[key] / floor[key]) if floor[key] else "", "(diagnostic)"]
        for other in others:
            theirs = other.figures[key]
            line += [fmt(theirs, "us"), "%.2f" % (ours[key] / theirs) if theirs else ""]
        table.append(line)
    table.append(["audited create vs unaudited peewee create",
                  fmt(audit["audited_us"], "us"), fmt(audit["plain_us"], "us"),
                  "%.2f" % (audit["audited_us"] / audit["plain_us"]), "(overhead)"]
                 + blank)
    for label, key in (("export %d rows: peak over idle" % data["rows"], "export"),
                       ("backup %d MB: peak over idle" % data["db_mb"], "backup")):
        over = data["peestore_" + key + "_kb"]
        ok = over <= 10 * 1024
        if not ok:
            misses.append(label)
        table.append([label, fmt(over, "MB"), fmt(data["floor_" + key + "_kb"], "MB"), "",
                      "<= 10 MB" + ("" if ok else " MISSED")]
                     + blank)

    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---" for _ in header) + "|")
        for line in table:
            print("| " + " | ".join(line) + " |")
    else:
        widths = [max(len(str(r[i])) for r in [header] + table) for i in range(len(header))]
        for line in [header] + table:
            print("  ".join(str(c).ljust(w) for c, w in zip(line, widths)))
    if args.quick:
        print("quick run: figures from small counts are not the SPEC figures")
    elif misses:
        print("missed: %s" % "; ".join(misses))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
