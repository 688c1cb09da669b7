"""The command bus: commands to `omc.commands.v1`, answered once Kafka acknowledged them.

Nothing here blocks the event loop, and no Python thread competes with it for the GIL:
`produce()` only queues the message in librdkafka (its own C threads send it, acks=all,
idempotence on), and a timer on the loop calls `poll(0)` every millisecond while messages are
in flight, which runs each message's delivery report on the loop itself: the request's future
is resolved with the broker's acknowledgement, or fails with `Unavailable`. Many requests'
messages share librdkafka's batches, so throughput does not stop at one round trip each.

`message.timeout.ms` is the gateway's Kafka timeout, so every message gets its delivery
report (success or failure) within it: a request is never answered 503 while its command
may still be written later by librdkafka's retries.

Commands arrive sealed and encoded (`commands.SealedCommand`); the bus puts the wire-format
prefix before the body. The first command of each type looks its schema id up in the registry
(blocking HTTP, cached afterwards); that first lookup runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial
from typing import Any

import anyio
from confluent_kafka import KafkaError, KafkaException, Message

from omc_events.codec import CodecError
from omc_events.envelope import headers
from omc_events.record import Record
from omc_gateway.commands import SealedCommand
from omc_gateway.errors import Unavailable
from omc_kafka.producer import EventProducer

log = logging.getLogger("omc.gateway.publisher")

COMMANDS_TOPIC = "omc.commands.v1"
POLL_INTERVAL = 0.001


def kafka_down() -> Unavailable:
    return Unavailable("kafka", "The event log (Kafka) did not acknowledge the command, so it "
                                "was not accepted; retry later.")


class AckedProducer(EventProducer):
    """An `EventProducer` whose messages each report their own delivery (the base class
    collects failures for one `flush()` of everything, which many concurrent requests
    cannot share)."""

    def frame(self, topic: str, command: SealedCommand) -> bytes:
        """The message value: the wire-format prefix of the command's type, then its body."""
        return self.codec.prefix(topic, command.record.SCHEMA) + command.body

    def produce(self, topic: str, record: Record, value: bytes,
                on_delivery: Callable[[KafkaError | None, Message], None]) -> None:
        meta = record.meta  # type: ignore[attr-defined]
        self.producer.produce(topic, value=value, key=meta.aggregate_id,
                              headers=headers(meta, self.source), on_delivery=on_delivery)


class KafkaCommandBus:
    def __init__(self, make_producer: Callable[[], AckedProducer], *, timeout: float,
                 topic: str = COMMANDS_TOPIC, poll_interval: float = POLL_INTERVAL) -> None:
        self.make_producer = make_producer
        self.timeout = timeout
        self.topic = topic
        self.poll_interval = poll_interval
        self.producer: AckedProducer | None = None
        self._in_flight = 0
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._warm: set[str] = set()

    async def open(self) -> None:
        self.producer = self.make_producer()
        self._loop = asyncio.get_running_loop()

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.producer is not None:
            producer, self.producer = self.producer, None
            await anyio.to_thread.run_sync(producer.producer.flush, self.timeout)

    async def publish(self, command: SealedCommand) -> None:
        producer = self.producer
        if producer is None or self._loop is None:
            raise Unavailable("kafka", "The gateway is not connected to the event log yet.")
        record = command.record
        try:
            if record.SCHEMA in self._warm:
                value = producer.frame(self.topic, command)
            else:
                value = await anyio.to_thread.run_sync(producer.frame, self.topic, command)
                self._warm.add(record.SCHEMA)
        except CodecError as error:
            log.warning("a command could not be encoded: %s", error)
            raise Unavailable("schema-registry", "The schema registry did not answer, so the "
                                                 "command was not accepted; retry later.") \
                from error
        future = self._loop.create_future()
        try:
            producer.produce(self.topic, record, value, partial(self._delivered, future))
        except (BufferError, KafkaException) as error:
            log.warning("a command could not be queued: %s: %s", type(error).__name__, error)
            raise kafka_down() from error
        self._in_flight += 1
        if self._timer is None:
            self._timer = self._loop.call_later(self.poll_interval, self._poll)
        await future  # librdkafka reports every message within message.timeout.ms

    def _delivered(self, future: asyncio.Future, error: KafkaError | None,
                   message: Message) -> None:
        self._in_flight -= 1
        if future.done():  # the request is gone (client disconnected)
            return
        if error is None:
            future.set_result(None)
        else:
            log.warning("a command was not acknowledged: %s", error)
            future.set_exception(kafka_down())

    def _poll(self) -> None:
        """Serve delivery reports; again in a millisecond while messages are in flight (a
        timer callback, cheaper than a task that sleeps)."""
        self._timer = None
        producer = self.producer
        if producer is None or self._loop is None:
            return
        try:
            producer.producer.poll(0)
        except Exception:  # a callback failed: keep serving the others
            log.exception("serving Kafka delivery reports failed")
        if self._in_flight > 0:
            self._timer = self._loop.call_later(self.poll_interval, self._poll)

    async def ping(self) -> None:
        producer = self.producer
        if producer is None:
            raise Unavailable("kafka", "The gateway is not connected to the event log yet.")

        def metadata() -> Any:
            return producer.producer.list_topics(self.topic, timeout=self.timeout)

        try:
            found = await anyio.to_thread.run_sync(metadata, abandon_on_cancel=True)
        except KafkaException as error:
            raise kafka_down() from error
        topic = found.topics.get(self.topic)
        if topic is None or topic.error is not None or not found.brokers:
            raise Unavailable("kafka", f"The topic {self.topic} is not available.")
