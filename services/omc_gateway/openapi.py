"""The OpenAPI 3.1 document, generated from the endpoints (route metadata), so it always
describes the routes the app serves; tests check both directions."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from omc_gateway.answers import SCHEMAS, ref
from omc_gateway.endpoint import Endpoint
from omc_gateway.errors import PROBLEM_JSON
from omc_gateway.fields import Array, Kind, Obj

TITLE = "OpenMCP-Chain API"
VERSION = "1.0.0"

_DESCRIPTIONS = {
    400: "invalid-json: the body is not one JSON object in UTF-8",
    401: "unauthorized: no API key, or one that is malformed, unknown or revoked",
    403: "forbidden: the API key lacks the scope this route needs",
    404: "not-found: no such resource for this API key's tenant",
    409: "idempotency-conflict: the Idempotency-Key was used with another body, or is in use",
    413: "body-too-large",
    415: "unsupported-media-type: the body is not application/json",
    422: "invalid-body or invalid-parameters: errors[] names each field",
    429: "rate-limited: see Retry-After",
    500: "internal: the gateway failed (no details)",
    503: "unavailable: Kafka, MySQL or Redis is not answering; see Retry-After",
}


def _named(kind: Kind) -> Iterator[Obj]:
    if isinstance(kind, Obj):
        if kind.name:
            yield kind
        for spec in kind.fields.values():
            yield from _named(spec.kind)
    elif isinstance(kind, Array):
        yield from _named(kind.items)


def _parameter(param: Any) -> dict[str, Any]:
    schema = param.kind.schema()
    parameter = {"name": param.name, "in": param.where, "required": param.required or
                 param.where == "path", "schema": schema}
    if param.default is not None:
        parameter["schema"] = {**schema, "default": param.default}
    if param.doc:
        parameter["description"] = param.doc
    return parameter


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": endpoint.operation_id, "summary": endpoint.summary,
        "tags": [endpoint.tag],
        "security": [{"apiKey": []}] if endpoint.scope else [],
    }
    if endpoint.scope:
        operation["description"] = (f"Needs the scope `{endpoint.scope}`. "
                                    f"{endpoint.description}").strip()
    elif endpoint.description:
        operation["description"] = endpoint.description
    if endpoint.params:
        operation["parameters"] = [_parameter(p) for p in endpoint.params]
    if endpoint.body is not None:
        required = any(spec.required for spec in endpoint.body.fields.values())
        operation["requestBody"] = {"required": required, "content": {
            "application/json": {"schema": endpoint.body.schema()}}}
    responses: dict[str, Any] = {}
    for reply in endpoint.replies:
        answer: dict[str, Any] = {"description": reply.description}
        if reply.schema is not None:
            answer["content"] = {reply.media_type: {"schema": reply.schema}}
        if reply.headers:
            answer["headers"] = {name: {"schema": {"type": "string"}}
                                 for name in reply.headers}
        responses[str(reply.status)] = answer
    for status in endpoint.problem_statuses():
        answer = {"description": _DESCRIPTIONS[status],
                  "content": {PROBLEM_JSON: {"schema": ref("Problem")}}}
        if status in (429, 503):
            answer["headers"] = {"Retry-After": {"schema": {"type": "string"}}}
        if status == 401:
            answer["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
        responses[str(status)] = answer
    operation["responses"] = responses
    return operation


def document(endpoints: Iterable[Endpoint]) -> dict[str, Any]:
    endpoints = list(endpoints)
    paths: dict[str, dict[str, Any]] = {}
    schemas = dict(SCHEMAS)
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint)
        if endpoint.body is not None:
            for named in _named(endpoint.body):
                schemas[named.name] = named.definition()
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION,
                 "description": "Commands, queries and live events of OpenMCP-Chain. Errors "
                                "are application/problem+json (RFC 9457). docs/api.md is the "
                                "contract."},
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {"apiKey": {
                "type": "http", "scheme": "bearer", "bearerFormat": "omc_<key_id>_<secret>",
                "description": "An API key from `omc keys create`."}},
        },
    }

