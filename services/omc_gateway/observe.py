"""Observability: JSON log lines with correlation ids, Prometheus metrics, and the ASGI
middleware that ties them to every request.

Each request gets a request id (the caller's `X-Request-ID` when well-formed, else one made
of a per-process random prefix and a counter), echoed in the answer and carried by every log
line written while it is served, with the tenant and key id once known and the command id
(`correlation_id`) of a command. The middleware also refuses a declared body over the limit
(413) before anything reads it, and is the last resort for an unexpected exception: a 500
problem without details, logged in full.

    omc_gateway_requests_total{method, route, status}    counter
    omc_gateway_request_seconds{method, route}           histogram (route: the template, or
                                                          "unmatched")
    omc_gateway_commands_total{command, outcome}         accepted, replayed, unavailable
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import sys
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from omc_gateway.errors import PROBLEM_JSON, BodyTooLarge, GatewayError, Internal

log = logging.getLogger("omc.gateway")
access = logging.getLogger("omc.gateway.access")

_LINE = json.JSONEncoder(ensure_ascii=False, default=str)  # made once: json.dumps(**options)
                                                          # builds an encoder per call
CONTEXT: ContextVar[dict[str, Any] | None] = ContextVar("omc_gateway_request", default=None)
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def annotate(**values: Any) -> None:
    """Add values (tenant, key_id, correlation_id) to the current request's log context."""
    context = CONTEXT.get()
    if context is not None:
        context.update(values)


def request_id() -> str | None:
    context = CONTEXT.get()
    return context.get("request_id") if context else None


class AccessLog:
    """One JSON line per request, written straight to a stream (stderr): the same shape as
    omc_obs.logging's lines, without the logging module's record machinery, which costs more
    than the rest of a request's logging put together. Off when the `omc.gateway.access`
    logger is set above INFO."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream

    def enabled(self) -> bool:
        return access.isEnabledFor(logging.INFO)

    def write(self, context: dict[str, Any], method: str, path: str, route: str, status: int,
              elapsed: float) -> None:
        line = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), "level": "info",
                "logger": "omc.gateway.access", "service": "gateway",
                "message": f"{method} {path} {status}",
                **context, "method": method, "path": path, "route": route, "status": status,
                "duration_ms": round(elapsed * 1000, 3)}
        (self.stream or sys.stderr).write(_LINE.encode(line) + "\n")


class Metrics:
    """The gateway's metrics, in a registry of their own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("omc_gateway_requests_total", "HTTP requests answered",
                                ["method", "route", "status"], registry=self.registry)
        self.seconds = Histogram(
            "omc_gateway_request_seconds", "Time to answer an HTTP request (to its last byte)",
            ["method", "route"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.commands = Counter("omc_gateway_commands_total", "Commands by type and outcome",
                                ["command", "outcome"], registry=self.registry)
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._command_children: dict[tuple[str, str], Any] = {}

    def command(self, command: str, outcome: str) -> None:
        child = self._command_children.get((command, outcome))
        if child is None:
            child = self._command_children[(command, outcome)] = self.commands.labels(command,
                                                                                      outcome)
        child.inc()

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count a request and its time (label children cached: labels() is the slow part)."""
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (self.requests.labels(method, route, str(status)),
                                               self.seconds.labels(method, route))
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def problem_bytes(error: GatewayError, instance: str) -> bytes:
    body = error.problem(instance)
    rid = request_id()
    if rid:
        body["request_id"] = rid
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


class GatewayMiddleware:
    """Request ids, log context, access log, metrics, declared-size check, last resort."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, max_body: int,
                 access_log: AccessLog | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body
        self.access_log = access_log or AccessLog()
        self._ids = itertools.count(1)
        self._id_prefix = uuid.uuid4().hex[:12]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given_id = declared = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                given_id = value.decode("latin-1")
            elif name == b"content-length":
                declared = value
        rid = (given_id if given_id and REQUEST_ID.fullmatch(given_id)
               else f"{self._id_prefix}{next(self._ids):012x}")
        context: dict[str, Any] = {"request_id": rid}
        token = CONTEXT.set(context)
        state = {"status": 0}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                message["headers"] = [*message.get("headers", ()),
                                      (b"x-request-id", rid.encode())]
            await send(message)

        try:
            if declared is not None and _too_large(declared, self.max_body):
                await self._problem(scope, send_with_id, BodyTooLarge(
                    f"The body may have at most {self.max_body} bytes."))
            else:
                await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unexpected error serving %s %s", scope["method"], scope["path"])
            if state["status"] == 0:
                await self._problem(scope, send_with_id, Internal())
            else:
                state["status"] = state["status"] or 500
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            elapsed = time.perf_counter() - started
            method = scope["method"]
            status = state["status"] or 500
            self.metrics.observe(method, template, status, elapsed)
            if self.access_log.enabled():
                self.access_log.write(context, method, scope["path"], template, status, elapsed)
            CONTEXT.reset(token)

    async def _problem(self, scope: Scope, send: Send, error: GatewayError) -> None:
        body = problem_bytes(error, scope["path"])
        headers = [(b"content-type", PROBLEM_JSON.encode()),
                   (b"content-length", str(len(body)).encode()),
                   *((k.lower().encode(), v.encode()) for k, v in error.headers.items())]
        if isinstance(error, BodyTooLarge):
            headers.append((b"connection", b"close"))  # the unread body is not drained
        await send({"type": "http.response.start", "status": error.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _too_large(declared: bytes, limit: int) -> bool:
    try:
        return int(declared) > limit
    except ValueError:
        return False  # uvicorn refuses a malformed Content-Length itself
