"""Make the cluster's topics match the catalogue, and say where they differ.

Missing topics are created with the catalogue's partitions and configs. For existing ones,
differing configs are brought in line (and reported); a differing partition count is only
reported, never changed: adding partitions moves keys to other partitions and breaks the
one-writer-per-aggregate rule, so it is an operator's decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from omc_errors import OmcError
from omc_events.catalogue import Catalogue, Topic

TIMEOUT = 30


class TopicsError(OmcError):
    """The cluster refused to create or reconfigure a topic."""


@dataclass
class TopicsReport:
    """What `apply` did and found."""

    created: list[str] = field(default_factory=list)
    reconfigured: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return ([f"created {line}" for line in self.created]
                + [f"reconfigured {line}" for line in self.reconfigured]
                + [f"DRIFT {line}" for line in self.drift]
                + [f"ok {line}" for line in self.unchanged])


def apply(admin: AdminClient, catalogue: Catalogue, replication_factor: int) -> TopicsReport:
    """Create missing topics and align configs; report partition drift."""
    report = TopicsReport()
    existing = admin.list_topics(timeout=TIMEOUT).topics
    missing = [topic for topic in catalogue if topic.name not in existing]
    created = _create(admin, missing, replication_factor) if missing else set()
    report.created += [f"{t.name} ({t.partitions} partition{'s' * (t.partitions != 1)})"
                       for t in missing if t.name in created]
    for topic in catalogue:
        if topic.name not in created:
            partitions = len(admin.list_topics(topic.name, timeout=TIMEOUT)
                             .topics[topic.name].partitions)
            _compare(admin, topic, partitions, replication_factor, report)
    return report


def _create(admin: AdminClient, topics: list[Topic], replication_factor: int) -> set[str]:
    """Create `topics`; the names created (one made meanwhile by someone else is not)."""
    futures = admin.create_topics([
        NewTopic(t.name, num_partitions=t.partitions, replication_factor=replication_factor,
                 config=t.configs(replication_factor))
        for t in topics
    ])
    created = set()
    for name, future in futures.items():
        try:
            future.result(timeout=TIMEOUT)
            created.add(name)
        except KafkaException as error:
            if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise TopicsError(f"could not create {name}: {error.args[0].str()}") from error
    return created


def _compare(admin: AdminClient, topic: Topic, partitions: int, replication_factor: int,
             report: TopicsReport) -> None:
    if partitions != topic.partitions:
        report.drift.append(
            f"{topic.name}: has {partitions} partitions, the catalogue says {topic.partitions}; "
            "left as is (changing it moves keys between partitions)"
        )
    resource = ConfigResource(ResourceType.TOPIC, topic.name)
    (future,) = admin.describe_configs([resource]).values()
    current = {name: entry.value for name, entry in future.result(timeout=TIMEOUT).items()}
    wanted = topic.configs(replication_factor)
    changed = {k: v for k, v in wanted.items() if current.get(k) != v}
    if not changed:
        if partitions == topic.partitions:
            report.unchanged.append(topic.name)
        return
    entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
               for k, v in changed.items()]
    (future,) = admin.incremental_alter_configs(
        [ConfigResource(ResourceType.TOPIC, topic.name, incremental_configs=entries)]
    ).values()
    try:
        future.result(timeout=TIMEOUT)
    except KafkaException as error:
        raise TopicsError(f"could not reconfigure {topic.name}: {error.args[0].str()}") from error
    changes = ", ".join(f"{k} {current.get(k)!r} -> {v!r}" for k, v in changed.items())
    report.reconfigured.append(f"{topic.name}: {changes}")
