"""One trace follows a command from the HTTP request to the projection writes.

The gateway (in-process, memory adapters) opens a producer span per command and records its
W3C trace context in the envelope; the agent runtime (the real Runtime, in-process through
tests/support/runtime_harness) copies it into every event the command causes; the MySQL
projector, reading those records from real Kafka topics into a real database, opens a span
per event whose parent is that context, and so does the Redis projector. Spans go to an
in-memory exporter.
"""

# ruff: noqa: F811 (the fixtures `log` and `registry` are imported from test_proj_redis)
from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from omc_obs import tracing
from omc_runtime.runtime import AGENT_EVENTS, COMMANDS, TASK_EVENTS, TX_EVENTS
from tests.integration.test_proj_mysql_support import Log, fresh_database
from tests.integration.test_proj_redis import log, registry  # noqa: F401
from tests.support.runtime_harness import RuntimeHarness
from tests.unit.test_gateway_app import agent_body, build, submit_body

pytestmark = pytest.mark.integration
CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use(provider)
    yield exporter
    tracing.use(None)


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
    cause_of = {submit.meta.traceparent: task_span, register.meta.traceparent: agent_span}

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
    for record in traced:
        span, cause = by_event[record.meta.event_id], cause_of[record.meta.traceparent]
        assert span.context.trace_id == cause.context.trace_id
        assert span.parent.span_id == cause.context.span_id
        assert span.kind == SpanKind.CONSUMER
    # a record without a trace context is projected in a trace of its own
    for record in [r for r in caused if not r.meta.traceparent]:
        assert by_event[record.meta.event_id].parent is None


def test_every_event_a_command_causes_carries_its_trace_context(
        spans, stack, settings, fresh_topic) -> None:
    caused, _, submit = run_one_task(settings, fresh_topic)

    task_events = [r for r in caused if r.meta.aggregate_type == "task"]
    assert [r.meta.event_type for r in task_events if r.meta.traceparent is None] == []
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
            assert span.parent.span_id == task_span.context.span_id
            assert span.context.trace_id == task_span.context.trace_id
        else:
            assert span.parent is None
