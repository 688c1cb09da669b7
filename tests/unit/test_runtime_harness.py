"""The in-process runtime harness (tests/support/runtime_harness.py) runs the real Runtime end to
end: a read completes, an allowed transfer is requested once from the agent's signer, every
inference is signed, and a confirmed or failed transaction ends the task."""

from __future__ import annotations

import asyncio

from omc_domain.task import request_id_of
from omc_events.chain import seal
from omc_events.envelope import ChainHead
from omc_events.records import (
    ActionProposed,
    BudgetReleased,
    BudgetReserved,
    InferenceCompleted,
    InferenceRequested,
    PolicyEvaluated,
    TaskCompleted,
    TaskFailed,
    TaskFailureCode,
    TaskSubmitted,
    ToolResultRecorded,
    TxRequested,
    Verdict,
)
from omc_llm.attest import verify_inference
from tests.support.runtime_harness import BOB, SIGNER, RuntimeHarness, make_policy

ETHER = 10**18


def types(events) -> list[str]:
    return [type(e).__name__ for e in events]


def test_a_balance_read_completes_with_its_recorded_result() -> None:
    harness = RuntimeHarness(balances={BOB: 7 * ETHER})

    events = asyncio.run(harness.run(f"what is the balance of {BOB}?", make_policy()))

    assert types(events) == ["TaskSubmitted", "InferenceRequested", "InferenceCompleted",
                             "ActionProposed", "PolicyEvaluated", "ToolResultRecorded",
                             "InferenceRequested", "InferenceCompleted", "TaskCompleted"]
    result = next(e for e in events if isinstance(e, ToolResultRecorded))
    assert result.ok
    assert f'"balance_wei":"{7 * ETHER}"' in result.result_json
    assert harness.reader.reads == [("get_balance", BOB)]
    done = events[-1]
    assert isinstance(done, TaskCompleted)
    assert done.tx_hashes == ()
    assert done.inference_count == 2
    assert harness.tx_requests() == []


def test_the_events_form_one_sealed_chain_per_task() -> None:
    harness = RuntimeHarness(balances={BOB: 1})

    events = asyncio.run(harness.run(f"balance of {BOB}", make_policy()))

    head = ChainHead()
    for event in events:
        resealed, head = seal(harness.writer.schemas, event, head)
        assert resealed == event
    assert [e.meta.sequence for e in events] == list(range(1, len(events) + 1))


def test_a_native_transfer_within_policy_is_requested_once_from_the_agents_signer() -> None:
    harness = RuntimeHarness()

    events = asyncio.run(harness.run(f"send 0.1 ether to {BOB}", make_policy()))

    (evaluated,) = [e for e in events if isinstance(e, PolicyEvaluated)]
    assert evaluated.verdict == Verdict.ALLOW
    (request,) = harness.tx_requests()
    assert (request.to, request.value_wei, request.sender, request.data) == (
        BOB, str(ETHER // 10), SIGNER, "0x")
    (proposed,) = [e for e in events if isinstance(e, ActionProposed)]
    assert request.request_id == request_id_of(proposed.action.action_id)
    assert request.task_id == harness.last_task
    reserved = [e for e in harness.writer.records("omc.agent.events.v1")
                if isinstance(e, BudgetReserved)]
    assert [r.amount_wei for r in reserved] == [str(ETHER // 10)]
    assert not harness.runtime.tasks.get(harness.last_task).terminal  # waits for the chain

    harness.confirm(request.request_id)
    asyncio.run(harness.settle())

    events = harness.task_events()
    done = events[-1]
    assert isinstance(done, TaskCompleted)
    result = next(e for e in events if isinstance(e, ToolResultRecorded))
    assert result.ok
    assert done.tx_hashes == (result.tx_hash,)
    assert len(harness.tx_requests()) == 1  # settling again asked for nothing new


def test_a_failed_transaction_fails_the_task_and_releases_its_budget() -> None:
    harness = RuntimeHarness()
    asyncio.run(harness.run(f"send 0.1 ether to {BOB}", make_policy()))
    (request,) = harness.tx_requests()

    harness.fail(request.request_id, "execution reverted")
    asyncio.run(harness.settle())

    events = harness.task_events()
    assert isinstance(events[-1], TaskFailed)
    assert events[-1].code == TaskFailureCode.TX_FAILED
    assert isinstance(events[-2], ToolResultRecorded)
    assert not events[-2].ok
    released = [e for e in harness.writer.records("omc.agent.events.v1")
                if isinstance(e, BudgetReleased)]
    assert [r.action_id for r in released] == [request.action_id]


def test_every_inference_is_signed_by_the_harness_attestor_and_verifies() -> None:
    harness = RuntimeHarness(balances={BOB: 1})

    events = asyncio.run(harness.run(f"balance of {BOB}", make_policy()))

    completed = [e for e in events if isinstance(e, InferenceCompleted)]
    assert len(completed) == 2
    assert all(verify_inference(e) for e in completed)
    assert {e.signer for e in completed} == {harness.attestor.address}
    requested = [e for e in events if isinstance(e, InferenceRequested)]
    assert [r.prompt_hash for r in requested] == [c.prompt_hash for c in completed]


def test_an_unknown_agent_is_refused_without_any_inference() -> None:
    harness = RuntimeHarness()
    task_id = harness.submit(harness.new_id("agent"), f"balance of {BOB}")

    asyncio.run(harness.settle())

    (rejected,) = harness.task_events(task_id)
    assert type(rejected).__name__ == "CommandRejected"
    assert not any(isinstance(e, (TaskSubmitted, TxRequested))
                   for e in harness.writer.records("omc.task.events.v1"))
