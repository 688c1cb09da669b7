"""The gateway's Starlette app, built from its dependencies (see `ports`).

    create_app(settings, commands=..., read_model=..., keys=..., limiter=..., idempotency=...)

Every route comes from an `Endpoint` (one Starlette route per path, so a wrong method is a
405 that names every allowed one); the OpenAPI document is generated from the same list. The
lifespan opens each dependency that is a `Resource` and closes them in reverse order.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from omc_gateway import openapi
from omc_gateway.commands import CommandFactory
from omc_gateway.endpoint import Endpoint, Pipeline
from omc_gateway.errors import (
    PROBLEM_JSON,
    GatewayError,
    MethodNotAllowed,
    NotFound,
    Unavailable,
)
from omc_gateway.observe import GatewayMiddleware, Metrics, problem_bytes
from omc_gateway.ports import (
    CommandBus,
    IdempotencyStore,
    KeyStore,
    RateLimiter,
    ReadModel,
    Resource,
)
from omc_gateway.routes_commands import CommandRoutes
from omc_gateway.routes_live import LiveRoutes
from omc_gateway.routes_ops import OpsRoutes
from omc_gateway.routes_proofs import ProofReader, ProofRoutes
from omc_gateway.routes_queries import QueryRoutes
from omc_gateway.settings import GatewaySettings

log = logging.getLogger("omc.gateway.app")


def problem_response(error: GatewayError, request: Request) -> Response:
    return Response(problem_bytes(error, request.url.path), status_code=error.status,
                    headers=error.headers, media_type=PROBLEM_JSON)


async def _gateway_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, GatewayError)
    if isinstance(error, Unavailable):
        log.warning("%s %s: %s unavailable", request.method, request.url.path,
                    error.dependency)
    return problem_response(error, request)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    if error.status_code == 405:
        allowed = (error.headers or {}).get("Allow", "")
        return problem_response(MethodNotAllowed(
            f"{request.method} is not allowed on {request.url.path}; allowed: {allowed}.",
            headers={"Allow": allowed}), request)
    if error.status_code == 404:
        return problem_response(NotFound(
            f"There is no route {request.method} {request.url.path}; /openapi.json lists "
            "the routes."), request)
    generic = GatewayError(str(error.detail))
    generic.status, generic.slug, generic.title = error.status_code, "http-error", "HTTP error"
    return problem_response(generic, request)


def _dispatcher(path: str, handlers: dict[str, Callable[[Request], Awaitable[Response]]]
                ) -> Callable[[Request], Awaitable[Response]]:
    if len(handlers) == 1:
        (only,) = handlers.values()
        return only

    async def dispatch(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await handlers[method](request)

    return dispatch


def routes(endpoints: list[Endpoint], pipeline: Pipeline) -> list[Route]:
    by_path: dict[str, dict[str, Callable[[Request], Awaitable[Response]]]] = {}
    for endpoint in endpoints:
        by_path.setdefault(endpoint.path, {})[endpoint.method] = pipeline.wrap(endpoint)
    return [Route(path, _dispatcher(path, handlers), methods=list(handlers))
            for path, handlers in by_path.items()]


def create_app(settings: GatewaySettings, *, commands: CommandBus, read_model: ReadModel,
               keys: KeyStore, limiter: RateLimiter, idempotency: IdempotencyStore,
               factory: CommandFactory | None = None,
               metrics: Metrics | None = None,
               proofs: ProofReader | None = None) -> Starlette:
    """The gateway over its dependencies; the lifespan opens and closes those that are
    resources. `app.state.endpoints` and `app.state.metrics` are there for tests."""
    metrics = metrics or Metrics()
    ops = OpsRoutes({"kafka": commands.ping, "mysql": read_model.ping_mysql,
                     "redis": limiter.ping}, metrics, check_timeout=settings.check_timeout)
    endpoints = [
        *CommandRoutes(commands, idempotency, factory or CommandFactory(), metrics).endpoints(),
        *QueryRoutes(read_model).endpoints(),
        *ProofRoutes(proofs).endpoints(),
        *LiveRoutes(read_model, keepalive=settings.sse_keepalive).endpoints(),
        *ops.endpoints(),
    ]
    ops.document = openapi.document(endpoints)
    resources: list[Any] = []
    for dependency in (commands, read_model, keys, limiter, idempotency):
        if isinstance(dependency, Resource) and all(dependency is not r for r in resources):
            resources.append(dependency)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for resource in resources:
                await resource.open()
                stack.push_async_callback(resource.close)
            log.info("serving the API on %s", settings.url)
            yield

    app = Starlette(
        routes=routes(endpoints, Pipeline(keys, limiter, settings.max_body)),
        middleware=[Middleware(GatewayMiddleware, metrics=metrics, max_body=settings.max_body)],
        exception_handlers={GatewayError: _gateway_error, HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False
    app.state.endpoints = endpoints
    app.state.metrics = metrics
    return app
