"""Where the registry's changes are kept: a compacted, single-partition Kafka topic.

Each change is one message whose key says what it is about (JSON with sorted keys, so the
same thing always has the same key bytes and compaction keeps its latest value):

    {"keytype":"SCHEMA","subject":S,"version":V}
        -> {"subject":S,"version":V,"id":ID,"schemaType":"AVRO","schema":TEXT}
    {"keytype":"CONFIG","subject":S}  (S null: the global level)
        -> {"compatibilityLevel":LEVEL}

`KafkaLog` writes with acks=all and idempotence and returns only once the broker has the
message; at open it waits for Kafka (bounded), creates the topic when missing (compacted,
one partition, explicit configs; the broker never auto-creates topics), and reads it to the
high watermark. `MemoryLog` keeps the same records in a list, for tests without a broker.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from omc_registry.errors import RegistryStartFailed, StoreFailed

log = logging.getLogger("omc.registry.log")

Record = tuple[dict[str, Any], dict[str, Any] | None]

_librdkafka = logging.getLogger("omc.registry.librdkafka")  # its retries are noise here
_librdkafka.addHandler(logging.NullHandler())
_librdkafka.propagate = False

CONSUMER_GROUP = "omc.registry"  # never joined: the partition is assigned, offsets not committed
WRITE_TIMEOUT = 30.0


def encode(data: dict[str, Any] | None) -> bytes | None:
    return None if data is None else json.dumps(data, sort_keys=True,
                                                 separators=(",", ":")).encode()


class SchemaLog(Protocol):
    """The persistence the store writes through."""

    async def open(self) -> list[Record]:
        """Make the log ready and return every record in it, oldest first."""

    async def append(self, key: dict[str, Any], value: dict[str, Any]) -> None:
        """Write one record durably; raise `StoreFailed` when it cannot."""

    async def close(self) -> None:
        """Release the log's resources."""


class MemoryLog:
    """A `SchemaLog` in a list: what a restart would read back is `records`."""

    def __init__(self, records: list[Record] | None = None) -> None:
        self.records: list[Record] = list(records or [])
        self.fail_writes = False
        self._open = False

    async def open(self) -> list[Record]:
        self._open = True
        return [(json.loads(encode(k)), json.loads(encode(v)) if v is not None else None)
                for k, v in self.records]

    async def append(self, key: dict[str, Any], value: dict[str, Any]) -> None:
        if not self._open:
            raise StoreFailed("the registry's log is not open")
        if self.fail_writes:
            raise StoreFailed("the in-memory log was told to fail")
        self.records.append((json.loads(encode(key)), json.loads(encode(value))))

    async def close(self) -> None:
        self._open = False


class KafkaLog:
    """A `SchemaLog` on a compacted Kafka topic with one partition."""

    def __init__(self, bootstrap: str, topic: str, *, wait_timeout: float) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.wait_timeout = wait_timeout
        self._producer: Producer | None = None

    def _config(self, **extra: Any) -> dict[str, Any]:
        return {"bootstrap.servers": self.bootstrap, "logger": _librdkafka, **extra}

    # -- open -------------------------------------------------------------------------------

    async def open(self) -> list[Record]:
        return await asyncio.to_thread(self._open)

    def _open(self) -> list[Record]:
        deadline = time.monotonic() + self.wait_timeout
        admin = AdminClient(self._config(**{"socket.timeout.ms": 2000}))
        brokers = self._wait_for_kafka(admin, deadline)
        self._ensure_topic(admin, brokers, deadline)
        records = self._read_all(deadline)
        self._producer = Producer(self._config(**{
            "acks": "all", "enable.idempotence": True, "linger.ms": 0,
            "message.timeout.ms": int(WRITE_TIMEOUT * 1000),
        }))
        log.info("read %d records from %s", len(records), self.topic)
        return records

    def _wait_for_kafka(self, admin: AdminClient, deadline: float) -> int:
        said = False
        while True:
            try:
                brokers = len(admin.list_topics(timeout=2).brokers)
                if brokers:
                    return brokers
                problem = "metadata answered without brokers"
            except KafkaException as error:
                problem = str(error)
            if time.monotonic() > deadline:
                raise RegistryStartFailed(
                    f"Kafka at {self.bootstrap} did not answer within {self.wait_timeout:g}s "
                    f"(last: {problem}). Start it (`omc stack up kafka`), or point "
                    "OMC_KAFKA_BOOTSTRAP at a running cluster; OMC_REGISTRY_KAFKA_WAIT sets "
                    "how long to wait."
                )
            if not said:
                log.info("waiting for Kafka at %s (up to %gs)", self.bootstrap, self.wait_timeout)
                said = True
            time.sleep(0.5)

    def _ensure_topic(self, admin: AdminClient, brokers: int, deadline: float) -> None:
        if self.topic not in admin.list_topics(timeout=10).topics:
            replicas = min(3, brokers)
            configs = {
                "cleanup.policy": "compact",
                "min.insync.replicas": str(max(1, replicas - 1)),
                "unclean.leader.election.enable": "false",
            }
            future = admin.create_topics([NewTopic(self.topic, num_partitions=1,
                                                   replication_factor=replicas, config=configs)])
            try:
                future[self.topic].result(timeout=30)
                log.info("created topic %s (%s, %d replicas)", self.topic, configs, replicas)
            except KafkaException as error:
                if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise RegistryStartFailed(
                        f"could not create the registry topic {self.topic}: {error}") from error
        while True:  # a new topic takes a moment to have a leader everywhere
            topic = admin.list_topics(topic=self.topic, timeout=10).topics.get(self.topic)
            if topic is not None and topic.error is None and topic.partitions:
                break
            if time.monotonic() > deadline:
                raise RegistryStartFailed(f"the registry topic {self.topic} has no leader yet")
            time.sleep(0.2)
        if len(topic.partitions) != 1:
            raise RegistryStartFailed(
                f"the registry topic {self.topic} has {len(topic.partitions)} partitions; it "
                "must have exactly one, so that changes keep their order")
        resource = ConfigResource(ResourceType.TOPIC, self.topic)
        (described,) = admin.describe_configs([resource]).values()
        policy = described.result(timeout=30)["cleanup.policy"].value
        if "compact" not in policy or "delete" in policy:
            raise RegistryStartFailed(
                f"the registry topic {self.topic} has cleanup.policy={policy}; it must be "
                "'compact' (with 'delete', old schemas would expire)")

    def _read_all(self, deadline: float) -> list[Record]:
        consumer = Consumer(self._config(**{
            "group.id": CONSUMER_GROUP, "enable.auto.commit": False,
            "enable.partition.eof": True, "auto.offset.reset": "earliest",
        }))
        try:
            while True:
                try:
                    low, high = consumer.get_watermark_offsets(
                        TopicPartition(self.topic, 0), timeout=5)
                    break
                except KafkaException as error:
                    if time.monotonic() > deadline:
                        raise RegistryStartFailed(
                            f"could not read the end offset of {self.topic}: {error}") from error
                    time.sleep(0.2)
            records: list[Record] = []
            if high <= low:
                return records
            consumer.assign([TopicPartition(self.topic, 0, low)])
            position = low
            while position < high:
                if time.monotonic() > deadline:
                    raise RegistryStartFailed(
                        f"reading {self.topic} stopped at offset {position} of {high}")
                for message in consumer.consume(500, timeout=1):
                    if message.error():
                        if message.error().code() == KafkaError._PARTITION_EOF:
                            position = max(position, message.offset() or position)
                            continue
                        raise RegistryStartFailed(f"reading {self.topic}: {message.error()}")
                    records.append(self._decode(message))
                    position = message.offset() + 1
            return records
        finally:
            consumer.close()

    def _decode(self, message: Any) -> Record:
        try:
            key = json.loads(message.key())
            value = None if message.value() is None else json.loads(message.value())
            if not isinstance(key, dict) or not isinstance(value, dict | None):
                raise ValueError("key and value must be JSON objects")
        except (TypeError, ValueError) as error:
            raise RegistryStartFailed(
                f"{self.topic} offset {message.offset()} is not a registry record ({error}); "
                "the topic holds something else, or is damaged"
            ) from error
        return key, value

    # -- write ------------------------------------------------------------------------------

    async def append(self, key: dict[str, Any], value: dict[str, Any]) -> None:
        await asyncio.to_thread(self._append, key, value)

    def _append(self, key: dict[str, Any], value: dict[str, Any]) -> None:
        if self._producer is None:
            raise StoreFailed("the registry's log is not open")
        outcome: list[KafkaError | None] = []
        try:
            self._producer.produce(self.topic, key=encode(key), value=encode(value),
                                   on_delivery=lambda error, _message: outcome.append(error))
        except (KafkaException, BufferError) as error:
            raise StoreFailed(f"could not write to {self.topic}: {error}") from error
        self._producer.flush(WRITE_TIMEOUT + 5)
        if not outcome:
            raise StoreFailed(f"{self.topic} did not acknowledge the write in time")
        if outcome[0] is not None:
            raise StoreFailed(f"could not write to {self.topic}: {outcome[0]}")

    async def close(self) -> None:
        if self._producer is not None:
            await asyncio.to_thread(self._producer.flush, 10)
            self._producer = None
