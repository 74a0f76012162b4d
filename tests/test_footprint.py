"""What a serving app holds: the data tools, the OpenAPI builder, the operator console and
typing load only on use."""
import json
import subprocess
import sys

LAZY = ["typing", "csv", "zipfile", "playhouse.db_url", "playhouse.reflection",
        "peestore.model._bulk", "peestore.tools._export", "peestore.tools._import",
        "peestore.tools._diagram", "peestore.rest._openapi", "peestore.console",
        "peestore.console._routes"]

SCRIPT = """
import json, sys
# What the interpreter itself loaded at start (an editable install's import
# hook brings typing on Python 3.9) is not peestore's doing.
at_start = set(sys.modules)
from peestore.demo import make_app
app = make_app(sys.argv[1])
loaded = lambda: [name for name in %r if name in sys.modules and name not in at_start]
before = loaded()
import webtest
client = webtest.TestApp(app)
client.post_json("/machines/", {"name": "m", "serial": "s"}, headers={"X-User": "t"})
client.get("/machines/?limit=10")
after_crud = loaded()
client.get("/openapi.json")
after_openapi = loaded()
client.get("/db/console/")
print(json.dumps([before, after_crud, after_openapi, loaded()]))
""" % (LAZY,)


def test_serving_loads_only_what_it_uses(tmp_path):
    out = subprocess.run([sys.executable, "-c", SCRIPT, "sqlite:///%s" % (tmp_path / "d.db")],
                         check=True, stdout=subprocess.PIPE, text=True, cwd=str(tmp_path))
    before, after_crud, after_openapi, after_console = json.loads(
        out.stdout.strip().splitlines()[-1])
    # webtest itself may bring typing along; peestore must not.
    assert [m for m in before] == []
    assert [m for m in after_crud if m.startswith(("peestore", "playhouse"))] == []
    assert "peestore.rest._openapi" in after_openapi
    # The console's code: only once a page of it is opened.
    assert not [m for m in after_openapi if m.startswith("peestore.console")]
    assert "peestore.console._routes" in after_console
