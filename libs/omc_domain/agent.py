"""The agent aggregate: identity, policy and rolling budgets. Pure `decide` / `evolve`.

    evolve(state | None, event) -> AgentState | None
    decide(state | None, command, now) -> list[Record]      (each with meta = DRAFT)

Events folded (omc.agent.events.v1): AgentRegistered, PolicySet, BudgetReserved,
BudgetExceeded (no change), BudgetReleased; anything else leaves the state as it is.

Commands answered (omc.commands.v1, key agent_id; `now` is the command's event time):

    RegisterAgent   -> AgentRegistered | CommandRejected DUPLICATE (id taken) or INVALID_STATE
                       (policy.version is not 1)
    SetPolicy       -> PolicySet(previous_version) | CommandRejected NOT_FOUND or
                       INVALID_STATE (policy.version is not the current version + 1)
    ReserveBudget   -> [BudgetReserved, TxRequested] when the window has room (native value
                       and, for a token, the token's budget), else [BudgetExceeded];
                       [] for an action already reserved (idempotent);
                       CommandRejected FORBIDDEN unless meta.actor is svc:agent-runtime,
                       NOT_FOUND for an unknown agent, INVALID_STATE for a CONTRACT_READ, a
                       policy_version that is not the current one (judged by a stale policy),
                       or an amount / token that does not match the action
    ReleaseBudget   -> BudgetReleased for a live reservation, [] otherwise;
                       CommandRejected FORBIDDEN / NOT_FOUND as above

A command whose meta.tenant is not the agent's tenant is answered CommandRejected NOT_FOUND,
whatever it is (a RegisterAgent too): one tenant never learns about another's agent.
Budgets are checked against the *current* policy's budget_wei / token_limits over the window
ending at `now` (see `budget.used`). The agent's single writer (its partition) answers one
command at a time, so concurrent tasks cannot overspend.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from omc_domain import budget
from omc_domain.draft import DRAFT
from omc_events.envelope import derived_id
from omc_events.record import Record
from omc_events.records import (
    ActionKind,
    AgentRegistered,
    BudgetExceeded,
    BudgetReleased,
    BudgetReserved,
    CommandRejected,
    Policy,
    PolicySet,
    RegisterAgent,
    RejectionCode,
    ReleaseBudget,
    ReserveBudget,
    SetPolicy,
    TxPurpose,
    TxRequested,
)

RUNTIME_ACTOR = "svc:agent-runtime"
"""The only actor whose ReserveBudget / ReleaseBudget commands are obeyed."""


@dataclass(frozen=True, slots=True)
class AgentState:
    """An agent as its events made it."""

    agent_id: str
    tenant: str
    name: str
    signer_address: str
    model: str
    parameters_json: str | None
    policy: Policy
    reservations: tuple[budget.Reservation, ...] = ()

    def reservation(self, action_id: str) -> budget.Reservation | None:
        return next((r for r in self.reservations if r.action_id == action_id), None)


# -- evolve ------------------------------------------------------------------------------------


def evolve(state: AgentState | None, event: Record) -> AgentState | None:
    """The state after `event`; events it does not know, or that come before the agent
    exists, change nothing."""
    if isinstance(event, AgentRegistered):
        if state is not None:
            return state
        return AgentState(agent_id=event.agent_id, tenant=event.meta.tenant, name=event.name,
                          signer_address=event.signer_address, model=event.model,
                          parameters_json=event.parameters_json, policy=event.policy)
    if state is None:
        return None
    if isinstance(event, PolicySet):
        return replace(state, policy=event.policy)
    if isinstance(event, BudgetReserved):
        if state.reservation(event.action_id) is not None:
            return state
        reservation = budget.Reservation(
            action_id=event.action_id, task_id=event.task_id, token=event.token,
            amount=int(event.amount_wei), at=event.meta.occurred_at)
        return replace(state, reservations=(*state.reservations, reservation))
    if isinstance(event, BudgetReleased):
        return replace(state, reservations=tuple(
            replace(r, released=True) if r.action_id == event.action_id else r
            for r in state.reservations))
    return state  # BudgetExceeded, CommandRejected, anything newer: no change


# -- decide ------------------------------------------------------------------------------------


def decide(state: AgentState | None, command: Record, now: datetime) -> list[Record]:
    """What the agent's single writer records in answer to `command` (meta = DRAFT)."""
    if state is not None and command.meta.tenant != state.tenant:  # type: ignore[attr-defined]
        return [_rejected(command, RejectionCode.NOT_FOUND,
                          f"no agent {state.agent_id} in this tenant")]
    if isinstance(command, RegisterAgent):
        return _register(state, command)
    if isinstance(command, SetPolicy):
        return _set_policy(state, command)
    if isinstance(command, ReserveBudget):
        return _reserve(state, command, now)
    if isinstance(command, ReleaseBudget):
        return _release(state, command)
    raise TypeError(f"not a command of the agent aggregate: {type(command).__name__}")


def _register(state: AgentState | None, c: RegisterAgent) -> list[Record]:
    if state is not None:
        return [_rejected(c, RejectionCode.DUPLICATE, f"agent {c.agent_id} already exists")]
    if c.policy.version != 1:
        return [_rejected(c, RejectionCode.INVALID_STATE,
                          f"a new agent's policy is version 1, not {c.policy.version}")]
    return [AgentRegistered(meta=DRAFT, agent_id=c.agent_id, name=c.name,
                            description=c.description, signer_address=c.signer_address,
                            model=c.model, parameters_json=c.parameters_json, policy=c.policy)]


def _set_policy(state: AgentState | None, c: SetPolicy) -> list[Record]:
    if state is None:
        return [_rejected(c, RejectionCode.NOT_FOUND, f"no agent {c.agent_id}")]
    current = state.policy.version
    if c.policy.version != current + 1:
        return [_rejected(c, RejectionCode.INVALID_STATE,
                          f"policy version {c.policy.version} is not the current version "
                          f"{current} + 1 (someone changed it first)")]
    return [PolicySet(meta=DRAFT, agent_id=c.agent_id, policy=c.policy,
                      previous_version=current)]


def _reserve(state: AgentState | None, c: ReserveBudget, now: datetime) -> list[Record]:
    refused = _internal(state, c)
    if refused is not None:
        return refused
    assert state is not None
    if state.reservation(c.action_id) is not None:
        return []
    problem = _mismatch(state, c)
    if problem is not None:
        return [_rejected(c, RejectionCode.INVALID_STATE, problem)]
    policy = state.policy
    window = policy.budget_window_seconds
    start = budget.window_start(now, window)
    token, amount = c.token, int(c.amount_wei)
    cap = _int(policy.budget_wei) if token is None else _token_budget(policy, token)
    before = budget.used(state.reservations, token, now, window)
    if amount > 0 and before + amount > cap:
        return [BudgetExceeded(
            meta=DRAFT, agent_id=state.agent_id, task_id=c.task_id, action_id=c.action_id,
            amount_wei=str(amount), window_start=start, window_end=now,
            reserved_total_wei=str(before), budget_wei=str(cap), policy_version=policy.version,
            token=token)]
    total = before + amount
    action = c.action
    return [
        BudgetReserved(meta=DRAFT, agent_id=state.agent_id, task_id=c.task_id,
                       action_id=c.action_id, amount_wei=str(amount), window_start=start,
                       window_end=now, reserved_total_wei=str(total), budget_wei=str(cap),
                       policy_version=policy.version, token=token),
        TxRequested(meta=DRAFT, request_id=derived_id(c.action_id, 0), task_id=c.task_id,
                    action_id=c.action_id, purpose=TxPurpose.ACTION, chain_id=action.chain_id,
                    sender=state.signer_address, to=action.to, value_wei=action.value_wei,
                    data=action.data, gas_limit=None,
                    max_fee_per_gas_cap_wei=policy.max_fee_per_gas_wei),
    ]


def _release(state: AgentState | None, c: ReleaseBudget) -> list[Record]:
    refused = _internal(state, c)
    if refused is not None:
        return refused
    assert state is not None
    reservation = state.reservation(c.action_id)
    if reservation is None or reservation.released:
        return []
    return [BudgetReleased(meta=DRAFT, agent_id=state.agent_id, task_id=reservation.task_id,
                           action_id=c.action_id, amount_wei=str(reservation.amount),
                           reason=c.reason, token=reservation.token)]


def _internal(state: AgentState | None, c: ReserveBudget | ReleaseBudget) -> list[Record] | None:
    """The refusal of an internal command from the wrong actor or for no agent, or None."""
    if c.meta.actor != RUNTIME_ACTOR:
        return [_rejected(c, RejectionCode.FORBIDDEN,
                          f"only {RUNTIME_ACTOR} may reserve or release budget")]
    if state is None:
        return [_rejected(c, RejectionCode.NOT_FOUND, f"no agent {c.agent_id}")]
    return None


def _mismatch(state: AgentState, c: ReserveBudget) -> str | None:
    """Why a ReserveBudget cannot be taken as it is, or None."""
    action = c.action
    if action.action_id != c.action_id:
        return f"action_id {c.action_id} is not the action's {action.action_id}"
    if action.kind == ActionKind.CONTRACT_READ:
        return "a contract read reserves no budget and sends no transaction"
    if c.policy_version != state.policy.version:
        return (f"the action was judged by policy version {c.policy_version}, the agent's "
                f"policy is now version {state.policy.version}: evaluate it again")
    if not (_is_wei(c.amount_wei) and _is_wei(action.value_wei)):
        return "amount_wei and the action's value_wei must be decimal integers"
    if c.token is None and c.amount_wei != action.value_wei:
        return f"amount_wei {c.amount_wei} is not the action's value {action.value_wei}"
    if c.token is not None and action.value_wei != "0":
        return f"a token action carries no native value, not {action.value_wei}"
    if c.token is not None and c.token.lower() != action.to.lower():
        return f"token {c.token} is not the contract the action calls ({action.to})"
    return None


def _token_budget(policy: Policy, token: str) -> int:
    caps = [_int(limit.budget_amount) for limit in policy.token_limits
            if limit.token.lower() == token.lower()]
    return min(caps) if caps else 0


def _is_wei(text: str) -> bool:
    return isinstance(text, str) and text.isascii() and text.isdigit() and \
        (text == "0" or not text.startswith("0"))


def _int(text: str) -> int:
    return int(text) if _is_wei(text) else 0


def _rejected(command: Record, code: RejectionCode, reason: str) -> CommandRejected:
    meta = command.meta  # type: ignore[attr-defined]
    return CommandRejected(meta=DRAFT, rejected_command_id=meta.event_id,
                           rejected_command_type=meta.event_type, code=code, reason=reason)
