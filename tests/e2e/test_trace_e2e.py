"""One transfer task, one trace: gateway → runtime → tx manager → chain watcher → projector.

Every service's real code runs in this process, with an in-memory span exporter:
  gateway      the Starlette app (memory adapters) takes the caller's `traceparent` header
               and records its PRODUCER span's context in the commands it publishes
  runtime      the real Runtime (tests/support/runtime_harness: its commands delivered in
               order, its records kept in memory) plans, judges and reserves the transfer and
               writes the TxRequested
  tx manager   the real TxManager, on a fresh Kafka tx topic, signs with a random account
               funded on a private anvil and broadcasts there
  watcher      the real Watcher reads that topic and the chain, and writes TxIncluded and
               TxConfirmed (1 confirmation)
  projector    the real MySQL projector projects every record of the task into a fresh
               database, from fresh Kafka topics

The spans must form one trace whose parent chain runs from the projection of TxConfirmed up
to the gateway's span, through each service; the records carry the spans' contexts; the
runtime's step that answers the TxConfirmed links to the watcher's span.
"""

# ruff: noqa: F811 (the fixtures `stack`, `kafka_admin`, `fresh_topic` are imported)
from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from eth_account import Account
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind
from prometheus_client import REGISTRY

from omc_chain.signer import LocalKeySigner, Signers
from omc_config import Settings
from omc_events.codec import Codec
from omc_events.records import (
    ToolResultRecorded,
    TxBroadcast,
    TxConfirmed,
    TxIncluded,
    TxRequested,
    TxSigned,
)
from omc_kafka.producer import EventProducer
from omc_runtime.runtime import AGENT_EVENTS, COMMANDS, TASK_EVENTS, TX_EVENTS
from omc_txmanager.manager import TxManager
from omc_watcher.__main__ import catalogue_for
from omc_watcher.rpc import Node
from omc_watcher.settings import WatcherSettings
from omc_watcher.watcher import Counters, Watcher
from tests.e2e.test_runtime_e2e import policy
from tests.integration.conftest import fresh_topic, kafka_admin, stack  # noqa: F401
from tests.integration.test_proj_mysql_support import Log, fresh_database
from tests.support.runtime_harness import RuntimeHarness
from tests.support.txmanager import SCHEMAS, PrivateAnvil, TxLog
from tests.unit.test_gateway_app import agent_body, build, submit_body

pytestmark = pytest.mark.integration
CALLER = "00-5bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
CHAIN_ID = 31337


@pytest.fixture
def anvil(stack, settings: Settings) -> Iterator[PrivateAnvil]:
    node = PrivateAnvil(settings, automine=True)
    yield node
    node.stop()


def gateway_commands(signer: str, recipient: str) -> tuple[object, object]:
    """RegisterAgent and SubmitTask (a transfer of 4321 wei), as the gateway publishes them;
    the task's request carries the caller's trace context."""
    served = build()
    gateway = next(served)
    try:
        agent = gateway.client.post("/v1/agents", headers=gateway.auth(), json=agent_body(
            signer_address=signer, model="omc-local-planner",
            policy=policy(CHAIN_ID, recipient)))
        agent_id = agent.json()["aggregate_id"]
        task = gateway.client.post(
            "/v1/tasks", headers={**gateway.auth(), "traceparent": CALLER},
            json=submit_body(agent_id=agent_id, instruction=f"send 4321 wei to {recipient}"))
    finally:
        served.close()
    assert (agent.status_code, task.status_code) == (202, 202), (agent.text, task.text)
    register, submit = gateway.bus.published
    return register, submit


def watch(txlog: TxLog, chain_topic: str, settings: Settings, url: str) -> Counters:
    """Run the watcher over the tx topic until it recorded TxConfirmed; its counters."""
    env = {"OMC_WATCHER_TX_TOPIC": txlog.topic, "OMC_WATCHER_CHAIN_TOPIC": chain_topic,
           "OMC_WATCHER_RPC_URL": url, "OMC_WATCHER_WS_URL": "off",
           "OMC_WATCHER_CHAIN_ID": str(CHAIN_ID), "OMC_WATCHER_CONFIRMATIONS": "1",
           "OMC_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
           "OMC_SCHEMA_REGISTRY_URL": settings.schema_registry_url}
    watcher_settings = WatcherSettings.from_env(env)
    catalogue = catalogue_for(watcher_settings)
    registry = SchemaRegistryClient({"url": settings.schema_registry_url})
    topic = catalogue[chain_topic]
    for name in topic.records:
        registry.register_schema(topic.subject(name),
                                 Schema(SCHEMAS.set.standalone_json(name), "AVRO"))
    producer = EventProducer(txlog.producer.producer,
                             Codec(registry, schemas=SCHEMAS, catalogue=catalogue), "omc/test")
    watcher = Watcher(watcher_settings, Node(url), producer)

    async def go() -> None:
        await watcher.start()
        try:
            for _ in range(50):
                await watcher.tx_reader.wait_current()
                await watcher.step()
                if watcher.counters.receipts_events >= 2:
                    return
                await asyncio.sleep(0.1)
            raise AssertionError("the watcher recorded no TxConfirmed")
        finally:
            await watcher.close()

    asyncio.run(go())
    return watcher.counters


def state_count(manager: TxManager, state: str) -> float | None:
    return manager.metrics.registry.get_sample_value("omc_txmanager_requests", {"state": state})


def chain_of(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[ReadableSpan]:
    """`span` and its ancestors among the finished spans, nearest first."""
    found = [span]
    while found[-1].parent is not None and found[-1].parent.span_id in by_id:
        found.append(by_id[found[-1].parent.span_id])
    return found


def span_of(traceparent: str, by_id: dict[int, ReadableSpan]) -> ReadableSpan:
    return by_id[int(traceparent.split("-")[2], 16)]


def test_the_spans_of_one_transfer_link_every_service_in_one_trace(
        spans, stack, settings: Settings, fresh_topic, anvil: PrivateAnvil,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sender, recipient = Account.create(), Account.create().address
    anvil.call("anvil_setBalance", sender.address, hex(10**18))

    # gateway -> runtime
    register, submit = gateway_commands(sender.address, recipient)
    harness = RuntimeHarness()
    harness.send(register)
    harness.send(submit)
    asyncio.run(harness.settle())
    (request,) = harness.tx_requests()

    # runtime -> tx manager (a fresh tx topic, the private anvil)
    txlog = TxLog(settings, fresh_topic)
    try:
        key = f"{request.chain_id}:{request.sender}"
        txlog.producer.send(txlog.topic, request, key=key)
        txlog.producer.flush()
        manager = txlog.manager(Signers([LocalKeySigner(bytes(sender.key))]),
                                rpc_urls=anvil.url)
        txlog.run_until(manager, lambda records: any(isinstance(r, TxBroadcast)
                                                     for r in records))
        # tx manager -> watcher; the tx manager folds the outcome (its gauge by state)
        counters = watch(txlog, fresh_topic(), settings, anvil.url)
        txlog.run_until(manager, lambda _: state_count(manager, "confirmed") == 1)
        assert state_count(manager, "signed") == state_count(manager, "requested") == 0
    finally:
        txlog.close()
    tx_records = txlog.records()
    receipt = anvil.call("eth_getTransactionReceipt", next(
        r.tx_hash for r in tx_records if isinstance(r, TxSigned)))
    assert counters.gas_used == int(receipt["gasUsed"], 16) == 21_000  # gas spent, counted
    assert counters.fees_wei == 21_000 * int(receipt["effectiveGasPrice"], 16)
    assert REGISTRY.get_sample_value("omc_runtime_command_seconds_count",
                                     {"type": "omc.command.SubmitTask"}) >= 1

    # the outcome back to the runtime
    confirmed = next(r for r in tx_records if isinstance(r, TxConfirmed))
    harness.writer.put(TX_EVENTS, confirmed, key)
    asyncio.run(harness.settle())
    task_events = harness.writer.records(TASK_EVENTS)
    assert task_events[-1].meta.event_type == "omc.task.TaskCompleted"

    # everything -> the MySQL projector
    log = Log.fresh(settings, fresh_topic)
    caused = [*harness.writer.records(COMMANDS), *harness.writer.records(AGENT_EVENTS),
              *task_events]
    log.send([register, submit, *caused, *tx_records])
    with fresh_database(settings) as database:
        projector = log.projector(database)
        try:
            log.project(projector, database)
        finally:
            projector.close()

    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished}
    trace_id = int(CALLER.split("-")[1], 16)
    (projected,) = [s for s in finished if s.name == f"project {TxConfirmed.SCHEMA}"]
    names = [s.name for s in chain_of(projected, by_id)]
    assert names == [
        f"project {TxConfirmed.SCHEMA}",          # projector
        f"watcher {TxConfirmed.SCHEMA}",          # chain watcher
        f"txmanager {TxRequested.SCHEMA}",        # tx manager
        "runtime omc.command.ReserveBudget",      # runtime: the agent's reservation
        "runtime reserve",                        # runtime: the task's step
        "runtime omc.command.SubmitTask",         # runtime: the command
        "publish tasks command",                  # gateway
    ], names
    assert {s.context.trace_id for s in chain_of(projected, by_id)} == {trace_id}
    gateway_span = chain_of(projected, by_id)[-1]
    assert gateway_span.parent.span_id == int(CALLER.split("-")[2], 16)  # the caller's
    assert [s.kind for s in chain_of(projected, by_id)] == [
        SpanKind.CONSUMER, SpanKind.CONSUMER, SpanKind.CONSUMER, SpanKind.CONSUMER,
        SpanKind.INTERNAL, SpanKind.CONSUMER, SpanKind.PRODUCER]

    # the runtime's reaction to the confirmation (the step recording the tool result) links
    # to the watcher's span that wrote the TxConfirmed
    (result,) = [r for r in task_events if isinstance(r, ToolResultRecorded)]
    reaction = span_of(result.meta.traceparent, by_id)
    assert reaction.name == "runtime emit"
    (link,) = reaction.links
    assert by_id[link.context.span_id] is span_of(confirmed.meta.traceparent, by_id)
    assert by_id[link.context.span_id].name == f"watcher {TxConfirmed.SCHEMA}"
    assert link.attributes["omc.event_id"] == confirmed.meta.event_id

    # the tx manager's request span has its sign and broadcast children, and its records
    # carry it; the watcher's records carry their own spans
    request_span = chain_of(projected, by_id)[2]
    children = {s.name: s for s in finished if s.parent is not None
                and s.parent.span_id == request_span.context.span_id}
    assert {"sign", "broadcast"} <= set(children)
    assert children["broadcast"].kind == SpanKind.CLIENT
    for record in tx_records:
        if isinstance(record, (TxSigned, TxBroadcast)):
            assert span_of(record.meta.traceparent, by_id) is request_span
        if isinstance(record, (TxIncluded, TxConfirmed)):
            assert span_of(record.meta.traceparent, by_id).name == f"watcher {record.SCHEMA}"
    assert span_of(request.meta.traceparent, by_id).name == "runtime omc.command.ReserveBudget"

    # the model call is a CLIENT span with its model and tokens, under the runtime's step
    llm = next(s for s in finished if s.kind == SpanKind.CLIENT and s.name.startswith("llm "))
    assert llm.attributes["gen_ai.request.model"] == "omc-local-planner"
    assert llm.attributes["gen_ai.usage.input_tokens"] >= 0
    assert "gen_ai.usage.output_tokens" in llm.attributes
    assert by_id[llm.parent.span_id].name == "runtime infer"
    # every record of the task, and every span of it, is in the caller's trace
    of_task = [r for r in [submit, *caused, *tx_records]
               if r.meta.correlation_id == submit.meta.correlation_id]
    assert len(of_task) > 12
    for record in of_task:
        assert record.meta.traceparent.split("-")[1] == CALLER.split("-")[1], record
    assert all(s.context.trace_id == trace_id for s in finished
               if s.attributes.get("omc.correlation_id") == submit.meta.correlation_id)
    # the signing key is in no log line, no span and no record
    secret = bytes(sender.key).hex()
    assert any(r.name.startswith("omc_txmanager") for r in caplog.records)
    assert secret not in caplog.text.lower()
    assert secret not in " ".join(f"{s.name} {dict(s.attributes)} {s.events}" for s in finished)
    assert secret not in " ".join(repr(r) for r in [submit, *caused, *tx_records]).lower()
