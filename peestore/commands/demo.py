"""``peestore demo``: the built-in demo machine app."""
import argparse
import os

from ..cli import arg, command


@command("demo", "serve the built-in demo machine app on SQLite in this folder")
@arg("--port", type=int, default=8000, help="TCP port on 127.0.0.1 (default 8000)")
@arg("--threads", type=int, default=4, help="worker threads (default 4)")
def run(args: argparse.Namespace) -> int:
    from ..demo import make_app
    from ..server import make_server

    path = os.path.abspath("peestore-demo.db")
    app = make_app("sqlite:///%s" % path)
    server = make_server(app, host="127.0.0.1", port=args.port, threads=args.threads)
    url = "http://127.0.0.1:%s/" % server.effective_port
    print("peestore demo: serving %s on %s" % (path, url), flush=True)
    print("  try: curl %smachines/   or open %sopenapi.json   (Ctrl-C stops)" % (url, url),
          flush=True)
    try:
        server.run()
    finally:
        server.close()
    return 0


run.needs_db = False
