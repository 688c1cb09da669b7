"""One trace follows a command from the HTTP request to the projection writes.

The gateway (in-process, memory adapters) opens a producer span per command and records its
W3C trace context in the envelope; the agent runtime (the real Runtime, in-process through
tests/support/runtime_harness) opens a span per command it handles (a child of that context)
and per step it takes, and the events it writes carry them; the MySQL projector, reading
those records from real Kafka topics into a real database, opens a span per event whose
parent is the span the event names, and so does the Redis projector. Spans go to an
in-memory exporter. The OTLP exporter, configured by the OTEL_* variables, is checked against
a receiver of this test (OTLP/HTTP protobuf). The whole pipeline's trace (tx manager, watcher
too): tests/e2e/test_trace_e2e.py.
"""

# ruff: noqa: F811 (the fixtures `log` and `registry` are imported from test_proj_redis)
from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import ClassVar

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.trace import SpanKind

from omc_obs import tracing
from omc_runtime.runtime import AGENT_EVENTS, COMMANDS, TASK_EVENTS, TX_EVENTS
from tests.integration.test_proj_mysql_support import Log, fresh_database
from tests.integration.test_proj_redis import log, registry  # noqa: F401
from tests.support.runtime_harness import RuntimeHarness
from tests.unit.test_gateway_app import agent_body, build, submit_body

pytestmark = pytest.mark.integration
CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def run_runtime() -> tuple[list, list, object, object]:
    """Register and submit through the gateway, run the runtime: the runtime's commands and
    events, and the gateway's two commands."""
    served = build()
    gateway = next(served)
    try:
        agent = gateway.client.post("/v1/agents", json=agent_body(), headers=gateway.auth())
        agent_id = agent.json()["aggregate_id"]
        task = gateway.client.post("/v1/tasks", json=submit_body(agent_id=agent_id),
                                   headers={**gateway.auth(), "traceparent": CALLER})
    finally:
        served.close()
    assert (agent.status_code, task.status_code) == (202, 202)
    register, submit = gateway.bus.published

    harness = RuntimeHarness(strict=False)
    harness.send(register)
    harness.send(submit)
    asyncio.run(harness.settle())
    caused = [r for topic in (AGENT_EVENTS, TASK_EVENTS, TX_EVENTS)
              for r in harness.writer.records(topic)]
    assert len(caused) >= 3
    return harness.writer.records(COMMANDS), caused, register, submit


def run_one_task(settings, fresh_topic) -> tuple[list, object, object]:
    """`run_runtime`, then project everything into MySQL; the runtime's events and the two
    commands."""
    commands, caused, register, submit = run_runtime()
    log = Log.fresh(settings, fresh_topic)
    log.send([*commands, *caused])
    with fresh_database(settings) as database:
        projector = log.projector(database)
        try:
            log.project(projector, database)
        finally:
            projector.close()
    return caused, register, submit


def test_a_commands_trace_runs_from_the_gateway_through_the_runtime_to_the_projection(
        spans, stack, settings, fresh_topic) -> None:
    caused, register, submit = run_one_task(settings, fresh_topic)

    finished = spans.get_finished_spans()
    published = {s.attributes["omc.command_id"]: s for s in finished
                 if s.kind == SpanKind.PRODUCER}
    by_event = {s.attributes["omc.event_id"]: s for s in finished
                if s.name.startswith("project ")}
    agent_span = published[register.meta.correlation_id]
    task_span = published[submit.meta.correlation_id]
    by_id = {s.context.span_id: s for s in finished}
    trace_of = {submit.meta.correlation_id: task_span.context.trace_id,
                register.meta.correlation_id: agent_span.context.trace_id}

    # the caller's trace goes on; without one the gateway starts a trace
    assert f"{task_span.context.trace_id:032x}" == CALLER.split("-")[1]
    assert task_span.parent.span_id == int(CALLER.split("-")[2], 16)
    assert agent_span.parent is None
    # each command carries its span's context; the projector's span of every record that
    # carries one is that span's child, in its trace
    assert submit.meta.traceparent.split("-")[2] == f"{task_span.context.span_id:016x}"
    assert set(by_event) >= {r.meta.event_id for r in [register, submit, *caused]}
    traced = [r for r in [register, submit, *caused] if r.meta.traceparent]
    assert {r.meta.event_type for r in traced} >= {
        "omc.command.SubmitTask", "omc.task.TaskSubmitted", "omc.agent.AgentRegistered"}
    for record in traced:  # the span it names is a span of its command's trace
        span = by_event[record.meta.event_id]
        named = by_id[int(record.meta.traceparent.split("-")[2], 16)]
        assert span.parent.span_id == named.context.span_id
        assert span.context.trace_id == named.context.trace_id
        assert span.context.trace_id == trace_of[record.meta.correlation_id]
        assert span.kind == SpanKind.CONSUMER
    # the runtime's span for the command is the child of the gateway's
    (handled,) = [s for s in finished if s.name == "runtime omc.command.SubmitTask"]
    assert handled.parent.span_id == task_span.context.span_id
    # a record without a trace context is projected in a trace of its own
    for record in [r for r in caused if not r.meta.traceparent]:
        assert by_event[record.meta.event_id].parent is None


def test_every_event_a_command_causes_carries_its_trace_context(
        spans, stack, settings, fresh_topic) -> None:
    caused, _, submit = run_one_task(settings, fresh_topic)

    task_events = [r for r in caused if r.meta.aggregate_type == "task"]
    assert [r.meta.event_type for r in task_events if r.meta.traceparent is None] == []
    trace_id = submit.meta.traceparent.split("-")[1]
    assert {r.meta.traceparent.split("-")[1] for r in task_events} == {trace_id}
    # each names a span of the runtime's (the command's handling or a step), not the gateway's
    names = {s.context.span_id: s.name for s in spans.get_finished_spans()}
    assert {names[int(r.meta.traceparent.split("-")[2], 16)].split(" ")[0]
            for r in task_events} == {"runtime"}


def test_without_tracing_the_events_carry_the_commands_context_unchanged() -> None:
    _, caused, _, submit = run_runtime()

    task_events = [r for r in caused if r.meta.aggregate_type == "task"]
    assert task_events
    assert all(r.meta.traceparent == submit.meta.traceparent for r in task_events)


def test_the_redis_projectors_spans_are_children_of_the_commands_span(spans, log) -> None:
    _, caused, _, submit = run_runtime()
    task_events = [r for r in caused if r.meta.aggregate_type == "task"]
    log.send(submit, *task_events)
    projector = log.projector()
    try:
        log.project(projector)
    finally:
        projector.close()

    finished = spans.get_finished_spans()
    (task_span,) = [s for s in finished if s.kind == SpanKind.PRODUCER
                    and s.attributes["omc.command_id"] == submit.meta.correlation_id]
    projected = {s.attributes["omc.event_id"]: s for s in finished
                 if s.attributes.get("omc.projection") == "redis"}
    assert set(projected) == {r.meta.event_id for r in (submit, *task_events)}
    assert sum(bool(r.meta.traceparent) for r in (submit, *task_events)) >= 2
    for record in (submit, *task_events):
        span = projected[record.meta.event_id]
        if record.meta.traceparent:
            assert f"{span.parent.span_id:016x}" == record.meta.traceparent.split("-")[2]
            assert span.context.trace_id == task_span.context.trace_id
        else:
            assert span.parent is None
    assert projected[submit.meta.event_id].parent.span_id == task_span.context.span_id


class Receiver(BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver: keeps (path, headers, decoded request) of every POST."""

    received: ClassVar[list[tuple[str, dict[str, str], ExportTraceServiceRequest]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.received.append((self.path, {k.lower(): v for k, v in self.headers.items()},
                              request))
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list]]:
    Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", Receiver.received
    server.shutdown()
    server.server_close()


def test_the_otlp_exporter_the_otel_variables_describe_delivers_the_spans(receiver) -> None:
    url, received = receiver
    provider = tracing.configure("proj-mysql", {
        "OTEL_EXPORTER_OTLP_ENDPOINT": url, "OTEL_EXPORTER_OTLP_HEADERS": "x-omc-tenant=acme",
        "OTEL_SERVICE_NAME": "omc-proj-mysql-eu", "OTEL_RESOURCE_ATTRIBUTES":
            "deployment.environment=ci"})
    try:
        meta = SimpleNamespace(event_id="e-1", event_type="omc.task.TaskSubmitted",
                               aggregate_type="task", aggregate_id="t-1", correlation_id="c-1",
                               tenant="acme", traceparent=CALLER, tracestate=None)
        with tracing.span_for(meta, "project omc.task.TaskSubmitted"):
            pass
        assert provider.force_flush(10_000)
    finally:
        provider.shutdown()
        tracing.use(None)

    (path, headers, request), = received
    assert path == "/v1/traces"
    assert headers["x-omc-tenant"] == "acme"
    assert headers["content-type"] == "application/x-protobuf"
    (resource_spans,) = request.resource_spans
    resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert resource["service.name"] == "omc-proj-mysql-eu"
    assert resource["deployment.environment"] == "ci"
    (span,) = [s for scope in resource_spans.scope_spans for s in scope.spans]
    assert span.name == "project omc.task.TaskSubmitted"
    assert span.trace_id.hex() == CALLER.split("-")[1]
    assert span.parent_span_id.hex() == CALLER.split("-")[2]
    assert {a.key: a.value.string_value for a in span.attributes}["omc.event_id"] == "e-1"


def test_the_notary_opens_a_span_per_checkpoint_it_writes(spans, stack, settings,
                                                         fresh_topic) -> None:
    from tests.support.auditlog import AuditLog

    log = AuditLog(settings, fresh_topic)
    log.tasks(2, random.Random(5))
    notary = log.notary(every_events=1000)
    try:
        written = notary.checkpoint_now()
    finally:
        notary.close()

    checkpoints = [s for s in spans.get_finished_spans()
                   if s.name == "notary omc.proof.CheckpointSigned"]
    assert len(checkpoints) == written >= 1
    for span in checkpoints:
        assert span.kind == SpanKind.PRODUCER
        assert span.attributes["omc.stream_id"].startswith(f"{log.topics.task}:")
        assert span.attributes["omc.tree_size"] > 0
        assert len(span.attributes["omc.root"]) == 66  # 0x and 32 bytes


def test_a_service_process_exports_its_spans_to_the_collector_otel_variables_name(
        receiver, stack, settings, fresh_topic, tmp_path) -> None:
    """`python -m omc_notary --checkpoint-now` as the image runs it, with only the standard
    variables: its checkpoint spans arrive at the receiver under the service's name."""
    from tests.support.auditlog import AuditLog

    url, received = receiver
    log = AuditLog(settings, fresh_topic)
    log.tasks(2, random.Random(7))
    key_file = tmp_path / "notary.key"
    key_file.write_text("22" * 32 + "\n")
    env = {**os.environ, "OMC_NOTARY_TOPICS": ",".join(log.topics.events),
           "OMC_NOTARY_PROOF_TOPIC": log.topics.proof, "OMC_NOTARY_TX_TOPIC": log.tx_topic,
           "OMC_NOTARY_KEY_FILE": str(key_file), "OTEL_EXPORTER_OTLP_ENDPOINT": url}
    done = subprocess.run([sys.executable, "-m", "omc_notary", "--checkpoint-now"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]

    spans = [(resource_spans.resource, span) for _, _, request in received
             for resource_spans in request.resource_spans
             for scope in resource_spans.scope_spans for span in scope.spans]
    names = {span.name for _, span in spans}
    assert "notary omc.proof.CheckpointSigned" in names
    services = {a.value.string_value for resource, _ in spans
                for a in resource.attributes if a.key == "service.name"}
    assert services == {"notary"}


def test_the_proof_index_opens_a_span_per_record_it_indexes(
        spans, stack, settings, fresh_topic, mysql_connect) -> None:
    """A CONSUMER span `index <type>` per event and per proof record, child of the context
    its envelope carries (a trace of its own without one); a line written while a record is
    handled carries its ids."""
    import dataclasses
    import io
    import json
    import logging

    from omc_events.chain import seal, seal_command
    from omc_events.envelope import ChainHead
    from omc_obs.logging import JsonFormatter
    from omc_proj_proofs import migrations
    from omc_proj_proofs.projector import ProofProjector
    from tests.support.auditlog import SCHEMAS, TASK_KINDS, AuditLog
    from tests.support.samples import sample

    log = AuditLog(settings, fresh_topic, task_partitions=1)
    traced = [f"00-{random.getrandbits(128):032x}-{random.getrandbits(64):016x}-01"
              for _ in range(2)]
    events, head = [], ChainHead()
    for position, kind in enumerate(TASK_KINDS[:4]):  # the first two carry a trace context
        record = sample(SCHEMAS.set, kind, aggregate_id="t-1", causation="t-1",
                        position=position)
        record = dataclasses.replace(record, meta=dataclasses.replace(
            record.meta, aggregate_type="task", tenant="acme",
            traceparent=traced[position] if position < 2 else None))
        sealed, head = seal(SCHEMAS, record, head)
        log.producer.send(log.topics.task, sealed, key="t-1")
        events.append(sealed)
    log.producer.flush()
    notary = log.notary(every_events=1000)
    try:
        assert notary.checkpoint_now() == 1
    finally:
        notary.close()
    orphan = sample(SCHEMAS.set, "omc.proof.AnchorConfirmed", aggregate_id="anchors",
                    causation="nowhere", position=0)
    orphan = seal_command(SCHEMAS, dataclasses.replace(orphan, meta=dataclasses.replace(
        orphan.meta, traceparent=traced[0])))
    log.producer.send(log.topics.proof, orphan, key="anchors")
    log.producer.flush()

    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter("proj-proofs"))
    logging.getLogger("omc_proj_proofs").addHandler(handler)
    migrations.apply(mysql_connect())
    projector = ProofProjector(mysql_connect, settings.kafka_bootstrap, log.codec.decode,
                               log.topics.events, log.topics.proof)
    try:
        projector.run_until_caught_up()
    finally:
        projector.close()
        logging.getLogger("omc_proj_proofs").removeHandler(handler)

    finished = spans.get_finished_spans()
    indexed = {s.attributes["omc.event_id"]: s for s in finished if s.name.startswith("index ")}
    for leaf_index, event in enumerate(events):
        span = indexed[event.meta.event_id]
        assert span.name == f"index {event.meta.event_type}"
        assert span.kind == SpanKind.CONSUMER
        assert span.attributes["omc.projection"] == "proofs"
        assert span.attributes["omc.stream_id"] == f"{log.topics.task}:0"
        assert span.attributes["omc.leaf_index"] == leaf_index
        if event.meta.traceparent:
            assert f"{span.context.trace_id:032x}" == event.meta.traceparent.split("-")[1]
            assert f"{span.parent.span_id:016x}" == event.meta.traceparent.split("-")[2]
        else:
            assert span.parent is None
    (checkpoint,) = [s for s in finished if s.name == "index omc.proof.CheckpointSigned"]
    (signed,) = [r for r in log.proof_records() if r.SCHEMA == "omc.proof.CheckpointSigned"]
    assert checkpoint.attributes["omc.event_id"] == signed.meta.event_id
    assert "omc.leaf_index" not in checkpoint.attributes
    (notary_span,) = [s for s in finished if s.name == "notary omc.proof.CheckpointSigned"]
    assert f"{notary_span.context.span_id:016x}" == signed.meta.traceparent.split("-")[2]
    assert checkpoint.parent.span_id == notary_span.context.span_id  # the notary's child
    assert checkpoint.context.trace_id == notary_span.context.trace_id
    (anchored,) = [s for s in finished if s.name == "index omc.proof.AnchorConfirmed"]
    (line,) = [json.loads(text) for text in buffer.getvalue().splitlines()
               if "without its AnchorSubmitted" in text]
    assert line["event_id"] == orphan.meta.event_id
    assert line["correlation_id"] == orphan.meta.correlation_id
    assert line["trace_id"] == traced[0].split("-")[1]
    assert line["span_id"] == f"{anchored.context.span_id:016x}"
