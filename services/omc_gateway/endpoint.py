"""Route metadata, and the pipeline every request of a route goes through.

An `Endpoint` says everything about a route once: method, path, the scope it needs, its
parameters, its body, its answers. The app is routed from the endpoints and the OpenAPI
document is generated from them, so the two cannot drift apart.

The pipeline, in order (each step answers with a problem when it refuses):

    authenticate   Authorization: Bearer <key>                      401
    rate limit     per API key, fixed window                        429 (503: Redis down)
    scope          the key has the endpoint's scope                 403
    parameters     path, query, headers: unknown, repeated or bad   422 invalid-parameters
    body           size, media type, JSON, fields                   413, 415, 400, 422
    handler        the route's own work                             404, 409, 503, ...
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from omc_gateway.commands import Principal
from omc_gateway.errors import (
    BodyTooLarge,
    FieldError,
    Forbidden,
    InvalidBody,
    InvalidJson,
    InvalidParameters,
    Unauthorized,
    UnsupportedMediaType,
)
from omc_gateway.fields import Kind, Obj
from omc_gateway.observe import annotate
from omc_gateway.ports import KeyStore, RateLimiter

MAX_DEPTH = 64
_NO_QUERY = QueryParams()
JSON_TYPE = re.compile(r"application/(?:[a-z0-9.+-]+\+)?json", re.IGNORECASE)


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # "path", "query" or "header"
    kind: Kind
    required: bool = False
    default: Any = None
    doc: str = ""


@dataclass(frozen=True)
class Reply:
    """A success answer, for the OpenAPI document."""

    status: int
    description: str
    schema: dict[str, Any] | None = None
    media_type: str = "application/json"
    headers: tuple[str, ...] = ()


@dataclass
class Call:
    """One request, past the pipeline: who calls, with which parameters and body."""

    request: Request
    principal: Principal | None
    params: dict[str, Any]
    body: dict[str, Any] | None = None
    raw_body: Any = None

    @property
    def tenant(self) -> str:
        assert self.principal is not None
        return self.principal.tenant


Handler = Callable[[Call], Awaitable[Response]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    operation_id: str
    summary: str
    handler: Handler
    scope: str | None = None
    params: tuple[Param, ...] = ()
    body: Obj | None = None
    replies: tuple[Reply, ...] = ()
    problems: tuple[int, ...] = ()
    tag: str = "operations"
    description: str = ""
    _query: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_query",
                           frozenset(p.name for p in self.params if p.where == "query"))

    def problem_statuses(self) -> list[int]:
        statuses = {*self.problems, 500}
        if self.scope is not None:
            statuses |= {401, 403, 429, 503}
        if self.params:
            statuses.add(422)
        if self.body is not None:
            statuses |= {400, 413, 415, 422}
        return sorted(statuses)


class Pipeline:
    """Wraps an endpoint's handler in the steps every request takes."""

    def __init__(self, keys: KeyStore, limiter: RateLimiter, max_body: int) -> None:
        self.keys = keys
        self.limiter = limiter
        self.max_body = max_body

    def wrap(self, endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            principal = None
            if endpoint.scope is not None:
                principal = await self.authenticate(request)
                await self.limiter.hit(principal.key_id)
                if endpoint.scope not in principal.scopes:
                    raise Forbidden(f"This API key does not have the scope {endpoint.scope!r}, "
                                    f"which {endpoint.method} {endpoint.path} needs.")
            params = parameters(endpoint, request)
            call = Call(request, principal, params)
            if endpoint.body is not None:
                call.raw_body = await read_json(request, self.max_body)
                problems: list[FieldError] = []
                call.body = endpoint.body.check(call.raw_body, "", problems)
                if problems:
                    raise InvalidBody(problems)
            return await endpoint.handler(call)

        return run

    async def authenticate(self, request: Request) -> Principal:
        header = request.headers.get("authorization")
        if header is None:
            raise Unauthorized("This route needs an API key: Authorization: Bearer <key>.")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Send the API key as Authorization: Bearer <key>.")
        principal = await self.keys.authenticate(token.strip())
        annotate(tenant=principal.tenant, key_id=principal.key_id)
        return principal


def parameters(endpoint: Endpoint, request: Request) -> dict[str, Any]:
    """The endpoint's parameters, checked; unknown and repeated query parameters refused."""
    problems: list[FieldError] = []
    values: dict[str, Any] = {}
    query = request.query_params if request.scope["query_string"] else _NO_QUERY
    if query:
        for name in dict.fromkeys(query.keys()):
            if name not in endpoint._query:
                problems.append(FieldError(name, "is not a parameter of this route"))
            elif len(query.getlist(name)) > 1:
                problems.append(FieldError(name, "is given more than once"))
    for param in endpoint.params:
        if param.where == "path":
            text = request.path_params.get(param.name)
        elif param.where == "query":
            text = query.get(param.name)
        else:
            text = request.headers.get(param.name)
        if text is None:
            if param.required:
                problems.append(FieldError(param.name, "is required"))
            values[param.name] = param.default
            continue
        values[param.name] = param.kind.check_text(text, param.name, problems)
    if problems:
        raise InvalidParameters(problems)
    return values


async def read_json(request: Request, limit: int) -> Any:
    """The body as JSON; an empty body is `{}`. Raises 413, 415 or 400 problems."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"The body may have at most {limit} bytes.")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return {}
    media = request.headers.get("content-type")
    if media is None:
        raise UnsupportedMediaType("Send the body as JSON, with Content-Type: application/json.")
    kind, *options = (part.strip() for part in media.split(";"))
    if not JSON_TYPE.fullmatch(kind):
        raise UnsupportedMediaType(f"The body must be application/json, not {kind[:100]!r}.")
    for option in options:
        name, _, value = option.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() != "utf-8":
            raise UnsupportedMediaType("JSON bodies must be UTF-8 (charset=utf-8).")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidJson(f"The body is not UTF-8 (byte {error.start}).") from error
    if _too_deep(text):
        raise InvalidJson(f"The body is nested more than {MAX_DEPTH} levels deep.")
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        raise InvalidJson(f"The body is not JSON: {error.msg} at line {error.lineno}, column "
                          f"{error.colno}.") from error
    except RecursionError as error:
        raise InvalidJson(f"The body is nested more than {MAX_DEPTH} levels deep.") from error
    except ValueError as error:  # a duplicate member, NaN, a number with too many digits
        raise InvalidJson(f"The body is not acceptable JSON: {error}.") from error
    if "\\ud" in text or "\\uD" in text:
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as error:
            raise InvalidJson("The body has a lone UTF-16 surrogate (\\ud800-\\udfff) in a "
                              "string; that is not text.") from error
    return value


def _too_deep(text: str) -> bool:
    """Whether arrays and objects nest more than MAX_DEPTH deep (checked before parsing, so
    the answer does not depend on the interpreter's recursion limit)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise ValueError(f"the member {name[:100]!r} appears twice in one object")
            seen.add(name)
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


# -- answers --------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_jsonable)


def dumps(content: Any) -> bytes:
    return _ENCODER.encode(content).encode()


def json_response(content: Any, status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(content), status_code=status, headers=headers,
                    media_type="application/json")

