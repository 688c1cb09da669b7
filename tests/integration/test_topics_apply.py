"""`omc topics apply` on the real broker: create, align configs, report partition drift."""

from __future__ import annotations

import uuid

from confluent_kafka.admin import ConfigResource, NewTopic, ResourceType

from omc_events.catalogue import Catalogue, Topic
from omc_kafka.topics import apply


def _catalogue(*topics: Topic) -> Catalogue:
    return Catalogue({t.name: t for t in topics})


def _topic(name: str, partitions: int = 3) -> Topic:
    return Topic(name, "test", "id", partitions, 2,
                 {"cleanup.policy": "delete", "retention.ms": "-1"}, ("omc.task.TaskSubmitted",))


def _config(admin, name: str) -> dict[str, str]:
    (future,) = admin.describe_configs([ConfigResource(ResourceType.TOPIC, name)]).values()
    return {k: v.value for k, v in future.result(timeout=30).items()}


def test_apply_creates_then_is_idempotent(kafka_admin) -> None:
    name = f"omc.test.apply.{uuid.uuid4().hex[:10]}"
    catalogue = _catalogue(_topic(name))
    try:
        first = apply(kafka_admin, catalogue, replication_factor=1)
        second = apply(kafka_admin, catalogue, replication_factor=1)

        assert first.created == [f"{name} (3 partitions)"]
        assert second.unchanged == [name]
        assert second.created == second.drift == second.reconfigured == []
        config = _config(kafka_admin, name)
        assert config["retention.ms"] == "-1"
        assert config["cleanup.policy"] == "delete"
        assert config["min.insync.replicas"] == "1"  # min(2, replication factor 1)
        assert len(kafka_admin.list_topics(name, timeout=10).topics[name].partitions) == 3
    finally:
        kafka_admin.delete_topics([name])[name].result(timeout=30)


def test_config_drift_is_corrected_and_partition_drift_only_reported(kafka_admin) -> None:
    name = f"omc.test.apply.{uuid.uuid4().hex[:10]}"
    kafka_admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1,
                                        config={"retention.ms": "1000"})])[name].result(30)
    try:
        report = apply(kafka_admin, _catalogue(_topic(name, partitions=3)), 1)

        assert report.reconfigured == [f"{name}: retention.ms '1000' -> '-1'"]
        assert len(report.drift) == 1
        assert "has 1 partitions, the catalogue says 3; left as is" in report.drift[0]
        assert _config(kafka_admin, name)["retention.ms"] == "-1"
        assert len(kafka_admin.list_topics(name, timeout=10).topics[name].partitions) == 1
    finally:
        kafka_admin.delete_topics([name])[name].result(timeout=30)
