"""What the operator console costs: resident memory it adds when first opened, and the
weight of its pages.

    python benchmarks/console_memory.py [--runs 3] [--json]

Each run is a fresh process (modules loaded from bytecode, as when installed)
that serves the demo app with waitress on 127.0.0.1, warms it up through the
REST API (lists, reads, creates, the health route) until its resident memory
settles, reads it, then opens every
console page and fetches the script and the style (each twice), and reads it
again.  The figure is the difference (the median over the runs).  The page
weight is each page's HTML plus the script and the style.  Linux only
(``/proc/self/status``).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PAGES = ["", "machines", "machines/1", "machines/new", "recipes", "recipes/1", "audit",
         "diagram", "data"]

CHILD = r"""
import json, sys, urllib.request
sys.path.insert(0, sys.argv[2])
from peestore.demo import make_app
from peestore.rest._server import background

def rss_kb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

def get(url):
    with urllib.request.urlopen(url, timeout=10) as res:
        return res.read()

def post(url, body):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              "X-User": "bench"})
    with urllib.request.urlopen(request, timeout=10) as res:
        return res.read()

app = make_app(sys.argv[1])
pages = json.loads(sys.argv[3])
with background(app) as url:
    for i in range(300):   # the REST API in use, until memory settles
        get(url + "/machines/?limit=50")
        get(url + "/recipes/1")
        get(url + "/db/health")
        get(url + "/db/audit?limit=20")
        if i % 10 == 0:
            post(url + "/machines/", {"name": "m%d" % i, "serial": "s%d" % i})
    before = rss_kb()
    loaded = [m for m in sys.modules if m.startswith("peestore.console")]
    weights = {}
    for _ in range(2):
        for page in pages:
            weights[page] = len(get(url + "/db/console/" + page))
        js = len(get(url + "/db/console/static/console.js"))
        css = len(get(url + "/db/console/static/console.css"))
    after = rss_kb()
print(json.dumps({"before_kb": before, "after_kb": after, "loaded_before": loaded,
                  "html": weights, "js": js, "css": css}))
"""


def run_once(folder, index):
    db = "sqlite:///%s" % os.path.join(folder, "bench-%d.db" % index)
    root = os.path.dirname(HERE)
    # As installed: modules load from bytecode (pip compiles it), not from source,
    # whose compiling alone would cost more than the console; the bytecode goes to a
    # folder of the run's own, made by the first run.
    env = dict(os.environ, PYTHONPYCACHEPREFIX=os.path.join(folder, "pycache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    out = subprocess.run([sys.executable, "-c", CHILD, db, root, json.dumps(PAGES)],
                         check=True, stdout=subprocess.PIPE, text=True, timeout=300, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh processes (median)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        run_once(folder, -1)   # writes the bytecode
        results = [run_once(folder, i) for i in range(args.runs)]
    gains = [r["after_kb"] - r["before_kb"] for r in results]
    last = results[-1]
    figures = {
        "rss_before_console_kb": statistics.median(r["before_kb"] for r in results),
        "rss_gain_console_kb": statistics.median(gains),
        "rss_gains_kb": gains,
        "console_modules_before_opening": last["loaded_before"],
        "script_bytes": last["js"], "style_bytes": last["css"],
        "page_bytes": {page or "home": size + last["js"] + last["css"]
                       for page, size in last["html"].items()},
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print("RSS of the serving demo before the console: %.1f MB"
          % (figures["rss_before_console_kb"] / 1024))
    print("RSS gained when the console is first opened: %.0f KB (runs: %s)"
          % (figures["rss_gain_console_kb"], ", ".join("%d" % g for g in gains)))
    print("console modules loaded before it was opened: %s"
          % (", ".join(figures["console_modules_before_opening"]) or "none"))
    print("script %d bytes, style %d bytes" % (last["js"], last["css"]))
    for page, size in figures["page_bytes"].items():
        print("page weight %-14s %6.1f KB (HTML + script + style)" % (page, size / 1024))
    print("heaviest page: %.1f KB of the 100 KB allowed"
          % (max(figures["page_bytes"].values()) / 1024))
    return 0


if __name__ == "__main__":
    sys.exit(main())
