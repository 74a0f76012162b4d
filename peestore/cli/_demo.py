"""``peestore demo``: the built-in demo machine app."""
from __future__ import annotations

import argparse

from ._main import PORT, THREADS, arg, command

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import List


def _hints(url: str) -> List[str]:
    """What to try once the demo runs, one line each, after the start line."""
    return ["  try: curl %smachines/   or open %sopenapi.json" % (url, url)]


@command("demo", "serve the built-in demo machine app (on the same database as the other "
                 "commands)")
@arg("--port", type=PORT, default=8000,
     help="TCP port on 127.0.0.1, 0-65535 (0: any free port; default 8000)")
@arg("--threads", type=THREADS, default=4, help="worker threads, 1-1000 (default 4)")
def run(args: argparse.Namespace) -> int:
    from ..rest._banner import server_urls, start_line
    from ..demo import make_app
    from ..rest._server import make_server

    app = make_app(args.db)
    server = make_server(app, host="127.0.0.1", port=args.port, threads=args.threads)
    # The console's URL comes first: what a person at the machine opens.
    url = server_urls(server)[0]
    lines = ["peestore demo: open %sdb/console/ in a browser (the operator console)" % url,
             start_line(server, "peestore demo")] + _hints(url)
    print("\n".join(lines), flush=True)
    try:
        server.run()
    finally:
        server.close()
    return 0
