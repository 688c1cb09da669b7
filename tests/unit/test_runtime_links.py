"""The runtime's step spans link to the event they answer (omc_obs.tracing.link_to): the
step that records a transaction's outcome links to the span of the TxConfirmed/TxFailed it
read, the step that follows a person's decision links to the span that recorded it, the
Release after a failure links to the TxFailed, and other steps link to nothing. Through the
real Runtime in-process (tests/support/runtime_harness) with the in-memory `spans` fixture."""

from __future__ import annotations

import asyncio

from opentelemetry.sdk.trace import ReadableSpan

from omc_events.records import (
    ActionApproved,
    ApprovalRequested,
    ApproveAction,
    CancelTask,
    TaskCompleted,
    ToolResultRecorded,
)
from tests.support.runtime_harness import BOB, ETHER, RuntimeHarness, make_policy

WATCHER = "00-6bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def steps(spans) -> list[ReadableSpan]:
    return [s for s in spans.get_finished_spans() if s.name.startswith("runtime ")
            and not s.name.startswith("runtime omc.")]


def wrote(span: ReadableSpan, record) -> bool:
    return record.meta.traceparent.split("-")[2] == f"{span.context.span_id:016x}"


def test_the_step_recording_a_confirmation_links_to_the_watchers_span(spans) -> None:
    async def scenario() -> tuple[RuntimeHarness, object]:
        harness = RuntimeHarness()
        await harness.run(f"send 0.1 ether to {BOB}", make_policy())
        (request,) = harness.tx_requests()
        confirmed = harness.confirm(request.request_id, traceparent=WATCHER)
        await harness.settle()
        return harness, confirmed

    harness, confirmed = asyncio.run(scenario())

    events = harness.task_events()
    assert isinstance(events[-1], TaskCompleted)
    (result,) = [e for e in events if isinstance(e, ToolResultRecorded)]
    (emit,) = [s for s in steps(spans) if wrote(s, result)]
    (link,) = emit.links
    assert f"{link.context.trace_id:032x}" == WATCHER.split("-")[1]
    assert f"{link.context.span_id:016x}" == WATCHER.split("-")[2]
    assert link.attributes["omc.event_id"] == confirmed.meta.event_id
    assert link.attributes["omc.event_type"] == "omc.tx.TxConfirmed"
    # the step stays in the task's trace, a child of its span: the link is beside it
    assert emit.context.trace_id == int(events[0].meta.traceparent.split("-")[1], 16)
    assert emit.parent is not None
    # every other step (infer, propose, emit of the plan, reserve) links to nothing
    others = [s for s in steps(spans) if s is not emit]
    assert len(others) >= 4
    assert [s.links for s in others] == [()] * len(others)


def test_the_step_after_an_approval_links_to_the_span_that_recorded_it(spans) -> None:
    async def scenario() -> RuntimeHarness:
        harness = RuntimeHarness()
        events = await harness.run(f"send 0.1 ether to {BOB}",
                                   make_policy(approval_threshold_wei=str(ETHER // 20)))
        asked = events[-1]
        assert isinstance(asked, ApprovalRequested)
        harness.send(harness.command(ApproveAction, task_id=asked.task_id, actor="key:boss",
                                     action_id=asked.action_id, approver="key:boss",
                                     action_hash=asked.action_hash, comment="ok"))
        await harness.settle()
        return harness

    harness = asyncio.run(scenario())

    (approved,) = [e for e in harness.task_events() if isinstance(e, ActionApproved)]
    (approval_span,) = [s for s in spans.get_finished_spans()
                        if s.name == "runtime omc.command.ApproveAction"]
    assert wrote(approval_span, approved)
    (reserve,) = [s for s in steps(spans) if s.name == "runtime reserve"]
    (link,) = reserve.links
    assert link.context.span_id == approval_span.context.span_id
    assert link.context.trace_id == approval_span.context.trace_id != reserve.context.trace_id
    assert link.attributes["omc.event_type"] == "omc.task.ActionApproved"


def test_the_release_after_a_failure_links_to_the_tx_failed(spans) -> None:
    async def scenario() -> tuple[RuntimeHarness, object]:
        harness = RuntimeHarness()
        await harness.run(f"send 0.1 ether to {BOB}", make_policy())
        harness.send(harness.command(CancelTask, task_id=harness.last_task, reason="stop"))
        await harness.settle()
        (request,) = harness.tx_requests()
        failed = harness.fail(request.request_id, traceparent=WATCHER)
        await harness.settle()
        return harness, failed

    _, failed = asyncio.run(scenario())

    (release,) = [s for s in steps(spans) if s.name == "runtime release"]
    (link,) = release.links
    assert f"{link.context.span_id:016x}" == WATCHER.split("-")[2]
    assert link.attributes["omc.event_id"] == failed.meta.event_id


def test_an_outcome_without_a_trace_context_gives_no_link(spans) -> None:
    async def scenario() -> RuntimeHarness:
        harness = RuntimeHarness()
        await harness.run(f"send 0.1 ether to {BOB}", make_policy())
        (request,) = harness.tx_requests()
        harness.confirm(request.request_id)
        await harness.settle()
        return harness

    harness = asyncio.run(scenario())

    assert isinstance(harness.task_events()[-1], TaskCompleted)
    assert harness.runtime.requests.settled_by == {}
    assert all(s.links == () for s in steps(spans))
