"""Contracts of the gateway's ports, run here on the in-memory adapters and in
tests/integration/test_gateway_redis.py on the Redis ones; and the Kafka command bus's
group commit over a stand-in producer."""

from __future__ import annotations

import asyncio
import threading
import types
import uuid
from collections.abc import Callable

import pytest

from omc_events.avro import RecordInvalid
from omc_gateway.errors import IdempotencyConflict, InvalidBody, RateLimited, Unavailable
from omc_gateway.memory import MemoryIdempotency, MemoryRateLimiter
from omc_gateway.ports import StoredAnswer
from omc_gateway.publisher import KafkaCommandBus
from omc_kafka.producer import DeliveryFailed

ANSWER = StoredAnswer(202, {"command_id": "c", "status": "accepted"}, "/v1/tasks/t")


def run(coroutine):
    return asyncio.run(coroutine)


class RateLimiterContract:
    """`make(limit, window, clock)` builds the limiter under test."""

    make: Callable

    def test_counts_per_key_per_window(self) -> None:
        now = [1_000_020.0]
        limiter = self.make(limit=2, window=60, clock=lambda: now[0])
        key, other = uuid.uuid4().hex[:12], uuid.uuid4().hex[:12]

        async def go() -> None:
            await limiter.hit(key)
            await limiter.hit(key)
            with pytest.raises(RateLimited) as raised:
                await limiter.hit(key)
            assert raised.value.headers["Retry-After"] == "60"  # window 1_000_020 + 60
            await limiter.hit(other)
            now[0] += 60
            await limiter.hit(key)

        run(go())

    def test_ping(self) -> None:
        run(self.make(limit=1, window=1, clock=lambda: 0.0).ping())


class IdempotencyContract:
    make: Callable

    def test_a_key_is_held_then_answers_the_same(self) -> None:
        store = self.make()
        key = uuid.uuid4().hex[:12]

        async def go() -> None:
            assert await store.begin(key, "k1", "f1") is None
            with pytest.raises(IdempotencyConflict, match="in progress"):
                await store.begin(key, "k1", "f1")
            await store.complete(key, "k1", "f1", ANSWER)
            assert await store.begin(key, "k1", "f1") == ANSWER
            with pytest.raises(IdempotencyConflict, match="another request body"):
                await store.begin(key, "k1", "f2")
            assert await store.begin(uuid.uuid4().hex[:12], "k1", "f2") is None

        run(go())

    def test_abandon_frees_only_a_pending_key_of_the_same_body(self) -> None:
        store = self.make()
        key = uuid.uuid4().hex[:12]

        async def go() -> None:
            await store.begin(key, "k2", "f1")
            await store.abandon(key, "k2", "other")
            with pytest.raises(IdempotencyConflict):
                await store.begin(key, "k2", "f1")
            await store.abandon(key, "k2", "f1")
            assert await store.begin(key, "k2", "f1") is None
            await store.complete(key, "k2", "f1", ANSWER)
            await store.abandon(key, "k2", "f1")
            assert await store.begin(key, "k2", "f1") == ANSWER

        run(go())


class TestMemoryRateLimiter(RateLimiterContract):
    make = staticmethod(MemoryRateLimiter)


class TestMemoryIdempotency(IdempotencyContract):
    make = staticmethod(MemoryIdempotency)


def test_a_down_memory_adapter_is_unavailable() -> None:
    limiter = MemoryRateLimiter(limit=1, window=1)
    limiter.down = True
    with pytest.raises(Unavailable):
        run(limiter.hit("k"))


# -- the Kafka command bus --------------------------------------------------------------------


class StandInProducer:
    """EventProducer's interface: send() queues, flush() acknowledges all or raises."""

    def __init__(self) -> None:
        self.sent: list[object] = []
        self.flushes: list[int] = []
        self.fail = False
        self.gate = threading.Event()
        self.gate.set()
        self.producer = types.SimpleNamespace(flush=lambda timeout: 0)

    def send(self, topic: str, record: object) -> None:
        if record == "invalid":
            raise RecordInvalid("omc.command.SubmitTask", "SubmitTask.chain_id", "is bad")
        self.sent.append(record)

    def flush(self, timeout: float = 30) -> None:
        self.gate.wait()
        self.flushes.append(len(self.sent))
        if self.fail:
            raise DeliveryFailed("Kafka did not acknowledge: timed out")


def test_the_bus_commits_waiting_commands_in_one_flush() -> None:
    producer = StandInProducer()
    bus = KafkaCommandBus(lambda: producer, timeout=1)

    async def go() -> None:
        await bus.open()
        producer.gate.clear()
        first = asyncio.ensure_future(bus.publish("a"))
        await asyncio.sleep(0.05)  # "a" is being flushed; the next ones wait for it
        rest = [asyncio.ensure_future(bus.publish(name)) for name in "bcd"]
        await asyncio.sleep(0.05)
        producer.gate.set()
        await asyncio.gather(first, *rest)
        await bus.close()

    run(go())
    assert producer.sent == ["a", "b", "c", "d"]
    assert producer.flushes[:2] == [1, 4]


def test_a_failed_flush_fails_its_group_and_a_bad_record_only_itself() -> None:
    producer = StandInProducer()
    bus = KafkaCommandBus(lambda: producer, timeout=1)

    async def go() -> list[object]:
        await bus.open()
        producer.fail = True
        results = await asyncio.gather(bus.publish("a"), bus.publish("invalid"),
                                       return_exceptions=True)
        await bus.close()
        return results

    results = run(go())
    assert {type(r) for r in results} <= {Unavailable, InvalidBody}
    assert any(isinstance(r, InvalidBody) and r.errors[0].field == "SubmitTask.chain_id"
               for r in results)


def test_the_bus_refuses_before_it_is_open() -> None:
    with pytest.raises(Unavailable):
        run(KafkaCommandBus(StandInProducer, timeout=1).publish("a"))
