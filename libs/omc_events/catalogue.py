"""The topic catalogue, `schemas/topics.yaml`: every topic, its key, configs and records.

Topic names are declared here once; code refers to them through `Catalogue`, never as
scattered strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from omc_errors import OmcError
from omc_events.schemas import SCHEMAS_DIR

TOPICS_FILE = SCHEMAS_DIR / "topics.yaml"


class CatalogueError(OmcError):
    """topics.yaml is malformed or names something that does not exist."""


@dataclass(frozen=True)
class Topic:
    """One topic of the log as the catalogue declares it."""

    name: str
    doc: str
    key: str
    partitions: int
    min_insync_replicas: int
    config: dict[str, str]
    records: tuple[str, ...]
    producers: tuple[str, ...] = ()
    consumers: tuple[str, ...] = ()

    def configs(self, replication_factor: int) -> dict[str, str]:
        """The topic configs to apply on a cluster with this replication factor."""
        isr = min(self.min_insync_replicas, replication_factor)
        return {**self.config, "min.insync.replicas": str(isr)}

    def subject(self, record: str) -> str:
        """The registry subject of `record` on this topic (TopicRecordNameStrategy)."""
        return f"{self.name}-{record}"


@dataclass(frozen=True)
class Catalogue:
    """Every topic, by name."""

    topics: dict[str, Topic] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path = TOPICS_FILE) -> Catalogue:
        try:
            document = yaml.safe_load(path.read_text())
            topics = {}
            for entry in document["topics"]:
                topic = Topic(
                    name=entry["name"], doc=entry.get("doc", ""), key=entry["key"],
                    partitions=int(entry["partitions"]),
                    min_insync_replicas=int(entry.get("min_insync_replicas", 1)),
                    config={k: str(v) for k, v in (entry.get("config") or {}).items()},
                    records=tuple(entry["records"]),
                    producers=tuple(entry.get("producers") or ()),
                    consumers=tuple(entry.get("consumers") or ()),
                )
                topics[topic.name] = topic
        except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError) as error:
            raise CatalogueError(f"{path}: {type(error).__name__}: {error}") from error
        return cls(topics)

    def __getitem__(self, name: str) -> Topic:
        try:
            return self.topics[name]
        except KeyError:
            raise CatalogueError(f"topic {name!r} is not in the catalogue") from None

    def __iter__(self):
        return iter(self.topics.values())

    def topics_for(self, record: str) -> list[Topic]:
        """The topics on which `record` may appear."""
        return [topic for topic in self.topics.values() if record in topic.records]

    def subjects(self) -> list[tuple[str, str]]:
        """(subject, record name) for every record on every topic."""
        return [(topic.subject(record), record) for topic in self for record in topic.records]
