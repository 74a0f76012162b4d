"""A machine app of your own, on the demo's models: your routes next to the REST API.

    python examples/machine_app.py [--db sqlite:///machine.db] [--port 8000]

The models (a machine; a recipe with a foreign key to it and soft delete; an
operator log) and their validating hooks are in ``peestore/demo.py``.  This
app adds two routes of its own; the plugin gives them a connection, the
actor from ``X-User`` and JSON errors, like the generated ones.
"""
import argparse

import bottle

import peestore
from peestore.demo import MODELS, Machine, OperatorLog, Recipe

app = bottle.Bottle()


@app.post("/machines/<machine_id:int>/start", peestore_write=True)
def start(machine_id: int) -> dict:
    """Start a machine with one of its recipes: one audited update and a log line."""
    machine = Machine.get_or_none(Machine.id == machine_id)
    if machine is None:
        bottle.abort(404, "no machine %d" % machine_id)
    body = bottle.request.json or {}
    recipe = Recipe.get_or_none((Recipe.id == body.get("recipe")) &
                                (Recipe.machine == machine))
    if recipe is None:
        bottle.abort(422, "send {\"recipe\": id} of one of this machine's recipes")
    with peestore.database.atomic():
        machine.status = "running"
        machine.save()
        OperatorLog.create(machine=machine, operator=peestore.current_actor(),
                           message="started with recipe %s" % recipe.name)
    return machine.to_dict()


@app.get("/machines/<machine_id:int>/summary")
def summary(machine_id: int) -> dict:
    """A machine with its live recipes and its last log lines."""
    machine = Machine.get_or_none(Machine.id == machine_id)
    if machine is None:
        bottle.abort(404, "no machine %d" % machine_id)
    return {
        "machine": machine.to_dict(),
        "recipes": [r.to_dict() for r in machine.recipes],   # soft-deleted ones hidden
        "log": [line.to_dict() for line in
                machine.log.order_by(OperatorLog.id.desc()).limit(5)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite:///machine.db")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    peestore.bootstrap(app, models=MODELS, database_url=args.db)
    print("serving on http://127.0.0.1:%d/  (openapi: /openapi.json)" % args.port)
    peestore.serve(app, port=args.port)


if __name__ == "__main__":
    main()
