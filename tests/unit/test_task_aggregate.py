"""The task aggregate, pure: `decide` answers each command once, `next_step` walks a task from
inference to policy, approval, read or budget and transaction, to exactly one outcome, and
`evolve` folds a sealed chain and ignores what it already holds. No I/O: states are folds of
events built here and sealed with the real chain; agents are folds of the agent's events."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from omc_chain.actions import build_action
from omc_domain import agent as agents
from omc_domain import task as tasks
from omc_domain.approval import action_hash, preview_json
from omc_domain.draft import DRAFT, is_draft
from omc_domain.task import (
    RUNTIME,
    Emit,
    Infer,
    Limits,
    Propose,
    Read,
    Release,
    Reserve,
    Status,
    TxOutcome,
    Wait,
    World,
    action_id_of,
    decide,
    evolve,
    inference_id_of,
    next_step,
    request_id_of,
)
from omc_events.avro import Schemas
from omc_events.chain import seal
from omc_events.envelope import ZERO_HASH, ChainHead, derived_id
from omc_events.record import Record
from omc_events.records import (
    Action,
    ActionApproved,
    ActionProposed,
    ActionRejected,
    AgentRegistered,
    ApprovalRequested,
    ApproveAction,
    BudgetReserved,
    CancelTask,
    CommandRejected,
    EventMeta,
    InferenceCompleted,
    InferenceRequested,
    PolicyEvaluated,
    RejectAction,
    RejectionCode,
    SubmitTask,
    TaskCancelled,
    TaskCompleted,
    TaskFailed,
    TaskFailureCode,
    TaskSubmitted,
    ToolCall,
    ToolResultRecorded,
    Verdict,
)
from omc_llm.attest import Attestor, inference_digest
from tests.support.runtime_harness import BOB, CHAIN, SIGNER, TOKEN, make_policy

SCHEMAS = Schemas()
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TASK = "0a1b2c3d-4e5f-4061-8293-a4b5c6d7e8f9"
AGENT = "9b2f6c1e-8d4a-4f3b-9c2d-1a2b3c4d5e6f"
TENANT = "acme"
LIMITS = Limits(wall_seconds=600, approval_seconds=3600)
ATTESTOR = Attestor("11" * 32)  # a test-only key: it signs nothing outside these tests
ETHER = 10**18


# -- building states -----------------------------------------------------------------------------


def meta(event_type: str, *, aggregate_type: str = "task", aggregate_id: str = TASK,
         event_id: str, at: datetime = NOW, tenant: str = TENANT, actor: str = RUNTIME,
         causation: str | None = None) -> EventMeta:
    return EventMeta(event_id=event_id, event_type=event_type, schema_version=1,
                     aggregate_type=aggregate_type, aggregate_id=aggregate_id, sequence=0,
                     occurred_at=at, tenant=tenant, actor=actor, correlation_id="corr-1",
                     causation_id=causation, prev_hash=ZERO_HASH, hash="")


def agent_state(*, tenant: str = TENANT, reserved: Iterable[Action] = (),
                **policy: Any) -> agents.AgentState:
    """The agent as its events make it: AgentRegistered, then a BudgetReserved per action."""
    registered = AgentRegistered(
        meta=meta(AgentRegistered.SCHEMA, aggregate_type="agent", aggregate_id=AGENT,
                  event_id=derived_id("agent", 0), tenant=tenant),
        agent_id=AGENT, name="payer", description="pays", signer_address=SIGNER,
        model="omc-local-planner", parameters_json="{}", policy=make_policy(**policy))
    state = agents.evolve(None, registered)
    for n, action in enumerate(reserved, start=1):
        state = agents.evolve(state, BudgetReserved(
            meta=meta(BudgetReserved.SCHEMA, aggregate_type="agent", aggregate_id=AGENT,
                      event_id=derived_id("agent", n), tenant=tenant),
            agent_id=AGENT, task_id=TASK, action_id=action.action_id,
            amount_wei=action.value_wei, window_start=NOW - timedelta(hours=1), window_end=NOW,
            reserved_total_wei=action.value_wei, budget_wei=str(5 * ETHER), policy_version=1))
    assert state is not None
    return state


def command(cls: type[Record], n: int = 0, *, tenant: str = TENANT, at: datetime = NOW,
            **fields: Any) -> Any:
    return cls(meta=meta(cls.SCHEMA, event_id=derived_id("command", n), tenant=tenant,
                         actor="key:alice", at=at), **fields)


def submit(n: int = 0, *, agent_id: str = AGENT, chain_id: int = CHAIN, tenant: str = TENANT,
           **fields: Any) -> SubmitTask:
    return command(SubmitTask, n, tenant=tenant, task_id=TASK, agent_id=agent_id,
                   instruction=f"send 0.1 ether to {BOB}", chain_id=chain_id, **fields)


class Story:
    """A task told event by event: drafts get an envelope, are sealed after the chain's head
    with the real codec, and folded with `evolve` (as the runtime does)."""

    def __init__(self, agent: agents.AgentState | None = None) -> None:
        self.agent = agent or agent_state()
        self.state: tasks.TaskState | None = None
        self.head = ChainHead()
        self.events: list[Record] = []
        self.now = NOW

    def record(self, drafts: Iterable[Record], cause: str | None = None) -> list[Record]:
        sealed_all = []
        cause = cause or (self.state.last_event_id if self.state else "origin")
        for position, draft in enumerate(drafts):
            assert is_draft(draft) or draft.meta.event_id == ""  # type: ignore[attr-defined]
            filled = dataclasses.replace(draft, meta=meta(
                draft.SCHEMA, event_id=derived_id(cause, position), at=self.now,
                causation=cause))
            sealed, self.head = seal(SCHEMAS, filled, self.head)
            self.state = evolve(self.state, sealed)
            self.events.append(sealed)
            sealed_all.append(sealed)
        return sealed_all

    def answer(self, cmd: Record) -> list[Record]:
        """decide, then record what it decided (caused by the command)."""
        out = decide(self.state, cmd, self.agent, self.now)
        if out:
            self.record(out, cause=cmd.meta.event_id)  # type: ignore[attr-defined]
        return out

    def submitted(self, **fields: Any) -> Story:
        (event,) = self.answer(submit(**fields))
        assert isinstance(event, TaskSubmitted)
        return self

    def step(self, world: World | None = None, limits: Limits = LIMITS) -> tasks.Step:
        assert self.state is not None
        return next_step(self.state, self.agent, world or World(), self.now, limits)

    def infer(self, *calls: tuple[str, str], response: str = "", cost: str = "0") -> None:
        """The runtime's Infer step: intent recorded, then the model's (signed) answer."""
        step = self.step()
        assert isinstance(step, Infer), step
        assert step.requested is None
        self.record([InferenceRequested(
            meta=DRAFT, task_id=TASK, inference_id=step.inference_id, step=step.step,
            model="omc-local-planner", parameters_json="{}", prompt_template="task-planner@1",
            prompt_hash="0x" + "ab" * 32, prompt="[]", tools=("get_balance",))])
        tool_calls = tuple(ToolCall(call_id=f"call-{step.step}-{i}", name=name,
                                    arguments_json=arguments)
                           for i, (name, arguments) in enumerate(calls))
        digest = inference_digest(step.inference_id, "omc-local-planner", "{}",
                                  "0x" + "ab" * 32, response, tool_calls)
        self.record([InferenceCompleted(
            meta=DRAFT, task_id=TASK, inference_id=step.inference_id, model="omc-local-planner",
            provider="local-planner", parameters_json="{}", prompt_hash="0x" + "ab" * 32,
            response=response, tool_calls=tool_calls,
            finish_reason="tool_calls" if calls else "stop", prompt_tokens=0,
            completion_tokens=0, cost_usd=cost, latency_ms=0, cache_hit=False, digest=digest,
            signer=ATTESTOR.address, signature=ATTESTOR.sign(digest))])

    def propose(self, tool: str, arguments: dict[str, Any]) -> Action:
        """The runtime's Propose step: the tool call becomes an Action."""
        step = self.step()
        assert isinstance(step, Propose), step
        action = build_action(step.action_id, CHAIN, tool, arguments,
                              step.inference.tool_calls[step.index].call_id)
        self.record([ActionProposed(meta=DRAFT, task_id=TASK,
                                    inference_id=step.inference.inference_id, action=action)])
        return action

    def emit(self, world: World | None = None) -> list[Record]:
        step = self.step(world)
        assert isinstance(step, Emit), step
        return self.record(step.records)

    def write(self, value_wei: int = ETHER // 10) -> Action:
        """Through inference, proposal and policy to a cleared native transfer to Bob."""
        self.infer(("transfer_native", "{}"))
        action = self.propose("transfer_native", {"to": BOB, "value_wei": str(value_wei)})
        self.emit()  # PolicyEvaluated (and ApprovalRequested above the threshold)
        return action


def only(records: list[Record], cls: type[Record]) -> Any:
    (record,) = records
    assert isinstance(record, cls), record
    return record


def rejected(records: list[Record], code: RejectionCode, cmd: Record) -> CommandRejected:
    rejection = only(records, CommandRejected)
    assert rejection.code == code
    assert rejection.rejected_command_id == cmd.meta.event_id  # type: ignore[attr-defined]
    assert rejection.rejected_command_type == cmd.SCHEMA
    assert is_draft(rejection)
    return rejection


def failure(story: Story, code: TaskFailureCode, world: World | None = None) -> TaskFailed:
    failed = story.emit(world)[-1]
    assert isinstance(failed, TaskFailed)
    assert failed.code == code
    assert story.state is not None
    assert story.state.status == Status.FAILED
    return failed


# -- SubmitTask ------------------------------------------------------------------------------------


def test_submit_task_is_accepted_as_task_submitted_with_the_instruction_as_given() -> None:
    cmd = submit(max_value_wei="5", metadata_json='{"x":1}')

    event = only(decide(None, cmd, agent_state(), NOW), TaskSubmitted)

    assert is_draft(event)
    assert (event.task_id, event.agent_id, event.instruction, event.chain_id) == (
        TASK, AGENT, cmd.instruction, CHAIN)
    assert (event.max_value_wei, event.metadata_json, event.submitted_by) == (
        "5", '{"x":1}', "key:alice")


def test_submit_task_for_an_unknown_agent_is_not_found() -> None:
    cmd = submit()
    assert "no agent" in rejected(decide(None, cmd, None, NOW), RejectionCode.NOT_FOUND,
                                  cmd).reason


def test_submit_task_for_another_tenants_agent_is_not_found() -> None:
    cmd = submit(tenant="umbrella")
    rejected(decide(None, cmd, agent_state(tenant=TENANT), NOW), RejectionCode.NOT_FOUND, cmd)


def test_submit_task_on_a_chain_the_policy_does_not_allow_is_refused_by_policy() -> None:
    cmd = submit(chain_id=1)
    reason = rejected(decide(None, cmd, agent_state(), NOW), RejectionCode.POLICY, cmd).reason
    assert "chain 1" in reason


def test_the_same_submit_task_twice_is_answered_once() -> None:
    story = Story()
    cmd = submit()
    assert story.answer(cmd)

    assert decide(story.state, cmd, story.agent, NOW) == []


def test_another_submit_task_for_an_existing_task_is_a_duplicate() -> None:
    story = Story().submitted()
    again = submit(n=1)

    rejected(decide(story.state, again, story.agent, NOW), RejectionCode.DUPLICATE, again)


def test_a_rejected_submission_is_folded_and_later_commands_find_no_task() -> None:
    story = Story(agent=agent_state())
    story.answer(submit(chain_id=1))
    assert story.state is not None
    assert story.state.status == Status.REJECTED
    cancel = command(CancelTask, 5, task_id=TASK, reason="stop")

    rejected(decide(story.state, cancel, story.agent, NOW), RejectionCode.NOT_FOUND, cancel)


# -- CancelTask ------------------------------------------------------------------------------------


def test_cancel_task_on_a_running_task_cancels_it() -> None:
    story = Story().submitted()
    story.infer(("get_balance", "{}"))
    cancel = command(CancelTask, 7, task_id=TASK, reason="changed my mind")

    event = only(story.answer(cancel), TaskCancelled)

    assert (event.reason, event.cancelled_by) == ("changed my mind", "key:alice")
    assert story.state.status == Status.CANCELLED
    assert story.step() == Wait("ended")


def test_cancel_task_twice_with_the_same_command_is_answered_once() -> None:
    story = Story().submitted()
    cancel = command(CancelTask, 7, task_id=TASK, reason="stop")
    story.answer(cancel)

    assert decide(story.state, cancel, story.agent, NOW) == []


def test_cancel_task_on_an_ended_task_is_invalid_state() -> None:
    story = Story().submitted()
    story.infer(response="nothing to do")
    only(story.emit(), TaskCompleted)
    cancel = command(CancelTask, 8, task_id=TASK, reason="too late")

    reason = rejected(story.answer(cancel), RejectionCode.INVALID_STATE, cancel).reason
    assert "completed" in reason


def test_cancel_task_from_another_tenant_is_not_found() -> None:
    story = Story().submitted()
    cancel = command(CancelTask, 9, tenant="umbrella", task_id=TASK, reason="mine now")

    rejected(decide(story.state, cancel, story.agent, NOW), RejectionCode.NOT_FOUND, cancel)


# -- approval --------------------------------------------------------------------------------------


def awaiting_approval() -> tuple[Story, Action, ApprovalRequested]:
    story = Story().submitted()
    story.infer(("transfer_native", "{}"))
    action = story.propose("transfer_native", {"to": BOB, "value_wei": str(ETHER // 2)})
    story.agent = agent_state(approval_threshold_wei=str(ETHER // 10))
    evaluated, approval = story.emit()
    assert isinstance(evaluated, PolicyEvaluated)
    assert evaluated.verdict == Verdict.NEEDS_APPROVAL
    assert isinstance(approval, ApprovalRequested)
    return story, action, approval


def test_an_action_over_the_threshold_asks_for_approval_bound_to_its_hash() -> None:
    story, action, approval = awaiting_approval()

    assert approval.action_hash == action_hash(action)
    assert approval.preview_json == preview_json(action, story.agent.policy.max_fee_per_gas_wei)
    assert '"to":"' + BOB + '"' in approval.preview_json
    assert (approval.value_wei, approval.approval_threshold_wei) == (
        str(ETHER // 2), str(ETHER // 10))
    # the wall time (600 s) ends the task before approval_seconds (3600 s) would
    assert approval.expires_at == NOW + timedelta(seconds=LIMITS.wall_seconds)
    assert story.state.status == Status.AWAITING_APPROVAL
    assert story.step() == Wait("approval")


def test_approve_action_naming_the_right_hash_approves_it_and_the_write_goes_on() -> None:
    story, action, approval = awaiting_approval()
    approve = command(ApproveAction, 3, task_id=TASK, action_id=action.action_id,
                      approver="key:boss", action_hash=approval.action_hash)

    event = only(story.answer(approve), ActionApproved)

    assert (event.approver, event.action_hash) == ("key:boss", approval.action_hash)
    assert story.state.status == Status.RUNNING
    step = story.step()
    assert isinstance(step, Reserve)
    assert (step.action, step.amount_wei) == (action, ETHER // 2)
    assert decide(story.state, approve, story.agent, NOW) == []  # answered once


def test_approve_action_naming_another_hash_is_invalid_state() -> None:
    story, action, _ = awaiting_approval()
    other = dataclasses.replace(action, value_wei=str(ETHER))
    approve = command(ApproveAction, 3, task_id=TASK, action_id=action.action_id,
                      approver="key:boss", action_hash=action_hash(other))

    reason = rejected(story.answer(approve), RejectionCode.INVALID_STATE, approve).reason

    assert action_hash(other) in reason
    assert story.step() == Wait("approval")


def test_approve_action_without_a_hash_is_invalid_state() -> None:
    story, action, _ = awaiting_approval()
    approve = command(ApproveAction, 3, task_id=TASK, action_id=action.action_id,
                      approver="key:boss", action_hash=None)

    rejected(story.answer(approve), RejectionCode.INVALID_STATE, approve)


def test_approve_action_after_expiry_is_invalid_state() -> None:
    story, action, approval = awaiting_approval()
    story.now = approval.expires_at
    approve = command(ApproveAction, 3, task_id=TASK, action_id=action.action_id,
                      approver="key:boss", action_hash=approval.action_hash)

    reason = rejected(story.answer(approve), RejectionCode.INVALID_STATE, approve).reason
    assert "expired" in reason


def test_an_expired_approval_is_rejected_by_the_runtime_and_the_task_fails() -> None:
    story, action, approval = awaiting_approval()
    story.now = approval.expires_at + timedelta(seconds=1)
    # with the default limits (wall 600 s < approval 3600 s) the wall time ends a task long
    # before its approval expires: widen the wall time to reach the expiry
    wide = Limits(wall_seconds=LIMITS.approval_seconds * 2, approval_seconds=3600)

    step = story.step(limits=wide)
    assert isinstance(step, Emit)
    rejection = only(list(step.records), ActionRejected)
    assert (rejection.approver, rejection.action_id, rejection.action_hash) == (
        RUNTIME, action.action_id, approval.action_hash)
    story.record(step.records)
    failed = story.step(limits=wide)
    assert isinstance(failed, Emit)
    story.record(failed.records)
    ended = story.events[-1]
    assert isinstance(ended, TaskFailed)
    assert ended.code == TaskFailureCode.ACTION_REJECTED


def test_reject_action_fails_the_task_as_rejected() -> None:
    story, action, approval = awaiting_approval()
    reject = command(RejectAction, 4, task_id=TASK, action_id=action.action_id,
                     approver="key:boss", reason="no", action_hash=approval.action_hash)

    only(story.answer(reject), ActionRejected)

    assert "no" in failure(story, TaskFailureCode.ACTION_REJECTED).reason


def test_approve_action_for_an_action_that_is_not_waiting_is_invalid_state() -> None:
    story = Story().submitted()
    action = story.write()  # allowed outright: never waited for a human
    approve = command(ApproveAction, 3, task_id=TASK, action_id=action.action_id,
                      approver="key:boss", action_hash=action_hash(action))

    rejected(story.answer(approve), RejectionCode.INVALID_STATE, approve)


# -- reads and writes ------------------------------------------------------------------------------


def test_an_allowed_read_is_a_read_step_and_its_result_leads_to_the_next_inference() -> None:
    story = Story().submitted()
    story.infer(("get_balance", "{}"))
    action = story.propose("erc20_balance", {"token": TOKEN, "holder": BOB})
    evaluated = only(story.emit(), PolicyEvaluated)
    assert evaluated.verdict == Verdict.ALLOW

    assert story.step() == Read(action)

    story.record([ToolResultRecorded(meta=DRAFT, task_id=TASK, action_id=action.action_id,
                                     tool_call_id=action.tool_call_id, ok=True,
                                     result_json='{"balance":"5"}', block_number=9,
                                     tx_hash=None)])
    step = story.step()
    assert isinstance(step, Infer)
    assert (step.inference_id, step.step) == (inference_id_of(TASK, 2), 2)


def test_a_denied_action_fails_the_task_naming_the_failed_rules() -> None:
    story = Story().submitted()
    story.infer(("transfer_native", "{}"))
    story.propose("transfer_native", {"to": BOB, "value_wei": str(2 * ETHER)})
    evaluated = only(story.emit(), PolicyEvaluated)
    assert evaluated.verdict == Verdict.DENY

    assert "max_value" in failure(story, TaskFailureCode.POLICY_DENIED).reason


def test_an_allowed_write_reserves_budget_then_waits_for_its_transaction() -> None:
    story = Story().submitted()
    action = story.write(ETHER // 10)

    step = story.step()
    assert step == Reserve(action, None, ETHER // 10, 1)

    story.agent = agent_state(reserved=[action])
    assert story.step() == Wait("transaction")


def test_a_token_transfer_reserves_the_token_amount() -> None:
    story = Story().submitted()
    story.infer(("erc20_transfer", "{}"))
    action = story.propose("erc20_transfer", {"token": TOKEN, "to": BOB, "amount": "250"})
    only(story.emit(), PolicyEvaluated)

    step = story.step()
    assert isinstance(step, Reserve)
    assert (step.token, step.amount_wei) == (TOKEN, 250)
    assert step.action == action


def test_a_confirmed_transaction_is_recorded_and_the_task_asks_the_model_again() -> None:
    story = Story().submitted()
    action = story.write()
    story.agent = agent_state(reserved=[action])
    world = World(outcomes={request_id_of(action.action_id): TxOutcome(
        ok=True, tx_hash="0x" + "cd" * 32, block_number=12, detail="confirmed")})

    result = only(story.emit(world), ToolResultRecorded)

    assert (result.ok, result.tx_hash, result.block_number, result.action_id) == (
        True, "0x" + "cd" * 32, 12, action.action_id)
    assert story.state.tx_hashes == ("0x" + "cd" * 32,)
    step = story.step(world)
    assert isinstance(step, Infer)
    assert step.step == 2


def test_a_failed_transaction_fails_the_task_then_releases_the_reservation() -> None:
    story = Story().submitted()
    action = story.write()
    story.agent = agent_state(reserved=[action])
    world = World(outcomes={request_id_of(action.action_id): TxOutcome(
        ok=False, tx_hash=None, block_number=None, detail="REVERTED: out of gas")})

    result, failed = story.emit(world)

    assert isinstance(result, ToolResultRecorded)
    assert not result.ok
    assert isinstance(failed, TaskFailed)
    assert failed.code == TaskFailureCode.TX_FAILED
    assert "out of gas" in failed.reason
    assert story.state.tx_hashes == ()
    assert story.step(world) == Release(action.action_id)


def test_a_released_reservation_is_not_released_again() -> None:
    story = Story().submitted()
    action = story.write()
    world = World(outcomes={request_id_of(action.action_id): TxOutcome(
        ok=False, tx_hash=None, block_number=None, detail="failed")})
    story.agent = agent_state(reserved=[action])
    story.emit(world)
    story.agent = dataclasses.replace(story.agent, reservations=tuple(
        dataclasses.replace(r, released=True) for r in story.agent.reservations))

    assert story.step(world) == Wait("ended")


def test_a_budget_refusal_fails_the_task_as_budget_exceeded() -> None:
    story = Story().submitted()
    action = story.write()

    failed = failure(story, TaskFailureCode.BUDGET_EXCEEDED,
                     World(exceeded=frozenset({action.action_id})))
    assert action.action_id in failed.reason


# -- limits ---------------------------------------------------------------------------------------


def test_the_step_limit_fails_the_task_instead_of_another_inference() -> None:
    story = Story(agent=agent_state(max_inferences_per_task=1)).submitted()
    story.infer(("get_balance", "{}"))
    action = story.propose("erc20_balance", {"token": TOKEN, "holder": BOB})
    story.emit()
    story.record([ToolResultRecorded(meta=DRAFT, task_id=TASK, action_id=action.action_id,
                                     tool_call_id=action.tool_call_id, ok=True,
                                     result_json="{}", block_number=1, tx_hash=None)])

    assert "limit of 1" in failure(story, TaskFailureCode.STEP_LIMIT).reason


def test_the_tasks_deadline_fails_it_as_deadline_exceeded() -> None:
    story = Story().submitted(deadline=NOW + timedelta(seconds=30))
    story.now = NOW + timedelta(seconds=30)

    assert "deadline" in failure(story, TaskFailureCode.DEADLINE_EXCEEDED).reason


def test_the_wall_time_limit_fails_the_task_as_deadline_exceeded() -> None:
    story = Story().submitted()
    story.infer(("get_balance", "{}"))
    story.now = NOW + timedelta(seconds=LIMITS.wall_seconds - 1)
    assert isinstance(story.step(), Propose)
    story.now = NOW + timedelta(seconds=LIMITS.wall_seconds)

    assert "wall-time" in failure(story, TaskFailureCode.DEADLINE_EXCEEDED).reason


def test_a_task_waiting_for_approval_still_ends_at_its_deadline() -> None:
    story, _, _ = awaiting_approval()
    story.now = NOW + timedelta(seconds=LIMITS.wall_seconds)

    failure(story, TaskFailureCode.DEADLINE_EXCEEDED)


# -- outcomes --------------------------------------------------------------------------------------


def test_an_answer_without_tool_calls_completes_the_task_with_hashes_and_total_cost() -> None:
    story = Story().submitted()
    action = story.write()
    story.agent = agent_state(reserved=[action])
    world = World(outcomes={request_id_of(action.action_id): TxOutcome(
        ok=True, tx_hash="0x" + "ef" * 32, block_number=5, detail="ok")})
    story.emit(world)
    story.infer(response="sent", cost="0.0025")

    done = only(story.emit(world), TaskCompleted)

    assert done.summary == "sent"
    assert done.tx_hashes == ("0x" + "ef" * 32,)
    assert done.inference_count == 2
    assert Decimal(done.total_cost_usd) == Decimal("0.0025")
    assert story.state.status == Status.COMPLETED
    assert story.step(world) == Wait("ended")


def test_total_cost_adds_every_inference_exactly() -> None:
    story = Story().submitted()
    story.infer(("get_balance", "{}"), cost="0.1")
    action = story.propose("erc20_balance", {"token": TOKEN, "holder": BOB})
    story.emit()
    story.record([ToolResultRecorded(meta=DRAFT, task_id=TASK, action_id=action.action_id,
                                     tool_call_id=action.tool_call_id, ok=True,
                                     result_json="{}", block_number=1, tx_hash=None)])
    story.infer(response="", cost="0.2")

    done = only(story.emit(), TaskCompleted)

    assert done.total_cost_usd == "0.3"  # not 0.30000000000000004
    assert done.summary == "done"


def test_a_task_has_exactly_one_outcome() -> None:
    story = Story().submitted()
    story.infer(response="nothing to do")
    story.emit()
    cancel = command(CancelTask, 7, task_id=TASK, reason="late")
    story.answer(cancel)

    outcomes = [e for e in story.events if isinstance(e, TaskCompleted | TaskFailed
                                                      | TaskCancelled)]
    assert len(outcomes) == 1


# -- evolve and ids -------------------------------------------------------------------------------


def test_evolve_ignores_an_event_at_or_below_the_states_sequence() -> None:
    story = Story().submitted()
    story.infer(("get_balance", "{}"))
    before = story.state

    for old in story.events:
        assert evolve(before, old) is before
    stale = dataclasses.replace(story.events[-1], meta=dataclasses.replace(
        story.events[-1].meta, event_id="x"))
    assert evolve(before, stale) is before


def test_evolve_starts_only_from_a_submission_or_a_rejection() -> None:
    story = Story().submitted()
    story.infer(("get_balance", "{}"))

    assert evolve(None, story.events[1]) is None
    assert evolve(None, story.events[0]).status == Status.SUBMITTED


def test_the_state_is_the_chains_head() -> None:
    story = Story().submitted()
    story.infer(("get_balance", "{}"))

    last = story.events[-1].meta
    assert (story.state.sequence, story.state.hash, story.state.last_event_id) == (
        last.sequence, last.hash, last.event_id)
    assert story.state.sequence == len(story.events)


def test_ids_are_derived_deterministically() -> None:
    inference = inference_id_of(TASK, 1)
    action = action_id_of(inference, 0)

    assert inference == inference_id_of(TASK, 1) == derived_id(f"inference:{TASK}", 1)
    assert inference != inference_id_of(TASK, 2)
    assert action == action_id_of(inference, 0) != action_id_of(inference, 1)
    assert request_id_of(action) == derived_id(action, 0) == request_id_of(action)
    assert len({inference, action, request_id_of(action)}) == 3


def test_next_step_names_the_derived_ids() -> None:
    story = Story().submitted()
    step = story.step()
    assert isinstance(step, Infer)
    assert step.inference_id == inference_id_of(TASK, 1)
    story.infer(("get_balance", "{}"))
    step = story.step()
    assert isinstance(step, Propose)
    assert step.action_id == action_id_of(inference_id_of(TASK, 1), 0)


@pytest.mark.parametrize("cls", [CancelTask, ApproveAction])
def test_commands_for_an_unknown_task_are_not_found(cls: type[Record]) -> None:
    fields: dict[str, Any] = {"task_id": TASK}
    fields.update({"reason": "r"} if cls is CancelTask else
                  {"action_id": "a", "approver": "key:boss", "action_hash": "0x" + "00" * 32})
    cmd = command(cls, 3, **fields)

    rejected(decide(None, cmd, None, NOW), RejectionCode.NOT_FOUND, cmd)


# -- a policy change between judgement and reservation -------------------------------------------


def test_a_write_judged_under_an_older_policy_is_judged_again_before_any_reservation() -> None:
    story = Story().submitted()
    action = story.write()  # ALLOW under version 1
    story.agent = agent_state(version=2, allowed_recipients=())

    again = only(story.emit(), PolicyEvaluated)

    assert (again.action_id, again.policy_version, again.verdict) == (
        action.action_id, 2, Verdict.DENY)
    assert "recipient_allowed" in failure(story, TaskFailureCode.POLICY_DENIED).reason


def test_a_write_still_allowed_by_the_new_policy_is_reserved_under_its_version() -> None:
    story = Story().submitted()
    action = story.write()
    story.agent = agent_state(version=2, max_value_wei=str(2 * ETHER))
    only(story.emit(), PolicyEvaluated)

    assert story.step() == Reserve(action, None, ETHER // 10, 2)


def test_a_new_judgement_voids_an_earlier_approval() -> None:
    story, action, approval = awaiting_approval()
    story.answer(command(ApproveAction, 3, task_id=TASK, action_id=action.action_id,
                         approver="key:boss", action_hash=approval.action_hash))
    story.agent = agent_state(version=2, approval_threshold_wei=str(ETHER // 10))

    evaluated, asked = story.emit()

    assert isinstance(evaluated, PolicyEvaluated)
    assert evaluated.verdict == Verdict.NEEDS_APPROVAL
    assert isinstance(asked, ApprovalRequested)
    assert story.state.status == Status.AWAITING_APPROVAL
    assert story.step() == Wait("approval")


@pytest.mark.parametrize(("limits", "deadline", "expected"), [
    (Limits(wall_seconds=7200, approval_seconds=60), None, 60),
    (Limits(wall_seconds=600, approval_seconds=3600), None, 600),
    (Limits(wall_seconds=7200, approval_seconds=3600), 90, 90),
])
def test_an_approval_never_outlives_the_task(limits: Limits, deadline: int | None,
                                             expected: int) -> None:
    story = Story().submitted(deadline=NOW + timedelta(seconds=deadline) if deadline else None)
    story.infer(("transfer_native", "{}"))
    story.propose("transfer_native", {"to": BOB, "value_wei": str(ETHER // 2)})
    story.agent = agent_state(approval_threshold_wei=str(ETHER // 10))

    _, approval = story.step(limits=limits).records

    assert approval.expires_at == NOW + timedelta(seconds=expected)
