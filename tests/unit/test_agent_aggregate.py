"""The agent aggregate: registration, policy versions, budget reservations (native and token),
releases, idempotency, the window, tenant isolation; drafts become valid records."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from omc_domain.agent import RUNTIME_ACTOR, AgentState, decide, evolve
from omc_domain.draft import DRAFT, is_draft
from omc_events.avro import Schemas
from omc_events.envelope import ZERO_HASH, derived_id
from omc_events.record import Record
from omc_events.records import (
    Action,
    ActionKind,
    AgentRegistered,
    BudgetExceeded,
    BudgetReleased,
    BudgetReleaseReason,
    BudgetReserved,
    CommandRejected,
    EventMeta,
    PolicySet,
    RegisterAgent,
    RejectionCode,
    ReleaseBudget,
    ReserveBudget,
    SetPolicy,
    TokenLimit,
    TxPurpose,
    TxRequested,
)
from tests.unit.test_policy import BOB, TOKEN, calldata, make_policy

AGENT = "9b2f6c1e-8d4a-4f3b-9c2d-1a2b3c4d5e6f"
TASK = "0a1b2c3d-4e5f-4061-8293-a4b5c6d7e8f9"
SIGNER = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
HOUR = 3600
SCHEMAS = Schemas()


def meta(event_type: str, *, n: int = 0, tenant: str = "acme", actor: str = RUNTIME_ACTOR,
         at: datetime = NOW) -> EventMeta:
    event_id = derived_id("test", n)
    return EventMeta(event_id=event_id, event_type=event_type, schema_version=1,
                     aggregate_type="agent", aggregate_id=AGENT, sequence=0, occurred_at=at,
                     tenant=tenant, actor=actor, correlation_id=event_id, prev_hash=ZERO_HASH,
                     hash="")


def register(*, tenant: str = "acme", version: int = 1, **policy: Any) -> RegisterAgent:
    return RegisterAgent(meta=meta(RegisterAgent.SCHEMA, tenant=tenant, actor="key:k1"),
                         agent_id=AGENT, name="payer", description="pays", signer_address=SIGNER,
                         model="omc-local-planner", parameters_json='{"temperature":0}',
                         policy=make_policy(version=version, budget_wei="1000",
                                            budget_window_seconds=HOUR, **policy))


def action_id(n: int) -> str:
    return derived_id("action", n)


def native(n: int, value: int) -> Action:
    return Action(action_id=action_id(n), kind=ActionKind.NATIVE_TRANSFER, chain_id=31337,
                  to=BOB, value_wei=str(value), data="0x", arguments_json="{}")


def token_transfer(n: int, amount: int) -> Action:
    return Action(action_id=action_id(n), kind=ActionKind.ERC20_TRANSFER, chain_id=31337,
                  to=TOKEN, value_wei="0", data=calldata("0xa9059cbb", BOB, amount),
                  function_signature="transfer(address,uint256)", arguments_json="{}")


def reserve(a: Action, *, token: str | None = None, amount: int | None = None,
            tenant: str = "acme", actor: str = RUNTIME_ACTOR, policy_version: int = 1,
            n: int = 1) -> ReserveBudget:
    return ReserveBudget(meta=meta(ReserveBudget.SCHEMA, n=n, tenant=tenant, actor=actor),
                         agent_id=AGENT, task_id=TASK, action_id=a.action_id, action=a,
                         token=token, amount_wei=str(a.value_wei if amount is None else amount),
                         policy_version=policy_version)


def release(n: int, *, tenant: str = "acme", actor: str = RUNTIME_ACTOR) -> ReleaseBudget:
    return ReleaseBudget(meta=meta(ReleaseBudget.SCHEMA, n=90 + n, tenant=tenant, actor=actor),
                         agent_id=AGENT, task_id=TASK, action_id=action_id(n),
                         reason=BudgetReleaseReason.TX_FAILED)


def stamped(record: Record, at: datetime, n: int = 50) -> Record:
    """What the shell does to a draft: fill the envelope (here, only what evolve reads)."""
    return dataclasses.replace(record, meta=meta(record.SCHEMA, n=n, at=at))  # type: ignore


def run(state: AgentState | None, command: Record, now: datetime = NOW) -> tuple[
        AgentState | None, list[Record]]:
    out = decide(state, command, now)
    for i, record in enumerate(out):
        state = evolve(state, stamped(record, now, i))
    return state, out


def registered(**policy: Any) -> AgentState:
    state, _ = run(None, register(**policy))
    assert state is not None
    return state


def history(state: AgentState, commands: Iterable[tuple[Record, datetime]]) -> AgentState:
    for command, at in commands:
        state, _ = run(state, command, at)  # type: ignore[assignment]
    return state


def rejection(out: list[Record], code: RejectionCode, command: Record) -> str:
    (only,) = out
    assert isinstance(only, CommandRejected)
    assert only.code == code
    assert only.rejected_command_id == command.meta.event_id  # type: ignore[attr-defined]
    assert only.rejected_command_type == command.SCHEMA
    assert is_draft(only)
    return only.reason


# -- registration and policy ------------------------------------------------------------------


def test_register_gives_an_agent_registered_draft_and_a_state() -> None:
    command = register()

    state, (event,) = run(None, command)

    assert isinstance(event, AgentRegistered)
    assert event.meta is DRAFT
    assert (event.agent_id, event.name, event.signer_address, event.policy) == (
        AGENT, "payer", SIGNER, command.policy)
    assert state == AgentState(agent_id=AGENT, tenant="acme", name="payer",
                               signer_address=SIGNER, model="omc-local-planner",
                               parameters_json='{"temperature":0}', policy=command.policy)


def test_register_twice_is_a_duplicate() -> None:
    command = register()

    assert "already exists" in rejection(decide(registered(), command, NOW),
                                         RejectionCode.DUPLICATE, command)


def test_a_first_policy_must_be_version_one() -> None:
    command = register(version=2)

    rejection(decide(None, command, NOW), RejectionCode.INVALID_STATE, command)


def test_set_policy_bumps_the_version_and_names_the_previous_one() -> None:
    command = SetPolicy(meta=meta(SetPolicy.SCHEMA, actor="key:k1"), agent_id=AGENT,
                        policy=make_policy(version=2))

    state, (event,) = run(registered(), command)

    assert isinstance(event, PolicySet)
    assert (event.previous_version, event.policy.version) == (1, 2)
    assert state is not None
    assert state.policy.version == 2


@pytest.mark.parametrize("version", [1, 3])
def test_set_policy_with_a_stale_or_skipped_version_is_refused(version: int) -> None:
    command = SetPolicy(meta=meta(SetPolicy.SCHEMA), agent_id=AGENT,
                        policy=make_policy(version=version))

    rejection(decide(registered(), command, NOW), RejectionCode.INVALID_STATE, command)


def test_set_policy_of_no_agent_is_not_found() -> None:
    command = SetPolicy(meta=meta(SetPolicy.SCHEMA), agent_id=AGENT, policy=make_policy(version=2))

    rejection(decide(None, command, NOW), RejectionCode.NOT_FOUND, command)


# -- reserving --------------------------------------------------------------------------------


def test_a_reservation_sets_budget_aside_and_requests_the_transaction() -> None:
    a = native(1, 400)

    state, (reserved, requested) = run(registered(), reserve(a))

    assert isinstance(reserved, BudgetReserved)
    assert (reserved.action_id, reserved.task_id, reserved.token) == (a.action_id, TASK, None)
    assert (reserved.amount_wei, reserved.reserved_total_wei, reserved.budget_wei) == (
        "400", "400", "1000")
    assert (reserved.window_start, reserved.window_end) == (NOW - timedelta(hours=1), NOW)
    assert reserved.policy_version == 1
    assert isinstance(requested, TxRequested)
    assert requested == TxRequested(
        meta=DRAFT, request_id=derived_id(a.action_id, 0), task_id=TASK, action_id=a.action_id,
        purpose=TxPurpose.ACTION, chain_id=31337, sender=SIGNER, to=BOB, value_wei="400",
        data="0x", gas_limit=None, max_fee_per_gas_cap_wei=make_policy().max_fee_per_gas_wei)
    assert state is not None
    assert [(r.action_id, r.amount, r.at, r.released) for r in state.reservations] == [
        (a.action_id, 400, NOW, False)]


def test_reserving_the_same_action_again_records_nothing() -> None:
    a = native(1, 400)
    state, _ = run(registered(), reserve(a))

    assert decide(state, reserve(a, n=2), NOW + timedelta(seconds=5)) == []


def test_the_budget_refuses_what_would_go_over_and_requests_no_transaction() -> None:
    state = history(registered(), [(reserve(native(1, 600)), NOW)])
    a = native(2, 401)

    out = decide(state, reserve(a), NOW + timedelta(seconds=1))

    (exceeded,) = out
    assert isinstance(exceeded, BudgetExceeded)
    assert (exceeded.amount_wei, exceeded.reserved_total_wei, exceeded.budget_wei) == (
        "401", "600", "1000")
    assert exceeded.token is None
    assert not any(isinstance(r, TxRequested) for r in out)


def test_the_budget_full_to_the_wei_is_allowed() -> None:
    state = history(registered(), [(reserve(native(1, 600)), NOW)])

    out = decide(state, reserve(native(2, 400)), NOW)

    assert [type(r) for r in out] == [BudgetReserved, TxRequested]
    assert out[0].reserved_total_wei == "1000"  # type: ignore[attr-defined]


def test_a_reservation_exactly_one_window_old_no_longer_counts() -> None:
    state = history(registered(), [(reserve(native(1, 1000)), NOW)])

    just_inside = decide(state, reserve(native(2, 1)), NOW + timedelta(seconds=HOUR - 1))
    at_the_edge = decide(state, reserve(native(2, 1)), NOW + timedelta(seconds=HOUR))

    assert [type(r) for r in just_inside] == [BudgetExceeded]
    assert [type(r) for r in at_the_edge] == [BudgetReserved, TxRequested]


def test_a_release_gives_the_budget_back_once() -> None:
    state = history(registered(), [(reserve(native(1, 1000)), NOW)])

    state, (released,) = run(state, release(1))
    again = decide(state, release(1), NOW)

    assert isinstance(released, BudgetReleased)
    assert (released.action_id, released.amount_wei, released.token, released.reason) == (
        action_id(1), "1000", None, BudgetReleaseReason.TX_FAILED)
    assert again == []
    assert [type(r) for r in decide(state, reserve(native(2, 1000)), NOW)] == [
        BudgetReserved, TxRequested]
    assert decide(state, reserve(native(1, 1000), n=7), NOW) == []  # still idempotent


def test_releasing_what_was_never_reserved_records_nothing() -> None:
    assert decide(registered(), release(5), NOW) == []


def test_a_token_reservation_uses_the_tokens_budget_not_the_native_one() -> None:
    state = registered(token_limits=(TokenLimit(token=TOKEN, max_amount="100",
                                                budget_amount="150"),))
    state = history(state, [(reserve(native(1, 1000)), NOW)])  # native budget exhausted

    state, out = run(state, reserve(token_transfer(2, 100), token=TOKEN, amount=100))
    over = decide(state, reserve(token_transfer(3, 51), token=TOKEN.lower(), amount=51), NOW)

    reserved, requested = out
    assert isinstance(reserved, BudgetReserved)
    assert (reserved.token, reserved.amount_wei, reserved.budget_wei) == (TOKEN, "100", "150")
    assert isinstance(requested, TxRequested)
    assert (requested.to, requested.value_wei, requested.data) == (
        TOKEN, "0", token_transfer(2, 100).data)
    (exceeded,) = over
    assert isinstance(exceeded, BudgetExceeded)
    assert (exceeded.reserved_total_wei, exceeded.budget_wei) == ("100", "150")


def test_a_token_without_a_limit_has_no_budget() -> None:
    state = registered(token_limits=())

    (exceeded,) = decide(state, reserve(token_transfer(1, 1), token=TOKEN, amount=1), NOW)

    assert isinstance(exceeded, BudgetExceeded)
    assert exceeded.budget_wei == "0"


def test_a_token_release_names_the_token() -> None:
    state = registered(token_limits=(TokenLimit(token=TOKEN, max_amount="9", budget_amount="9"),))
    state = history(state, [(reserve(token_transfer(1, 9), token=TOKEN, amount=9), NOW)])

    (released,) = decide(state, release(1), NOW)

    assert isinstance(released, BudgetReleased)
    assert (released.token, released.amount_wei) == (TOKEN, "9")


@pytest.mark.parametrize(("command", "words"), [
    (reserve(native(1, 10), policy_version=2), "policy version"),
    (reserve(native(1, 10), amount=5), "not the action's value"),
    (reserve(token_transfer(1, 5), token="0x" + "22" * 20, amount=5), "not the contract"),
    (reserve(Action(action_id=action_id(1), kind=ActionKind.CONTRACT_READ, chain_id=31337,
                    to=TOKEN, value_wei="0", data="0x70a08231", arguments_json="{}")),
     "contract read"),
])
def test_a_reservation_that_does_not_match_its_action_or_policy_is_refused(
        command: ReserveBudget, words: str) -> None:
    assert words in rejection(decide(registered(), command, NOW), RejectionCode.INVALID_STATE,
                              command)


@pytest.mark.parametrize("command", [reserve(native(1, 10), actor="key:k1"),
                                     release(1, actor="svc:gateway")])
def test_only_the_runtime_may_reserve_or_release(command: Record) -> None:
    rejection(decide(registered(), command, NOW), RejectionCode.FORBIDDEN, command)


@pytest.mark.parametrize("command", [reserve(native(1, 10)), release(1)])
def test_internal_commands_for_no_agent_are_not_found(command: Record) -> None:
    rejection(decide(None, command, NOW), RejectionCode.NOT_FOUND, command)


# -- tenants ----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [
    register(tenant="globex"),
    SetPolicy(meta=meta(SetPolicy.SCHEMA, tenant="globex"), agent_id=AGENT,
              policy=make_policy(version=2)),
    reserve(native(1, 10), tenant="globex"),
    release(1, tenant="globex"),
], ids=["register", "set-policy", "reserve", "release"])
def test_another_tenant_never_sees_the_agent(command: Record) -> None:
    state = history(registered(), [(reserve(native(1, 10)), NOW)])

    reason = rejection(decide(state, command, NOW), RejectionCode.NOT_FOUND, command)

    assert "payer" not in reason
    assert SIGNER not in reason


# -- evolve and drafts ------------------------------------------------------------------------


def test_events_before_registration_and_unknown_events_change_nothing() -> None:
    state = registered()
    exceeded = BudgetExceeded(meta=meta(BudgetExceeded.SCHEMA), agent_id=AGENT, task_id=TASK,
                              action_id=action_id(1), amount_wei="1", window_start=NOW,
                              window_end=NOW, reserved_total_wei="0", budget_wei="0",
                              policy_version=1)

    assert evolve(None, exceeded) is None
    assert evolve(state, exceeded) is state
    assert evolve(state, stamped(register(), NOW)) is state


def test_every_draft_becomes_a_valid_record_once_the_shell_fills_its_envelope() -> None:
    state = registered(token_limits=(TokenLimit(token=TOKEN, max_amount="9", budget_amount="9"),))
    drafts = [
        *decide(None, register(), NOW),
        *decide(state, SetPolicy(meta=meta(SetPolicy.SCHEMA), agent_id=AGENT,
                                 policy=make_policy(version=2)), NOW),
        *decide(state, reserve(native(1, 10)), NOW),
        *decide(state, reserve(token_transfer(2, 9), token=TOKEN, amount=9), NOW),
        *decide(state, reserve(native(3, 5000)), NOW),
        *decide(history(state, [(reserve(native(1, 10)), NOW)]), release(1), NOW),
        *decide(state, register(), NOW),
    ]

    assert {type(d).__name__ for d in drafts} == {
        "AgentRegistered", "PolicySet", "BudgetReserved", "TxRequested", "BudgetExceeded",
        "BudgetReleased", "CommandRejected"}
    for i, draft in enumerate(drafts):
        assert is_draft(draft)
        filled = stamped(draft, NOW, i)
        assert not is_draft(filled)
        body = SCHEMAS.encode(filled)
        assert SCHEMAS.decode(draft.SCHEMA, body) is not None
