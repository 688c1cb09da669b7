"""The rate limiter and the Idempotency-Key store, in Redis (one round trip each, by script).

    omc:v1:ratelimit:<key_id>:<window number>         fixed-window counter, expires with it
    omc:v1:idempotency:<key_id>:<sha256 of the key>   {"state": "pending"|"done",
                                                       "fingerprint", "status", "body",
                                                       "location"}

An Idempotency-Key is held as "pending" (for the Kafka timeout and a margin) while its
command is produced; the answer replaces it only after Kafka acknowledged the command, and
a failure deletes it, so a retry after a 503 goes ahead.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
from collections.abc import Callable

import redis
import redis.asyncio

from omc_gateway.errors import IdempotencyConflict, RateLimited, Unavailable
from omc_gateway.ports import StoredAnswer

REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

_HIT = """
local count = redis.call('INCRBY', KEYS[1], ARGV[1])
if count == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return count
"""

_BEGIN = """
local found = redis.call('GET', KEYS[1])
if found then return found end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
"""

_ABANDON = """
local found = redis.call('GET', KEYS[1])
if found and cjson.decode(found)['state'] == 'pending'
   and cjson.decode(found)['fingerprint'] == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def _down(what: str) -> Unavailable:
    return Unavailable("redis", f"Redis, which holds {what}, is not answering; retry later.")


class _Window:
    """Requests of one key in one window waiting to be counted, and whether a count is on
    its way to Redis."""

    __slots__ = ("busy", "task", "waiting")

    def __init__(self) -> None:
        self.waiting: list[asyncio.Future] = []
        self.busy = False
        self.task: asyncio.Task | None = None  # held: the loop keeps only weak references


class RedisRateLimiter:
    """At most `limit` requests per key per fixed window of `window` seconds.

    Every request is counted in Redis, exactly; concurrent requests of one key are counted
    together (one INCRBY while the previous one is on its way), so under load a key costs a
    round trip per batch rather than per request, and each request still learns its own
    position in the window."""

    def __init__(self, client: redis.asyncio.Redis, *, limit: int, window: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.client, self.limit, self.window, self.clock = client, limit, window, clock
        self._hit = client.register_script(_HIT)
        self._windows: dict[str, _Window] = {}

    async def hit(self, key_id: str) -> None:
        now = self.clock()
        number = int(now // self.window)
        name = f"omc:v1:ratelimit:{key_id}:{number}"
        window = self._windows.get(name)
        if window is None:
            window = self._windows[name] = _Window()
        future = asyncio.get_running_loop().create_future()
        window.waiting.append(future)
        if not window.busy:
            window.busy = True
            window.task = asyncio.create_task(self._count(name, window))
        count = await future
        if count > self.limit:
            retry_after = max(1, math.ceil((number + 1) * self.window - now))
            raise RateLimited(self.limit, self.window, retry_after)

    async def _count(self, name: str, window: _Window) -> None:
        try:
            while window.waiting:
                batch, window.waiting = window.waiting, []
                try:
                    total = await self._hit(keys=[name],
                                            args=[len(batch), self.window * 1000 + 1000])
                except REDIS_DOWN:
                    for future in batch:
                        if not future.done():
                            future.set_exception(_down("the rate limits"))
                    continue
                first = int(total) - len(batch) + 1
                for position, future in enumerate(batch):
                    if not future.done():
                        future.set_result(first + position)
        finally:
            window.busy = False
            if self._windows.get(name) is window:
                del self._windows[name]

    async def ping(self) -> None:
        try:
            await self.client.ping()
        except REDIS_DOWN as error:
            raise _down("rate limits and idempotency keys") from error

    async def open(self) -> None:
        """Connections are made on first use."""

    async def close(self) -> None:
        await self.client.aclose()


class RedisIdempotency:
    def __init__(self, client: redis.asyncio.Redis, *, ttl: int, pending_ttl: float) -> None:
        self.client, self.ttl, self.pending_ttl = client, ttl, pending_ttl
        self._begin = client.register_script(_BEGIN)
        self._abandon = client.register_script(_ABANDON)

    @staticmethod
    def _key(key_id: str, idempotency_key: str) -> str:
        hashed = hashlib.sha256(idempotency_key.encode()).hexdigest()
        return f"omc:v1:idempotency:{key_id}:{hashed}"

    async def begin(self, key_id: str, idempotency_key: str,
                    fingerprint: str) -> StoredAnswer | None:
        pending = json.dumps({"state": "pending", "fingerprint": fingerprint})
        try:
            found = await self._begin(keys=[self._key(key_id, idempotency_key)],
                                      args=[pending, int(self.pending_ttl * 1000)])
        except REDIS_DOWN as error:
            raise _down("idempotency keys") from error
        if found is None:
            return None
        stored = json.loads(found)
        if stored["fingerprint"] != fingerprint:
            raise IdempotencyConflict(
                "This Idempotency-Key was already used with another request body; use a new "
                "key for a new request.")
        if stored["state"] == "pending":
            raise IdempotencyConflict(
                "A request with this Idempotency-Key is still in progress; retry shortly.",
                headers={"Retry-After": "1"})
        return StoredAnswer(stored["status"], stored["body"], stored.get("location"))

    async def complete(self, key_id: str, idempotency_key: str, fingerprint: str,
                       answer: StoredAnswer) -> None:
        done = json.dumps({"state": "done", "fingerprint": fingerprint,
                           "status": answer.status, "body": answer.body,
                           "location": answer.location}, separators=(",", ":"))
        try:
            await self.client.set(self._key(key_id, idempotency_key), done, ex=self.ttl)
        except REDIS_DOWN as error:
            raise _down("idempotency keys") from error

    async def abandon(self, key_id: str, idempotency_key: str, fingerprint: str) -> None:
        try:
            await self._abandon(keys=[self._key(key_id, idempotency_key)], args=[fingerprint])
        except REDIS_DOWN as error:
            raise _down("idempotency keys") from error

    async def open(self) -> None:
        """Connections are made on first use."""

    async def close(self) -> None:
        """The client is the rate limiter's, closed there."""
