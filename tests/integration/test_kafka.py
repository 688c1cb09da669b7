"""The local Kafka broker is real: admin API, idempotent acks=all produce, consume."""

from __future__ import annotations

import uuid
from collections import defaultdict

from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from omc_config import Settings


def _described(admin: AdminClient, resource: ConfigResource) -> dict[str, str]:
    (future,) = admin.describe_configs([resource]).values()
    return {name: entry.value for name, entry in future.result(timeout=30).items()}


def test_broker_refuses_to_auto_create_topics(kafka_admin: AdminClient) -> None:
    (broker,) = kafka_admin.list_topics(timeout=10).brokers

    config = _described(kafka_admin, ConfigResource(ResourceType.BROKER, str(broker)))

    assert config["auto.create.topics.enable"] == "false"
    assert config["process.roles"] == "broker,controller"


def test_topic_is_created_with_explicit_configs_read_back(kafka_admin, fresh_topic) -> None:
    topic = fresh_topic(partitions=3, config={
        "cleanup.policy": "compact", "min.insync.replicas": "1", "retention.ms": "604800000",
    })

    config = _described(kafka_admin, ConfigResource(ResourceType.TOPIC, topic))
    partitions = kafka_admin.list_topics(topic, timeout=10).topics[topic].partitions

    assert config["cleanup.policy"] == "compact"
    assert config["retention.ms"] == "604800000"
    assert config["min.insync.replicas"] == "1"
    assert len(partitions) == 3


def test_idempotent_acks_all_produce_is_consumed_back_in_order_per_key(
    settings: Settings, fresh_topic
) -> None:
    topic = fresh_topic(partitions=3)
    producer = Producer({
        "bootstrap.servers": settings.kafka_bootstrap, "acks": "all", "enable.idempotence": True,
    })
    sent: dict[bytes, list[bytes]] = defaultdict(list)
    failures: list[KafkaError] = []

    def delivered(error, message) -> None:
        if error is not None:
            failures.append(error)

    for i in range(300):
        key, value = f"task-{i % 7}".encode(), f"event-{i}".encode()
        sent[key].append(value)
        producer.produce(topic, key=key, value=value, on_delivery=delivered)
    assert producer.flush(30) == 0
    assert failures == []

    consumer = Consumer({
        "bootstrap.servers": settings.kafka_bootstrap, "group.id": f"omc.test.{uuid.uuid4()}",
        "auto.offset.reset": "earliest", "enable.auto.commit": False,
    })
    consumer.subscribe([topic])
    received: dict[bytes, list[bytes]] = defaultdict(list)
    try:
        for _ in range(60):
            for message in consumer.consume(num_messages=500, timeout=1):
                assert message.error() is None, message.error()
                received[message.key()].append(message.value())
            if sum(map(len, received.values())) >= 300:
                break
    finally:
        consumer.close()

    assert received == sent


def test_producing_to_an_undeclared_topic_fails_and_creates_nothing(
    settings: Settings, kafka_admin: AdminClient
) -> None:
    topic = f"omc.test.undeclared.{uuid.uuid4().hex[:12]}"
    producer = Producer({
        "bootstrap.servers": settings.kafka_bootstrap, "acks": "all",
        "topic.metadata.propagation.max.ms": 1000, "message.timeout.ms": 5000,
    })
    errors: list[KafkaError] = []
    producer.produce(topic, value=b"x", on_delivery=lambda error, _: errors.append(error))
    producer.flush(15)

    assert len(errors) == 1
    assert errors[0] is not None
    assert errors[0].code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC,
                                KafkaError._MSG_TIMED_OUT)
    assert topic not in kafka_admin.list_topics(timeout=10).topics
