"""`python -m omc_proj_redis`: the Redis projector's composition root.

    python -m omc_proj_redis                      project until SIGTERM/SIGINT
    python -m omc_proj_redis --rebuild            delete this projection's keys and offsets,
                                                  then replay from offset 0 (stop the live
                                                  projector first)
    python -m omc_proj_redis --until-caught-up    exit 0 once every partition is applied

Configured by the project's settings (OMC_REDIS_URL, OMC_KAFKA_BOOTSTRAP,
OMC_SCHEMA_REGISTRY_URL) and its own:

    OMC_PROJ_REDIS_PREFIX            key prefix (omc:v1)
    OMC_PROJ_REDIS_MAXLEN            events kept per task (1000)
    OMC_PROJ_REDIS_METRICS_PORT      Prometheus /metrics port (18092; the stack's setting)
    OMC_PROJ_REDIS_METRICS_HOST      interface of the metrics endpoint (127.0.0.1)
    OMC_PROJ_REDIS_GROUP             consumer group (omc.proj.redis)
    OMC_PROJ_REDIS_BATCH             messages per batch (500)
    OMC_PROJ_REDIS_RETRIES           infrastructure failures in a row before exiting (8)
    OMC_PROJ_REDIS_COMMANDS_TOPIC    (omc.commands.v1)
    OMC_PROJ_REDIS_EVENTS_TOPIC      (omc.task.events.v1)
    OMC_PROJ_REDIS_DEADLETTER_TOPIC  (omc.deadletter.v1)

A renamed topic carries the records of the catalogue's topic it stands for (tests use fresh
topics). Exit codes: 0 stopped or caught up, 1 infrastructure down after every retry (or a
projection error), 2 invalid configuration.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import redis
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
from omc_proj_redis import projector
from omc_proj_redis.keys import DEFAULT_PREFIX, Keys
from omc_proj_redis.projector import Metrics, Projector, rebuild

log = logging.getLogger("omc.proj.redis")


@dataclass(frozen=True)
class ProjectorSettings:
    base: Settings
    prefix: str
    maxlen: int
    metrics_host: str
    metrics_port: int
    group: str
    batch: int
    retries: int
    commands_topic: str
    events_topic: str
    deadletter_topic: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ProjectorSettings:
        """Read and check everything; `ConfigError` lists every bad variable."""
        read = EnvOptions(env)
        prefix = read.text("OMC_PROJ_REDIS_PREFIX", DEFAULT_PREFIX)
        if prefix.endswith(":") or any(c in prefix for c in " *?[]\\"):
            read.problem(f"OMC_PROJ_REDIS_PREFIX={prefix!r} must not end with ':' nor "
                         "hold spaces or glob characters")
        settings = cls(
            base=read.base, prefix=prefix,
            maxlen=read.number("OMC_PROJ_REDIS_MAXLEN", projector.DEFAULT_MAXLEN, 1),
            metrics_host=read.text("OMC_PROJ_REDIS_METRICS_HOST", "127.0.0.1"),
            metrics_port=read.base.stack.proj_redis_metrics_port,
            group=read.text("OMC_PROJ_REDIS_GROUP", projector.GROUP),
            batch=read.number("OMC_PROJ_REDIS_BATCH", 500, 1, 100_000),
            retries=read.number("OMC_PROJ_REDIS_RETRIES", 8, 1, 1000),
            commands_topic=read.topic("OMC_PROJ_REDIS_COMMANDS_TOPIC",
                                      projector.COMMANDS_TOPIC),
            events_topic=read.topic("OMC_PROJ_REDIS_EVENTS_TOPIC", projector.EVENTS_TOPIC),
            deadletter_topic=read.topic("OMC_PROJ_REDIS_DEADLETTER_TOPIC", DEADLETTER_TOPIC),
        )
        read.check()
        return settings


def catalogue_for(settings: ProjectorSettings) -> Catalogue:
    """The catalogue, with each renamed topic carrying its original's records."""
    base = Catalogue.load()
    topics = dict(base.topics)
    for original, name in ((projector.COMMANDS_TOPIC, settings.commands_topic),
                           (projector.EVENTS_TOPIC, settings.events_topic),
                           (DEADLETTER_TOPIC, settings.deadletter_topic)):
        if name != original:
            topics[name] = dataclasses.replace(base[original], name=name)
    return Catalogue(topics)


def build(settings: ProjectorSettings, metrics: Metrics) -> Projector:
    """Wire the projector: Redis, the registry and codec, the dead-letter producer."""
    codec = Codec(SchemaRegistryClient({"url": settings.base.schema_registry_url}),
                  catalogue=catalogue_for(settings))
    producer = EventProducer(Producer(producer_config(settings.base)), codec,
                             "omc/proj-redis")
    dead_letters = DeadLetters(producer, settings.group, topic=settings.deadletter_topic)
    client = redis.Redis.from_url(settings.base.redis_url, socket_timeout=10,
                                  socket_connect_timeout=5)
    return Projector(
        client, lambda: Consumer(consumer_config(settings.base, settings.group)), codec,
        dead_letters, keys=Keys(settings.prefix), commands_topic=settings.commands_topic,
        events_topic=settings.events_topic, maxlen=settings.maxlen, batch_size=settings.batch,
        metrics=metrics,
    )


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m omc_proj_redis", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rebuild", action="store_true",
                        help="delete this projection's keys and offsets, replay from offset 0")
    parser.add_argument("--until-caught-up", action="store_true",
                        help="exit 0 once every partition of both topics is applied")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _arguments(argv)
    configure_logging("proj-redis")
    tracing.configure("proj-redis")  # OTEL_* variables; off without an exporter
    try:
        settings = ProjectorSettings.from_env()
    except ConfigError as error:
        log.error("%s", error)
        return 2

    stopping: list[int] = []

    def stop(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping after the current batch", signum)
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    metrics = Metrics()
    try:
        start_http_server(settings.metrics_port, settings.metrics_host,
                          registry=metrics.registry)
        projection = build(settings, metrics)
        if arguments.rebuild:
            deleted = rebuild(projection.client, projection.keys)
            log.info("rebuild: deleted %d keys under %s; replaying from offset 0", deleted,
                     settings.prefix)
        log.info("projecting %s and %s into Redis under %s", settings.commands_topic,
                 settings.events_topic, settings.prefix)
        projection.run(lambda: bool(stopping), until_caught_up=arguments.until_caught_up,
                       attempts=settings.retries)
    except (OmcError, OSError, redis.RedisError) as error:
        log.error("%s: %s", type(error).__name__, error)
        return 1
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
