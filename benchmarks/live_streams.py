"""The change stream (GET /db/changes) on a real waitress server: memory per open
stream, REST latency with every stream open, and how soon a change arrives.

    python benchmarks/live_streams.py [--streams 8] [--requests 50] [--json]

Serves the demo app (``make_server``, 4 request threads plus one per open
stream) from a temporary SQLite file in a child process, then:

- the server's resident memory with one stream open (the reader thread and
  its modules loaded) and with ``--streams`` open: their difference per
  stream;
- ``--requests`` ``GET /machines/`` answers with no stream open and with
  ``--streams`` open: median and slowest, in ms;
- the time from a write's commit to its event on every open stream, for a
  write through the REST API (same process) and one by this process on the
  same database file (another process: the reader's poll).

Linux only (``/proc``).
"""
import argparse
import http.client
import json
import os
import statistics
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


def rss_kb(pid: int) -> int:
    """Resident memory of ``pid`` in KiB."""
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Stream:
    """One open ``GET /db/changes``, read line by line."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.conn.request("GET", "/db/changes")
        self.response = self.conn.getresponse()
        assert self.response.status == 200, self.response.status

    def next_event(self) -> dict:
        while True:
            line = self.response.readline()
            assert line, "the stream ended"
            if line.startswith(b"data: "):
                return json.loads(line[6:])

    def close(self) -> None:
        self.response.close()
        self.conn.close()


def get_ms(port: int, path: str) -> float:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    conn.close()
    assert response.status == 200, response.status
    return (time.perf_counter() - started) * 1000.0


def latencies(port: int, count: int) -> dict:
    times = [get_ms(port, "/machines/") for _ in range(count)]
    return {"median_ms": round(statistics.median(times), 2), "max_ms": round(max(times), 2)}


def arrival_ms(streams: list, write) -> float:
    """ms from before ``write()`` until every stream has its event (the slowest)."""
    started = time.perf_counter()
    write()
    for stream in streams:
        stream.next_event()
    return (time.perf_counter() - started) * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root)
    env.pop("PEESTORE_DATABASE_URL", None)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "live.db")
        proc = subprocess.Popen([sys.executable, "-c", SERVER, path], env=env,
                                stdout=subprocess.PIPE, text=True)
        try:
            port = int(proc.stdout.readline())
            figures = run(proc.pid, port, path, args)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    if args.json:
        print(json.dumps(figures))
        return
    print("change streams, demo app, waitress (4 request threads + 1 per open stream, "
          "up to %d)" % args.streams)
    print("  memory: %(rss_one_kb)d KiB with 1 stream open, %(rss_all_kb)d KiB with "
          "%(streams)d: %(per_stream_kb).0f KiB per stream" % figures)
    print("  GET /machines/ with no stream open: median %(median_ms).2f ms, slowest "
          "%(max_ms).2f ms" % figures["rest_idle"])
    print("  GET /machines/ with %d streams open: median %.2f ms, slowest %.2f ms"
          % (figures["streams"], figures["rest_streams"]["median_ms"],
             figures["rest_streams"]["max_ms"]))
    print("  a REST write reaches all %(streams)d streams in %(rest_write_ms).1f ms; "
          "a write by another process in %(other_process_ms).1f ms" % figures)


def run(pid: int, port: int, path: str, args: argparse.Namespace) -> dict:
    for _ in range(5):
        get_ms(port, "/machines/")  # warm: the routes' code loaded
    idle = latencies(port, args.requests)
    first = Stream(port)
    time.sleep(0.5)
    rss_one = rss_kb(pid)
    streams = [first] + [Stream(port) for _ in range(args.streams - 1)]
    time.sleep(0.5)
    rss_all = rss_kb(pid)
    busy = latencies(port, args.requests)

    def rest_write() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/machines/", body=json.dumps(
            {"name": "bench-%f" % time.time(), "serial": "B%f" % time.time()}),
            headers={"Content-Type": "application/json", "X-User": "bench"})
        conn.getresponse().read()
        conn.close()

    import peestore
    from peestore.demo import MODELS, Machine

    peestore.connect("sqlite:///" + path, models=MODELS, create_tables=False)

    def other_write() -> None:
        with peestore.actor("bench-cli"):
            Machine.create(name="other-%f" % time.time(), serial="O%f" % time.time())

    rest_ms = statistics.median(arrival_ms(streams, rest_write) for _ in range(5))
    other_ms = statistics.median(arrival_ms(streams, other_write) for _ in range(5))
    for stream in streams:
        stream.close()
    return {"streams": args.streams, "rss_one_kb": rss_one, "rss_all_kb": rss_all,
            "per_stream_kb": (rss_all - rss_one) / max(1, args.streams - 1),
            "rest_idle": idle, "rest_streams": busy, "rest_write_ms": round(rest_ms, 1),
            "other_process_ms": round(other_ms, 1)}


if __name__ == "__main__":
    main()
