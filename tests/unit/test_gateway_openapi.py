"""The OpenAPI document describes exactly the routes the app serves, and is well-formed."""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from omc_gateway.openapi import document
from tests.unit.test_gateway_app import build

METHODS = {"get", "post", "put", "delete", "patch"}


def _served() -> tuple[dict[str, Any], set[tuple[str, str]]]:
    gw = next(build())
    doc = gw.client.get("/openapi.json").json()
    served = {(method.lower(), route.path) for route in gw.app.routes
              if isinstance(route, Route) for method in route.methods if method != "HEAD"}
    return doc, served


def test_the_document_lists_exactly_the_apps_routes() -> None:
    doc, served = _served()

    documented = {(method, path) for path, item in doc["paths"].items() for method in item}

    assert documented == served
    assert doc["openapi"] == "3.1.0"


def test_the_document_is_the_one_generated_from_the_endpoints() -> None:
    gw = next(build())

    assert gw.client.get("/openapi.json").json() == document(gw.app.state.endpoints)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def test_every_reference_resolves_and_every_operation_is_complete() -> None:
    doc, _ = _served()
    schemas = doc["components"]["schemas"]

    assert all(ref.removeprefix("#/components/schemas/") in schemas for ref in _refs(doc))
    ids = []
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            ids.append(operation["operationId"])
            assert operation["responses"], (method, path)
            for status, answer in operation["responses"].items():
                if int(status) >= 400:
                    assert "application/problem+json" in answer["content"], (path, status)
            names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert names == {part[1:-1] for part in path.split("/") if part.startswith("{")}
            if operation["security"]:
                assert {"401", "403", "429"} <= set(operation["responses"])
    assert len(ids) == len(set(ids))


def test_request_bodies_refuse_unknown_members_and_name_required_ones() -> None:
    doc, _ = _served()
    schemas = doc["components"]["schemas"]

    submit = schemas["SubmitTask"]
    assert submit["additionalProperties"] is False
    assert set(submit["required"]) == {"agent_id", "instruction", "chain_id"}
    assert submit["properties"]["max_value_wei"]["type"] == ["string", "null"]
    assert schemas["Policy"]["properties"]["max_value_wei"]["pattern"] == "^(?:0|[1-9][0-9]{0,77})$"
    assert schemas["RegisterAgent"]["properties"]["policy"] == {
        "$ref": "#/components/schemas/Policy",
        "description": "the first policy; its version must be 1"}
