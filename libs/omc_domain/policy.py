"""The policy engine: judges one proposed action against an agent's policy. Pure and total.

    evaluate(policy, action, facts) -> Judgement(verdict, rules, amount_wei, token,
                                                  token_amount)
    decode_erc20(data) -> (selector, recipient_or_spender, amount) | None

Default deny: an action is ALLOWed only when every rule passes; any failed rule makes it a
DENY, and an action that passes every rule but carries more native value than the approval
threshold NEEDS_APPROVAL. Every rule checked is recorded as a `RuleResult` (rule, passed,
detail with the values compared), in this fixed order:

    kind_known          the kind is not UNKNOWN
    chain_allowed       chain_id is in allowed_chain_ids and is the task's chain
    shape               NATIVE_TRANSFER: data "0x"; CONTRACT_READ: value 0; ERC20_TRANSFER /
                        ERC20_APPROVE: value 0 and calldata that decodes as transfer / approve;
                        CONTRACT_WRITE: a selector, and if it is transfer / approve /
                        transferFrom, value 0 and calldata that decodes as that call
    contract_allowed    `to` is in allowed_contracts (every kind but NATIVE_TRANSFER); a
                        native balance read (CONTRACT_READ with data "0x") may also name an
                        account of allowed_recipients
    selector_allowed    writes: the selector is in allowed_selectors
    side_door           writes: a selector of SIDE_DOORS only if that exact selector is listed
    recipient_allowed   the native recipient, ERC-20 recipient or approve spender is in
                        allowed_recipients
    deny_list           no address involved (to, recipient, spender, transferFrom's from) is
                        in deny_addresses: deny wins over every allow-list
    max_value           value <= max_value_wei
    task_budget         value == 0, or task_committed_wei + value <= task_max_value_wei (if set)
    budget              value == 0, or budget_used_wei + value <= budget_wei
    token_limit         ERC-20 calls: the token has a TokenLimit and amount <= max_amount
    token_budget        ERC-20 calls: amount == 0, or used + amount <= budget_amount
    max_fee             max_fee_per_gas_wei > 0, and the fee hint <= it when known
    approval_threshold  passes; asks for approval when value > approval_threshold_wei

A CONTRACT_READ is judged only by kind_known, chain_allowed, shape, contract_allowed and
deny_list (it signs nothing). The engine judges the bytes that get signed: ERC-20 recipients
and amounts are decoded from `data`, never read from `arguments_json`, and a CONTRACT_WRITE
whose selector is transfer, approve or transferFrom is judged as that ERC-20 call.

Addresses are compared case-insensitively (there is no keccak in the standard library to check
EIP-55 checksums, and a checksum says nothing about permission): every address is normalised
with `.lower()` before comparing. `decode_erc20` returns lowercase addresses. Wei amounts in the
policy that are not decimal integers count as 0 (deny-safe); an action whose value or data is
malformed fails `shape`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from omc_events.records import Action, ActionKind, Policy, RuleResult, TokenLimit, Verdict

TRANSFER = "0xa9059cbb"
"""transfer(address,uint256)"""
APPROVE = "0x095ea7b3"
"""approve(address,uint256)"""
TRANSFER_FROM = "0x23b872dd"
"""transferFrom(address,address,uint256)"""

SIDE_DOORS: Mapping[str, str] = {
    APPROVE: "approve(address,uint256)",
    "0x39509351": "increaseAllowance(address,uint256)",
    "0xd73dd623": "increaseApproval(address,uint256)",
    "0xd505accf": "permit(address,address,uint256,uint256,uint8,bytes32,bytes32)",
    "0x8fcbaf0c": "permit(address,address,uint256,uint256,bool,uint8,bytes32,bytes32)",
    "0xa22cb465": "setApprovalForAll(address,bool)",
    TRANSFER_FROM: "transferFrom(address,address,uint256)",
    "0x42842e0e": "safeTransferFrom(address,address,uint256)",
    "0xb88d4fde": "safeTransferFrom(address,address,uint256,bytes)",
    "0xac9650d8": "multicall(bytes[])",
    "0x5ae401dc": "multicall(uint256,bytes[])",
    "0x1f0464d1": "multicall(bytes32,bytes[])",
    "0x252dba42": "aggregate((address,bytes)[])",
    "0xbce38bd7": "tryAggregate(bool,(address,bytes)[])",
    "0x82ad56cb": "aggregate3((address,bool,bytes)[])",
    "0x174dea71": "aggregate3Value((address,bool,uint256,bytes)[])",
    "0xc3077fa9": "blockAndAggregate((address,bytes)[])",
    "0x399542e9": "tryBlockAndAggregate(bool,(address,bytes)[])",
    "0x3593564c": "execute(bytes,bytes[],uint256)",
    "0x24856bc3": "execute(bytes,bytes[])",
}
"""Selectors that grant allowances, move someone else's tokens, or batch arbitrary calls:
denied unless that exact selector is in the policy's allowed_selectors."""

ERC20_SELECTORS: Mapping[str, ActionKind] = {
    TRANSFER: ActionKind.ERC20_TRANSFER,
    TRANSFER_FROM: ActionKind.ERC20_TRANSFER,
    APPROVE: ActionKind.ERC20_APPROVE,
}
"""The ERC-20 calls a CONTRACT_WRITE is judged as, by selector."""

RULES = ("kind_known", "chain_allowed", "shape", "contract_allowed", "selector_allowed",
         "side_door", "recipient_allowed", "deny_list", "max_value", "task_budget", "budget",
         "token_limit", "token_budget", "max_fee", "approval_threshold")
"""Every rule, in the order the engine checks and records them."""
READ_RULES = ("kind_known", "chain_allowed", "shape", "contract_allowed", "deny_list")
"""The rules a CONTRACT_READ is judged by."""

_HEX = re.compile(r"0x(?:[0-9a-fA-F]{2})*")
_WEI = re.compile(r"0|[1-9][0-9]*")
_WORD = 64  # hex digits in a 32-byte ABI word
_MAX_UINT256 = 2**256 - 1


@dataclass(frozen=True, slots=True)
class PolicyFacts:
    """What the engine needs besides the policy and the action, gathered by the caller."""

    task_chain_id: int
    """The chain the task acts on (SubmitTask.chain_id)."""
    task_max_value_wei: int | None
    """The task's own cap on native value (SubmitTask.max_value_wei); None: no task cap."""
    task_committed_wei: int
    """Native value of this task's actions already allowed."""
    budget_used_wei: int
    """Native reservations counting in the agent's budget window now."""
    token_budget_used: Mapping[str, int] = field(default_factory=dict)
    """Token reservations counting in the window now, by token address (any case)."""
    fee_cap_hint_wei: int | None = None
    """The max fee per gas the tx manager would offer now; None: unknown."""

    def token_used(self, token: str) -> int:
        wanted = token.lower()
        return sum(amount for address, amount in self.token_budget_used.items()
                   if address.lower() == wanted)


@dataclass(frozen=True, slots=True)
class Judgement:
    """The engine's answer: the verdict, every rule checked, and what would be reserved."""

    verdict: Verdict
    rules: tuple[RuleResult, ...]
    amount_wei: int
    """The action's native value (0 when malformed; such an action is denied)."""
    token: str | None
    """The ERC-20 token moved or approved (the action's `to`), or None for no token call."""
    token_amount: int
    """The token amount decoded from the calldata (0 for no token call)."""

    @property
    def failed(self) -> tuple[RuleResult, ...]:
        return tuple(rule for rule in self.rules if not rule.passed)


def decode_erc20(data: str) -> tuple[str, str, int] | None:
    """(selector, recipient or spender, amount) of ERC-20 transfer, approve or transferFrom
    calldata; None for anything else or anything malformed.

    Strict: exactly the 4-byte selector and its 32-byte words (2, or 3 for transferFrom), no
    trailing bytes, address words with 12 zero bytes. The address is "0x" + 40 lowercase hex
    digits (the recipient `to` for transferFrom; its `from` is `decode_transfer_from_owner`).
    """
    words = _words(data)
    if words is None:
        return None
    selector, args = words
    count = 3 if selector == TRANSFER_FROM else 2
    if selector not in ERC20_SELECTORS or len(args) != count:
        return None
    addresses = [_address(word) for word in args[:-1]]
    if any(address is None for address in addresses):
        return None
    return selector, addresses[-1], int(args[-1], 16)  # type: ignore[return-value]


def decode_transfer_from_owner(data: str) -> str | None:
    """The `from` of transferFrom calldata (lowercase), or None."""
    words = _words(data)
    if words is None or words[0] != TRANSFER_FROM or decode_erc20(data) is None:
        return None
    return _address(words[1][0])


def evaluate(policy: Policy, action: Action, facts: PolicyFacts) -> Judgement:
    """Judge `action` under `policy`; pure, deterministic, default deny."""
    call = _Call.of(action)
    checks = _Checks(policy, action, facts, call)
    names = READ_RULES if action.kind == ActionKind.CONTRACT_READ else RULES
    rules = tuple(getattr(checks, name)() for name in names)
    if not all(rule.passed for rule in rules):
        verdict = Verdict.DENY
    elif checks.needs_approval():
        verdict = Verdict.NEEDS_APPROVAL
    else:
        verdict = Verdict.ALLOW
    return Judgement(verdict=verdict, rules=rules, amount_wei=call.value or 0,
                     token=call.token, token_amount=call.token_amount)


# -- what the action does, read from its bytes --------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Call:
    kind: ActionKind
    """The kind it is judged as: a CONTRACT_WRITE of an ERC-20 selector becomes that call."""
    to: str
    value: int | None
    """Native value; None when malformed."""
    data_ok: bool
    selector: str | None
    erc20: tuple[str, str, int] | None
    owner: str | None

    @classmethod
    def of(cls, action: Action) -> _Call:
        value = int(action.value_wei) if isinstance(action.value_wei, str) and \
            _WEI.fullmatch(action.value_wei) else None
        data = action.data if isinstance(action.data, str) else ""
        data_ok = bool(_HEX.fullmatch(data))
        selector = data[:10].lower() if data_ok and len(data) >= 10 else None
        kind = action.kind
        if kind == ActionKind.CONTRACT_WRITE and selector in ERC20_SELECTORS:
            kind = ERC20_SELECTORS[selector]
        to = action.to if isinstance(action.to, str) else ""
        return cls(kind, to, value, data_ok, selector, decode_erc20(data),
                   decode_transfer_from_owner(data))

    @property
    def is_token_call(self) -> bool:
        return self.kind in (ActionKind.ERC20_TRANSFER, ActionKind.ERC20_APPROVE)

    @property
    def token(self) -> str | None:
        return self.to if self.is_token_call and self.erc20 is not None else None

    @property
    def token_amount(self) -> int:
        return self.erc20[2] if self.is_token_call and self.erc20 is not None else 0

    @property
    def counterparty(self) -> str | None:
        """The ERC-20 recipient or spender (lowercase), when decoded."""
        return self.erc20[1] if self.is_token_call and self.erc20 is not None else None


class _Checks:
    """One method per rule, each returning its RuleResult."""

    def __init__(self, policy: Policy, action: Action, facts: PolicyFacts, call: _Call) -> None:
        self.policy, self.action, self.facts = policy, action, facts
        self.call = call
        self.to = call.to.lower()
        self.value = call.value or 0
        self.selectors = _lowered(policy.allowed_selectors)

    # order as in RULES

    def kind_known(self) -> RuleResult:
        known = self.action.kind in _KNOWN_KINDS
        return _result("kind_known", known, f"kind {_kind(self.action.kind)}"
                       + ("" if known else " is not a kind the engine knows"))

    def chain_allowed(self) -> RuleResult:
        chain = self.action.chain_id
        listed = chain in self.policy.allowed_chain_ids
        same = chain == self.facts.task_chain_id
        detail = (f"chain {chain} {'in' if listed else 'not in'} allowed "
                  f"{list(self.policy.allowed_chain_ids)}; task chain "
                  f"{self.facts.task_chain_id}")
        return _result("chain_allowed", listed and same, detail)

    def shape(self) -> RuleResult:
        problem = self._shape_problem()
        return _result("shape", problem is None,
                       problem or f"{_kind(self.call.kind)} with value {self.value} and "
                                  f"selector {self.call.selector or 'none'}")

    def _shape_problem(self) -> str | None:
        call, kind = self.call, self.call.kind
        if call.value is None:
            return f"value_wei {self.action.value_wei!r} is not a decimal integer"
        if call.value > _MAX_UINT256:
            return "value_wei is above 2**256 - 1"
        if not call.data_ok:
            return "data is not 0x and whole bytes of hex"
        if kind == ActionKind.NATIVE_TRANSFER:
            return None if self.action.data == "0x" else \
                f"a native transfer carries no calldata, got {len(self.action.data) // 2 - 1} " \
                "bytes"
        if kind == ActionKind.CONTRACT_READ:
            return None if call.value == 0 else f"a read carries no value, got {call.value}"
        if kind in (ActionKind.ERC20_TRANSFER, ActionKind.ERC20_APPROVE):
            if call.value != 0:
                return f"an ERC-20 call carries no native value, got {call.value}"
            expected = {ActionKind.ERC20_TRANSFER: TRANSFER,
                        ActionKind.ERC20_APPROVE: APPROVE}[kind]
            if self.action.kind == ActionKind.CONTRACT_WRITE:
                expected = call.selector  # judged as the ERC-20 call its selector names
            if call.selector != expected:
                return f"{_kind(kind)} calldata has selector {call.selector or 'none'}, " \
                       f"expected {expected}"
            if call.erc20 is None:
                return f"calldata of {call.selector} does not decode as that ERC-20 call " \
                       "(selector, 32-byte words, nothing more)"
            return None
        if kind == ActionKind.CONTRACT_WRITE:
            return None if call.selector is not None else \
                "a contract write needs calldata with a 4-byte selector"
        return f"kind {_kind(kind)} has no known shape"

    def contract_allowed(self) -> RuleResult:
        if self.call.kind == ActionKind.NATIVE_TRANSFER:
            return _result("contract_allowed", True, "native transfer: no contract")
        if self.call.kind == ActionKind.CONTRACT_READ and self.action.data == "0x":
            listed = self.to in (_lowered(self.policy.allowed_contracts)
                                 | _lowered(self.policy.allowed_recipients))
            return _result("contract_allowed", listed,
                           f"balance of {self.call.to} {'in' if listed else 'not in'} "
                           "allowed_contracts or allowed_recipients")
        listed = self.to in _lowered(self.policy.allowed_contracts)
        return _result("contract_allowed", listed,
                       f"contract {self.call.to} {'in' if listed else 'not in'} "
                       "allowed_contracts")

    def selector_allowed(self) -> RuleResult:
        if self.call.kind == ActionKind.NATIVE_TRANSFER:
            return _result("selector_allowed", True, "native transfer: no selector")
        selector = self.call.selector
        listed = selector is not None and selector in self.selectors
        return _result("selector_allowed", listed,
                       f"selector {selector or 'none'} {'in' if listed else 'not in'} "
                       "allowed_selectors")

    def side_door(self) -> RuleResult:
        selector = self.call.selector
        if self.call.kind == ActionKind.NATIVE_TRANSFER or selector not in SIDE_DOORS:
            return _result("side_door", True, f"selector {selector or 'none'} is not a side "
                                               "door")
        listed = selector in self.selectors
        return _result("side_door", listed,
                       f"selector {selector} is the side door {SIDE_DOORS[selector]}, "
                       + ("explicitly allowed" if listed else "not in allowed_selectors"))

    def recipient_allowed(self) -> RuleResult:
        recipients = _lowered(self.policy.allowed_recipients)
        if self.call.kind == ActionKind.NATIVE_TRANSFER:
            who, role = self.to, "recipient"
        elif self.call.is_token_call:
            who = self.call.counterparty
            role = "spender" if self.call.kind == ActionKind.ERC20_APPROVE else "token recipient"
            if who is None:
                return _result("recipient_allowed", False,
                               f"{role} could not be decoded from the calldata")
        else:
            return _result("recipient_allowed", True, "no recipient: a contract call")
        listed = who in recipients
        return _result("recipient_allowed", listed,
                       f"{role} {who} {'in' if listed else 'not in'} allowed_recipients")

    def deny_list(self) -> RuleResult:
        denied = _lowered(self.policy.deny_addresses)
        involved = [self.to, self.call.counterparty, self.call.owner]
        hits = sorted({a for a in involved if a is not None and a in denied})
        return _result("deny_list", not hits,
                       f"denied {', '.join(hits)}" if hits else
                       f"none of {', '.join(sorted({a for a in involved if a}))} denied")

    def max_value(self) -> RuleResult:
        cap = _wei(self.policy.max_value_wei)
        return _compare("max_value", f"value {self.value}", self.value, f"max {cap}", cap)

    def task_budget(self) -> RuleResult:
        cap = self.facts.task_max_value_wei
        if cap is None:
            return _result("task_budget", True, "the task sets no value cap")
        if self.value == 0:
            return _result("task_budget", True, "value 0 commits nothing")
        total = self.facts.task_committed_wei + self.value
        return _compare("task_budget",
                        f"committed {self.facts.task_committed_wei} + value {self.value} = "
                        f"{total}", total, f"task max {cap}", cap)

    def budget(self) -> RuleResult:
        if self.value == 0:
            return _result("budget", True, "value 0 reserves nothing")
        cap = _wei(self.policy.budget_wei)
        total = self.facts.budget_used_wei + self.value
        return _compare("budget", f"used {self.facts.budget_used_wei} + value {self.value} = "
                                  f"{total}", total,
                        f"budget {cap} per {self.policy.budget_window_seconds} s", cap)

    def token_limit(self) -> RuleResult:
        if not self.call.is_token_call:
            return _result("token_limit", True, "not an ERC-20 transfer or approve")
        limit = self._limit()
        if limit is None:
            return _result("token_limit", False,
                           f"token {self.action.to} has no TokenLimit in the policy")
        cap = _wei(limit.max_amount)
        return _compare("token_limit", f"amount {self.call.token_amount}",
                        self.call.token_amount, f"max {cap} of token {self.action.to}", cap)

    def token_budget(self) -> RuleResult:
        if not self.call.is_token_call:
            return _result("token_budget", True, "not an ERC-20 transfer or approve")
        limit = self._limit()
        if limit is None:
            return _result("token_budget", False,
                           f"token {self.action.to} has no TokenLimit in the policy")
        amount = self.call.token_amount
        if amount == 0:
            return _result("token_budget", True, "amount 0 reserves nothing")
        used = self.facts.token_used(self.action.to)
        cap = _wei(limit.budget_amount)
        return _compare("token_budget", f"used {used} + amount {amount} = {used + amount}",
                        used + amount, f"budget {cap} of token {self.action.to}", cap)

    def max_fee(self) -> RuleResult:
        cap = _wei(self.policy.max_fee_per_gas_wei)
        if cap <= 0:
            return _result("max_fee", False, "max_fee_per_gas_wei is 0: no transaction can pay")
        hint = self.facts.fee_cap_hint_wei
        if hint is None:
            return _result("max_fee", True, f"current fee unknown; cap {cap}")
        return _compare("max_fee", f"current fee {hint}", hint, f"cap {cap}", cap)

    def approval_threshold(self) -> RuleResult:
        threshold = _wei(self.policy.approval_threshold_wei)
        if self.needs_approval():
            return _result("approval_threshold", True,
                           f"value {self.value} > threshold {threshold}: needs approval")
        return _result("approval_threshold", True,
                       f"value {self.value} <= threshold {threshold}")

    def needs_approval(self) -> bool:
        return self.action.kind != ActionKind.CONTRACT_READ and \
            self.value > _wei(self.policy.approval_threshold_wei)

    def _limit(self) -> TokenLimit | None:
        """The token's TokenLimit; with several (the gateway refuses that), the tightest."""
        mine = [limit for limit in self.policy.token_limits
                if isinstance(limit.token, str) and limit.token.lower() == self.to]
        if not mine:
            return None
        return TokenLimit(token=mine[0].token,
                          max_amount=str(min(_wei(lim.max_amount) for lim in mine)),
                          budget_amount=str(min(_wei(lim.budget_amount) for lim in mine)))


_KNOWN_KINDS = frozenset({ActionKind.CONTRACT_READ, ActionKind.NATIVE_TRANSFER,
                          ActionKind.CONTRACT_WRITE, ActionKind.ERC20_TRANSFER,
                          ActionKind.ERC20_APPROVE})


def _result(rule: str, passed: bool, detail: str) -> RuleResult:
    return RuleResult(rule=rule, passed=passed, detail=detail)


def _compare(rule: str, left: str, value: int, right: str, cap: int) -> RuleResult:
    passed = value <= cap
    return _result(rule, passed, f"{left} {'<=' if passed else '>'} {right}")


def _kind(kind: object) -> str:
    return str(getattr(kind, "value", kind))


def _lowered(addresses: Iterable[str]) -> frozenset[str]:
    return frozenset(a.lower() for a in addresses if isinstance(a, str))


def _wei(text: str) -> int:
    """A policy amount; one that is not a decimal integer counts as 0 (deny-safe)."""
    return int(text) if isinstance(text, str) and _WEI.fullmatch(text) else 0


def _words(data: str) -> tuple[str, list[str]] | None:
    if not isinstance(data, str) or not _HEX.fullmatch(data) or len(data) < 10:
        return None
    body = data[10:].lower()
    if len(body) % _WORD:
        return None
    return data[:10].lower(), [body[i:i + _WORD] for i in range(0, len(body), _WORD)]


def _address(word: str) -> str | None:
    if word[:24] != "0" * 24:
        return None
    return "0x" + word[24:]
