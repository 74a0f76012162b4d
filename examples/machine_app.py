"""A machine app of your own, on the demo's models: your routes next to the REST API.

    python examples/machine_app.py [--db URL] [--port 8000]

The database is peestore's default, as for every ``peestore`` command:
``$PEESTORE_DATABASE_URL``, else ``sqlite:///peestore.db`` in the current
folder (made, and seeded with the demo's machine and recipes, on first run).

The models (a machine; a recipe with a foreign key to it and soft delete; an
operator log) and their validating hooks are in ``peestore/demo.py``.  This
app adds two routes of its own; the plugin gives them a connection, the
actor from ``X-User`` and JSON errors, like the generated ones.
"""
import argparse
import sys

import bottle
import peewee

import peestore
from peestore.demo import MODELS, Machine, OperatorLog, Recipe, seed

app = bottle.Bottle()


def recipe_id_from(body: object) -> int:
    """The ``recipe`` of a ``{"recipe": id}`` body: a 400 or a 422 for anything else."""
    if not isinstance(body, dict):
        # bottle.request.json is None without a JSON content type, else any JSON value.
        bottle.abort(400, "send a JSON object {\"recipe\": id} with "
                          "Content-Type: application/json")
    recipe_id = body.get("recipe")
    # bool is an int in Python, and SQLite stores at most 2**63-1: check before querying.
    if isinstance(recipe_id, bool) or not isinstance(recipe_id, int) \
            or not 1 <= recipe_id < 2 ** 63:
        raise peestore.ValidationError("send {\"recipe\": id} of one of this machine's recipes",
                                       {"recipe": "must be a recipe id (a whole number)"})
    return recipe_id


@app.post("/machines/<machine_id:int>/start", peestore_write=True)
def start(machine_id: int) -> dict:
    """Start a machine with one of its recipes: one audited update and a log line."""
    machine = Machine.get_or_none(Machine.id == machine_id)
    if machine is None:
        bottle.abort(404, "no machine %d" % machine_id)
    recipe_id = recipe_id_from(bottle.request.json)
    recipe = Recipe.get_or_none((Recipe.id == recipe_id) & (Recipe.machine == machine))
    if recipe is None:
        raise peestore.ValidationError("no such recipe for this machine",
                                       {"recipe": "not one of machine %d's recipes"
                                        % machine_id})
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


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not the usage block
        self.exit(2, "%s: error: %s (see --help)\n" % (self.prog, message))


def port(text: str) -> int:
    value = int(text)  # not a number: argparse says "invalid port value"
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("the port must be 0-65535 (0: any free port)")
    return value


def main() -> int:
    parser = Parser(prog="machine_app.py", description=__doc__.splitlines()[0])
    parser.add_argument("--db", metavar="URL", default=None,
                        help="database URL (default: $PEESTORE_DATABASE_URL, "
                             "else sqlite:///peestore.db)")
    parser.add_argument("--port", type=port, default=8000, help="TCP port (default 8000)")
    args = parser.parse_args()
    try:
        peestore.bootstrap(app, models=MODELS, database_url=args.db)
        with peestore.database.connection_context(), peestore.actor("machine_app"):
            seed()   # the demo's first machine and recipes, when the database is empty
        # Prints where it serves and which database, then serves until Ctrl-C.
        peestore.serve(app, port=args.port)
    except (peestore.PeestoreError, peewee.PeeweeException, OSError) as exc:
        print("machine_app.py: error: %s" % exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
