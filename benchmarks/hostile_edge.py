"""Hostile clients at the HTTP edge, against the demo models behind ``authenticate``.

    python benchmarks/hostile_edge.py [--connections 4] [--declared-mb 120] [--sent-mb 8]
                                      [--slow 100] [--stalled-db-mb 24] [--skip-stalled]

Serves the demo models with ``RestPlugin(authenticate=...)`` through
``peestore.rest._server.make_server`` in a child process, on a fresh SQLite
file in a temporary folder, with peestore's defaults.  Then:

- ``--connections`` anonymous clients each declare a ``--declared-mb`` MB body
  and send ``--sent-mb`` MB of it, to a JSON route (``POST /machines/``) and
  to ``POST /db/restore``.  Reported: the first answer's status and the bytes
  the server holds in temporary files meanwhile (``/proc/<pid>/fd``);
- ``--slow`` clients each send half a request header and wait.  Reported:
  how long until ``/db/health`` answers again;
- two clients ask for ``/db/backup.sqlite`` on a database of about
  ``--stalled-db-mb`` MB and never read.  Reported: the bytes of copies held,
  and how long until they are given back (``channel_timeout``);
- the schema diagram of a chain of 499 tables (the limit with the audit log)
  and of 5,000 tables: the time each takes (a drawing, and a refusal).

Linux only (``/proc``).  Figures are printed, not checked.
"""
import argparse
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

SERVER = r"""
import sys, bottle, peestore
from peestore.demo import MODELS
from peestore.rest._server import make_server

def auth(request):
    if request.get_header("Authorization") == "Bearer admin":
        return {"name": "admin", "roles": ["admin"]}
    return None

auth.scheme = 'Bearer realm="bench"'
peestore.connect("sqlite:///" + sys.argv[1], models=MODELS)
app = bottle.Bottle()
app.install(peestore.RestPlugin(models=MODELS, authenticate=auth))
server = make_server(app, port=0, threads=4)
print(server.effective_port, flush=True)
server.run()
"""


def held_in_temp_files(pid: int) -> int:
    """Bytes in files the process holds open that are unlinked (waitress' body buffers,
    backup copies being sent)."""
    total = 0
    folder = "/proc/%d/fd" % pid
    for fd in os.listdir(folder):
        path = os.path.join(folder, fd)
        try:
            target = os.readlink(path)
            if target.endswith("(deleted)"):
                total += os.stat(path).st_size
        except OSError:
            continue
    return total


def health_ok(port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"GET /db/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                         b"Authorization: Bearer admin\r\n\r\n")
            return sock.recv(12).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def status_of(sock: socket.socket) -> str:
    try:
        sock.settimeout(10)
        line = sock.recv(200).split(b"\r\n")[0].decode("latin-1")
        return line or "closed"
    except OSError as exc:
        return "no answer (%s)" % type(exc).__name__


def bodies(port: int, pid: int, args: argparse.Namespace) -> None:
    base = held_in_temp_files(pid)
    for path, ctype in (("/machines/", "application/json"),
                        ("/db/restore", "multipart/form-data; boundary=XX")):
        socks = []
        for _ in range(args.connections):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n"
                          "Content-Length: %d\r\n\r\n" % (path, ctype, args.declared_mb << 20)
                          ).encode())
            socks.append(sock)
        block = b"x" * (1 << 20)
        try:
            for _ in range(args.sent_mb):
                for sock in socks:
                    sock.sendall(block)
        except OSError:
            pass
        held = held_in_temp_files(pid) - base
        print("anonymous %d x %d MB to %-12s answer: %s; held in temporary files: %.1f MB"
              % (args.connections, args.declared_mb, path, status_of(socks[0]), held / 1e6))
        for sock in socks:
            sock.close()


def slowloris(port: int, args: argparse.Namespace) -> None:
    socks = []
    start = time.monotonic()
    try:
        for _ in range(args.slow):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(b"GET /db/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            socks.append(sock)
        while not health_ok(port) and time.monotonic() - start < 60:
            time.sleep(0.2)
        print("%d clients with half a header: /db/health answers after %.1f s"
              % (args.slow, time.monotonic() - start))
    finally:
        for sock in socks:
            sock.close()


def stalled(port: int, pid: int, args: argparse.Namespace) -> None:
    socks = []
    for _ in range(2):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        sock.sendall(b"GET /db/backup.sqlite HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Authorization: Bearer admin\r\n\r\n")
        socks.append(sock)
    time.sleep(2)
    start = time.monotonic()
    print("2 stalled downloads hold %.0f MB of copies" % (held_in_temp_files(pid) / 1e6))
    while held_in_temp_files(pid) > 1 << 20 and time.monotonic() - start < 200:
        time.sleep(0.5)
    print("their copies are given back after %.0f s more" % (time.monotonic() - start))
    for sock in socks:
        sock.close()


def diagrams(folder: str) -> None:
    import peestore

    for tables in (499, 5000):
        path = os.path.join(folder, "chain%d.db" % tables)
        conn = sqlite3.connect(path)
        conn.executescript(";".join(
            "CREATE TABLE t%05d (a INTEGER PRIMARY KEY, b REFERENCES t%05d(a))"
            % (i, min(i + 1, tables - 1)) for i in range(tables)))
        conn.close()
        peestore.connect("sqlite:///" + path)
        start = time.perf_counter()
        try:
            what = "%d bytes of SVG" % len(peestore.diagram_svg())
        except peestore.ValidationError as exc:
            what = "refused: %s" % str(exc).split(":")[0]
        except Exception as exc:  # what an earlier version did
            what = "failed: %s" % type(exc).__name__
        print("diagram of a %d-table chain: %.2f s, %s" % (tables, time.perf_counter() - start,
                                                          what))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--declared-mb", type=int, default=120)
    parser.add_argument("--sent-mb", type=int, default=8)
    parser.add_argument("--slow", type=int, default=100)
    parser.add_argument("--stalled-db-mb", type=int, default=24)
    parser.add_argument("--skip-stalled", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, ROOT)
    with tempfile.TemporaryDirectory() as folder:
        db = os.path.join(folder, "live.db")
        proc = subprocess.Popen([sys.executable, "-c", SERVER, db], stdout=subprocess.PIPE,
                                text=True, env=dict(os.environ, PYTHONPATH=ROOT))
        try:
            port = int(proc.stdout.readline())
            conn = sqlite3.connect(db)
            conn.execute("CREATE TABLE filler (data BLOB)")
            for _ in range(args.stalled_db_mb):
                conn.execute("INSERT INTO filler VALUES (randomblob(1048576))")
            conn.commit()
            conn.close()
            bodies(port, proc.pid, args)
            slowloris(port, args)
            if not args.skip_stalled:
                stalled(port, proc.pid, args)
        finally:
            proc.terminate()
            proc.wait(10)
        diagrams(folder)


if __name__ == "__main__":
    main()
