"""Reading the log as stored: whole partitions from offset 0 to where they end now.

    read_partitions(bootstrap, [(topic, partition), ...]) -> [Stored]   offset order each
    partitions(bootstrap, topic) -> [int]
    partition_for(key, count) -> int       librdkafka's default partitioner (consistent_random:
                                           CRC32 of the key), which every producer here uses;
                                           a hint only: what is read is verified, not trusted

No consumer group is joined or committed. Kafka errors become `LogUnavailable`.
"""

from __future__ import annotations

import time
import uuid
import zlib
from collections.abc import Iterable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from omc_errors import OmcError
from omc_proofs.audit import Stored

READ_TIMEOUT = 120.0


class LogUnavailable(OmcError):
    """Kafka could not be read."""


def partition_for(key: str | bytes, count: int) -> int:
    data = key.encode() if isinstance(key, str) else key
    return zlib.crc32(data) % count


def _consumer(bootstrap: str) -> Consumer:
    return Consumer({"bootstrap.servers": bootstrap,
                     "group.id": f"omc.audit.read.{uuid.uuid4().hex}",
                     "enable.auto.commit": False, "enable.partition.eof": False,
                     "isolation.level": "read_uncommitted"})


def partitions(bootstrap: str, topic: str) -> list[int]:
    consumer = _consumer(bootstrap)
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        if metadata.error is not None:
            raise LogUnavailable(f"topic {topic}: {metadata.error.str()}")
        return sorted(metadata.partitions)
    except KafkaException as error:
        raise LogUnavailable(f"Kafka at {bootstrap} cannot be read: {error}") from None
    finally:
        consumer.close()


def read_partitions(bootstrap: str, wanted: Iterable[tuple[str, int]]) -> list[Stored]:
    """Every message of each (topic, partition) up to its end when called."""
    consumer = _consumer(bootstrap)
    found: list[Stored] = []
    try:
        ends = {}
        for topic, p in wanted:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                ends[(topic, p)] = high
        consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in ends])
        positions = dict.fromkeys(ends, -1)
        deadline = time.monotonic() + READ_TIMEOUT
        while any(positions[tp] + 1 < end for tp, end in ends.items()):
            if time.monotonic() > deadline:
                raise LogUnavailable("the log was not read to its end in time")
            for message in consumer.consume(1000, 0.5):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise LogUnavailable(f"reading the log: {error.str()}")
                tp = (message.topic(), message.partition())
                positions[tp] = message.offset()
                if message.offset() < ends[tp]:
                    found.append(Stored(message.topic(), message.partition(),
                                        message.offset(), message.key(), message.value() or b""))
    except KafkaException as error:
        raise LogUnavailable(f"Kafka at {bootstrap} cannot be read: {error}") from None
    finally:
        consumer.close()
    found.sort(key=lambda m: (m.topic, m.partition, m.offset))
    return found
