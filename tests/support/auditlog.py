"""A real-format log on fresh topics for the notary and the audit: a task topic, a tx topic
and a proof topic registered like the real ones, tasks written as the runtime writes them
(sealed, chained, the inference signed), and the notary run on them in-process."""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from omc_audit.verify import Topics
from omc_config import Settings
from omc_events.avro import Schemas
from omc_events.catalogue import Catalogue
from omc_events.chain import seal
from omc_events.codec import Codec
from omc_events.envelope import ChainHead, derived_id
from omc_events.record import Record
from omc_events.records import InferenceCompleted, TxConfirmed, TxRequested
from omc_kafka.producer import EventProducer, producer_config
from omc_llm.attest import Attestor, inference_digest
from omc_notary.app import NotaryProcess, build
from omc_notary.settings import NotarySettings
from omc_proofs.checkpoint import NotaryKey
from tests.support.samples import sample

SCHEMAS = Schemas()
CATALOGUE = Catalogue.load()
TASK_KINDS = ("omc.task.TaskSubmitted", "omc.task.InferenceRequested",
              "omc.task.InferenceCompleted", "omc.task.ActionProposed",
              "omc.task.PolicyEvaluated", "omc.task.TaskCompleted")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class AuditLog:
    def __init__(self, settings: Settings, fresh_topic: Callable[..., str],
                 task_partitions: int = 2) -> None:
        self.settings = settings
        self.topics = Topics(task=fresh_topic(partitions=task_partitions), events=(),
                             commands=(), proof=fresh_topic())
        self.tx_topic = fresh_topic()
        self.topics = dataclasses.replace(self.topics, tx=self.tx_topic,
                                          events=(self.topics.task, self.tx_topic))
        originals = {self.topics.task: "omc.task.events.v1", self.tx_topic: "omc.tx.events.v1",
                     self.topics.proof: "omc.proof.events.v1"}
        self.catalogue = Catalogue({new: dataclasses.replace(CATALOGUE[old], name=new)
                                    for new, old in originals.items()})
        registry = SchemaRegistryClient({"url": settings.schema_registry_url})
        for topic in self.catalogue:
            for name in topic.records:
                registry.register_schema(topic.subject(name),
                                         Schema(SCHEMAS.set.standalone_json(name), "AVRO"))
        self.codec = Codec(registry, schemas=SCHEMAS, catalogue=self.catalogue)
        self.producer = EventProducer(Producer(producer_config(settings)), self.codec,
                                      "omc/test")
        self.attestor = Attestor("0x" + "11" * 32)
        self.key = NotaryKey("0x" + "22" * 32)
        self.clock = Clock()
        self.heads: dict[str, ChainHead] = {}
        self.inferences = 0

    # -- writing ---------------------------------------------------------------------------

    def task(self, task_id: str | None = None, events: int = 6,
             flush: bool = True) -> tuple[str, list[Record]]:
        """A task's events (TaskSubmitted … TaskCompleted, the inference signed), written."""
        task_id = task_id or str(uuid.uuid4())
        written = []
        for i in range(events):
            kind = TASK_KINDS[min(i, len(TASK_KINDS) - 1)] if i < events - 1 \
                else "omc.task.TaskCompleted"
            record = sample(SCHEMAS.set, kind, aggregate_id=task_id, causation=task_id,
                            position=i)
            record = dataclasses.replace(record, task_id=task_id)  # type: ignore[call-arg]
            record = dataclasses.replace(record, meta=dataclasses.replace(
                record.meta, aggregate_type="task", tenant="acme",  # type: ignore[attr-defined]
                occurred_at=self.clock()))
            if isinstance(record, InferenceCompleted):
                digest = inference_digest(record.inference_id, record.model,
                                          record.parameters_json, record.prompt_hash,
                                          record.response, record.tool_calls)
                record = dataclasses.replace(record, digest=digest,
                                             signer=self.attestor.address,
                                             signature=self.attestor.sign(digest))
                self.inferences += 1
            sealed, self.heads[task_id] = seal(SCHEMAS, record,
                                               self.heads.get(task_id, ChainHead()))
            self.producer.send(self.topics.task, sealed, key=task_id)
            written.append(sealed)
        if flush:
            self.producer.flush()
        return task_id, written

    def tasks(self, count: int, rng: random.Random) -> list[str]:
        ids = [self.task(str(uuid.UUID(int=rng.getrandbits(128))), rng.randint(2, 7),
                         flush=False)[0] for _ in range(count)]
        self.producer.flush()
        return ids

    def request(self, task_id: str | None, sender: str, n: int) -> TxRequested:
        """A TxRequested for a task's action (self-hashed, as the runtime writes it)."""
        from omc_events.chain import seal_command

        key = f"31337:{sender}"
        record = sample(SCHEMAS.set, "omc.tx.TxRequested", aggregate_id=key,
                        causation=f"{task_id}-{n}", position=n)
        record = dataclasses.replace(
            record, request_id=derived_id(f"request-{task_id}", n), task_id=task_id,
            sender=sender, meta=dataclasses.replace(record.meta, aggregate_type="account",
                                                    tenant="acme", occurred_at=self.clock()))
        sealed = seal_command(SCHEMAS, record)
        self.producer.send(self.tx_topic, sealed, key=key)
        self.producer.flush()
        return sealed  # type: ignore[return-value]

    def confirm(self, request: TxRequested, tx_hash: str, block_number: int,
                block_hash: str, traceparent: str | None = None) -> TxConfirmed:
        """What the watcher records when the anchor's transaction is final (with the trace
        context of its TxSigned, as the watcher carries it)."""
        key = request.meta.aggregate_id
        record = sample(SCHEMAS.set, "omc.tx.TxConfirmed", aggregate_id=key,
                        causation=request.request_id, position=9)
        record = dataclasses.replace(
            record, request_id=request.request_id, tx_hash=tx_hash, block_number=block_number,
            block_hash=block_hash, confirmations=1,
            meta=dataclasses.replace(record.meta, aggregate_type="account",
                                     tenant="system", occurred_at=self.clock(),
                                     traceparent=traceparent, tracestate=None))
        sealed, self.heads[key] = seal(SCHEMAS, record, self.heads.get(key, ChainHead()))
        self.producer.send(self.tx_topic, sealed, key=key)
        self.producer.flush()
        return sealed  # type: ignore[return-value]

    # -- the notary ------------------------------------------------------------------------

    def notary(self, every_events: int = 5, every_seconds: int = 60,
               anchor_sender: str | None = None, registry: str | None = None,
               extra: dict[str, str] | None = None) -> NotaryProcess:
        env = {"OMC_NOTARY_TOPICS": ",".join(self.topics.events),
               "OMC_NOTARY_PROOF_TOPIC": self.topics.proof, "OMC_NOTARY_TX_TOPIC": self.tx_topic,
               "OMC_NOTARY_EVERY_EVENTS": str(every_events),
               "OMC_NOTARY_EVERY_SECONDS": str(every_seconds)}
        if anchor_sender:
            env.update(OMC_NOTARY_ANCHOR_SENDER=anchor_sender,
                       OMC_NOTARY_ANCHOR_REGISTRY=registry or "")
        settings = NotarySettings.from_env({**env, **(extra or {})})
        process = build(settings, key=self.key, catalogue=self.catalogue, clock=self.clock)
        process.start()
        return process

    def settle(self, process: NotaryProcess, *, tick: float = 0.0) -> None:
        """Step the notary until it has read everything and has nothing more to write."""
        ends = {}
        assert process.consumer is not None
        for topic, partition in process.positions:
            from confluent_kafka import TopicPartition
            ends[(topic, partition)] = process.consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=10, cached=False)[1]
        idle = 0
        while idle < 2:
            before = process.written
            process.step(0.3)
            behind = any(process.positions[tp] < end for tp, end in ends.items())
            if tick:
                self.clock.advance(tick)
            idle = 0 if behind or process.written != before else idle + 1

    def proof_records(self) -> list[Record]:
        from omc_audit.source import read_partitions

        return [self.codec.decode(m.value) for m in
                read_partitions(self.settings.kafka_bootstrap, [(self.topics.proof, 0)])]

    def tx_requests(self) -> list[TxRequested]:
        from omc_audit.source import read_partitions

        found = []
        for m in read_partitions(self.settings.kafka_bootstrap, [(self.tx_topic, 0)]):
            record = self.codec.decode(m.value)
            if isinstance(record, TxRequested):
                found.append(record)
        return found


__all__ = ["AuditLog", "Clock", "derived_id"]
