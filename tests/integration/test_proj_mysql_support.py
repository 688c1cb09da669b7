"""Support for the MySQL projection's tests and benchmarks (no tests here).

`History` writes a coherent log: agents registered and re-policied, tasks that complete, fail,
are cancelled, wait for approval or are refused, with budgets and transactions (replaced,
reorged, failed) and proof anchors; every event sealed in its aggregate's chain, commands
self-hashed. Records start from `tests.support.samples.sample` and get their ids and links
with `dataclasses.replace`.

`Log` is a set of fresh topics standing for the five the projector reads (plus a dead-letter
topic), their subjects registered in the schema registry, a producer, and ways to run a
projector over them into a fresh database (`fresh_database`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta

import mysql.connector
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from omc_config import Settings
from omc_events import records as r
from omc_events.avro import Schemas
from omc_events.catalogue import Catalogue, Topic
from omc_events.chain import seal, seal_command
from omc_events.codec import Codec
from omc_events.envelope import ChainHead
from omc_events.record import Record
from omc_kafka.consumer import consumer_config
from omc_kafka.deadletter import DeadLetters
from omc_kafka.producer import EventProducer, producer_config
from omc_proj_mysql import migrations
from omc_proj_mysql.projector import Projector
from omc_proj_mysql.tables import OFFSETS, ROWS
from omc_store.mysql import connect
from tests.support.samples import sample

SCHEMAS = Schemas()
CATALOGUE = Catalogue.load()
ROLES = {"commands": "omc.commands.v1", "task": "omc.task.events.v1",
         "agent": "omc.agent.events.v1", "tx": "omc.tx.events.v1",
         "proof": "omc.proof.events.v1"}
CHAIN_ID = 31337
OUTCOMES = ("completed", "failed", "cancelled", "waiting", "replaced", "reorged", "tx_failed",
            "rejected")


def _hex(*parts: object, size: int = 64) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:size]


def address(*parts: object) -> str:
    return "0x" + _hex("address", *parts, size=40)


def tx_hash(*parts: object) -> str:
    return "0x" + _hex("tx", *parts)


def new_id(*parts: object) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(map(str, parts))))


class History:
    """A log written in time order; `records` is what to produce, in that order."""

    def __init__(self, name: str = "h", *, start: datetime | None = None,
                 sink: Callable[[Record], None] | None = None) -> None:
        """`sink`: where each record goes as it is made (default: kept in `records`)."""
        self.name = name
        self.clock = start or datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
        self.heads: dict[tuple[str, str], ChainHead] = {}
        self.records: list[Record] = []
        self.sink = sink or self.records.append
        self.count = 0

    # -- building blocks ----------------------------------------------------------------------

    def make(self, kind: type[Record], aggregate_type: str, aggregate_id: str, tenant: str,
             *, chained: bool = True, actor: str = "svc:agent-runtime",
             **fields: object) -> Record:
        """A sealed record appended to the history (chained, or self-hashed like a command)."""
        self.count += 1
        self.clock += timedelta(milliseconds=1)
        record = sample(SCHEMAS.set, kind.SCHEMA, aggregate_id=aggregate_id,
                        causation=f"{self.name}/{self.count}")
        meta = dataclasses.replace(record.meta, tenant=tenant, aggregate_type=aggregate_type,
                                   occurred_at=self.clock, actor=actor,
                                   correlation_id=f"{self.name}-corr-{aggregate_id}")
        record = dataclasses.replace(record, meta=meta, **fields)
        if chained:
            key = (aggregate_type, aggregate_id)
            record, self.heads[key] = seal(SCHEMAS, record, self.heads.get(key, ChainHead()))
        else:
            record = seal_command(SCHEMAS, record)
        self.sink(record)
        return record

    def policy(self, version: int) -> r.Policy:
        base = sample(SCHEMAS.set, "omc.agent.Policy")
        return dataclasses.replace(base, version=version, allowed_chain_ids=(CHAIN_ID,),
                                   max_value_wei=str(10**18 * version))

    # -- scenarios -------------------------------------------------------------------------

    def agent(self, tenant: str, n: int, *, policies: int = 2) -> str:
        agent_id = new_id(self.name, "agent", tenant, n)
        signer = address(self.name, agent_id)
        common = {"name": f"agent {n}", "description": f"agent {n} of {tenant}",
                  "signer_address": signer, "model": "local-planner",
                  "parameters_json": '{"temperature":0}'}
        self.make(r.RegisterAgent, "agent", agent_id, tenant, chained=False, actor="key:abc",
                  agent_id=agent_id, policy=self.policy(1), **common)
        self.make(r.AgentRegistered, "agent", agent_id, tenant, agent_id=agent_id,
                  policy=self.policy(1), **common)
        for version in range(2, policies + 1):
            self.make(r.PolicySet, "agent", agent_id, tenant, agent_id=agent_id,
                      policy=self.policy(version), previous_version=version - 1)
        return agent_id

    def task(self, tenant: str, agent_id: str, n: int, outcome: str = "completed") -> str:
        task_id = new_id(self.name, "task", tenant, n)
        signer = address(self.name, agent_id)
        account = f"{CHAIN_ID}:{signer}"

        def task_event(kind: type[Record], **fields: object) -> Record:
            return self.make(kind, "task", task_id, tenant, task_id=task_id, **fields)

        self.make(r.SubmitTask, "task", task_id, tenant, chained=False, actor="key:abc",
                  task_id=task_id, agent_id=agent_id, instruction=f"task {n}: pay 1 wei",
                  chain_id=CHAIN_ID)
        if outcome == "rejected":
            self.make(r.CommandRejected, "task", task_id, tenant,
                      rejected_command_id=new_id(self.name, "cmd", task_id),
                      rejected_command_type=r.SubmitTask.SCHEMA,
                      code=r.RejectionCode.NOT_FOUND, reason="no such agent")
            return task_id
        task_event(r.TaskSubmitted, agent_id=agent_id, instruction=f"task {n}: pay 1 wei",
                   chain_id=CHAIN_ID, submitted_by="key:abc")
        inference = new_id(task_id, "inference", 1)
        action_id = new_id(task_id, "action", 1)
        task_event(r.InferenceRequested, inference_id=inference, step=1)
        task_event(r.InferenceCompleted, inference_id=inference)
        action = dataclasses.replace(sample(SCHEMAS.set, "omc.task.Action"), action_id=action_id,
                                     chain_id=CHAIN_ID, value_wei="1")
        task_event(r.ActionProposed, inference_id=inference, action=action)
        verdict = r.Verdict.DENY if outcome == "failed" else r.Verdict.ALLOW
        task_event(r.PolicyEvaluated, action_id=action_id, agent_id=agent_id, policy_version=2,
                   verdict=verdict)
        if outcome == "failed":
            task_event(r.TaskFailed, code=r.TaskFailureCode.POLICY_DENIED, reason="denied")
            return task_id
        if outcome == "cancelled":
            task_event(r.TaskCancelled, reason="changed my mind", cancelled_by="key:abc")
            return task_id
        task_event(r.ApprovalRequested, action_id=action_id, value_wei="1",
                   approval_threshold_wei="0", policy_version=2)
        if outcome == "waiting":
            return task_id
        task_event(r.ActionApproved, action_id=action_id, approver="key:abc")
        self.make(r.BudgetReserved, "agent", agent_id, tenant, agent_id=agent_id,
                  task_id=task_id, action_id=action_id, amount_wei="1", policy_version=2)
        request_id = new_id(action_id, "request")
        self.make(r.TxRequested, "account", account, tenant, chained=False,
                  actor="svc:agent-runtime", request_id=request_id, task_id=task_id,
                  action_id=action_id, purpose=r.TxPurpose.ACTION, chain_id=CHAIN_ID,
                  sender=signer, to=address("to", n), value_wei="1", data="0x")

        def tx_event(kind: type[Record], **fields: object) -> Record:
            return self.make(kind, "account", account, tenant, actor="svc:tx-manager",
                             request_id=request_id, **fields)

        def receipt_event(kind: type[Record], **fields: object) -> Record:
            """The chain watcher's chain of the same key (see docs/chain-watcher.md)."""
            return self.make(kind, "receipts", account, tenant, actor="svc:chain-watcher",
                             request_id=request_id, **fields)

        nonce = n
        first = tx_hash(request_id, 1)
        tx_event(r.TxSigned, chain_id=CHAIN_ID, sender=signer, nonce=nonce, tx_hash=first,
                 replaces_tx_hash=None)
        tx_event(r.TxBroadcast, tx_hash=first, attempt=1, already_known=False)
        final = first
        if outcome == "replaced":
            final = tx_hash(request_id, 2)
            tx_event(r.TxSigned, chain_id=CHAIN_ID, sender=signer, nonce=nonce, tx_hash=final,
                     replaces_tx_hash=first)
            tx_event(r.TxReplaced, old_tx_hash=first, new_tx_hash=final, nonce=nonce,
                     reason=r.ReplaceReason.STUCK)
            tx_event(r.TxBroadcast, tx_hash=final, attempt=1, already_known=False)
        if outcome == "tx_failed":
            tx_event(r.TxFailed, tx_hash=first, nonce=nonce,
                     code=r.TxFailureCode.INSUFFICIENT_FUNDS, detail="insufficient funds")
            self.make(r.BudgetReleased, "agent", agent_id, tenant, agent_id=agent_id,
                      task_id=task_id, action_id=action_id, amount_wei="1",
                      reason=r.BudgetReleaseReason.TX_FAILED)
            task_event(r.ToolResultRecorded, action_id=action_id, ok=False,
                       result_json='{"error":"insufficient funds"}', tx_hash=first)
            task_event(r.TaskFailed, code=r.TaskFailureCode.TX_FAILED, reason="tx failed")
            return task_id
        block = 1000 + n
        receipt_event(r.TxIncluded, tx_hash=final, block_number=block,
                 block_hash=tx_hash("block", block), transaction_index=0, gas_used=21000,
                 effective_gas_price_wei="1000000000", status_ok=True, contract_address=None)
        if outcome == "reorged":
            receipt_event(r.TxReorged, tx_hash=final, old_block_number=block,
                     old_block_hash=tx_hash("block", block))
            block += 1
            receipt_event(r.TxIncluded, tx_hash=final, block_number=block,
                     block_hash=tx_hash("block", block, "b"), transaction_index=1,
                     gas_used=21000, effective_gas_price_wei="1100000000", status_ok=True,
                     contract_address=None)
        receipt_event(r.TxConfirmed, tx_hash=final, block_number=block,
                 block_hash=tx_hash("block", block, "b") if outcome == "reorged"
                 else tx_hash("block", block), confirmations=3)
        task_event(r.ToolResultRecorded, action_id=action_id, ok=True, result_json="{}",
                   tx_hash=final)
        task_event(r.TaskCompleted, summary="paid 1 wei", tx_hashes=(final,),
                   inference_count=1, total_cost_usd="0")
        return task_id

    def anchor(self, tenant: str, stream: str, tree_size: int) -> None:
        root = tx_hash("root", stream, tree_size)
        request_id = new_id("anchor", stream, tree_size)
        common = {"stream_id": stream, "tree_size": tree_size, "root": root}
        self.make(r.CheckpointSigned, "proof_stream", stream, tenant, actor="svc:notary",
                  first_offset=0, last_offset=tree_size - 1, previous_tree_size=0,
                  previous_root=None, consistency_proof=(), **common)
        self.make(r.AnchorSubmitted, "proof_stream", stream, tenant, actor="svc:notary",
                  chain_id=CHAIN_ID, request_id=request_id, tx_hash=None, **common)
        self.make(r.AnchorConfirmed, "proof_stream", stream, tenant, actor="svc:notary",
                  chain_id=CHAIN_ID, request_id=request_id, tx_hash=tx_hash(request_id),
                  block_number=7, block_hash=tx_hash("block", 7), **common)

    def world(self, tasks: int, *, tenants: Sequence[str] = ("acme", "globex"),
              agents_per_tenant: int = 2, anchors: int = 2) -> History:
        """Agents of each tenant, `tasks` tasks spread over them and every outcome."""
        agents = [(tenant, self.agent(tenant, i)) for tenant in tenants
                  for i in range(agents_per_tenant)]
        for n in range(tasks):
            tenant, agent_id = agents[n % len(agents)]
            self.task(tenant, agent_id, n, OUTCOMES[n % len(OUTCOMES)])
        for k in range(anchors):
            self.anchor("system", f"omc.task.events.v1:{k}", 10 * (k + 1))
        return self


def role_of(record: Record) -> str:
    """Which of the five topics a record goes to."""
    meta = record.meta  # type: ignore[attr-defined]
    if meta.event_type.startswith("omc.command.") and meta.event_type != \
            r.CommandRejected.SCHEMA:
        return "commands"
    if meta.event_type == r.CommandRejected.SCHEMA:
        return "task" if meta.aggregate_type == "task" else "agent"
    return {"task": "task", "agent": "agent", "tx": "tx", "proof": "proof"}[
        meta.event_type.split(".")[1]]


# -- the log -------------------------------------------------------------------------------------


class Log:
    """Fresh topics standing for the projector's five, and a fresh dead-letter topic."""

    def __init__(self, settings: Settings, topics: dict[str, str], dead: str) -> None:
        self.settings = settings
        self.topics = topics
        self.dead = dead
        registry = SchemaRegistryClient({"url": settings.schema_registry_url})
        catalogue: dict[str, Topic] = {}
        for role, name in topics.items():
            catalogue[name] = dataclasses.replace(CATALOGUE[ROLES[role]], name=name)
        catalogue[dead] = dataclasses.replace(CATALOGUE["omc.deadletter.v1"], name=dead)
        self.catalogue = Catalogue(catalogue)
        for topic in self.catalogue:
            for record in topic.records:
                registry.register_schema(topic.subject(record),
                                         Schema(SCHEMAS.set.standalone_json(record), "AVRO"))
        self.codec = Codec(registry, schemas=SCHEMAS, catalogue=self.catalogue)
        self.producer = EventProducer(Producer(producer_config(self.settings)), self.codec,
                                      "omc/test")

    @classmethod
    def fresh(cls, settings: Settings, fresh_topic: Callable[..., str], *,
              partitions: dict[str, int] | None = None) -> Log:
        counts = {"commands": 3, "task": 3, "agent": 2, "tx": 2, "proof": 1,
                  **(partitions or {})}
        return cls(settings, {role: fresh_topic(partitions=counts[role]) for role in ROLES},
                   fresh_topic())

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.topics[role] for role in ROLES)

    def topics_for(self, record: Record) -> str:
        """The topic `record` goes to."""
        return self.topics[role_of(record)]

    def send(self, records: Sequence[Record], *, flush_every: int = 20_000) -> None:
        for i, record in enumerate(records, 1):
            self.producer.send(self.topics_for(record), record)
            if i % flush_every == 0:
                self.producer.flush(120)
        self.producer.flush(120)

    def send_raw(self, role: str, value: bytes, key: bytes = b"poison",
                 partition: int = 0) -> None:
        producer = Producer(producer_config(self.settings))
        producer.produce(self.topics[role], value=value, key=key, partition=partition,
                         headers=[("omc_tenant", b"acme")])
        assert producer.flush(30) == 0

    def watermarks(self) -> dict[tuple[str, int], int]:
        probe = Consumer({"bootstrap.servers": self.settings.kafka_bootstrap,
                          "group.id": "omc.test.watermarks"})
        try:
            metadata = probe.list_topics(timeout=10)
            return {(topic, p): probe.get_watermark_offsets(TopicPartition(topic, p),
                                                            timeout=10)[1]
                    for topic in self.names for p in metadata.topics[topic].partitions}
        finally:
            probe.close()

    def projector(self, database: str, *, group: str | None = None,
                  mysql: Settings | None = None, **options: object) -> Projector:
        """A projector of these topics into `database` (on the MySQL of `mysql`, by default
        the shared one), subscribed with a fresh group."""
        group = group or f"omc.test.proj.mysql.{uuid.uuid4().hex[:8]}"
        where = mysql or self.settings
        projector = Projector(
            lambda: connect(where, database),
            Consumer(consumer_config(self.settings, group)), self.codec,
            dead_letters=DeadLetters(self.producer, group, topic=self.dead), **options)
        projector.subscribe(self.names)
        return projector

    def project(self, projector: Projector, database: str, timeout: float = 120,
                mysql: Settings | None = None) -> None:
        """Step `projector` until the offsets stored in `database` reach every end."""
        wanted = {key: high for key, high in self.watermarks().items() if high > 0}
        deadline = time.monotonic() + timeout
        while True:
            projector.step()
            stored = offsets(mysql or self.settings, database)
            if all(stored.get(key, 0) >= high for key, high in wanted.items()):
                return
            assert time.monotonic() < deadline, f"projected {stored}, wanted {wanted}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def environment(log: Log, database: str, **extra: str) -> dict[str, str]:
    """The environment of a `python -m omc_proj_mysql` process reading `log` into
    `database`, with a group of its own and a free metrics port."""
    return {**os.environ, "OMC_MYSQL_DATABASE": database,
            "OMC_PROJ_MYSQL_TOPICS": ",".join(log.names),
            "OMC_PROJ_MYSQL_DEADLETTER_TOPIC": log.dead,
            "OMC_PROJ_MYSQL_GROUP": f"omc.test.proj.mysql.{database[-12:]}",
            "OMC_PROJ_MYSQL_METRICS_PORT": str(free_port()), **extra}


# -- the database ---------------------------------------------------------------------------------


def caught_up(log: Log, settings: Settings, database: str) -> bool:
    """Whether the offsets stored in `database` reach the end of every partition."""
    stored = offsets(settings, database)
    return all(stored.get(key, 0) >= high for key, high in log.watermarks().items() if high)


@contextlib.contextmanager
def fresh_database(settings: Settings, *, migrate: bool = True) -> Iterator[str]:
    """A database of its own (`omc_test_…`), migrated, dropped afterwards."""
    name = f"{settings.mysql.database}_test_{uuid.uuid4().hex[:12]}"
    admin = connect(settings, "")
    try:
        admin.cursor().execute(f"CREATE DATABASE `{name}`")
        if migrate:
            connection = connect(settings, name)
            migrations.apply(connection)
            connection.close()
        yield name
    finally:
        with contextlib.suppress(mysql.connector.Error):
            admin.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


def offsets(settings: Settings, database: str) -> dict[tuple[str, int], int]:
    connection = connect(settings, database)
    try:
        cursor = connection.cursor()
        cursor.execute("SELECT topic, `partition`, next_offset FROM projection_offsets")
        return {(t, p): o for t, p, o in cursor.fetchall()}
    finally:
        connection.close()


def dump(settings: Settings, database: str) -> dict[str, list[tuple]]:
    """Every row of every table, in key order (the offsets' wall-clock time left out)."""
    connection = connect(settings, database)
    try:
        cursor = connection.cursor()
        found = {}
        for table in (*ROWS, OFFSETS):
            columns = [c for c in table.columns if c != "updated_at" or table is not OFFSETS]
            cursor.execute(f"SELECT {', '.join(f'`{c}`' for c in columns)} FROM "  # noqa: S608
                           f"`{table.name}` ORDER BY {', '.join(f'`{c}`' for c in table.key)}")
            found[table.name] = cursor.fetchall()
        return found
    finally:
        connection.close()
