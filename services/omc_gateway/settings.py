"""What the gateway is configured with: the project's settings plus its own.

    OMC_GATEWAY_PORT              port to listen on (18080; from the project's settings)
    OMC_GATEWAY_HOST              interface to listen on (127.0.0.1)
    OMC_GATEWAY_MAX_BODY          largest request body in bytes (65536)
    OMC_GATEWAY_RATE_LIMIT        requests per API key per window (600)
    OMC_GATEWAY_RATE_WINDOW       the rate limit's fixed window, seconds (60)
    OMC_GATEWAY_IDEMPOTENCY_TTL   how long an Idempotency-Key's answer is kept, seconds (86400)
    OMC_GATEWAY_KAFKA_TIMEOUT     seconds Kafka has to acknowledge a command before 503 (10)
    OMC_GATEWAY_CHECK_TIMEOUT     seconds each readiness check may take (2)
    OMC_GATEWAY_MYSQL_POOL        MySQL connections kept open for queries (8)
    OMC_GATEWAY_KEY_CACHE         seconds a looked-up API key is trusted without MySQL (30)
    OMC_GATEWAY_SSE_KEEPALIVE     seconds between keep-alive comments on a live stream (15)
    OMC_PROJ_REDIS_PREFIX         key prefix of the Redis projection it reads (omc:v1), the
                                  projector's own setting, so the two cannot disagree

Every invalid value is reported at once, with the project's, as a `ConfigError`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from omc_config import Settings
from omc_errors import ConfigError

T = TypeVar("T", int, float)


@dataclass(frozen=True)
class GatewaySettings:
    base: Settings
    host: str
    port: int
    max_body: int
    rate_limit: int
    rate_window: int
    idempotency_ttl: int
    kafka_timeout: float
    check_timeout: float
    mysql_pool: int
    key_cache: float
    sse_keepalive: float
    redis_prefix: str = "omc:v1"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GatewaySettings:
        """Read and validate; raise `ConfigError` naming every bad variable."""
        env = os.environ if env is None else env
        problems: list[str] = []
        try:
            base = Settings.from_env(env)
        except ConfigError as error:
            problems += error.problems
            base = Settings.from_env({})

        def number(name: str, default: T, kind: Callable[[str], T], low: T, high: T) -> T:
            text = (env.get(name) or "").strip()
            if not text:
                return default
            try:
                value = kind(text)
            except ValueError:
                value = None
            if value is None or not low <= value <= high:
                noun = "an integer" if kind is int else "a number"
                problems.append(f"{name}={text!r} is not {noun} from {low:g} to {high:g}")
                return default
            return value

        prefix = (env.get("OMC_PROJ_REDIS_PREFIX") or "").strip() or "omc:v1"
        if prefix.endswith(":") or any(c in prefix for c in " *?[]\\"):
            problems.append(f"OMC_PROJ_REDIS_PREFIX={prefix!r} must not end with ':' nor "
                            "hold spaces or glob characters")
        settings = cls(
            base=base,
            host=(env.get("OMC_GATEWAY_HOST") or "").strip() or "127.0.0.1",
            port=base.stack.gateway_port,
            max_body=number("OMC_GATEWAY_MAX_BODY", 65536, int, 256, 64 * 2**20),
            rate_limit=number("OMC_GATEWAY_RATE_LIMIT", 600, int, 1, 10**9),
            rate_window=number("OMC_GATEWAY_RATE_WINDOW", 60, int, 1, 86400),
            idempotency_ttl=number("OMC_GATEWAY_IDEMPOTENCY_TTL", 86400, int, 60, 30 * 86400),
            kafka_timeout=number("OMC_GATEWAY_KAFKA_TIMEOUT", 10.0, float, 0.5, 300.0),
            check_timeout=number("OMC_GATEWAY_CHECK_TIMEOUT", 2.0, float, 0.1, 60.0),
            mysql_pool=number("OMC_GATEWAY_MYSQL_POOL", 8, int, 1, 256),
            key_cache=number("OMC_GATEWAY_KEY_CACHE", 30.0, float, 0.0, 3600.0),
            sse_keepalive=number("OMC_GATEWAY_SSE_KEEPALIVE", 15.0, float, 0.1, 300.0),
            redis_prefix=prefix,
        )
        if problems:
            raise ConfigError(problems)
        return settings

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"
