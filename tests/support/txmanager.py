"""A fresh tx topic for the tx manager, requests written to it, its records read back, and
a private anvil for tests that must stop mining (the shared one mines every transaction)."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from omc_chain.signer import Signers
from omc_config import Settings
from omc_events.avro import Schemas
from omc_events.catalogue import Catalogue
from omc_events.chain import seal, seal_command
from omc_events.codec import Codec, split
from omc_events.envelope import ChainHead, derived_id
from omc_events.record import Record
from omc_events.records import EventMeta, TxPurpose, TxRequested
from omc_kafka.producer import EventProducer, producer_config
from omc_txmanager.app import build
from omc_txmanager.manager import Limits, TxManager
from omc_txmanager.settings import TxManagerSettings

SCHEMAS = Schemas()
CATALOGUE = Catalogue.load()
GWEI = 10**9


@dataclass(frozen=True)
class Read:
    record: Record
    partition: int
    offset: int
    value: bytes
    key: bytes


class TxLog:
    """A fresh tx topic (and dead-letter topic) registered like the real ones."""

    def __init__(self, settings: Settings, fresh_topic: Callable[..., str],
                 partitions: int = 2) -> None:
        self.settings = settings
        self.topic = fresh_topic(partitions=partitions)
        self.dead = fresh_topic()
        self.group = f"omc.test.txmanager.{uuid.uuid4().hex[:8]}"
        self.catalogue = Catalogue({
            self.topic: dataclasses.replace(CATALOGUE["omc.tx.events.v1"], name=self.topic),
            self.dead: dataclasses.replace(CATALOGUE["omc.deadletter.v1"], name=self.dead)})
        registry = SchemaRegistryClient({"url": settings.schema_registry_url})
        for topic in self.catalogue:
            for name in topic.records:
                registry.register_schema(topic.subject(name),
                                         Schema(SCHEMAS.set.standalone_json(name), "AVRO"))
        self.codec = Codec(registry, schemas=SCHEMAS, catalogue=self.catalogue)
        self.producer = EventProducer(Producer(producer_config(settings)), self.codec,
                                      "omc/test")
        self.managers: list[TxManager] = []

    def request(self, sender: str, to: str, value_wei: int = 1, *, n: int | None = None,
                gas_limit: int | None = None, cap: int = 500 * GWEI, data: str = "0x",
                purpose: TxPurpose = TxPurpose.ACTION, cancels: str | None = None,
                chain_id: int = 31337, flush: bool = True) -> TxRequested:
        """Write one TxRequested (self-hashed, as the runtime does); the same `n` gives the
        same request (and the same event id)."""
        n = uuid.uuid4().int if n is None else n
        request_id = derived_id(f"test-request-{self.topic}", n)
        key = f"{chain_id}:{sender}"
        event_id = derived_id(request_id, 1000)
        record = TxRequested(
            meta=EventMeta(event_id=event_id, event_type=TxRequested.SCHEMA, schema_version=1,
                           aggregate_type="account", aggregate_id=key, sequence=0,
                           occurred_at=datetime.now(UTC), tenant="acme",
                           actor="svc:agent-runtime", correlation_id=request_id,
                           causation_id=None, prev_hash="", hash=""),
            request_id=request_id, purpose=purpose, chain_id=chain_id, sender=sender, to=to,
            value_wei=str(value_wei), data=data, gas_limit=gas_limit,
            max_fee_per_gas_cap_wei=str(cap), cancels_request_id=cancels)
        sealed = seal_command(SCHEMAS, record)
        self.producer.send(self.topic, sealed, key=key)
        if flush:
            self.producer.flush()
        return sealed

    def read(self) -> list[Read]:
        """Every message of the tx topic, in offset order per partition."""
        consumer = Consumer({"bootstrap.servers": self.settings.kafka_bootstrap,
                             "group.id": f"omc.test.read.{uuid.uuid4().hex}",
                             "enable.auto.commit": False, "enable.partition.eof": False})
        try:
            partitions = sorted(consumer.list_topics(self.topic, timeout=10)
                                .topics[self.topic].partitions)
            ends = {p: consumer.get_watermark_offsets(TopicPartition(self.topic, p),
                                                      timeout=10)[1] for p in partitions}
            consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING)
                             for p in partitions])
            found: list[Read] = []
            seen = {p: 0 for p in partitions}
            deadline = time.monotonic() + 20
            while any(seen[p] < ends[p] for p in partitions) and time.monotonic() < deadline:
                for message in consumer.consume(500, 0.5):
                    if message.error():
                        continue
                    seen[message.partition()] = message.offset() + 1
                    if message.offset() < ends[message.partition()]:
                        found.append(Read(self.codec.decode(message.value()),
                                          message.partition(), message.offset(),
                                          message.value(), message.key() or b""))
            return sorted(found, key=lambda r: (r.partition, r.offset))
        finally:
            consumer.close()

    def records(self, kind: type | None = None) -> list[Record]:
        return [r.record for r in self.read() if kind is None or isinstance(r.record, kind)]

    def bodies(self) -> list[tuple[str, bytes]]:
        return [(f"{self.topic}/{r.partition}@{r.offset}", split(r.value)[1])
                for r in self.read()]

    def manager(self, signers: Signers, *, rpc_urls: str | None = None,
                limits: Limits | None = None) -> TxManager:
        env = {"OMC_TXMANAGER_TOPIC": self.topic, "OMC_TXMANAGER_DEADLETTER_TOPIC": self.dead,
               "OMC_TXMANAGER_GROUP": self.group, "OMC_TXMANAGER_RPC_RETRIES": "1",
               "OMC_TXMANAGER_RPC_TIMEOUT": "5"}
        if rpc_urls:
            env["OMC_TXMANAGER_RPC_URLS"] = rpc_urls
        settings = TxManagerSettings.from_env(env)
        manager = build(settings, signers=signers, catalogue=self.catalogue, chain_id=31337)
        if limits is not None:
            manager.limits = limits
        manager.subscribe()
        self.managers.append(manager)
        return manager

    def run_until(self, manager: TxManager, done: Callable[[list[Record]], bool],
                  timeout: float = 30.0) -> list[Record]:
        """Step `manager` until `done(records of the topic)`; the records."""
        deadline = time.monotonic() + timeout
        checked = 0.0
        while time.monotonic() < deadline:
            manager.step()
            if time.monotonic() - checked > 0.3:
                checked = time.monotonic()
                records = self.records()
                if done(records):
                    return records
        raise AssertionError(f"not done after {timeout}s: "
                             f"{[type(r).__name__ for r in self.records()]}")

    def close(self) -> None:
        for manager in self.managers:
            with contextlib.suppress(RuntimeError):  # already closed (a test crashed it)
                manager.close()


class PrivateAnvil:
    """An anvil of this test's own that mines only when told (evm_mine), or, with
    `automine`, every transaction at once."""

    def __init__(self, settings: Settings, *, automine: bool = False) -> None:
        binaries = sorted((settings.stack.dir / "anvil" / "tool").glob(
            "node_modules/@foundry-rs/anvil-*/bin/anvil"))
        assert binaries, "anvil is not installed under the stack dir (omc stack up anvil)"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [str(Path(binaries[0])), "--host", "127.0.0.1", "--port",
                        str(self.port), "--chain-id", "31337", "--accounts", "1",
                        *([] if automine else ["--no-mining"])]
        self.client = httpx.Client(timeout=10)
        self.start()

    def start(self) -> None:
        """Start anvil (a new, empty chain) and wait until it answers."""
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                self.call("eth_chainId")
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def call(self, method: str, *params: object) -> object:
        answer = self.client.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": method,
                                                  "params": list(params)}).json()
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    def kill(self) -> None:
        """The node goes away (kill -9): every call fails until `start()`."""
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        self.client.close()
        self.process.terminate()
        self.process.wait(10)


def private_anvil(settings: Settings) -> Iterator[PrivateAnvil]:
    anvil = PrivateAnvil(settings)
    try:
        yield anvil
    finally:
        anvil.stop()


class Watcher:
    """Writes the chain watcher's records (aggregate "receipts") for one account, chained."""

    def __init__(self, txlog: TxLog, key: str) -> None:
        self.txlog = txlog
        self.key = key
        self.head = ChainHead()

    def write(self, record: Record) -> Record:
        event_id = str(uuid.uuid4())
        meta = EventMeta(event_id=event_id, event_type=record.SCHEMA, schema_version=1,
                         aggregate_type="receipts", aggregate_id=self.key, sequence=0,
                         occurred_at=datetime.now(UTC), tenant="acme",
                         actor="svc:chain-watcher", correlation_id=event_id,
                         causation_id=None, prev_hash="", hash="")
        sealed, self.head = seal(SCHEMAS, dataclasses.replace(record, meta=meta), self.head)
        self.txlog.producer.send(self.txlog.topic, sealed, key=self.key)
        self.txlog.producer.flush()
        return sealed
