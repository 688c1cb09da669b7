"""The command bus: commands to `omc.commands.v1`, answered once Kafka acknowledged them.

Commands arrive sealed and encoded (`commands.SealedCommand`); the bus puts the wire-format
prefix of their type before the body and sends them through an `omc_kafka.acked`
`AsyncProducer`: nothing blocks the event loop, no Python thread competes with it for the GIL,
each request's future is resolved by its own delivery report, and many requests' messages
share librdkafka's batches. The first command of each type looks its schema id up in the
registry (blocking HTTP, in a worker thread, cached afterwards).

`message.timeout.ms` is the gateway's Kafka timeout, so every message gets its delivery
report (success or failure) within it: a request is never answered 503 while its command
may still be written later by librdkafka's retries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anyio
from confluent_kafka import KafkaException

from omc_events.codec import CodecError
from omc_events.envelope import headers
from omc_gateway.commands import SealedCommand
from omc_gateway.errors import Unavailable
from omc_kafka.acked import AsyncProducer
from omc_kafka.producer import DeliveryFailed

log = logging.getLogger("omc.gateway.publisher")

COMMANDS_TOPIC = "omc.commands.v1"


def kafka_down() -> Unavailable:
    return Unavailable("kafka", "The event log (Kafka) did not acknowledge the command, so it "
                                "was not accepted; retry later.")


class KafkaCommandBus:
    def __init__(self, make_producer: Callable[[], AsyncProducer], *, timeout: float,
                 topic: str = COMMANDS_TOPIC) -> None:
        self.make_producer = make_producer
        self.timeout = timeout
        self.topic = topic
        self.producer: AsyncProducer | None = None

    async def open(self) -> None:
        self.producer = self.make_producer()

    async def close(self) -> None:
        if self.producer is not None:
            producer, self.producer = self.producer, None
            await producer.close(self.timeout)

    async def publish(self, command: SealedCommand) -> None:
        producer = self.producer
        if producer is None:
            raise Unavailable("kafka", "The gateway is not connected to the event log yet.")
        meta = command.record.meta  # type: ignore[attr-defined]
        try:
            prefix = await producer.prefix(self.topic, command.record.SCHEMA)
        except CodecError as error:
            log.warning("a command could not be encoded: %s", error)
            raise Unavailable("schema-registry", "The schema registry did not answer, so the "
                                                 "command was not accepted; retry later.") \
                from error
        try:
            await producer.send_encoded(self.topic, [(
                prefix + command.body, meta.aggregate_id, headers(meta, producer.source))])
        except (BufferError, KafkaException) as error:
            log.warning("a command could not be queued: %s: %s", type(error).__name__, error)
            raise kafka_down() from error
        except DeliveryFailed as error:
            log.warning("a command was not acknowledged: %s", error)
            raise kafka_down() from error

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
