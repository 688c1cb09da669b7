"""The policy engine: every rule passing and failing, in order; deny wins; the bytes are judged,
not the model's words; side doors stay shut unless listed; never ALLOW outside the policy."""

from __future__ import annotations

import dataclasses
import json
import random
from typing import Any

import pytest
from eth_utils import function_signature_to_4byte_selector

from omc_domain.policy import (
    APPROVE,
    READ_RULES,
    RULES,
    SIDE_DOORS,
    TRANSFER,
    TRANSFER_FROM,
    Judgement,
    PolicyFacts,
    decode_erc20,
    evaluate,
)
from omc_events.records import Action, ActionKind, Policy, TokenLimit, Verdict

CHAIN = 31337
TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
DAPP = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
BOB = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
CAROL = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
EVE = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
DAPP_FN = "0x12345678"
ETHER = 10**18
GWEI = 10**9


def word(value: int | str) -> str:
    if isinstance(value, str):
        return value[2:].lower().rjust(64, "0")
    return f"{value:064x}"


def calldata(selector: str, *args: int | str) -> str:
    return selector + "".join(word(a) for a in args)


def make_policy(**changes: Any) -> Policy:
    values: dict[str, Any] = {
        "version": 3, "allowed_chain_ids": (CHAIN,), "allowed_contracts": (TOKEN, DAPP),
        "allowed_selectors": (TRANSFER, DAPP_FN), "allowed_recipients": (BOB, CAROL),
        "deny_addresses": (), "max_value_wei": str(ETHER), "budget_wei": str(5 * ETHER),
        "budget_window_seconds": 3600, "max_fee_per_gas_wei": str(100 * GWEI),
        "approval_threshold_wei": str(ETHER), "max_inferences_per_task": 5,
        "token_limits": (TokenLimit(token=TOKEN, max_amount="1000", budget_amount="5000"),),
    }
    values.update(changes)
    return Policy(**values)


def action(kind: ActionKind = ActionKind.NATIVE_TRANSFER, **changes: Any) -> Action:
    defaults: dict[ActionKind, dict[str, Any]] = {
        ActionKind.NATIVE_TRANSFER: {"to": BOB, "value_wei": "1000", "data": "0x"},
        ActionKind.ERC20_TRANSFER: {"to": TOKEN, "value_wei": "0",
                                    "data": calldata(TRANSFER, BOB, 10),
                                    "function_signature": "transfer(address,uint256)",
                                    "arguments_json": f'{{"amount":"10","to":"{BOB}"}}'},
        ActionKind.ERC20_APPROVE: {"to": TOKEN, "value_wei": "0",
                                   "data": calldata(APPROVE, BOB, 10)},
        ActionKind.CONTRACT_WRITE: {"to": DAPP, "value_wei": "0", "data": calldata(DAPP_FN, 7)},
        ActionKind.CONTRACT_READ: {"to": TOKEN, "value_wei": "0",
                                   "data": calldata("0x70a08231", BOB)},
        ActionKind.UNKNOWN: {"to": DAPP, "value_wei": "0", "data": calldata(DAPP_FN, 7)},
    }
    values: dict[str, Any] = {"action_id": "a1", "kind": kind, "chain_id": CHAIN,
                              "arguments_json": "{}", **defaults[kind]}
    values.update(changes)
    return Action(**values)


def facts(**changes: Any) -> PolicyFacts:
    values: dict[str, Any] = {"task_chain_id": CHAIN, "task_max_value_wei": None,
                              "task_committed_wei": 0, "budget_used_wei": 0,
                              "token_budget_used": {}, "fee_cap_hint_wei": None}
    values.update(changes)
    return PolicyFacts(**values)


def judge(a: Action, p: Policy | None = None, f: PolicyFacts | None = None) -> Judgement:
    return evaluate(p or make_policy(), a, f or facts())


def rule(j: Judgement, name: str) -> Any:
    (found,) = [r for r in j.rules if r.rule == name]
    return found


def failed(j: Judgement) -> list[str]:
    return [r.rule for r in j.rules if not r.passed]


# -- every rule passing ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", [ActionKind.NATIVE_TRANSFER, ActionKind.ERC20_TRANSFER,
                                  ActionKind.CONTRACT_WRITE])
def test_an_action_inside_the_policy_is_allowed_with_every_rule_recorded_in_order(
        kind: ActionKind) -> None:
    j = judge(action(kind))

    assert j.verdict == Verdict.ALLOW, failed(j)
    assert tuple(r.rule for r in j.rules) == RULES
    assert all(r.passed and r.detail for r in j.rules)


def test_a_read_is_judged_by_the_read_rules_only() -> None:
    j = judge(action(ActionKind.CONTRACT_READ),
              make_policy(allowed_selectors=(), allowed_recipients=(), max_fee_per_gas_wei="0"))

    assert j.verdict == Verdict.ALLOW
    assert tuple(r.rule for r in j.rules) == READ_RULES


def test_the_judgement_says_what_would_be_reserved() -> None:
    native = judge(action(value_wei="1234"))
    token = judge(action(ActionKind.ERC20_TRANSFER, data=calldata(TRANSFER, BOB, 999)))

    assert (native.amount_wei, native.token, native.token_amount) == (1234, None, 0)
    assert (token.amount_wei, token.token, token.token_amount) == (0, TOKEN, 999)


def test_details_name_the_values_compared() -> None:
    j = judge(action(value_wei=str(2 * ETHER)))

    assert rule(j, "max_value").detail == f"value {2 * ETHER} > max {ETHER}"


# -- every rule failing -----------------------------------------------------------------------

FAILURES: list[tuple[str, str, Action, dict[str, Any], dict[str, Any]]] = [
    ("unknown kind", "kind_known", action(ActionKind.UNKNOWN), {}, {}),
    ("chain not allowed", "chain_allowed", action(chain_id=1), {}, {"task_chain_id": 1}),
    ("chain not the task's", "chain_allowed", action(), {"allowed_chain_ids": (1, CHAIN)},
     {"task_chain_id": 1}),
    ("native with calldata", "shape", action(data="0xdeadbeef"), {}, {}),
    ("read with value", "shape", action(ActionKind.CONTRACT_READ, value_wei="1"), {}, {}),
    ("erc20 with value", "shape", action(ActionKind.ERC20_TRANSFER, value_wei="1"), {}, {}),
    ("transfer kind, approve bytes", "shape",
     action(ActionKind.ERC20_TRANSFER, data=calldata(APPROVE, BOB, 1)), {}, {}),
    ("approve kind, transfer bytes", "shape",
     action(ActionKind.ERC20_APPROVE, data=calldata(TRANSFER, BOB, 1)), {}, {}),
    ("truncated calldata", "shape",
     action(ActionKind.ERC20_TRANSFER, data=calldata(TRANSFER, BOB)), {}, {}),
    ("trailing calldata", "shape",
     action(ActionKind.ERC20_TRANSFER, data=calldata(TRANSFER, BOB, 1, 2)), {}, {}),
    ("dirty address word", "shape",
     action(ActionKind.ERC20_TRANSFER, data=TRANSFER + "ff" * 12 + BOB[2:] + word(1)), {}, {}),
    ("write without selector", "shape", action(ActionKind.CONTRACT_WRITE, data="0x"), {}, {}),
    ("malformed value", "shape", action(value_wei="1.5"), {}, {}),
    ("malformed data", "shape", action(ActionKind.CONTRACT_WRITE, data="0x123"), {}, {}),
    ("write to unlisted contract", "contract_allowed", action(ActionKind.CONTRACT_WRITE, to=EVE),
     {}, {}),
    ("read of unlisted contract", "contract_allowed", action(ActionKind.CONTRACT_READ, to=EVE),
     {}, {}),
    ("unlisted selector", "selector_allowed",
     action(ActionKind.CONTRACT_WRITE, data=calldata("0xabcdef01", 1)), {}, {}),
    ("native to unlisted recipient", "recipient_allowed", action(to=EVE), {}, {}),
    ("tokens to unlisted recipient", "recipient_allowed",
     action(ActionKind.ERC20_TRANSFER, data=calldata(TRANSFER, EVE, 1)), {}, {}),
    ("approve to unlisted spender", "recipient_allowed",
     action(ActionKind.ERC20_APPROVE, data=calldata(APPROVE, EVE, 1)),
     {"allowed_selectors": (TRANSFER, APPROVE)}, {}),
    ("denied recipient", "deny_list", action(), {"deny_addresses": (BOB,)}, {}),
    ("denied contract", "deny_list", action(ActionKind.CONTRACT_WRITE),
     {"deny_addresses": (DAPP,)}, {}),
    ("denied token recipient", "deny_list", action(ActionKind.ERC20_TRANSFER),
     {"deny_addresses": (BOB.lower(),)}, {}),
    ("value above max", "max_value", action(value_wei=str(ETHER + 1)),
     {"approval_threshold_wei": str(10 * ETHER)}, {}),
    ("task budget", "task_budget", action(value_wei="600"), {},
     {"task_max_value_wei": 1000, "task_committed_wei": 401}),
    ("agent budget", "budget", action(value_wei="600"), {"budget_wei": "1000"},
     {"budget_used_wei": 401}),
    ("token without limit", "token_limit", action(ActionKind.ERC20_TRANSFER),
     {"token_limits": ()}, {}),
    ("token amount above max", "token_limit",
     action(ActionKind.ERC20_TRANSFER, data=calldata(TRANSFER, BOB, 1001)), {}, {}),
    ("token budget", "token_budget", action(ActionKind.ERC20_TRANSFER), {},
     {"token_budget_used": {TOKEN.lower(): 4991}}),
    ("fee above cap", "max_fee", action(), {}, {"fee_cap_hint_wei": 100 * GWEI + 1}),
    ("no fee allowed", "max_fee", action(), {"max_fee_per_gas_wei": "0"}, {}),
]


ALSO_FAILING = {
    "unknown kind": ("shape",),
    "transfer kind, approve bytes": ("selector_allowed", "side_door"),
    "truncated calldata": ("recipient_allowed",),  # no recipient can be decoded
    "trailing calldata": ("recipient_allowed",),
    "dirty address word": ("recipient_allowed",),
    "write without selector": ("selector_allowed",),
    "malformed data": ("selector_allowed",),
    "token without limit": ("token_budget",),
}
"""Rules that fail too, by their nature, in some cases; every other case fails one rule."""


@pytest.mark.parametrize(("name", "broken", "a", "policy_changes", "fact_changes"), FAILURES,
                         ids=[f[0] for f in FAILURES])
def test_each_rule_denies_on_its_own(name: str, broken: str, a: Action,
                                     policy_changes: dict[str, Any],
                                     fact_changes: dict[str, Any]) -> None:
    j = judge(a, make_policy(**policy_changes), facts(**fact_changes))

    assert j.verdict == Verdict.DENY
    assert failed(j)[0] == broken
    assert set(failed(j)) == {broken, *ALSO_FAILING.get(name, ())}


def test_every_rule_has_a_failing_case() -> None:
    assert {f[1] for f in FAILURES} == set(RULES) - {"side_door", "approval_threshold"}


@pytest.mark.parametrize(("value", "cap"), [(ETHER, ETHER), (0, 0)])
def test_limits_are_inclusive(value: int, cap: int) -> None:
    j = judge(action(value_wei=str(value)),
              make_policy(max_value_wei=str(cap), budget_wei=str(cap)), facts(budget_used_wei=0))

    assert rule(j, "max_value").passed
    assert rule(j, "budget").passed


def test_budget_full_to_the_wei_is_still_allowed_and_one_more_is_not() -> None:
    p = make_policy(budget_wei="1000")

    assert judge(action(value_wei="600"), p, facts(budget_used_wei=400)).verdict == Verdict.ALLOW
    assert judge(action(value_wei="601"), p, facts(budget_used_wei=400)).verdict == Verdict.DENY


def test_a_zero_value_action_is_not_held_by_an_exhausted_native_budget() -> None:
    j = judge(action(ActionKind.CONTRACT_WRITE), make_policy(budget_wei="10"),
              facts(budget_used_wei=50, task_max_value_wei=0))

    assert j.verdict == Verdict.ALLOW


def test_an_unknown_fee_passes_a_positive_cap() -> None:
    assert rule(judge(action()), "max_fee").passed


def test_token_lookups_and_budgets_ignore_address_case() -> None:
    p = make_policy(token_limits=(TokenLimit(token=TOKEN.lower(), max_amount="10",
                                             budget_amount="20"),))
    f = facts(token_budget_used={TOKEN.upper().replace("0X", "0x"): 10})

    assert judge(action(ActionKind.ERC20_TRANSFER), p, f).verdict == Verdict.ALLOW
    assert judge(action(ActionKind.ERC20_TRANSFER, data=calldata(TRANSFER, BOB, 11)),
                 p, facts()).verdict == Verdict.DENY


# -- approval ---------------------------------------------------------------------------------


def test_value_above_the_threshold_needs_approval() -> None:
    j = judge(action(value_wei=str(ETHER)), make_policy(approval_threshold_wei=str(ETHER - 1)))

    assert j.verdict == Verdict.NEEDS_APPROVAL
    assert rule(j, "approval_threshold").passed
    assert "needs approval" in rule(j, "approval_threshold").detail


def test_value_at_the_threshold_does_not() -> None:
    assert judge(action(value_wei=str(ETHER))).verdict == Verdict.ALLOW


def test_a_zero_threshold_holds_every_value_carrying_action_and_no_other() -> None:
    p = make_policy(approval_threshold_wei="0")

    assert judge(action(value_wei="1"), p).verdict == Verdict.NEEDS_APPROVAL
    assert judge(action(ActionKind.CONTRACT_WRITE), p).verdict == Verdict.ALLOW


def test_deny_beats_needs_approval() -> None:
    j = judge(action(value_wei=str(ETHER), to=EVE), make_policy(approval_threshold_wei="0"))

    assert j.verdict == Verdict.DENY


# -- deny wins, and the bytes are judged ------------------------------------------------------


@pytest.mark.parametrize("a", [
    action(),
    action(ActionKind.ERC20_TRANSFER),
    action(ActionKind.ERC20_APPROVE),
    action(ActionKind.CONTRACT_WRITE, data=calldata(TRANSFER, BOB, 1), to=TOKEN),
], ids=["native", "erc20", "approve", "write-transfer"])
def test_deny_wins_over_every_allow_list(a: Action) -> None:
    p = make_policy(allowed_selectors=(TRANSFER, APPROVE, DAPP_FN), deny_addresses=(BOB,))

    assert judge(a, make_policy(allowed_selectors=(TRANSFER, APPROVE, DAPP_FN))).verdict == \
        Verdict.ALLOW
    j = judge(a, p)
    assert j.verdict == Verdict.DENY
    assert failed(j) == ["deny_list"]
    assert BOB.lower() in rule(j, "deny_list").detail


def test_a_denied_owner_of_transfer_from_is_refused() -> None:
    a = action(ActionKind.CONTRACT_WRITE, to=TOKEN, data=calldata(TRANSFER_FROM, EVE, BOB, 1))
    p = make_policy(allowed_selectors=(TRANSFER, TRANSFER_FROM), deny_addresses=(EVE,))

    assert failed(judge(a, p)) == ["deny_list"]


def test_the_calldata_beats_lying_arguments_json() -> None:
    lying = action(ActionKind.ERC20_TRANSFER, data=calldata(TRANSFER, EVE, 10**30),
                   arguments_json=json.dumps({"amount": "1", "to": BOB}))

    j = judge(lying)

    assert j.verdict == Verdict.DENY
    assert set(failed(j)) == {"recipient_allowed", "token_limit", "token_budget"}
    assert EVE.lower() in rule(j, "recipient_allowed").detail
    assert j.token_amount == 10**30


def test_a_contract_write_carrying_transfer_is_judged_as_a_transfer() -> None:
    sneaky = action(ActionKind.CONTRACT_WRITE, to=TOKEN, data=calldata(TRANSFER, EVE, 5000),
                    function_signature="doSomething(address,uint256)")

    j = judge(sneaky)

    assert j.verdict == Verdict.DENY
    assert {"recipient_allowed", "token_limit"} <= set(failed(j))
    assert (j.token, j.token_amount) == (TOKEN, 5000)
    honest = judge(action(ActionKind.CONTRACT_WRITE, to=TOKEN, data=calldata(TRANSFER, BOB, 5)))
    assert honest.verdict == Verdict.ALLOW
    assert (honest.token, honest.token_amount) == (TOKEN, 5)


def test_a_contract_write_carrying_approve_is_judged_as_an_approve() -> None:
    a = action(ActionKind.CONTRACT_WRITE, to=TOKEN, data=calldata(APPROVE, BOB, 2**256 - 1))
    p = make_policy(allowed_selectors=(TRANSFER, APPROVE))

    j = judge(a, p)

    assert failed(j) == ["token_limit", "token_budget"]  # unlimited approval is over max
    assert "spender" in rule(j, "recipient_allowed").detail


# -- side doors -------------------------------------------------------------------------------


def test_side_door_selectors_are_the_keccak_of_their_signatures() -> None:
    for selector, signature in SIDE_DOORS.items():
        assert "0x" + function_signature_to_4byte_selector(signature).hex() == selector


def _side_door_call(selector: str) -> Action:
    if selector == TRANSFER_FROM:
        return action(ActionKind.CONTRACT_WRITE, to=TOKEN, data=calldata(selector, CAROL, BOB, 1))
    if selector == APPROVE:
        return action(ActionKind.ERC20_APPROVE, data=calldata(selector, BOB, 1))
    return action(ActionKind.CONTRACT_WRITE, to=TOKEN, data=calldata(selector, BOB, 1, 2))


@pytest.mark.parametrize("selector", sorted(SIDE_DOORS))
def test_every_side_door_is_denied_unless_its_selector_is_listed(selector: str) -> None:
    shut = judge(_side_door_call(selector), make_policy())
    opened = judge(_side_door_call(selector),
                   make_policy(allowed_selectors=(TRANSFER, DAPP_FN, selector)))

    assert shut.verdict == Verdict.DENY
    assert not rule(shut, "side_door").passed
    assert SIDE_DOORS[selector] in rule(shut, "side_door").detail
    assert rule(opened, "side_door").passed
    assert opened.verdict == Verdict.ALLOW, failed(opened)


def test_listing_one_side_door_opens_no_other() -> None:
    p = make_policy(allowed_selectors=(TRANSFER, DAPP_FN, "0xac9650d8"))  # multicall(bytes[])

    j = judge(action(ActionKind.CONTRACT_WRITE, to=TOKEN,
                     data=calldata("0x5ae401dc", 1, 2)), p)  # multicall(uint256,bytes[])

    assert not rule(j, "side_door").passed


# -- decoding ---------------------------------------------------------------------------------


def test_decode_erc20_reads_transfer_approve_and_transfer_from() -> None:
    assert decode_erc20(calldata(TRANSFER, BOB, 7)) == (TRANSFER, BOB.lower(), 7)
    assert decode_erc20(calldata(APPROVE, CAROL, 2**256 - 1)) == (APPROVE, CAROL.lower(),
                                                                  2**256 - 1)
    assert decode_erc20(calldata(TRANSFER_FROM, EVE, BOB, 3)) == (TRANSFER_FROM, BOB.lower(), 3)
    assert decode_erc20(calldata(TRANSFER, BOB, 7).upper().replace("0X", "0x")) == (
        TRANSFER, BOB.lower(), 7)


@pytest.mark.parametrize("data", [
    "0x", "0xa9059c", calldata(TRANSFER, BOB), calldata(TRANSFER, BOB, 1, 1),
    calldata(TRANSFER, BOB, 1)[:-2], calldata(DAPP_FN, BOB, 1), "0x" + "zz" * 68,
    TRANSFER + "01" + "00" * 11 + BOB[2:] + word(1), calldata(TRANSFER_FROM, BOB, 1),
])
def test_decode_erc20_refuses_anything_else(data: str) -> None:
    assert decode_erc20(data) is None


# -- the property: never ALLOW outside the policy ---------------------------------------------

ADDRESSES = [TOKEN, DAPP, BOB, CAROL, EVE, "0x" + "00" * 20]
SELECTORS = [TRANSFER, APPROVE, TRANSFER_FROM, DAPP_FN, "0xac9650d8", "0xd505accf",
             "0xabcdef01"]


def _random_policy(rng: random.Random) -> Policy:
    def some(pool: list[Any]) -> tuple[Any, ...]:
        return tuple(x for x in pool if rng.random() < 0.75)

    return make_policy(
        allowed_chain_ids=some([1, CHAIN]), allowed_contracts=some(ADDRESSES),
        allowed_selectors=some(SELECTORS), allowed_recipients=some(ADDRESSES),
        deny_addresses=tuple(a for a in ADDRESSES if rng.random() < 0.1),
        max_value_wei=str(rng.choice([0, 100, 10**6])),
        budget_wei=str(rng.choice([0, 500, 10**6])),
        max_fee_per_gas_wei=str(rng.choice([0, 50, 100, 100])),
        approval_threshold_wei=str(rng.choice([0, 0, 50, 10**7])),
        token_limits=tuple(TokenLimit(token=t, max_amount=str(rng.choice([0, 100, 10**6])),
                                      budget_amount=str(rng.choice([0, 300, 10**6])))
                           for t in ADDRESSES if rng.random() < 0.6))


def _random_action(rng: random.Random) -> Action:
    """Half plausible for its kind, half anything: both sides of every rule get exercised."""
    kind = rng.choice(list(ActionKind))
    selector = rng.choice(SELECTORS)
    who, other = rng.choice(ADDRESSES), rng.choice(ADDRESSES)
    amount = rng.choice([0, 1, 99, 100, 101, 10**6, 10**30])
    value = rng.choice([0, 0, 1, 50, 100, 101, 10**6, 10**7 + 1])
    plausible = rng.random() < 0.5
    if plausible:
        data = {ActionKind.NATIVE_TRANSFER: "0x",
                ActionKind.ERC20_TRANSFER: calldata(TRANSFER, who, amount),
                ActionKind.ERC20_APPROVE: calldata(APPROVE, who, amount),
                ActionKind.CONTRACT_READ: calldata("0x70a08231", who)}.get(
                    kind, calldata(selector, who, amount))
        if kind in (ActionKind.ERC20_TRANSFER, ActionKind.ERC20_APPROVE,
                    ActionKind.CONTRACT_READ):
            value = 0
    else:
        data = rng.choice([
            "0x",
            calldata(selector, who, amount),
            calldata(TRANSFER_FROM, other, who, amount),
            calldata(selector, who),
            calldata(selector, who, amount) + "00",
        ])
    return action(kind, chain_id=rng.choice([1, CHAIN, CHAIN, 5]), to=rng.choice(ADDRESSES),
                  value_wei=str(value), data=data,
                  arguments_json=json.dumps({"to": BOB, "amount": "1"}))


def _violations(p: Policy, a: Action, f: PolicyFacts) -> list[str]:
    """The constraints an allowed action must meet, written independently of the engine."""
    low = {x.lower() for x in p.allowed_contracts}
    found = []
    value = int(a.value_wei)
    if a.kind == ActionKind.UNKNOWN:
        found.append("unknown kind")
    if a.chain_id not in p.allowed_chain_ids or a.chain_id != f.task_chain_id:
        found.append("chain")
    balance_read = a.kind == ActionKind.CONTRACT_READ and a.data == "0x"
    readable = low | {x.lower() for x in p.allowed_recipients} if balance_read else low
    if a.kind != ActionKind.NATIVE_TRANSFER and a.to.lower() not in readable:
        found.append("contract")
    if a.to.lower() in {x.lower() for x in p.deny_addresses}:
        found.append("denied to")
    if a.kind == ActionKind.CONTRACT_READ:
        return found
    selector = a.data[:10] if len(a.data) >= 10 else None
    if a.kind == ActionKind.NATIVE_TRANSFER:
        if a.data != "0x":
            found.append("native data")
        if a.to.lower() not in {x.lower() for x in p.allowed_recipients}:
            found.append("recipient")
    elif selector not in p.allowed_selectors:
        found.append("selector")
    if value > int(p.max_value_wei):
        found.append("max value")
    if value and f.budget_used_wei + value > int(p.budget_wei):
        found.append("budget")
    if int(p.max_fee_per_gas_wei) == 0:
        found.append("fee")
    erc20 = a.kind in (ActionKind.ERC20_TRANSFER, ActionKind.ERC20_APPROVE) or \
        selector in (TRANSFER, APPROVE, TRANSFER_FROM)
    if erc20:
        decoded = decode_erc20(a.data)
        limits = [t for t in p.token_limits if t.token.lower() == a.to.lower()]
        if decoded is None or value:
            found.append("erc20 shape")
        else:
            _, party, amount = decoded
            if party not in {x.lower() for x in p.allowed_recipients}:
                found.append("token recipient")
            if party in {x.lower() for x in p.deny_addresses}:
                found.append("denied party")
            if not limits or amount > int(limits[0].max_amount):
                found.append("token limit")
            if not limits or (amount and f.token_used(a.to) + amount >
                              int(limits[0].budget_amount)):
                found.append("token budget")
    return found


def test_never_allow_when_a_constraint_is_violated() -> None:
    rng = random.Random(20261125)
    verdicts = {v: 0 for v in Verdict}
    for _ in range(3000):
        p, a = _random_policy(rng), _random_action(rng)
        f = facts(budget_used_wei=rng.choice([0, 400]),
                  token_budget_used={rng.choice(ADDRESSES): rng.choice([0, 250])})
        j = evaluate(p, a, f)
        verdicts[j.verdict] += 1
        problems = _violations(p, a, f)
        if j.verdict in (Verdict.ALLOW, Verdict.NEEDS_APPROVAL):
            assert problems == [], (problems, dataclasses.asdict(a), failed(j))
        if j.verdict == Verdict.ALLOW and a.kind != ActionKind.CONTRACT_READ:
            assert int(a.value_wei) <= int(p.approval_threshold_wei)
        assert (j.verdict == Verdict.DENY) == bool(failed(j))
    assert verdicts[Verdict.ALLOW] >= 20, verdicts  # the property is not vacuous
    assert verdicts[Verdict.NEEDS_APPROVAL] >= 5, verdicts


def test_a_balance_read_may_name_an_allowed_recipient_but_no_other_account():
    read = action(ActionKind.CONTRACT_READ, to=BOB, data="0x",
                  function_signature="eth_getBalance(address)(uint256)")
    assert evaluate(make_policy(), read, facts()).verdict == Verdict.ALLOW
    stranger = dataclasses.replace(read, to=EVE)
    assert evaluate(make_policy(), stranger, facts()).verdict == Verdict.DENY
