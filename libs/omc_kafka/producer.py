"""Producing contract records: acks=all, idempotence on, envelope headers, confirmed delivery."""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from omc_config import Settings
from omc_errors import OmcError
from omc_events.codec import Codec
from omc_events.envelope import headers
from omc_events.record import Record


class DeliveryFailed(OmcError):
    """Kafka did not acknowledge one or more messages."""


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """The settings every producer of the project uses: nothing is acknowledged until all
    in-sync replicas have it, and retries never duplicate or reorder a partition's messages."""
    return {
        "bootstrap.servers": settings.kafka_bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "compression.type": "lz4",
        **overrides,
    }


class EventProducer:
    """Sends records to their topics; `flush()` returns only when every one is acknowledged."""

    def __init__(self, producer: Producer, codec: Codec, source: str) -> None:
        self.producer = producer
        self.codec = codec
        self.source = source
        self._failures: list[str] = []

    def send(self, topic: str, record: Record, *, key: str | bytes | None = None) -> None:
        """Queue `record` (encoded and checked against the contract now) for `topic`.

        The key defaults to the record's aggregate id (the catalogue's convention).
        """
        meta = record.meta  # type: ignore[attr-defined]
        value = self.codec.encode(topic, record)
        self.producer.produce(
            topic, value=value, key=meta.aggregate_id if key is None else key,
            headers=headers(meta, self.source), on_delivery=self._delivered,
        )
        self.producer.poll(0)

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._failures.append(f"{message.topic()}: {error.str()}")

    def flush(self, timeout: float = 30) -> None:
        """Wait for every queued message; raise `DeliveryFailed` if any was not acknowledged."""
        remaining = self.producer.flush(timeout)
        failures, self._failures = self._failures, []
        if remaining:
            failures.append(f"{remaining} message(s) still unacknowledged after {timeout:g}s")
        if failures:
            raise DeliveryFailed("Kafka did not acknowledge: " + "; ".join(failures))
