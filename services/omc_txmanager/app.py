"""The composition root: settings in, a wired `TxManager` out (Kafka, registry, RPC, keys)."""

from __future__ import annotations

import dataclasses

from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient

from omc_chain.signer import Signers
from omc_events.catalogue import Catalogue
from omc_events.codec import Codec
from omc_kafka.consumer import consumer_config
from omc_kafka.deadletter import DeadLetters
from omc_kafka.producer import EventProducer, producer_config
from omc_txmanager.manager import SOURCE, Limits, TxManager
from omc_txmanager.rpc import Rpc
from omc_txmanager.settings import TxManagerSettings

TX_TOPIC, DEADLETTER_TOPIC = "omc.tx.events.v1", "omc.deadletter.v1"


def renamed(catalogue: Catalogue, settings: TxManagerSettings) -> Catalogue:
    """The catalogue with the tx and dead-letter topics under the names the settings give
    (the same records and keys; their subjects must be registered under the new names)."""
    topics = dict(catalogue.topics)
    for name, standard in ((settings.topic, TX_TOPIC),
                           (settings.deadletter_topic, DEADLETTER_TOPIC)):
        if name not in topics:
            topics[name] = dataclasses.replace(catalogue[standard], name=name)
    return Catalogue(topics)


def build(settings: TxManagerSettings, *, signers: Signers | None = None,
          catalogue: Catalogue | None = None, chain_id: int | None = None,
          rpc: Rpc | None = None) -> TxManager:
    """A tx manager for `settings`; `signers` default to `Signers.from_env()`, the chain id
    to the first endpoint's answer, `catalogue` to schemas/topics.yaml (tests pass one that
    maps a fresh topic)."""
    base = settings.base
    registry = SchemaRegistryClient({"url": base.schema_registry_url})
    codec = Codec(registry, catalogue=catalogue or renamed(Catalogue.load(), settings))
    producer = EventProducer(Producer(producer_config(base)), codec, SOURCE)
    consumer = Consumer(consumer_config(base, settings.group, **{
        "enable.partition.eof": False, "fetch.wait.max.ms": 50,
        "session.timeout.ms": settings.session_timeout_ms,
        "heartbeat.interval.ms": max(1000, settings.session_timeout_ms // 5),
        **({"group.instance.id": settings.instance_id} if settings.instance_id else {})}))
    rpc = rpc or Rpc(list(settings.endpoints), timeout=settings.rpc_timeout,
                     retries=settings.rpc_retries)
    if signers is None:
        signers = Signers.from_env(stack_dir=base.stack.dir)
    return TxManager(
        consumer, producer, rpc, signers, topic=settings.topic,
        chain_id=chain_id if chain_id is not None else rpc.chain_id(),
        dead_letters=DeadLetters(producer, settings.group, topic=settings.deadletter_topic),
        limits=Limits(stuck_blocks=settings.stuck_blocks,
                      max_replacements=settings.max_replacements,
                      gas_margin_percent=settings.gas_margin_percent,
                      tick_seconds=settings.tick_ms / 1000, batch=settings.batch))
