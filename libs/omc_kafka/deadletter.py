"""Poison messages go to `omc.deadletter.v1` with their origin and the error; the pipeline
keeps going. The original bytes are kept untouched so the message can be inspected or
replayed once the cause is fixed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from confluent_kafka import Message

from omc_events.chain import seal_command
from omc_events.envelope import derived_id
from omc_events.records import DeadLetter, EventMeta, Header
from omc_kafka.producer import EventProducer

TOPIC = "omc.deadletter.v1"


def _now() -> datetime:
    return datetime.now(UTC)


class DeadLetters:
    """Writes dead letters for one consumer group."""

    def __init__(self, producer: EventProducer, group: str, *, topic: str = TOPIC,
                 clock: Callable[[], datetime] = _now) -> None:
        self.producer = producer
        self.group = group
        self.topic = topic
        self.clock = clock

    def send(self, message: Message, error: BaseException, attempts: int = 1) -> DeadLetter:
        """Record `message` as dead with `error`, and wait until Kafka has it."""
        letter = self.letter(message, error, attempts)
        self.producer.send(self.topic, letter, key=message.key())
        self.producer.flush()
        return letter

    def letter(self, message: Message, error: BaseException, attempts: int) -> DeadLetter:
        """The dead letter for `message`; its id is derived from the message's position, so
        dead-lettering the same message twice gives the same event."""
        origin = f"{message.topic()}/{message.partition()}@{message.offset()}"
        event_id = derived_id(f"deadletter:{origin}", 0)
        now = self.clock()
        kind, timestamp = message.timestamp()
        record = DeadLetter(
            meta=EventMeta(
                event_id=event_id, event_type=DeadLetter.SCHEMA, schema_version=1,
                aggregate_type="deadletter", aggregate_id=origin, sequence=0, occurred_at=now,
                tenant=_header(message, "omc_tenant") or "unknown", actor=f"svc:{self.group}",
                correlation_id=_header(message, "ce_id") or event_id, causation_id=None,
                prev_hash="", hash="",
            ),
            origin_topic=message.topic(), origin_partition=message.partition(),
            origin_offset=message.offset(),
            origin_timestamp=(datetime.fromtimestamp(timestamp / 1000, UTC)
                              if kind and timestamp > 0 else None),
            key=message.key(), value=message.value() or b"",
            headers=tuple(Header(key=k, value=v) for k, v in (message.headers() or [])),
            consumer_group=self.group, error_type=type(error).__name__,
            error_message=str(error), failed_at=now, attempts=attempts,
        )
        return seal_command(self.producer.codec.schemas, record)


def _header(message: Message, name: str) -> str | None:
    for key, value in message.headers() or []:
        if key == name and value is not None:
            return value.decode(errors="replace")
    return None
