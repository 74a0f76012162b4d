"""Instructions per REST request, counted by valgrind: a figure that does not move.

    python benchmarks/instructions.py            # create, read and page, per request
    python benchmarks/instructions.py --counts 100 600

Wall-clock figures on a shared machine move by 20% from run to run; the
number of instructions a request costs does not (same code, same inputs).
Each kind of request is run in-process through the demo app's WSGI callable
on a fresh SQLite file, in two processes under ``valgrind --tool=callgrind``
that differ only in how many requests they make; the difference of their
totals divided by the difference of the counts is the cost of one request,
start-up and imports cancelled out.  Needs valgrind (Debian: ``apt-get
install valgrind``).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
KINDS = ("create", "read", "page")


def run_requests(kind: str, count: int, path: str) -> None:
    """Make ``count`` requests of ``kind`` to the demo app on the SQLite file ``path``."""
    import io

    sys.path.insert(0, ROOT)
    from peestore.demo import make_app

    app = make_app("sqlite:///%s" % path)

    def call(method: str, url: str, body: bytes = b"") -> bytes:
        path_info, _, query = url.partition("?")
        environ = {
            "REQUEST_METHOD": method, "PATH_INFO": path_info, "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": False,
            "wsgi.run_once": False, "HTTP_X_USER": "bench",
            "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
        }
        status = []
        chunks = app(environ, lambda s, h, e=None: status.append(s))
        out = b"".join(chunks)
        if hasattr(chunks, "close"):
            chunks.close()
        if not status[0].startswith("2"):
            raise SystemExit("%s %s: %s %s" % (method, url, status[0], out[:200]))
        return out

    def create(i: int) -> bytes:
        body = json.dumps({"name": "m-%d-%d" % (os.getpid(), i), "serial": "S%d-%d" % (
            os.getpid(), i), "location": "hall", "max_speed_rpm": 1500.0}).encode()
        return call("POST", "/machines/", body)

    # Enough rows for full pages, made before the counted requests.
    for i in range(120):
        create(-1 - i)
    if kind == "create":
        for i in range(count):
            create(i)
    elif kind == "read":
        for i in range(count):
            call("GET", "/machines/%d" % (1 + i % 100))
    else:
        for _ in range(count):
            call("GET", "/machines/?limit=100")


def measure(kind: str, count: int, python: str) -> int:
    """Total instructions of a process making ``count`` requests of ``kind``."""
    folder = tempfile.mkdtemp(prefix="peestore-instr-")
    try:
        out = os.path.join(folder, "callgrind.out")
        # A fixed hash seed: string hashes decide where dict and set entries land,
        # and so how many instructions a lookup takes.
        env = dict(os.environ, PYTHONHASHSEED="0")
        subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
                        python, os.path.abspath(__file__), "--child", kind, str(count),
                        os.path.join(folder, "bench.db")],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=env)
        with open(out) as f:
            for line in f:
                match = re.match(r"(?:summary|totals):\s+(\d+)", line)
                if match:
                    return int(match.group(1))
        raise RuntimeError("no totals in the callgrind output")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", type=int, nargs=2, default=(100, 600), metavar=("LOW", "HIGH"))
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, count, path = args.child
        run_requests(kind, int(count), path)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    low, high = args.counts
    print("instructions per request (valgrind, in-process WSGI, demo app, SQLite)")
    for kind in args.kinds:
        per = (measure(kind, high, sys.executable) - measure(kind, low, sys.executable)) \
            / float(high - low)
        print("%-8s %10.0f" % (kind, per), flush=True)


if __name__ == "__main__":
    main()
