"""The gateway's rate limiter and Idempotency-Key store on the real Redis, held to the same
contracts as the in-memory ones (tests/unit/test_gateway_ports.py)."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio

from omc_config import Settings
from omc_gateway.errors import Unavailable
from omc_gateway.redisports import RedisIdempotency, RedisRateLimiter
from tests.unit.test_gateway_ports import IdempotencyContract, RateLimiterContract


@pytest.fixture(autouse=True)
def _stack(stack) -> None:
    """Bring up the local stack for every test here."""


def _client(settings: Settings | None = None) -> redis.asyncio.Redis:
    return redis.asyncio.Redis.from_url((settings or Settings.from_env()).redis_url)


class TestRedisRateLimiter(RateLimiterContract):
    @staticmethod
    def make(**kwargs):
        return RedisRateLimiter(_client(), **kwargs)


class TestRedisIdempotency(IdempotencyContract):
    @staticmethod
    def make():
        return RedisIdempotency(_client(), ttl=60, pending_ttl=30)


def test_a_counter_expires_with_its_window(settings: Settings) -> None:
    async def go() -> int:
        client = _client(settings)
        limiter = RedisRateLimiter(client, limit=5, window=2, clock=lambda: 1_000_000.0)
        await limiter.hit("ttlcheck0001")
        ttl = await client.pttl("omc:v1:ratelimit:ttlcheck0001:500000")
        await client.aclose()
        return ttl

    assert 0 < asyncio.run(go()) <= 3000


def test_redis_down_is_unavailable() -> None:
    async def go() -> None:
        client = redis.asyncio.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)
        with pytest.raises(Unavailable) as raised:
            await RedisRateLimiter(client, limit=1, window=1).hit("k")
        assert raised.value.dependency == "redis"
        with pytest.raises(Unavailable):
            await RedisIdempotency(client, ttl=60, pending_ttl=1).begin("k", "i", "f")

    asyncio.run(go())
