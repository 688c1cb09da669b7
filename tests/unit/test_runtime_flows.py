"""Task flows through the real Runtime in-process: human approval (approve, reject, expiry),
a failing model, a cancel while a transaction is pending, two writes in one answer."""

from __future__ import annotations

import asyncio
import json

from omc_domain.task import Limits
from omc_events.records import (
    ActionApproved,
    ActionRejected,
    ApprovalRequested,
    ApproveAction,
    BudgetReleased,
    CancelTask,
    CommandRejected,
    RejectAction,
    RejectionCode,
    TaskCancelled,
    TaskCompleted,
    TaskFailed,
    TaskFailureCode,
)
from omc_llm.model import InferenceError, InferenceInput, InferenceOutput, ToolCallOut
from tests.support.runtime_harness import BOB, CAROL, ETHER, RuntimeHarness, make_policy

APPROVAL_POLICY = make_policy(approval_threshold_wei=str(ETHER // 20))


async def awaiting(harness: RuntimeHarness) -> ApprovalRequested:
    events = await harness.run(f"send 0.1 ether to {BOB}", APPROVAL_POLICY)
    asked = events[-1]
    assert isinstance(asked, ApprovalRequested)
    assert harness.tx_requests() == []
    return asked


def test_an_approved_action_is_requested_and_a_rejected_one_is_not() -> None:
    async def scenario(decision: type) -> RuntimeHarness:
        harness = RuntimeHarness()
        asked = await awaiting(harness)
        fields = {"comment": "ok"} if decision is ApproveAction else {"reason": "no"}
        harness.send(harness.command(decision, task_id=asked.task_id, actor="key:boss",
                                     action_id=asked.action_id, approver="key:boss",
                                     action_hash=asked.action_hash, **fields))
        await harness.settle()
        return harness

    approved = asyncio.run(scenario(ApproveAction))
    rejected = asyncio.run(scenario(RejectAction))

    assert isinstance(approved.task_events()[-1], ActionApproved)
    (request,) = approved.tx_requests()
    assert (request.to, request.value_wei) == (BOB, str(ETHER // 10))
    events = rejected.task_events()
    assert isinstance(events[-2], ActionRejected)
    assert isinstance(events[-1], TaskFailed)
    assert events[-1].code == TaskFailureCode.ACTION_REJECTED
    assert rejected.tx_requests() == []


def test_an_approval_that_expires_is_rejected_by_the_runtime() -> None:
    async def scenario() -> RuntimeHarness:
        harness = RuntimeHarness(limits=Limits(wall_seconds=7200, approval_seconds=60))
        await awaiting(harness)
        harness.clock.advance(60)
        harness.runtime.wake_all()  # the app's timer
        await harness.settle()
        return harness

    harness = asyncio.run(scenario())

    rejected, failed = harness.task_events()[-2:]
    assert isinstance(rejected, ActionRejected)
    assert rejected.approver == "svc:agent-runtime"
    assert isinstance(failed, TaskFailed)
    assert failed.code == TaskFailureCode.ACTION_REJECTED
    assert harness.tx_requests() == []


class Broken:
    name = "broken"

    async def complete(self, request: InferenceInput) -> InferenceOutput:
        raise InferenceError("the endpoint answered 503", error_type="http_503",
                             retryable=True, attempts=3)


def test_a_model_that_fails_fails_the_task_with_the_recorded_error() -> None:
    harness = RuntimeHarness(model=Broken())

    events = asyncio.run(harness.run(f"balance of {BOB}", make_policy()))

    assert [type(e).__name__ for e in events] == [
        "TaskSubmitted", "InferenceRequested", "InferenceFailed", "TaskFailed"]
    assert events[2].attempts == 3
    assert events[-1].code == TaskFailureCode.INFERENCE_FAILED
    assert "http_503" in events[-1].reason


def test_a_cancel_while_a_transaction_is_pending_ends_the_task_and_a_failure_releases() -> None:
    async def scenario() -> RuntimeHarness:
        harness = RuntimeHarness()
        await harness.run(f"send 0.1 ether to {BOB}", make_policy())
        harness.send(harness.command(CancelTask, task_id=harness.last_task, reason="stop"))
        await harness.settle()
        (request,) = harness.tx_requests()
        harness.fail(request.request_id)
        await harness.settle()
        return harness

    harness = asyncio.run(scenario())

    events = harness.task_events()
    assert isinstance(events[-1], TaskCancelled)
    assert len([e for e in events if isinstance(e, TaskCancelled | TaskFailed)]) == 1
    released = [e for e in harness.writer.records("omc.agent.events.v1")
                if isinstance(e, BudgetReleased)]
    assert len(released) == 1


class TwoPayments:
    name = "two-payments"

    async def complete(self, request: InferenceInput) -> InferenceOutput:
        if any(m.get("role") == "tool" for m in request.messages):
            return InferenceOutput(model="m", response_text="paid both")
        calls = tuple(ToolCallOut(f"c{i}", "transfer_native",
                                  json.dumps({"to": to, "value_wei": str(ETHER // 10)}))
                      for i, to in enumerate((BOB, CAROL)))
        return InferenceOutput(model="m", response_text="", tool_calls=calls,
                               finish_reason="tool_calls")


def test_two_writes_in_one_answer_are_requested_one_after_the_other() -> None:
    async def scenario() -> tuple[RuntimeHarness, list[int]]:
        harness = RuntimeHarness(model=TwoPayments())
        await harness.run("pay Bob and Carol", make_policy())
        seen = [len(harness.tx_requests())]
        for _ in range(2):
            harness.confirm(harness.tx_requests()[-1].request_id)
            await harness.settle()
            seen.append(len(harness.tx_requests()))
        return harness, seen

    harness, seen = asyncio.run(scenario())

    assert seen == [1, 2, 2]
    assert [r.to for r in harness.tx_requests()] == [BOB, CAROL]
    done = harness.task_events()[-1]
    assert isinstance(done, TaskCompleted)
    assert len(done.tx_hashes) == 2
    assert done.summary == "paid both"


class Verbose:
    """A model whose answer is bigger than a Kafka message; counts its calls."""

    name = "verbose"

    def __init__(self) -> None:
        self.calls = 0

    async def complete(self, request: InferenceInput) -> InferenceOutput:
        self.calls += 1
        return InferenceOutput(model="m", response_text="z" * 2_000_000)


def test_an_answer_too_big_to_record_fails_the_task_after_one_call() -> None:
    model = Verbose()
    harness = RuntimeHarness(model=model)

    async def scenario() -> None:
        await harness.run(f"balance of {BOB}", make_policy())
        harness.runtime.wake_all()  # the timer must not call the model again
        await harness.settle()

    asyncio.run(scenario())

    events = harness.task_events()
    assert [type(e).__name__ for e in events] == [
        "TaskSubmitted", "InferenceRequested", "InferenceFailed", "TaskFailed"]
    assert events[2].error_type == "bad_response"
    assert events[-1].code == TaskFailureCode.INFERENCE_FAILED
    assert model.calls == 1


def test_a_read_result_too_big_to_record_is_recorded_as_a_failed_read() -> None:
    harness = RuntimeHarness(returns={(CAROL, "name()"): ["n" * 2_000_000]})

    events = asyncio.run(harness.run(f"read name()(string) on {CAROL}",
                                     make_policy(allowed_contracts=(CAROL,))))

    (result,) = [e for e in events if type(e).__name__ == "ToolResultRecorded"]
    assert not result.ok
    assert "characters, more than" in result.result_json
    assert isinstance(events[-1], TaskCompleted)


def test_another_tenants_command_is_answered_outside_the_owners_chain() -> None:
    async def scenario():
        harness = RuntimeHarness()
        asked = await awaiting(harness)
        chain_before = list(harness.task_events())
        for command in (
                harness.command(CancelTask, tenant="intruder", task_id=asked.task_id,
                                reason="mine now"),
                harness.command(ApproveAction, tenant="intruder", task_id=asked.task_id,
                                action_id=asked.action_id, approver="key:intruder",
                                action_hash=asked.action_hash)):
            harness.send(command)
        await harness.settle()
        return harness, chain_before

    harness, chain_before = asyncio.run(scenario())

    everything = harness.task_events()
    chained = [e for e in everything if e.meta.sequence > 0]
    answers = [e for e in everything if e.meta.sequence == 0]
    assert chained == chain_before  # the owner's trail did not move
    assert [(a.code, a.meta.tenant) for a in answers] == [
        (RejectionCode.NOT_FOUND, "intruder"), (RejectionCode.NOT_FOUND, "intruder")]
    assert all(isinstance(a, CommandRejected) for a in answers)
    assert harness.tx_requests() == []
    assert isinstance(chained[-1], ApprovalRequested)  # still waiting for its own tenant
