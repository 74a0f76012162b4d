"""Peak memory of the server while it sends ``GET /db/export.zip`` of large rows.

    python benchmarks/export_http_memory.py [--rows 600] [--row-kb 64] [--json]

Builds a demo database in a temporary folder with ``--rows`` operator log
lines of ``--row-kb`` KB of random text each (base64, so that deflate cannot
shrink them much), serves it with ``peestore.rest._server.make_server`` in a
child process, reads the server's resident memory once it is idle (after a
first small export, so that the data tools are loaded), resets the kernel's
high-water mark of the server process, downloads the whole export (read in
64 KB pieces and dropped), and reports the server's peak over idle, the size
of the export and how long it took.

Linux only (``/proc/<pid>/status``, ``/proc/<pid>/clear_refs``).
"""
import argparse
import base64
import http.client
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time

SERVER = r"""
import sys, peestore
from peestore.demo import make_app
from peestore.rest._server import make_server
app = make_app("sqlite:///" + sys.argv[1])
server = make_server(app, port=0, threads=4)
print(server.effective_port, flush=True)
server.run()
"""


def _status(pid: int, field: str) -> int:
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field)


def _reset_peak(pid: int) -> None:
    with open("/proc/%d/clear_refs" % pid, "w") as f:
        f.write("5")


def build(path: str, rows: int, row_kb: int) -> None:
    import peestore
    from peestore.demo import MODELS

    peestore.connect("sqlite:///" + path, models=MODELS).close()
    conn = sqlite3.connect(path)
    size = row_kb * 1024 * 3 // 4
    with conn:
        conn.executemany(
            "INSERT INTO operatorlog (operator, level, message, created_at)"
            " VALUES ('bench', 'info', ?, '2026-11-28 12:00:00.000000')",
            ((base64.b64encode(os.urandom(size)).decode("ascii"),) for _ in range(rows)))
    conn.close()


def download(port: int, path: str) -> int:
    """Read the download, in pieces; its size.  A 503 (the server has not yet seen
    the previous client go, so its download slot is still taken) is tried again."""
    for _ in range(100):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        try:
            conn.request("GET", path)
            res = conn.getresponse()
            if res.status == 503:
                res.read()
                time.sleep(0.1)
                continue
            assert res.status == 200, (res.status, res.read()[:200])
            total = 0
            while True:
                piece = res.read(65536)
                if not piece:
                    return total
                total += len(piece)
        finally:
            conn.close()
    raise RuntimeError("no download slot came free")


def main(argv: list) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=600)
    parser.add_argument("--row-kb", type=int, default=64)
    parser.add_argument("--dir", help="folder for the temporary database")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        db = os.path.join(folder, "export.db")
        build(db, args.rows, args.row_kb)
        server = subprocess.Popen([sys.executable, "-c", SERVER, db], stdout=subprocess.PIPE,
                                  text=True)
        try:
            port = int(server.stdout.readline())
            for _ in range(4):  # loads the data tools, in every worker thread
                download(port, "/db/export.zip?tables=machine")
            time.sleep(0.5)
            idle = _status(server.pid, "VmRSS")
            _reset_peak(server.pid)
            started = time.perf_counter()
            size = download(port, "/db/export.zip")
            seconds = time.perf_counter() - started
            peak = _status(server.pid, "VmHWM") - idle
        finally:
            server.terminate()
            server.wait(10)
    figures = {"rows": args.rows, "row_kb": args.row_kb, "export_mb": round(size / 1e6, 1),
               "seconds": round(seconds, 2), "peak_over_idle_kb": peak}
    if args.json:
        print(json.dumps(figures))
    else:
        print("export of %d rows of %d KB over HTTP: %.1f MB in %.2f s; server peak +%.1f MB "
              "over idle" % (args.rows, args.row_kb, size / 1e6, seconds, peak / 1024))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
