"""`python -m omc_watcher`: watch one chain until SIGTERM / SIGINT.

Configured by environment only (`omc_watcher.settings`). A renamed topic
(OMC_WATCHER_TX_TOPIC, OMC_WATCHER_CHAIN_TOPIC) carries the records of the catalogue's topic
it stands for, under subjects registered for its name (tests use fresh topics).

Exit codes: 0 stopped, 1 the node or Kafka kept failing or the watcher cannot go on safely
(a reorg deeper than the window, the wrong chain), 2 invalid configuration.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import sys

from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient

from omc_errors import ConfigError
from omc_events.catalogue import Catalogue
from omc_events.codec import Codec
from omc_kafka.producer import EventProducer, producer_config
from omc_obs import tracing
from omc_obs.logging import configure as configure_logging
from omc_watcher.metrics import serve_metrics
from omc_watcher.rpc import Node
from omc_watcher.settings import CHAIN_TOPIC, TX_TOPIC, WatcherSettings
from omc_watcher.watcher import SOURCE, Watcher

log = logging.getLogger("omc.watcher")


def catalogue_for(settings: WatcherSettings) -> Catalogue:
    """The catalogue, with each renamed topic carrying its original's records."""
    base = Catalogue.load()
    topics = dict(base.topics)
    for original, name in ((TX_TOPIC, settings.tx_topic), (CHAIN_TOPIC, settings.chain_topic)):
        if name != original:
            topics[name] = dataclasses.replace(base[original], name=name)
    return Catalogue(topics)


def build(settings: WatcherSettings) -> Watcher:
    """The composition root: registry, codec, producer, node, watcher. No I/O yet."""
    codec = Codec(SchemaRegistryClient({"url": settings.base.schema_registry_url}),
                  catalogue=catalogue_for(settings))
    producer = EventProducer(Producer(producer_config(settings.base)), codec, SOURCE)
    node = Node(settings.rpc_url, batch=settings.rpc_batch)
    return Watcher(settings, node, producer)


async def serve(settings: WatcherSettings) -> None:
    watcher = build(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await watcher.run(stop, started=lambda: serve_metrics(
            watcher, settings.metrics_port, settings.metrics_host))
    finally:
        await watcher.close()


def main() -> int:
    try:
        settings = WatcherSettings.from_env()
    except ConfigError as error:
        print(f"omc-watcher: {error}", file=sys.stderr)
        return 2
    configure_logging("watcher")
    tracing.configure("watcher")  # OTEL_* variables; off without an exporter
    try:
        asyncio.run(serve(settings))
    except Exception as error:
        log.critical("stopping: %s: %s", type(error).__name__, error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
