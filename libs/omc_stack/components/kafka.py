"""Apache Kafka, single node KRaft (combined broker and controller), from Maven jars."""

from __future__ import annotations

import base64
import logging
import os
from functools import cached_property
from pathlib import Path
from string import Template
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from omc_config import StackSettings
from omc_stack.components.base import DEPLOY_DIR, Component, NotReady

KAFKA_DEPLOY = DEPLOY_DIR / "kafka"
_quiet = logging.getLogger("omc.stack.kafka.probe")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, base64url without padding (22 characters)."""
    return base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()


def render_config(stack: StackSettings, data_dir: Path) -> str:
    """deploy/kafka/server.properties with this stack's ports and data directory."""
    template = Template((KAFKA_DEPLOY / "server.properties").read_text())
    return template.substitute(
        port=stack.kafka_port, controller_port=stack.kafka_controller_port, data_dir=data_dir
    )


class Kafka(Component):
    name = "kafka"
    stop_grace = 30.0

    @property
    def libs(self) -> Path:
        return self.dir / "libs"

    @property
    def config_path(self) -> Path:
        return self.dir / "server.properties"

    def ports(self) -> dict[str, int]:
        return {
            "OMC_KAFKA_PORT": self.settings.stack.kafka_port,
            "OMC_KAFKA_CONTROLLER_PORT": self.settings.stack.kafka_controller_port,
        }

    @cached_property
    def java(self) -> str:
        return self.installer.binary("java", "default-jre-headless")

    def install(self) -> None:
        _ = self.java
        mvn = self.installer.binary("mvn", "maven")
        self.installer.fetched(
            self.libs,
            KAFKA_DEPLOY / "pom.xml",
            [mvn, "-q", "-B", "-f", str(KAFKA_DEPLOY / "pom.xml"), "dependency:copy-dependencies",
             f"-DoutputDirectory={self.libs}", "-DincludeScope=runtime"],
            what="Apache Kafka jars from Maven Central",
        )

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    def prepare(self) -> None:
        self.config_path.write_text(render_config(self.settings.stack, self.data_dir))
        if (self.data_dir / "meta.properties").is_file():
            return
        cluster_id_file = self.dir / "cluster.id"
        if not cluster_id_file.is_file():
            cluster_id_file.write_text(new_cluster_id())
        self.installer.run(
            [*self._java(), "kafka.tools.StorageTool", "format", "-t",
             cluster_id_file.read_text().strip(), "-c", str(self.config_path),
             "--ignore-formatted"],
            env=dict(os.environ), what="formatting Kafka storage",
        )

    def _java(self) -> list[str]:
        heap = self.settings.stack.kafka_heap
        return [
            self.java, f"-Xmx{heap}", "-Xms256m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={KAFKA_DEPLOY / 'log4j2.properties'}",
            "-cp", f"{self.libs}/*",
        ]

    def command(self) -> list[str]:
        return [*self._java(), "kafka.Kafka", str(self.config_path)]

    def probe(self) -> None:
        admin = AdminClient({
            "bootstrap.servers": self.address()["bootstrap"],
            "socket.timeout.ms": 2000,
            "logger": _quiet,
        })
        try:
            metadata = admin.list_topics(timeout=2)
        except KafkaException as error:
            raise NotReady(str(error)) from error
        if not metadata.brokers:
            raise NotReady("metadata answered without brokers")

    def address(self) -> dict[str, Any]:
        port = self.settings.stack.kafka_port
        return {"bootstrap": f"127.0.0.1:{port}", "host": "127.0.0.1", "port": port}
