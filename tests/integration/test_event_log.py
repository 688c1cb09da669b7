"""The event contract on the real stack: Kafka, the schema registry, the codec, dead letters."""

from __future__ import annotations

import struct
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import (
    Schema,
    SchemaRegistryClient,
    topic_record_subject_name_strategy,
)
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from omc_config import Settings
from omc_events.avro import Schemas
from omc_events.catalogue import Catalogue, Topic
from omc_events.chain import seal, verify
from omc_events.codec import Codec
from omc_events.envelope import ChainHead
from omc_events.records import DeadLetter
from omc_kafka.consumer import EventConsumer, consumer_config
from omc_kafka.deadletter import DeadLetters
from omc_kafka.producer import EventProducer, producer_config
from tests.support.samples import sample

SCHEMAS = Schemas()
RECORDS = ("omc.task.TaskSubmitted", "omc.task.TaskCancelled", "omc.deadletter.DeadLetter")


@pytest.fixture(scope="module")
def registry(stack, settings: Settings) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": settings.schema_registry_url})


@pytest.fixture
def log(fresh_topic, registry):
    """A fresh events topic and dead-letter topic, their subjects registered, and a codec."""
    events, dead = fresh_topic(partitions=2), fresh_topic()
    catalogue = Catalogue({
        events: Topic(events, "test events", "task id", 2, 1, {}, RECORDS),
        dead: Topic(dead, "test dead letters", "original key", 1, 1, {},
                    ("omc.deadletter.DeadLetter",)),
    })
    for topic in catalogue:
        for record in topic.records:
            registry.register_schema(topic.subject(record),
                                     Schema(SCHEMAS.set.standalone_json(record), "AVRO"))
    return events, dead, Codec(registry, schemas=SCHEMAS, catalogue=catalogue)


def _read_all(settings: Settings, topic: str, count: int) -> list:
    consumer = Consumer(consumer_config(settings, f"omc.test.{uuid.uuid4()}"))
    consumer.subscribe([topic])
    messages = []
    try:
        for _ in range(60):
            messages += [m for m in consumer.consume(500, timeout=1) if m.error() is None]
            if len(messages) >= count:
                break
    finally:
        consumer.close()
    return messages


def _chain(aggregate: str, count: int) -> list:
    head, events = ChainHead(), []
    for i in range(count):
        event, head = seal(SCHEMAS, sample(SCHEMAS.set, RECORDS[i % 2], aggregate_id=aggregate,
                                           causation=aggregate, position=i), head)
        events.append(event)
    return events


def test_records_round_trip_through_kafka_and_the_registry(settings, log) -> None:
    events_topic, _, codec = log
    producer = EventProducer(Producer(producer_config(settings)), codec, "omc/test")
    sent = _chain("task-a", 5) + _chain("task-b", 5)
    for event in sent:
        producer.send(events_topic, event)
    producer.flush()

    messages = _read_all(settings, events_topic, len(sent))
    received = [codec.decode(m.value()) for m in messages]

    assert sorted(received, key=lambda e: e.meta.event_id) == \
        sorted(sent, key=lambda e: e.meta.event_id)
    first = next(m for m in messages if m.key() == b"task-a")
    headers = dict(first.headers())
    assert headers["ce_type"] == b"omc.task.TaskSubmitted"
    assert headers["ce_subject"] == b"task/task-a"


def test_any_confluent_client_reads_our_values(settings, log, registry) -> None:
    events_topic, _, codec = log
    event = _chain("task-c", 1)[0]
    value = codec.encode(events_topic, event)

    plain = AvroDeserializer(registry)(value, SerializationContext(events_topic,
                                                                   MessageField.VALUE))

    assert plain["meta"]["hash"] == event.meta.hash
    assert plain["instruction"] == event.instruction


def test_we_read_values_any_confluent_client_writes(log, registry) -> None:
    events_topic, _, codec = log
    event = _chain("task-f", 1)[0]
    serializer = AvroSerializer(registry, SCHEMAS.set.standalone_json(event.SCHEMA), conf={
        "auto.register.schemas": False,
        "subject.name.strategy": topic_record_subject_name_strategy,
    })

    value = serializer(event.to_avro(), SerializationContext(events_topic, MessageField.VALUE))

    assert codec.decode(value) == event


def test_the_chain_verifies_on_what_kafka_returns(settings, log) -> None:
    events_topic, _, codec = log
    producer = EventProducer(Producer(producer_config(settings)), codec, "omc/test")
    for event in _chain("task-d", 6):
        producer.send(events_topic, event)
    producer.flush()

    messages = sorted(_read_all(settings, events_topic, 6), key=lambda m: m.offset())
    checked, problems = verify(
        (f"{m.topic()}/{m.partition()}@{m.offset()}", m.value()[5:]) for m in messages)

    assert (checked, problems) == (6, [])


def test_poison_messages_go_to_the_dead_letter_topic_and_consumption_goes_on(
    settings, log
) -> None:
    events_topic, dead_topic, codec = log
    raw = Producer(producer_config(settings))
    good = _chain("task-e", 1)[0]
    raw.produce(events_topic, key=b"k1", value=b"not avro at all", partition=0,
                headers=[("omc_tenant", b"tenant-1")])
    raw.produce(events_topic, key=b"k2", value=struct.pack(">bI", 0, 987654) + b"\x00",
                partition=0)
    raw.produce(events_topic, key=b"task-e", value=codec.encode(events_topic, good),
                partition=0)
    assert raw.flush(30) == 0

    group = f"omc.test.{uuid.uuid4()}"
    producer = EventProducer(Producer(producer_config(settings)), codec, "omc/test")
    consumer = Consumer(consumer_config(settings, group))
    consumer.subscribe([events_topic])
    events = EventConsumer(consumer, codec, DeadLetters(producer, group, topic=dead_topic))
    delivered = []
    try:
        for _ in range(30):
            delivered += events.poll(timeout=1)
            if delivered:
                break
    finally:
        consumer.close()

    letters = sorted((codec.decode(m.value()) for m in _read_all(settings, dead_topic, 2)),
                     key=lambda letter: letter.origin_offset)
    assert [d.record for d in delivered] == [good]
    assert [type(letter) for letter in letters] == [DeadLetter, DeadLetter]
    origins = [(x.origin_topic, x.origin_partition, x.origin_offset) for x in letters]
    assert origins == [(events_topic, 0, 0), (events_topic, 0, 1)]
    assert [letter.error_type for letter in letters] == ["Undecodable", "UnknownSchema"]
    assert letters[0].value == b"not avro at all"
    assert letters[0].key == b"k1"
    assert letters[0].meta.tenant == "tenant-1"
    assert letters[1].error_message == "the registry has no schema with id 987654"
    assert letters[0].consumer_group == group
