"""The registry's Kafka log on the real broker: the log contract shared with `MemoryLog`, then
what only the Kafka log does (its topic, its key bytes, compaction, a damaged record).

Every test has topics of its own (created by the log, or by `fresh_topic`), deleted afterwards.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from omc_config import Settings
from omc_registry import avro
from omc_registry.errors import RegistryStartFailed
from omc_registry.log import KafkaLog, SchemaLog
from omc_registry.store import SchemaStore
from tests.support.registry_log_contract import LogContract

pytestmark = pytest.mark.anyio

WAIT = 60.0


class KafkaLogs:
    """Kafka logs over one topic; a new log is a restart. Writes break when the log closes."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.made: list[KafkaLog] = []

    def new(self) -> KafkaLog:
        self.made.append(KafkaLog(self.bootstrap, self.topic, wait_timeout=WAIT))
        return self.made[-1]

    async def break_writes(self, log: SchemaLog) -> None:
        await log.close()


@pytest.fixture
def registry_topic(stack, kafka_admin: AdminClient) -> Iterator[str]:
    """A topic name of this test's own, which the log creates; deleted afterwards."""
    name = f"omc.test.registry-log.{uuid.uuid4().hex[:12]}"
    yield name
    if name in kafka_admin.list_topics(timeout=10).topics:
        kafka_admin.delete_topics([name])[name].result(timeout=30)


@pytest.fixture
def kafka_logs(settings: Settings, registry_topic: str) -> Iterator[KafkaLogs]:
    logs = KafkaLogs(settings.kafka_bootstrap, registry_topic)
    yield logs
    for log in logs.made:
        asyncio.run(log.close())


class TestKafkaLog(LogContract):
    @pytest.fixture
    def logs(self, kafka_logs: KafkaLogs) -> KafkaLogs:
        return kafka_logs


# -- the topic -------------------------------------------------------------------------------


def topic_config(admin: AdminClient, topic: str) -> dict[str, str]:
    (future,) = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)]).values()
    return {name: entry.value for name, entry in future.result(timeout=30).items()}


async def test_a_missing_topic_is_created_compacted_with_one_partition(
    kafka_logs: KafkaLogs, kafka_admin: AdminClient,
) -> None:
    assert await kafka_logs.new().open() == []

    topic = kafka_admin.list_topics(kafka_logs.topic, timeout=10).topics[kafka_logs.topic]
    config = topic_config(kafka_admin, kafka_logs.topic)
    assert len(topic.partitions) == 1
    assert config["cleanup.policy"] == "compact"
    assert config["unclean.leader.election.enable"] == "false"
    assert config["min.insync.replicas"] == "1"  # one broker in the local stack


async def test_a_topic_with_two_partitions_is_refused(settings: Settings, fresh_topic) -> None:
    topic = fresh_topic(partitions=2, config={"cleanup.policy": "compact"})

    with pytest.raises(RegistryStartFailed, match="has 2 partitions; it must have exactly one"):
        await KafkaLog(settings.kafka_bootstrap, topic, wait_timeout=WAIT).open()


async def test_a_topic_that_deletes_old_records_is_refused(settings: Settings,
                                                           fresh_topic) -> None:
    for policy in ("delete", "compact,delete"):
        topic = fresh_topic(config={"cleanup.policy": policy})

        refusal = re.escape(f"cleanup.policy={policy}; it must be")
        with pytest.raises(RegistryStartFailed, match=refusal):
            await KafkaLog(settings.kafka_bootstrap, topic, wait_timeout=WAIT).open()


async def test_a_record_that_is_not_the_registrys_is_refused_naming_its_offset(
    settings: Settings, fresh_topic,
) -> None:
    topic = fresh_topic(config={"cleanup.policy": "compact"})
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    producer.produce(topic, key=b'{"keytype":"CONFIG","subject":null}',
                     value=b'{"compatibilityLevel":"FULL"}')
    producer.produce(topic, key=b"not json", value=b"{}")
    assert producer.flush(30) == 0

    refusal = re.escape(f"{topic} offset 1 is not a registry record")
    with pytest.raises(RegistryStartFailed, match=refusal):
        await KafkaLog(settings.kafka_bootstrap, topic, wait_timeout=WAIT).open()


async def test_without_kafka_the_log_gives_up_in_time_saying_what_to_do() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = KafkaLog(f"127.0.0.1:{port}", "omc.test.nowhere", wait_timeout=1)

    started = time.monotonic()
    with pytest.raises(RegistryStartFailed, match="did not answer within 1s") as failed:
        await log.open()

    assert time.monotonic() - started < 20
    assert "omc stack up kafka" in str(failed.value)


# -- key bytes and compaction ----------------------------------------------------------------


def raw_messages(settings: Settings, topic: str) -> list[tuple[bytes, bytes | None]]:
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": topic,
                         "enable.auto.commit": False})
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        consumer.assign([TopicPartition(topic, 0, 0)])
        read: list[tuple[bytes, bytes | None]] = []
        deadline = time.monotonic() + 30
        while len(read) < high and time.monotonic() < deadline:
            for message in consumer.consume(100, timeout=1):
                assert message.error() is None, message.error()
                read.append((message.key(), message.value()))
        return read
    finally:
        consumer.close()


async def test_keys_are_compact_sorted_json_so_one_thing_has_one_key(
    kafka_logs: KafkaLogs, settings: Settings,
) -> None:
    log = kafka_logs.new()
    await log.open()
    await log.append({"subject": "s", "keytype": "CONFIG"}, {"compatibilityLevel": "FULL"})
    await log.append({"keytype": "CONFIG", "subject": "s"}, {"compatibilityLevel": "NONE"})
    await log.append({"version": 1, "subject": "s", "keytype": "SCHEMA"},
                     {"subject": "s", "version": 1, "id": 1, "schema": '"string"'})

    messages = raw_messages(settings, kafka_logs.topic)

    assert [key for key, _ in messages] == [
        b'{"keytype":"CONFIG","subject":"s"}', b'{"keytype":"CONFIG","subject":"s"}',
        b'{"keytype":"SCHEMA","subject":"s","version":1}']
    assert messages[2][1] == b'{"id":1,"schema":"\\"string\\"","subject":"s","version":1}'


def snapshot(store: SchemaStore, subjects: list[str]) -> dict[str, Any]:
    return {
        "versions": {s: [store.version(s, v).as_dict() for v in store.versions(s)]
                     for s in store.subjects()},
        "levels": {s: store.level(s) for s in [None, *subjects]},
    }


def greeting(*names: str) -> avro.Schema:
    return avro.parse(json.dumps({
        "type": "record", "name": "Greeting", "namespace": "omc.test",
        "fields": [{"name": "who", "type": "string"},
                   *({"name": n, "type": "string", "default": ""} for n in names)]}))


async def test_a_compacted_log_rebuilds_the_same_store(
    settings: Settings, fresh_topic: Callable[..., str],
) -> None:
    # Segments roll after 100 ms and the cleaner takes any dirty ratio: compaction within seconds.
    topic = fresh_topic(config={"cleanup.policy": "compact", "segment.ms": "100",
                                "min.cleanable.dirty.ratio": "0.0001",
                                "min.compaction.lag.ms": "0", "delete.retention.ms": "100"})

    def log() -> KafkaLog:
        return KafkaLog(settings.kafka_bootstrap, topic, wait_timeout=WAIT)

    writer = SchemaStore(log())
    await writer.open()
    for version in (greeting(), greeting("a"), greeting("a", "b")):
        await writer.register("s", version)
    await writer.register("t", greeting("a"))
    for level in ("FULL", "NONE", "FORWARD"):
        await writer.set_level("s", level)
        await writer.set_level(None, level)
    written = 3 + 1 + 6

    deadline = time.monotonic() + 120
    rolls = 0
    while True:  # each write after a pause starts a segment, so the older ones can be cleaned
        await asyncio.sleep(0.3)
        rolls += 1
        await writer.set_level("roll", ("NONE", "FULL")[rolls % 2])
        records = await log().open()
        if len(records) < written + rolls:
            break
        assert time.monotonic() < deadline, "the topic was not compacted within 120 s"
    await writer.close()

    rebuilt = SchemaStore(log())
    await rebuilt.open()
    await rebuilt.close()

    assert snapshot(rebuilt, ["s", "t", "roll"]) == snapshot(writer, ["s", "t", "roll"])
    assert rebuilt.level("s") == "FORWARD"
    assert rebuilt.versions("s") == [1, 2, 3]
