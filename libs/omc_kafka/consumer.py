"""Consuming contract records in batches; poison messages are dead-lettered, not fatal."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, Message

from omc_config import Settings
from omc_events.codec import Codec, CodecError
from omc_events.record import Record
from omc_kafka.deadletter import DeadLetters


def consumer_config(settings: Settings, group: str, **overrides: object) -> dict[str, object]:
    """At-least-once: offsets are committed by the caller after its output is acknowledged."""
    return {
        "bootstrap.servers": settings.kafka_bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        **overrides,
    }


@dataclass(frozen=True, slots=True)
class Delivery:
    """A decoded record and the Kafka message it came in."""

    message: Message
    record: Record


class EventConsumer:
    """Polls batches of records; what does not decode goes to the dead-letter topic."""

    def __init__(self, consumer: Consumer, codec: Codec, dead_letters: DeadLetters) -> None:
        self.consumer = consumer
        self.codec = codec
        self.dead_letters = dead_letters

    def poll(self, max_messages: int = 500, timeout: float = 1.0) -> list[Delivery]:
        """Up to `max_messages` decoded records. Poison messages are dead-lettered (and
        acknowledged by Kafka) before this returns, so committing past them loses nothing.
        `RegistryUnavailable` is not poison: it propagates, for the caller to retry."""
        deliveries = []
        for message in self.consumer.consume(num_messages=max_messages, timeout=timeout):
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(error)
            try:
                deliveries.append(Delivery(message, self.codec.decode(message.value())))
            except CodecError as poison:
                self.dead_letters.send(message, poison)
        return deliveries
