"""The task aggregate: pure fold, command decisions and "what next" over one task's events.

    evolve(state, event)                      -> TaskState | None   folds omc.task.events.v1
    decide(state, command, agent, now)        -> [records]          SubmitTask, CancelTask,
                                                                     ApproveAction, RejectAction
    next_step(state, agent, world, now, limits) -> Step             what the runtime does next

Returned records carry `meta=DRAFT`: the runtime fills the envelope (derived ids, time,
tenant, actor, causation) and seals the chain. Nothing here reads a clock, draws a random
number or does I/O; `now` comes in, so the same inputs always give the same answer.

A task moves: TaskSubmitted → (InferenceRequested → InferenceCompleted → ActionProposed →
PolicyEvaluated → [ApprovalRequested → ActionApproved] → read result or budget + transaction
→ ToolResultRecorded)* → exactly one of TaskCompleted, TaskFailed, TaskCancelled (or a
CommandRejected instead of TaskSubmitted). Every accepted command is answered once: the ids
of commands already answered are part of the state.

A write is reserved only under the policy version that judged it: when the agent's policy has
changed since its PolicyEvaluated (the agent refuses a stale ReserveBudget), the action is
judged again (a new PolicyEvaluated, which also voids an earlier approval) before anything is
reserved.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from omc_domain.approval import action_hash, preview_json
from omc_domain.budget import used
from omc_domain.draft import DRAFT
from omc_domain.policy import PolicyFacts, evaluate
from omc_events.envelope import derived_id
from omc_events.record import Record
from omc_events.records import (
    Action,
    ActionApproved,
    ActionKind,
    ActionProposed,
    ActionRejected,
    ApprovalRequested,
    ApproveAction,
    CancelTask,
    CommandRejected,
    InferenceCompleted,
    InferenceFailed,
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
    ToolResultRecorded,
    Verdict,
)

RUNTIME = "svc:agent-runtime"


class Status(StrEnum):
    SUBMITTED = "submitted"
    RUNNING = "running"
    AWAITING_APPROVAL = "awaiting_approval"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED, Status.REJECTED})


@dataclass(frozen=True, slots=True)
class ActionState:
    """One proposed action and what has been decided and observed about it."""

    action: Action
    inference_id: str
    evaluation: PolicyEvaluated | None = None
    approval: ApprovalRequested | None = None
    decision: ActionApproved | ActionRejected | None = None
    result: ToolResultRecorded | None = None

    @property
    def cleared(self) -> bool:
        """May be executed: allowed outright, or approved by a human."""
        if self.evaluation is None:
            return False
        if self.evaluation.verdict == Verdict.ALLOW:
            return True
        return (self.evaluation.verdict == Verdict.NEEDS_APPROVAL
                and isinstance(self.decision, ActionApproved))


@dataclass(frozen=True, slots=True)
class InferenceState:
    requested: InferenceRequested
    completed: InferenceCompleted | None = None
    failed: InferenceFailed | None = None


@dataclass(frozen=True, slots=True)
class TaskState:
    """A task as folded from its events; `sequence`/`hash` are its chain head."""

    task_id: str
    tenant: str
    status: Status
    sequence: int
    hash: str
    last_event_id: str
    correlation_id: str
    submitted: TaskSubmitted | None = None
    inferences: tuple[InferenceState, ...] = ()
    actions: tuple[ActionState, ...] = ()
    answered: frozenset[str] = field(default_factory=frozenset)
    total_cost: Decimal = Decimal(0)
    tx_hashes: tuple[str, ...] = ()
    traceparent: str | None = None
    """The W3C trace context of the command that started the task: what the runtime does
    on its own for the task continues that trace."""

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def action(self, action_id: str) -> ActionState | None:
        return next((a for a in self.actions if a.action.action_id == action_id), None)


# -- evolve --------------------------------------------------------------------------------


def evolve(state: TaskState | None, event: Record) -> TaskState | None:
    """`state` after `event`. Events at or below the state's sequence are already folded in
    (a redelivery, or the runtime's own write read back) and change nothing."""
    meta = event.meta  # type: ignore[attr-defined]
    if state is not None and meta.sequence <= state.sequence:
        return state
    if state is None:
        if isinstance(event, TaskSubmitted):
            state = TaskState(task_id=event.task_id, tenant=meta.tenant, status=Status.SUBMITTED,
                              sequence=0, hash="", last_event_id="",
                              correlation_id=meta.correlation_id, submitted=event,
                              traceparent=meta.traceparent)
        elif isinstance(event, CommandRejected):
            state = TaskState(task_id=meta.aggregate_id, tenant=meta.tenant,
                              status=Status.REJECTED, sequence=0, hash="", last_event_id="",
                              correlation_id=meta.correlation_id)
        else:
            return None
    state = _apply(state, event)
    answered = state.answered
    if isinstance(event, _ANSWERS) and meta.causation_id:
        answered = answered | {meta.causation_id}
    return dataclasses.replace(state, sequence=meta.sequence, hash=meta.hash,
                               last_event_id=meta.event_id, answered=answered)


_ANSWERS = (TaskSubmitted, TaskCancelled, ActionApproved, ActionRejected, CommandRejected)
"""Events that answer a command: their causation_id is the command's id."""


def _apply(state: TaskState, event: Record) -> TaskState:
    replace = dataclasses.replace
    match event:
        case InferenceRequested():
            return replace(state, status=Status.RUNNING,
                           inferences=(*state.inferences, InferenceState(event)))
        case InferenceCompleted():
            return replace(state, inferences=_update_inference(state, event.inference_id,
                                                               completed=event),
                           total_cost=state.total_cost + Decimal(event.cost_usd))
        case InferenceFailed():
            return replace(state, inferences=_update_inference(state, event.inference_id,
                                                               failed=event))
        case ActionProposed():
            return replace(state, actions=(*state.actions,
                                           ActionState(event.action, event.inference_id)))
        case PolicyEvaluated():  # a new judgement (a newer policy) needs a new approval
            return replace(state, actions=_update_action(state, event.action_id,
                                                         evaluation=event, approval=None,
                                                         decision=None))
        case ApprovalRequested():
            return replace(state, status=Status.AWAITING_APPROVAL,
                           actions=_update_action(state, event.action_id, approval=event))
        case ActionApproved() | ActionRejected():
            return replace(state, status=Status.RUNNING,
                           actions=_update_action(state, event.action_id, decision=event))
        case ToolResultRecorded():
            hashes = state.tx_hashes + ((event.tx_hash,) if event.tx_hash and event.ok else ())
            return replace(state, tx_hashes=hashes,
                           actions=_update_action(state, event.action_id, result=event))
        case TaskCompleted():
            return replace(state, status=Status.COMPLETED)
        case TaskFailed():
            return replace(state, status=Status.FAILED)
        case TaskCancelled():
            return replace(state, status=Status.CANCELLED)
    return state


def _update_inference(state: TaskState, inference_id: str, **changes) -> tuple:
    return tuple(dataclasses.replace(i, **changes) if i.requested.inference_id == inference_id
                 else i for i in state.inferences)


def _update_action(state: TaskState, action_id: str, **changes) -> tuple:
    return tuple(dataclasses.replace(a, **changes) if a.action.action_id == action_id else a
                 for a in state.actions)


# -- decide (commands) ---------------------------------------------------------------------


def decide(state: TaskState | None, command: Record, agent, now: datetime) -> list[Record]:
    """The events answering a task command; [] when it was answered before.

    `agent` is the task's agent (an `omc_domain.agent.AgentState`) or None when unknown.
    """
    meta = command.meta  # type: ignore[attr-defined]
    if state is not None and meta.event_id in state.answered:
        return []
    if isinstance(command, SubmitTask):
        return _submit(state, command, agent)
    if state is None or state.tenant != meta.tenant or state.status == Status.REJECTED:
        return [_rejection(command, RejectionCode.NOT_FOUND, "no such task")]
    if isinstance(command, CancelTask):
        if state.terminal:
            return [_rejection(command, RejectionCode.INVALID_STATE,
                               f"the task has already ended ({state.status})")]
        return [TaskCancelled(meta=DRAFT, task_id=state.task_id, reason=command.reason,
                              cancelled_by=meta.actor)]
    if isinstance(command, ApproveAction | RejectAction):
        return _decide_approval(state, command, now)
    return [_rejection(command, RejectionCode.INVALID_STATE,
                       f"{meta.event_type} is not a task command")]


def _submit(state: TaskState | None, command: SubmitTask, agent) -> list[Record]:
    meta = command.meta
    if state is not None:
        return [_rejection(command, RejectionCode.DUPLICATE, "a task with this id exists")]
    if agent is None or agent.tenant != meta.tenant:
        return [_rejection(command, RejectionCode.NOT_FOUND,
                           f"no agent {command.agent_id} for this tenant")]
    if command.chain_id not in agent.policy.allowed_chain_ids:
        return [_rejection(command, RejectionCode.POLICY,
                           f"the agent's policy does not allow chain {command.chain_id}")]
    return [TaskSubmitted(meta=DRAFT, task_id=command.task_id, agent_id=command.agent_id,
                          instruction=command.instruction, chain_id=command.chain_id,
                          max_value_wei=command.max_value_wei, deadline=command.deadline,
                          metadata_json=command.metadata_json, submitted_by=meta.actor)]


def _decide_approval(state: TaskState, command: ApproveAction | RejectAction,
                     now: datetime) -> list[Record]:
    waiting = state.action(command.action_id)
    if (waiting is None or waiting.approval is None or waiting.decision is not None
            or state.terminal):
        return [_rejection(command, RejectionCode.INVALID_STATE,
                           f"action {command.action_id} is not waiting for approval")]
    if command.action_hash != waiting.approval.action_hash:
        return [_rejection(command, RejectionCode.INVALID_STATE,
                           f"the decision names action hash {command.action_hash}, but the "
                           f"action waiting is {waiting.approval.action_hash}")]
    expires = waiting.approval.expires_at
    if expires is not None and now >= expires:
        return [_rejection(command, RejectionCode.INVALID_STATE, "the approval has expired")]
    if isinstance(command, ApproveAction):
        return [ActionApproved(meta=DRAFT, task_id=state.task_id, action_id=command.action_id,
                               approver=command.approver, comment=command.comment,
                               action_hash=command.action_hash)]
    return [ActionRejected(meta=DRAFT, task_id=state.task_id, action_id=command.action_id,
                           approver=command.approver, reason=command.reason,
                           action_hash=command.action_hash)]


def _rejection(command: Record, code: RejectionCode, reason: str) -> CommandRejected:
    meta = command.meta  # type: ignore[attr-defined]
    return CommandRejected(meta=DRAFT, rejected_command_id=meta.event_id,
                           rejected_command_type=meta.event_type, code=code, reason=reason)


# -- next step -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds the runtime sets on every task (the policy bounds the number of inferences)."""

    wall_seconds: int = 600
    approval_seconds: int = 3600


@dataclass(frozen=True, slots=True)
class TxOutcome:
    """What the chain said about an action's transaction request."""

    ok: bool
    tx_hash: str | None
    block_number: int | None
    detail: str


@dataclass(frozen=True, slots=True)
class World:
    """What the task's owner knows from outside the task's chain: final outcomes of
    transaction requests by request id, and the actions the agent's budget refused."""

    outcomes: Mapping[str, TxOutcome] = field(default_factory=dict)
    exceeded: AbstractSet[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Emit:
    """Append these records (meta=DRAFT) to the task's chain, then ask again."""

    records: tuple[Record, ...]


@dataclass(frozen=True, slots=True)
class Infer:
    """Call the model for inference `inference_id` (step `step`); `requested` is the recorded
    InferenceRequested when intent was already recorded (then replay its prompt as is)."""

    inference_id: str
    step: int
    requested: InferenceRequested | None


@dataclass(frozen=True, slots=True)
class Propose:
    """Turn tool call number `index` of `inference` into an Action with id `action_id`."""

    inference: InferenceCompleted
    index: int
    action_id: str


@dataclass(frozen=True, slots=True)
class Read:
    """Run a cleared CONTRACT_READ-kind action against the chain and record its result."""

    action: Action


@dataclass(frozen=True, slots=True)
class Reserve:
    """Ask the agent's single writer to reserve budget for a cleared write and request its
    transaction (ReserveBudget); the answer comes back through the agent's events."""

    action: Action
    token: str | None
    amount_wei: int
    policy_version: int


@dataclass(frozen=True, slots=True)
class Release:
    """Give a reservation back (ReleaseBudget) because its transaction failed."""

    action_id: str


@dataclass(frozen=True, slots=True)
class Wait:
    """Nothing to do until an event, a decision or time changes something."""

    reason: str


Step = Emit | Infer | Propose | Read | Reserve | Release | Wait


def request_id_of(action_id: str) -> str:
    """The transaction request id of an action (deterministic: a retry is the same request)."""
    return derived_id(action_id, 0)


def inference_id_of(task_id: str, step: int) -> str:
    return derived_id(f"inference:{task_id}", step)


def action_id_of(inference_id: str, index: int) -> str:
    return derived_id(f"action:{inference_id}", index)


def next_step(state: TaskState, agent, world: World, now: datetime, limits: Limits) -> Step:
    """What the runtime should do next for this task. `agent` is the agent's state
    (`omc_domain.agent.AgentState`: policy, budget reservations) or None when unknown."""
    if state.terminal:
        return _after_end(state, agent, world)
    submitted = state.submitted
    assert submitted is not None  # a task that is not terminal was submitted
    over = _over_time(state, now, limits)
    if over:
        return Emit((_failed(state, TaskFailureCode.DEADLINE_EXCEEDED, over),))
    current = next((a for a in state.actions if a.result is None), None)
    if current is not None:
        return _action_step(state, current, agent, world, now, limits)
    return _inference_step(state, agent)


def _over_time(state: TaskState, now: datetime, limits: Limits) -> str | None:
    submitted = state.submitted
    if submitted.deadline is not None and now >= submitted.deadline:
        return f"the deadline {submitted.deadline.isoformat()} passed"
    started = submitted.meta.occurred_at
    if now - started >= timedelta(seconds=limits.wall_seconds):
        return f"the task ran longer than its wall-time limit of {limits.wall_seconds} s"
    return None


def _after_end(state: TaskState, agent, world: World) -> Step:
    if agent is None:
        return Wait("ended")
    for reservation in agent.reservations:
        if reservation.task_id != state.task_id or reservation.released:
            continue
        found = world.outcomes.get(request_id_of(reservation.action_id))
        if found is not None and not found.ok:
            return Release(reservation.action_id)
    return Wait("ended")


def _inference_step(state: TaskState, agent) -> Step:
    last = state.inferences[-1] if state.inferences else None
    if last is not None and last.completed is None and last.failed is None:
        return Infer(last.requested.inference_id, last.requested.step, last.requested)
    if last is not None and last.failed is not None:
        return Emit((_failed(state, TaskFailureCode.INFERENCE_FAILED,
                             f"the model call failed: {last.failed.error_type}: "
                             f"{last.failed.error_message}"),))
    if last is not None and last.completed is not None:
        completed = last.completed
        proposed = [a for a in state.actions if a.inference_id == completed.inference_id]
        if not completed.tool_calls:
            return Emit((TaskCompleted(meta=DRAFT, task_id=state.task_id,
                                       summary=completed.response or "done",
                                       tx_hashes=state.tx_hashes,
                                       inference_count=len(state.inferences),
                                       total_cost_usd=_money(state.total_cost)),))
        if len(proposed) < len(completed.tool_calls):
            index = len(proposed)
            return Propose(completed, index, action_id_of(completed.inference_id, index))
    limit = agent.policy.max_inferences_per_task if agent is not None else 0
    if len(state.inferences) >= limit:
        return Emit((_failed(state, TaskFailureCode.STEP_LIMIT,
                             f"the task reached its limit of {limit} model calls"),))
    step = len(state.inferences) + 1
    return Infer(inference_id_of(state.task_id, step), step, None)


def _action_step(state: TaskState, current: ActionState, agent, world: World,
                 now: datetime, limits: Limits) -> Step:
    action = current.action
    if current.evaluation is None:
        return Emit(_evaluate(state, current, agent, now, limits))
    verdict = current.evaluation.verdict
    if verdict == Verdict.DENY:
        failed = [r for r in current.evaluation.rules if not r.passed]
        detail = "; ".join(f"{r.rule}: {r.detail}" for r in failed) or "denied"
        return Emit((_failed(state, TaskFailureCode.POLICY_DENIED,
                             f"policy denied action {action.action_id}: {detail}"),))
    if isinstance(current.decision, ActionRejected):
        return Emit((_failed(state, TaskFailureCode.ACTION_REJECTED,
                             f"action {action.action_id} was rejected: "
                             f"{current.decision.reason}"),))
    if not current.cleared:
        expires = current.approval.expires_at if current.approval else None
        if expires is not None and now >= expires:
            return Emit((ActionRejected(meta=DRAFT, task_id=state.task_id,
                                        action_id=action.action_id, approver=RUNTIME,
                                        reason="the approval expired",
                                        action_hash=current.approval.action_hash),))
        return Wait("approval")
    if action.kind == ActionKind.CONTRACT_READ:
        return Read(action)
    reservation = _reservation(agent, action.action_id)
    if reservation is None:
        if action.action_id in world.exceeded:
            return Emit((_failed(state, TaskFailureCode.BUDGET_EXCEEDED,
                                 f"the agent's budget does not cover action "
                                 f"{action.action_id}"),))
        if current.evaluation.policy_version != agent.policy.version:
            return Emit(_evaluate(state, current, agent, now, limits))  # judged again
        judged = evaluate(agent.policy, action, _facts(state, agent, now, exclude=action))
        amount = judged.token_amount if judged.token else judged.amount_wei
        return Reserve(action, judged.token, amount, agent.policy.version)
    found = world.outcomes.get(request_id_of(action.action_id))
    if found is None:
        return Wait("transaction")
    result = ToolResultRecorded(
        meta=DRAFT, task_id=state.task_id, action_id=action.action_id,
        tool_call_id=action.tool_call_id, ok=found.ok,
        result_json=json.dumps({"detail": found.detail, "ok": found.ok,
                                "tx_hash": found.tx_hash}, sort_keys=True,
                               separators=(",", ":")),
        block_number=found.block_number, tx_hash=found.tx_hash)
    if found.ok:
        return Emit((result,))
    return Emit((result, _failed(state, TaskFailureCode.TX_FAILED,
                                 f"the transaction of action {action.action_id} failed: "
                                 f"{found.detail}")))


def _evaluate(state: TaskState, current: ActionState, agent, now: datetime,
              limits: Limits) -> tuple[Record, ...]:
    action = current.action
    if agent is None:
        return (_failed(state, TaskFailureCode.INTERNAL, "the task's agent is unknown"),)
    judged = evaluate(agent.policy, action, _facts(state, agent, now, exclude=action))
    evaluated = PolicyEvaluated(meta=DRAFT, task_id=state.task_id, action_id=action.action_id,
                                agent_id=agent.agent_id, policy_version=agent.policy.version,
                                verdict=judged.verdict, rules=judged.rules)
    if judged.verdict != Verdict.NEEDS_APPROVAL:
        return (evaluated,)
    threshold = agent.policy.approval_threshold_wei
    approval = ApprovalRequested(
        meta=DRAFT, task_id=state.task_id, action_id=action.action_id,
        value_wei=action.value_wei, approval_threshold_wei=threshold,
        policy_version=agent.policy.version,
        reason=f"value {action.value_wei} wei is above the approval threshold {threshold} wei",
        expires_at=_approval_expiry(state, now, limits),
        action_hash=action_hash(action),
        preview_json=preview_json(action, agent.policy.max_fee_per_gas_wei))
    return (evaluated, approval)


def _approval_expiry(state: TaskState, now: datetime, limits: Limits) -> datetime:
    """When an approval asked now stops counting: after approval_seconds, but never later
    than the task itself may run (its wall-time limit, its deadline), so the time an approver
    is shown is the time they really have."""
    submitted = state.submitted
    ends = [now + timedelta(seconds=limits.approval_seconds),
            submitted.meta.occurred_at + timedelta(seconds=limits.wall_seconds)]
    if submitted.deadline is not None:
        ends.append(submitted.deadline)
    return min(ends)


def _facts(state: TaskState, agent, now: datetime, exclude: Action) -> PolicyFacts:
    policy = agent.policy
    committed = sum(int(a.action.value_wei) for a in state.actions
                    if a.cleared and a.action.action_id != exclude.action_id)
    mine = [r for r in agent.reservations if r.action_id != exclude.action_id]
    tokens = {limit.token: used(mine, limit.token, now, policy.budget_window_seconds)
              for limit in policy.token_limits}
    return PolicyFacts(
        task_chain_id=state.submitted.chain_id,
        task_max_value_wei=(int(state.submitted.max_value_wei)
                            if state.submitted.max_value_wei is not None else None),
        task_committed_wei=committed,
        budget_used_wei=used(mine, None, now, policy.budget_window_seconds),
        token_budget_used=tokens, fee_cap_hint_wei=None)


def _reservation(agent, action_id: str):
    if agent is None:
        return None
    return next((r for r in agent.reservations if r.action_id == action_id), None)


def _failed(state: TaskState, code: TaskFailureCode, reason: str) -> TaskFailed:
    return TaskFailed(meta=DRAFT, task_id=state.task_id, code=code, reason=reason)


def _money(amount: Decimal) -> str:
    text = format(amount, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"
