"""Operations routes: liveness, readiness (Kafka, MySQL, Redis), metrics, the OpenAPI document."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from omc_gateway.answers import ref
from omc_gateway.endpoint import Call, Endpoint, Reply, json_response
from omc_gateway.errors import Unavailable
from omc_gateway.observe import Metrics

log = logging.getLogger("omc.gateway.ops")

Check = Callable[[], Awaitable[None]]


class OpsRoutes:
    def __init__(self, checks: Mapping[str, Check], metrics: Metrics, *,
                 check_timeout: float) -> None:
        self.checks = checks
        self.metrics = metrics
        self.check_timeout = check_timeout
        self.document: dict[str, Any] = {}

    def endpoints(self) -> list[Endpoint]:
        return [
            Endpoint("GET", "/healthz", "health", "The process is alive", self.healthz,
                     replies=(Reply(200, "Alive.", ref("Health")),)),
            Endpoint("GET", "/readyz", "readiness", "Kafka, MySQL and Redis answer",
                     self.readyz, replies=(Reply(200, "Every dependency answers.",
                                                 ref("Readiness")),), problems=(503,)),
            Endpoint("GET", "/metrics", "metrics", "Prometheus metrics", self.metrics_text,
                     scope="admin", replies=(Reply(200, "Prometheus text format.",
                                                   {"type": "string"},
                                                   media_type="text/plain"),)),
            Endpoint("GET", "/openapi.json", "openapi", "This API as OpenAPI 3.1",
                     self.openapi, replies=(Reply(200, "The OpenAPI document.",
                                                  {"type": "object"}),)),
        ]

    async def healthz(self, call: Call) -> Response:
        return json_response({"status": "ok"})

    async def readyz(self, call: Call) -> Response:
        results: dict[str, dict[str, Any]] = {}

        async def run(name: str, check: Check) -> None:
            started = time.perf_counter()
            try:
                with anyio.fail_after(self.check_timeout):
                    await check()
                results[name] = {"status": "up",
                                 "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
            except Unavailable as error:
                results[name] = {"status": "down", "detail": error.detail}
            except TimeoutError:
                results[name] = {"status": "down",
                                 "detail": f"no answer within {self.check_timeout:g} s"}
            except Exception:
                log.exception("the %s readiness check failed", name)
                results[name] = {"status": "down", "detail": "the check failed; see the log"}

        async with anyio.create_task_group() as group:
            for name, check in self.checks.items():
                group.start_soon(run, name, check)
        checks = {name: results[name] for name in self.checks}
        down = [name for name, result in checks.items() if result["status"] != "up"]
        if down:
            raise Unavailable(",".join(down), f"Not ready: {', '.join(down)} not answering.",
                              checks=checks)
        return json_response({"status": "ready", "checks": checks})

    async def metrics_text(self, call: Call) -> Response:
        return Response(self.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    async def openapi(self, call: Call) -> Response:
        return json_response(self.document)
