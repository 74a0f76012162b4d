"""schemathesis against the demo app and its ``/openapi.json``: no 500 anywhere, and
every answer is one the document describes (status code, content type, headers, body).

Every operation of the document gets requests that fit it and requests that do not
(schemathesis' positive and negative generation, with its examples and coverage
phases), sent to the demo app over WSGI on a temporary SQLite file.  Generation is
deterministic with a fixed number of examples per operation: 25, or
``PEESTORE_SCHEMATHESIS_EXAMPLES``.

schemathesis builds its tests when pytest collects this file, before any database
exists, so the document comes from ``build_document`` on the demo's models;
``test_the_document_is_the_one_the_demo_serves`` checks that it is exactly what the
demo app answers at ``/openapi.json``.
"""
import os

import bottle
import pytest
import schemathesis
import webtest
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance,
                                               response_headers_conformance,
                                               response_schema_conformance,
                                               status_code_conformance)

import peestore
from peestore.db._connect import get_database
from peestore.demo import MODELS, make_app
from peestore.rest._openapi import build_document

EXAMPLES = int(os.environ.get("PEESTORE_SCHEMATHESIS_EXAMPLES", "0") or 0) or 25

# Not schemathesis' positive_data_acceptance: a request the schema allows may still
# be refused by the app's own rules (a recipe faster than its machine, a name that
# is taken), with a documented 409 or 422.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]


def demo_document():
    """What the demo app serves at /openapi.json, built without a database."""
    app = bottle.Bottle()
    plugin = peestore.RestPlugin(models=MODELS)
    app.install(plugin)
    document = build_document(plugin)
    document["servers"] = [{"url": "/"}]
    return document


schema = schemathesis.openapi.from_dict(demo_document())
# schemathesis before 4.29 (the last for Python 3.9 is 4.4.4, which the lowest
# CI run has) runs out of memory building the coverage phase's cases for this
# document while pytest collects, and its negative multipart bodies (a JSON
# list) crash its own WSGI client before a request is made.  There, the
# examples and fuzzing phases run, and the two upload routes are left to
# tests/test_upload.py, tests/test_data_routes.py and the hostile-file tests.
OLD_SCHEMATHESIS = tuple(int(part) for part in schemathesis.__version__.split(".")[:2]) < (4, 29)
if OLD_SCHEMATHESIS:
    schema = schema.exclude(path_regex="^/db/(import|restore)$")
# GET /db/changes never ends its body (an event stream): it is tested against a
# real server in tests/test_changes.py.
schema = schema.exclude(path_regex="^/db/changes$")
schema.config.generation.update(max_examples=EXAMPLES, deterministic=True)
if OLD_SCHEMATHESIS:
    schema.config.phases.coverage.enabled = False


@pytest.fixture(scope="module")
def demo_app(tmp_path_factory):
    """The demo app on a fresh SQLite file, seeded; one for every operation, so that
    the writes of one operation are there for the next."""
    app = make_app("sqlite:///%s" % (tmp_path_factory.mktemp("schemathesis") / "demo.db"))
    yield app
    get_database().close()


def test_the_document_is_the_one_the_demo_serves(demo_app):
    """The document schemathesis tests is the one the demo app serves."""
    served = webtest.TestApp(demo_app).get("/openapi.json").json
    assert served == schema.raw_schema


@schema.parametrize()
def test_demo_app_answers_as_documented(case, demo_app):
    """Every operation: never a 5xx, and status, content type, headers and body as
    /openapi.json says."""
    case.call_and_validate(app=demo_app, checks=CHECKS)
