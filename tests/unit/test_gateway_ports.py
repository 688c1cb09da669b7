"""Contracts of the gateway's ports, run here on the in-memory adapters and in
tests/integration/test_gateway_redis.py on the Redis ones; and the Kafka command bus's
group commit over a stand-in producer."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import KafkaError

from omc_events.codec import CodecError
from omc_gateway.commands import CommandFactory, Origin, Principal, SealedCommand
from omc_gateway.errors import IdempotencyConflict, RateLimited, Unavailable
from omc_gateway.memory import MemoryIdempotency, MemoryRateLimiter
from omc_gateway.ports import StoredAnswer
from omc_gateway.publisher import KafkaCommandBus
from omc_kafka.acked import AsyncProducer

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

    def test_concurrent_hits_are_each_counted_once(self) -> None:
        limiter = self.make(limit=5, window=60, clock=lambda: 1_000_020.0)
        key = uuid.uuid4().hex[:12]

        async def go() -> list[object]:
            return await asyncio.gather(*(limiter.hit(key) for _ in range(12)),
                                        return_exceptions=True)

        results = run(go())
        assert results.count(None) == 5
        assert sum(isinstance(r, RateLimited) for r in results) == 7

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


@dataclasses.dataclass
class StandInMessage:
    """The part of confluent_kafka.Message a delivery report reads."""

    name: str

    def topic(self) -> str:
        return self.name


class StandInClient:
    """confluent_kafka.Producer's interface: produce() queues, poll() serves delivery reports
    of the messages the broker answered (`answer` decides: None acknowledges)."""

    def __init__(self) -> None:
        self.queued: list[tuple[str, bytes, object]] = []
        self.answer: Callable[[bytes], object] = lambda value: None
        self.polls = 0

    def produce(self, topic, value, key, headers, on_delivery) -> None:
        if value[5:] == b"full":
            raise BufferError("Local: Queue full")
        self.queued.append((topic, value, on_delivery))

    def poll(self, timeout: float) -> int:
        self.polls += 1
        served, self.queued = self.queued, []
        for topic, value, on_delivery in served:
            on_delivery(self.answer(value), StandInMessage(topic))
        return len(served)

    def flush(self, timeout: float) -> int:
        return self.poll(0)


class StandInCodec:
    """`Codec.prefix`'s interface: every command type is registered but CancelTask."""

    def prefix(self, topic: str, schema: str) -> bytes:
        if schema == "omc.command.CancelTask":
            raise CodecError("the registry does not hold this build's omc.command.CancelTask")
        return b"\x00\x00\x00\x00\x07"


def stand_in_producer() -> AsyncProducer:
    return AsyncProducer(StandInClient(), StandInCodec(), "omc/test")  # type: ignore[arg-type]


ORIGIN = Origin(Principal("k1", "acme", frozenset({"commands:write"})), str(uuid.uuid4()))
SUBMIT = {"agent_id": str(uuid.uuid4()), "instruction": "hello", "chain_id": 31337,
          "max_value_wei": "1", "deadline": None, "metadata": None}


def sealed(name: str) -> SealedCommand:
    """A real command whose body is `name` (what the stand-in client answers by)."""
    return dataclasses.replace(CommandFactory().submit_task(ORIGIN, SUBMIT), body=name.encode())


def test_the_bus_answers_each_command_with_its_own_delivery_report() -> None:
    producer = stand_in_producer()
    producer.producer.answer = lambda value: (KafkaError(KafkaError._MSG_TIMED_OUT)
                                              if value[5:] == b"b" else None)
    bus = KafkaCommandBus(lambda: producer, timeout=1)

    async def go() -> list[object]:
        await bus.open()
        results = await asyncio.gather(*(bus.publish(sealed(n)) for n in ("a", "b", "c")),
                                       return_exceptions=True)
        await bus.close()
        return results

    results = run(go())
    assert results[0] is None
    assert results[2] is None
    assert isinstance(results[1], Unavailable)
    assert results[1].dependency == "kafka"


def test_an_unregistered_type_and_a_full_queue_fail_only_themselves() -> None:
    producer = stand_in_producer()
    bus = KafkaCommandBus(lambda: producer, timeout=1)
    unregistered = CommandFactory().cancel_task(ORIGIN, str(uuid.uuid4()), {"reason": "stop"})

    async def go() -> list[object]:
        await bus.open()
        results = await asyncio.gather(bus.publish(unregistered),
                                       bus.publish(sealed("full")), bus.publish(sealed("ok")),
                                       return_exceptions=True)
        await bus.close()
        return results

    unregistered, full, ok = run(go())
    assert isinstance(unregistered, Unavailable)
    assert unregistered.dependency == "schema-registry"
    assert isinstance(full, Unavailable)
    assert full.dependency == "kafka"
    assert ok is None


def test_the_poller_sleeps_while_nothing_is_in_flight() -> None:
    producer = stand_in_producer()
    bus = KafkaCommandBus(lambda: producer, timeout=1)

    async def go() -> int:
        await bus.open()
        await bus.publish(sealed("a"))
        await asyncio.sleep(0.05)
        before = producer.producer.polls
        await asyncio.sleep(0.1)
        idle = producer.producer.polls - before
        await bus.close()
        return idle

    assert run(go()) <= 1


def test_the_bus_refuses_before_it_is_open() -> None:
    with pytest.raises(Unavailable):
        run(KafkaCommandBus(stand_in_producer, timeout=1).publish(sealed("a")))
