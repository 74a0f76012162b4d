"""Slow and hostile clients against the demo app on a real waitress server.

    python benchmarks/slow_clients.py [--db-mb 36] [--clients 6] [--upload-mb 300] [--json]

Builds a demo database of about ``--db-mb`` MB in a temporary folder and
serves it with ``peestore.rest._server.make_server`` (4 threads) in a child
process.  Then:

- ``--clients`` clients ask for ``/db/backup.sqlite`` on sockets with a
  4 KB receive buffer and never read past the status line.  Reported: their
  statuses, the bytes of backup copies the server holds open (unlinked
  files, from ``/proc/<pid>/fd``), the server's resident memory, the slowest
  of 5 ``/db/health`` answers meanwhile, and, once the clients close their
  sockets, how long until a download succeeds again;
- one client sends a chunked ``--upload-mb`` MB upload to ``/db/restore``
  (made as it is sent).  Reported: the status, the bytes the client got to
  send before the server closed, and the temporary files the server held.

Linux only (``/proc``).
"""
import argparse
import http.client
import json
import os
import socket
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


def build(path: str, megabytes: int) -> None:
    """A demo database with about ``megabytes`` MB of operator log lines."""
    import peestore
    from peestore.demo import MODELS

    peestore.connect("sqlite:///" + path, models=MODELS).close()
    conn = sqlite3.connect(path)
    line = "x" * 1000
    with conn:
        conn.executemany(
            "INSERT INTO operatorlog (operator, level, message, created_at)"
            " VALUES ('bench', 'info', ?, '2026-11-28 12:00:00.000000')",
            ((line + str(i),) for i in range(megabytes * 1024 * 1024 // 1420)))
    conn.close()


def held_files(pid: int, marker: str) -> int:
    """Bytes of the unlinked files whose old name holds ``marker`` that ``pid`` has open."""
    total = 0
    folder = "/proc/%d/fd" % pid
    for fd in os.listdir(folder):
        try:
            target = os.readlink(os.path.join(folder, fd))
            if marker in target and target.endswith("(deleted)"):
                total += os.stat(os.path.join(folder, fd)).st_size
        except OSError:
            pass
    return total


def rss_kb(pid: int) -> int:
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def stalled(port: int) -> tuple:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    sock.sendall(b"GET /db/backup.sqlite HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    line = b""
    while not line.endswith(b"\r\n"):
        part = sock.recv(1)
        if not part:
            break
        line += part
    return int(line.split()[1]), sock


def get(port: int, path: str) -> tuple:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        res = conn.getresponse()
        return res.status, res.read()
    finally:
        conn.close()


def upload(port: int, megabytes: int) -> tuple:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    sock.sendall(b"POST /db/restore HTTP/1.1\r\nHost: 127.0.0.1\r\nX-User: bench\r\n"
                 b"Content-Type: multipart/form-data; boundary=XX\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    block = b"x" * 65536
    frame = b"%x\r\n" % len(block) + block + b"\r\n"
    sent = 0
    try:
        head = b'--XX\r\nContent-Disposition: form-data; name="file"; filename="b"\r\n\r\n'
        sock.sendall(b"%x\r\n" % len(head) + head + b"\r\n")
        for _ in range(megabytes * 16):
            sock.sendall(frame)
            sent += len(block)
    except OSError:
        pass
    data = b""
    try:
        while True:
            part = sock.recv(65536)
            if not part:
                break
            data += part
    except OSError:
        pass
    sock.close()
    status = int(data.split()[1]) if data.startswith(b"HTTP/") else None
    return status, sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db-mb", type=int, default=36)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--upload-mb", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = {}
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "bench.db")
        build(path, args.db_mb)
        figures["database_mb"] = round(os.path.getsize(path) / 1e6, 1)
        server = subprocess.Popen([sys.executable, "-c", SERVER, path], stdout=subprocess.PIPE)
        try:
            port = int(server.stdout.readline())
            figures["idle_rss_mb"] = round(rss_kb(server.pid) / 1024, 1)
            socks, statuses = [], []
            for _ in range(args.clients):
                status, sock = stalled(port)
                statuses.append(status)
                socks.append(sock)
            time.sleep(1)
            figures["download_statuses"] = statuses
            figures["copies_held_mb"] = round(held_files(server.pid, ".backup.") / 1e6, 1)
            figures["rss_with_stalled_mb"] = round(rss_kb(server.pid) / 1024, 1)
            slowest = 0.0
            for _ in range(5):
                started = time.perf_counter()
                status, _ = get(port, "/db/health")
                slowest = max(slowest, time.perf_counter() - started)
                assert status == 200, status
            figures["health_slowest_ms"] = round(slowest * 1000, 1)
            for sock in socks:
                sock.close()
            started = time.perf_counter()
            while True:
                status, body = get(port, "/db/backup.sqlite")
                if status == 200:
                    break
                time.sleep(0.01)
            figures["download_again_after_s"] = round(time.perf_counter() - started, 2)
            figures["copies_held_after_mb"] = round(held_files(server.pid, ".backup.") / 1e6, 1)

            started = time.perf_counter()
            status, sent = upload(port, args.upload_mb)
            figures["upload_status"] = status
            figures["upload_sent_before_close_mb"] = round(sent / 1e6, 2)
            figures["upload_refused_after_s"] = round(time.perf_counter() - started, 3)
            figures["temporary_files_after_upload_mb"] = round(
                (held_files(server.pid, "/tmp") + held_files(server.pid, ".upload.")) / 1e6, 1)
        finally:
            server.terminate()
            server.wait(10)
    if args.json:
        print(json.dumps(figures))
    else:
        for name, value in figures.items():
            print("%-34s %s" % (name, value))


if __name__ == "__main__":
    main()
