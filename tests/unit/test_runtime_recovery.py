"""The runtime in-process across a restart and a policy change: state comes back from the log
alone, nothing is written twice, and an action is never reserved or requested under a policy
that did not judge it."""

from __future__ import annotations

import asyncio

from omc_events.records import (
    CommandRejected,
    InferenceCompleted,
    InferenceRequested,
    PolicyEvaluated,
    SetPolicy,
    TaskCompleted,
    TaskFailed,
    TaskFailureCode,
    Verdict,
)
from omc_llm.planner import LocalPlanner
from tests.support.runtime_harness import BOB, CAROL, RuntimeHarness, make_policy


def test_a_restart_while_waiting_for_the_chain_writes_nothing_again() -> None:
    async def scenario() -> tuple[RuntimeHarness, int, int]:
        harness = RuntimeHarness()
        await harness.run(f"send 0.1 ether to {BOB}", make_policy())
        written = sum(len(v) for v in harness.writer.topics.values())
        harness.restart()
        await harness.settle()
        again = sum(len(v) for v in harness.writer.topics.values())
        (request,) = harness.tx_requests()
        harness.confirm(request.request_id)
        await harness.settle()
        return harness, written, again

    harness, written, again = asyncio.run(scenario())

    assert again == written
    assert isinstance(harness.task_events()[-1], TaskCompleted)
    assert len(harness.tx_requests()) == 1


def test_a_restarted_runtime_folds_the_same_state_as_the_live_one() -> None:
    async def scenario() -> tuple[object, object]:
        harness = RuntimeHarness(balances={BOB: 5})
        await harness.run(f"balance of {BOB}", make_policy())
        live = harness.runtime.tasks.get(harness.last_task)
        harness.restart()
        return live, harness.runtime.tasks.get(harness.last_task)

    live, replayed = asyncio.run(scenario())

    assert replayed == live


def test_an_action_is_judged_again_when_the_policy_changes_before_its_reservation() -> None:
    """Evaluated ALLOW under version 1; version 2 (Bob removed) arrives before the agent
    answers the ReserveBudget, which it refuses as stale. Neither the running process nor one
    restarted later may reserve or request the transfer: it is judged again, and denied."""

    async def scenario() -> RuntimeHarness:
        harness = RuntimeHarness()
        agent_id = harness.register(make_policy())
        await harness.settle()
        harness.submit(agent_id, f"send 0.1 ether to {BOB}")
        harness.send(harness.command(SetPolicy, agent_id=agent_id, policy=make_policy(
            version=2, allowed_recipients=(CAROL,))))
        await harness.settle()
        harness.runtime.wake_all()  # the app's 1 s timer
        await harness.settle()
        harness.restart()
        await harness.settle()
        return harness

    harness = asyncio.run(scenario())

    stale = [e for e in harness.writer.records("omc.agent.events.v1")
             if isinstance(e, CommandRejected)]
    assert [e.code for e in stale] == ["INVALID_STATE"]
    assert harness.tx_requests() == []
    events = harness.task_events(harness.runtime.tasks.states.popitem()[0])
    verdicts = [(e.policy_version, e.verdict) for e in events if isinstance(e, PolicyEvaluated)]
    assert verdicts == [(1, Verdict.ALLOW), (2, Verdict.DENY)]
    assert isinstance(events[-1], TaskFailed)
    assert events[-1].code == TaskFailureCode.POLICY_DENIED


def test_an_action_still_allowed_by_the_new_policy_is_reserved_under_it() -> None:
    async def scenario() -> RuntimeHarness:
        harness = RuntimeHarness()
        agent_id = harness.register(make_policy())
        await harness.settle()
        harness.submit(agent_id, f"send 0.1 ether to {BOB}")
        harness.send(harness.command(SetPolicy, agent_id=agent_id, policy=make_policy(
            version=2, max_value_wei=str(2 * 10**18))))
        await harness.settle()
        harness.runtime.wake_all()
        await harness.settle()
        return harness

    harness = asyncio.run(scenario())

    (request,) = harness.tx_requests()
    assert request.to == BOB
    events = harness.task_events(request.task_id)
    verdicts = [(e.policy_version, e.verdict) for e in events if isinstance(e, PolicyEvaluated)]
    assert verdicts == [(1, Verdict.ALLOW), (2, Verdict.ALLOW)]


class Crashing:
    """A model call during which the process dies (anything but an InferenceError)."""

    name = "local-planner"

    async def complete(self, request):
        raise RuntimeError("killed mid-call")


def test_a_restart_after_a_crash_mid_inference_calls_the_model_again_for_the_same_intent() -> None:
    async def scenario() -> RuntimeHarness:
        harness = RuntimeHarness(model=Crashing(), balances={BOB: 2}, strict=False)
        await harness.run(f"balance of {BOB}", make_policy())
        harness.strict = True
        harness._errors.seen.clear()
        harness.restart(model=LocalPlanner())
        await harness.settle()
        return harness

    harness = asyncio.run(scenario())

    events = harness.task_events()
    names = [type(e).__name__ for e in events]
    assert names == ["TaskSubmitted", "InferenceRequested", "InferenceCompleted",
                     "ActionProposed", "PolicyEvaluated", "ToolResultRecorded",
                     "InferenceRequested", "InferenceCompleted", "TaskCompleted"]
    requested, completed = events[1], events[2]
    assert isinstance(requested, InferenceRequested)
    assert isinstance(completed, InferenceCompleted)
    assert (completed.inference_id, completed.prompt_hash) == (
        requested.inference_id, requested.prompt_hash)
    assert len({e.meta.event_id for e in events}) == len(events)
