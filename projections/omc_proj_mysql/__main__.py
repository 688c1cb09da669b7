"""`python -m omc_proj_mysql`: the MySQL projector's composition root.

    python -m omc_proj_mysql                    project until SIGTERM/SIGINT (the batch in
                                                hand is finished, the consumer closed)
    python -m omc_proj_mysql --until-caught-up  exit 0 once every partition is applied
    python -m omc_proj_mysql --migrate          apply the read model's migrations first

Configured by the project's settings (OMC_KAFKA_BOOTSTRAP, OMC_SCHEMA_REGISTRY_URL, OMC_MYSQL_*;
OMC_MYSQL_DATABASE is the database written) and its own:

    OMC_PROJ_MYSQL_METRICS_PORT      Prometheus /metrics port (18091)
    OMC_PROJ_MYSQL_METRICS_HOST      interface of the metrics endpoint (127.0.0.1)
    OMC_PROJ_MYSQL_GROUP             consumer group, for partition assignment (omc.proj.mysql)
    OMC_PROJ_MYSQL_INSTANCE_ID       static group membership (group.instance.id), so that a
                                     restarted process takes its partitions back at once
                                     instead of after the session timeout (unset: dynamic)
    OMC_PROJ_MYSQL_BATCH             messages per batch, i.e. per MySQL transaction (2000)
    OMC_PROJ_MYSQL_RETRIES           retries of an infrastructure error before exiting (6)
    OMC_PROJ_MYSQL_TOPICS            topics read, comma-separated (the five of the catalogue)
    OMC_PROJ_MYSQL_DEADLETTER_TOPIC  (omc.deadletter.v1)

Exit codes: 0 stopped or caught up; 1 infrastructure down after every retry, or tables
missing; 2 invalid configuration.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import mysql.connector
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from prometheus_client import start_http_server

from omc_config import Settings
from omc_config.options import EnvOptions
from omc_errors import ConfigError, OmcError
from omc_events.catalogue import Catalogue
from omc_events.codec import Codec
from omc_kafka.consumer import consumer_config
from omc_kafka.deadletter import TOPIC as DEADLETTER_TOPIC
from omc_kafka.deadletter import DeadLetters
from omc_kafka.producer import EventProducer, producer_config
from omc_obs import tracing
from omc_obs.logging import configure as configure_logging
from omc_proj_mysql import migrations
from omc_proj_mysql.metrics import Metrics
from omc_proj_mysql.projector import GROUP, TOPICS, Projector
from omc_store.mysql import connect

log = logging.getLogger("omc_proj_mysql")
METRICS_PORT = 18091


@dataclass(frozen=True)
class Options:
    """The projector's own settings (the project's are in `base`)."""

    base: Settings
    metrics_host: str
    metrics_port: int
    group: str
    instance_id: str | None
    batch: int
    retries: int
    topics: tuple[str, ...]
    deadletter_topic: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Options:
        """Read and check everything; `ConfigError` lists every bad variable."""
        read = EnvOptions(env)
        options = cls(
            base=read.base,
            metrics_host=read.text("OMC_PROJ_MYSQL_METRICS_HOST", "127.0.0.1"),
            metrics_port=read.number("OMC_PROJ_MYSQL_METRICS_PORT", METRICS_PORT, 1, 65535),
            group=read.text("OMC_PROJ_MYSQL_GROUP", GROUP),
            instance_id=read.text("OMC_PROJ_MYSQL_INSTANCE_ID", "") or None,
            batch=read.number("OMC_PROJ_MYSQL_BATCH", 2000, 1, 100_000),
            retries=read.number("OMC_PROJ_MYSQL_RETRIES", 6, 0, 1000),
            topics=read.topics("OMC_PROJ_MYSQL_TOPICS", TOPICS),
            deadletter_topic=read.topic("OMC_PROJ_MYSQL_DEADLETTER_TOPIC", DEADLETTER_TOPIC),
        )
        read.check()
        return options


def catalogue_for(deadletter_topic: str) -> Catalogue:
    """The catalogue, with `deadletter_topic` standing for omc.deadletter.v1 if renamed."""
    catalogue = Catalogue.load()
    if deadletter_topic == DEADLETTER_TOPIC:
        return catalogue
    renamed = dataclasses.replace(catalogue[DEADLETTER_TOPIC], name=deadletter_topic)
    return Catalogue({**catalogue.topics, deadletter_topic: renamed})


def build(options: Options, *, metrics: Metrics | None = None) -> Projector:
    """A projector wired to Kafka, the registry and MySQL as `options` say (not subscribed)."""
    settings = options.base
    registry = SchemaRegistryClient({"url": settings.schema_registry_url})
    codec = Codec(registry, catalogue=catalogue_for(options.deadletter_topic))
    producer = EventProducer(Producer(producer_config(settings)), codec, "omc/proj-mysql")
    static = {"group.instance.id": options.instance_id} if options.instance_id else {}
    consumer = Consumer(consumer_config(settings, options.group, **static))
    return Projector(lambda: connect(settings), consumer, codec,
                     dead_letters=DeadLetters(producer, options.group,
                                              topic=options.deadletter_topic),
                     metrics=metrics, batch_size=options.batch, retries=options.retries)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m omc_proj_mysql",
                                     description="The MySQL projector (docs in the module).")
    parser.add_argument("--until-caught-up", action="store_true",
                        help="exit 0 once every partition is applied")
    parser.add_argument("--migrate", action="store_true",
                        help="apply the read model's migrations before projecting")
    args = parser.parse_args(argv)
    configure_logging("proj-mysql")
    tracing.configure("proj-mysql")  # OTEL_* variables; off without an exporter
    try:
        options = Options.from_env()
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    stopping = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.append(True))
    try:
        if args.migrate:
            connection = connect(options.base)
            try:
                migrations.apply(connection)
            finally:
                connection.close()
        metrics = Metrics()
        start_http_server(options.metrics_port, options.metrics_host, registry=metrics.registry)
        projector = build(options, metrics=metrics)
        projector.subscribe(options.topics)
        log.info("projecting %s into %s (group %s, metrics on %s:%d)",
                 ", ".join(options.topics), options.base.mysql.database, options.group,
                 options.metrics_host, options.metrics_port)
        if args.until_caught_up:
            projector.run(lambda: bool(stopping) or projector.caught_up())
        else:
            projector.run(lambda: bool(stopping))
    except OSError as error:  # the metrics port is taken
        print(f"error: metrics endpoint {options.metrics_host}:{options.metrics_port}: "
              f"{error}", file=sys.stderr)
        return 1
    except OmcError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except mysql.connector.Error as error:
        print(f"error: MySQL: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
