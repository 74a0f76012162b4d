"""GET /openapi.json: a valid OpenAPI 3.1 document of every generated route."""
import bottle
import pytest
import webtest
from openapi_spec_validator import validate

import peestore
from peestore.demo import MODELS as DEMO_MODELS

from .rest_models import REST_MODELS


@pytest.fixture
def doc(sqlite_db):
    sqlite_db(REST_MODELS)
    app = bottle.Bottle()
    app.install(peestore.RestPlugin(models=REST_MODELS))
    return webtest.TestApp(app).get("/openapi.json").json


def test_document_is_valid_openapi_31(doc):
    """openapi-spec-validator accepts it."""
    assert doc["openapi"].startswith("3.1")
    validate(doc)


def test_every_generated_route_is_described(sqlite_db):
    """Every route the plugin added is a path and method of the document."""
    sqlite_db(REST_MODELS)
    app = bottle.Bottle()
    app.install(peestore.RestPlugin(models=REST_MODELS))
    doc = webtest.TestApp(app).get("/openapi.json").json
    for route in app.routes:
        if (route.name or "").startswith("peestore.console."):
            continue  # the console's HTML pages are not the JSON API
        path = route.rule.replace("<id>", "{id}")
        assert route.method.lower() in doc["paths"][path], (route.method, route.rule)


def test_schemas_from_fields(doc):
    """Types, formats, required, nullable, defaults, choices, read-only come from fields."""
    part = doc["components"]["schemas"]["Part"]["properties"]
    assert part["id"]["type"] == "integer" and part["id"]["readOnly"] is True
    assert part["name"] == {"type": "string", "maxLength": 40}
    assert part["price"] == {"type": "number", "default": 0.0}
    # Naive UTC, no offset: RFC 3339's date-time needs one, date-time-local has none.
    assert part["made"] == {"type": ["string", "null"], "format": "date-time-local"}
    assert part["grade"]["enum"] == ["a", "b"] and part["grade"]["default"] == "a"
    new = doc["components"]["schemas"]["PartInput"]
    assert new["required"] == ["name"] and "id" not in new["properties"]
    assert new["properties"]["made"]["anyOf"] == [{"format": "date-time-local"},
                                                  {"format": "date-time"}]
    assert "deleted_at" not in new["properties"]
    assert new["additionalProperties"] is False
    bin_part = doc["components"]["schemas"]["Bin"]["properties"]["part"]
    assert bin_part["type"] == "integer" and "parts" in bin_part["description"]
    assert doc["components"]["schemas"]["TagInput"]["required"] == ["code", "title"]


def test_operations_list_parameters_and_errors(doc):
    """List filters and paging are query parameters; writes list X-User and their errors."""
    listing = doc["paths"]["/parts/"]["get"]
    names = {p["name"] for p in listing["parameters"]}
    assert {"name", "name__like", "qty__gte", "note__is_null", "order_by", "limit",
            "offset", "fields", "include_deleted"} <= names
    assert "qty__like" not in names
    create = doc["paths"]["/parts/"]["post"]
    assert create["parameters"][0]["name"] == "X-User"
    assert {"201", "400", "409", "413", "415", "422"} <= set(create["responses"])
    assert "412" in doc["paths"]["/parts/{id}"]["put"]["responses"]
    assert "/db/health" in doc["paths"] and "/db/audit" in doc["paths"]


def test_demo_document_is_valid(sqlite_db):
    """The demo app's document validates too (foreign keys, choices, booleans, text)."""
    sqlite_db(DEMO_MODELS)
    app = bottle.Bottle()
    app.install(peestore.RestPlugin(models=DEMO_MODELS, authenticate=lambda r: {"name": "x"}))
    doc = webtest.TestApp(app).get("/openapi.json").json
    validate(doc)
    assert "X-User" not in str(doc["paths"]["/machines/"]["post"].get("parameters"))
