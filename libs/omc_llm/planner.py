"""The offline deterministic planner: the embedded default model (no key, no network).

`LocalPlanner` implements `LanguageModel` (name "local-planner", model "omc-local-planner").
It reads the instruction from the last user message (the rendered prompt's INSTRUCTION line)
and answers with at most one round of tool calls; once tool results (role "tool") follow
that instruction it answers a final summary (finish_reason "stop"). The grammar is in
docs/planner.md; an instruction outside it gets a final text saying so and no tool call.

Guarantees: the same conversation gives the same output (call ids are hashes of the input;
no clock, no randomness; latency 0, tokens 0, cost 0); every address in a tool call is
written literally in the instruction (checksummed, never corrected or invented); only tools of
the catalogue that the request offers are called; tool results never cause a tool call.
Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Context, Decimal, InvalidOperation
from typing import Any

from omc_llm.abi import AbiError, FunctionAbi, check_arguments, normalize_address, parse_function
from omc_llm.canonical import canonical_json, sha256_hex
from omc_llm.model import InferenceInput, InferenceOutput, ToolCallOut
from omc_llm.prompt import extract_instruction
from omc_llm.tools import TOOL_NAMES, UINT256_MAX

PROVIDER = "local-planner"
MODEL = "omc-local-planner"
MAX_INSTRUCTION_CHARS = 2000
UNITS = {"ether": 10**18, "eth": 10**18, "gwei": 10**9, "wei": 1}

_A = r"(0x[0-9a-fA-F]{40})(?![0-9a-zA-Z_])"
_N = r"([0-9]+(?:\.[0-9]+)?)"
_ASK = r"(?:(?:what(?:'s|\s+is)|get|show|check|tell\s+me)\s+)?(?:the\s+)?"
_UNIT_WORDS = r"(?:(?:tokens?|units?)\s+)?(?:of\s+)?(?:(?:the\s+)?token\s+)?"
_DECIMALS = r"(?:\s*,?\s*(?:with|using)\s+([0-9]{1,2})\s+decimals)?"
_SIG = r"([A-Za-z_$][A-Za-z0-9_$]*\s*\([^()]*\)(?:\s*(?:returns\s*)?\([^()]*\))?)"
_PREFIX = r"\s*(?:please\s*,?\s*)?(?:(?:can|could|would)\s+you\s+(?:please\s+)?)?"
_SUFFIX = r"\s*(?:,?\s*please)?\s*[.!?]*\s*"


def _form(body: str) -> re.Pattern[str]:
    return re.compile(_PREFIX + body + _SUFFIX, re.IGNORECASE | re.DOTALL)


BALANCE = _form(_ASK + r"(?:(?:native|eth|ether)\s+)?balance\s+of\s+" + _A)
TOKEN_BALANCE = _form(_ASK + r"(?:token|erc-?20)\s+balance\s+of\s+" + _A
                      + r"\s+(?:in|on|for)\s+(?:(?:the\s+)?token\s+)?" + _A)
NATIVE = _form(r"(?:send|transfer|pay)\s+" + _N + r"\s*(ether|eth|gwei|wei)\s+to\s+" + _A)
TOKEN_TRANSFER = _form(r"(?:send|transfer|pay)\s+" + _N + r"\s+" + _UNIT_WORDS + _A
                       + r"\s+to\s+" + _A + _DECIMALS)
APPROVE = _form(r"approve\s+" + _A + r"\s+to\s+spend\s+" + _N + r"\s+" + _UNIT_WORDS + _A
                + _DECIMALS)
READ = _form(r"(?:read|call)\s+" + _SIG + r"\s+(?:on|at|of|from)\s+(?:contract\s+)?" + _A
             + r"(?:\s+with\s+(?:args?|arguments)\s*:?\s*(.+?))?")

HELP = ("I understand: 'what is the balance of 0x…', 'token balance of 0x… in 0x…', "
        "'send 0.01 ether to 0x…' (ether, eth, gwei, wei), 'transfer 5 tokens of 0x… to 0x…' "
        "(base units, or '… with 18 decimals'), 'approve 0x… to spend 100 of token 0x…', "
        "'read balanceOf(address)(uint256) on 0x… with args 0x…'. See docs/planner.md.")


class NotUnderstood(ValueError):
    """The instruction matched a form but a value in it is unusable; the text says which."""


@dataclass(frozen=True, slots=True)
class PlannedCall:
    """One tool call the instruction asks for."""

    name: str
    arguments: dict[str, Any]


def _address(text: str, role: str) -> str:
    try:
        return normalize_address(text, role)
    except AbiError as error:
        raise NotUnderstood(str(error)) from None


_EXACT = Context(prec=200, traps=[InvalidOperation])
"""Wide enough that no amount below 2**256 with its unit is ever rounded (the default
28-digit context would round 2**256 wei, or 0.0999…9 ether, to a nearby amount)."""


def _scaled(amount: str, scale: int, what: str) -> str:
    try:
        value = _EXACT.multiply(Decimal(amount), Decimal(scale))
    except InvalidOperation:
        raise NotUnderstood(f"{what} {amount!r} is not a number") from None
    if value != value.to_integral_value():
        raise NotUnderstood(f"{what} {amount} has more decimals than the smallest unit allows")
    if value > UINT256_MAX:
        raise NotUnderstood(f"{what} {amount} is too large")
    return str(int(value))


def _token_amount(amount: str, decimals: str | None) -> str:
    if decimals is None and "." in amount:
        raise NotUnderstood(f"token amount {amount} has a point: give base units, or say "
                            f"'with <n> decimals'")
    return _scaled(amount, 10 ** int(decimals or 0), "token amount")


def _read_args(fn: FunctionAbi, text: str | None) -> list[Any]:
    if text is None or not text.strip():
        raw: list[Any] = []
    elif text.strip().startswith("["):
        try:
            raw = json.loads(text, parse_float=str, parse_int=str)
        except ValueError:
            raise NotUnderstood("the args are not a valid JSON array") from None
    else:
        raw = [part.strip().strip("'\"") for part in text.split(",")]
    if isinstance(raw, list):
        raw = [(item.lower() == "true") if kind == "bool" and isinstance(item, str)
               and item.lower() in ("true", "false") else item
               for kind, item in zip(fn.inputs, raw, strict=False)] + raw[len(fn.inputs):]
    try:
        return check_arguments(fn, raw)
    except AbiError as error:
        raise NotUnderstood(str(error)) from None


def _balance(m: re.Match[str]) -> PlannedCall:
    return PlannedCall("get_balance", {"address": _address(m.group(1), "address")})


def _token_balance(m: re.Match[str]) -> PlannedCall:
    return PlannedCall("erc20_balance", {"holder": _address(m.group(1), "holder"),
                                         "token": _address(m.group(2), "token")})


def _native(m: re.Match[str]) -> PlannedCall:
    unit = m.group(2).lower()
    return PlannedCall("transfer_native", {"to": _address(m.group(3), "recipient"),
                                           "value_wei": _scaled(m.group(1), UNITS[unit],
                                                                f"amount in {unit}")})


def _token_transfer(m: re.Match[str]) -> PlannedCall:
    return PlannedCall("erc20_transfer", {"token": _address(m.group(2), "token"),
                                          "to": _address(m.group(3), "recipient"),
                                          "amount": _token_amount(m.group(1), m.group(4))})


def _approve(m: re.Match[str]) -> PlannedCall:
    return PlannedCall("erc20_approve", {"spender": _address(m.group(1), "spender"),
                                         "token": _address(m.group(3), "token"),
                                         "amount": _token_amount(m.group(2), m.group(4))})


def _read(m: re.Match[str]) -> PlannedCall:
    try:
        fn = parse_function(m.group(1))
    except AbiError as error:
        raise NotUnderstood(str(error)) from None
    abi = fn.signature + (f"({','.join(fn.outputs)})" if fn.outputs else "")
    return PlannedCall("contract_read", {"address": _address(m.group(2), "contract"),
                                         "abi": abi, "args": _read_args(fn, m.group(3))})


FORMS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], PlannedCall]], ...] = (
    (BALANCE, _balance), (TOKEN_BALANCE, _token_balance), (NATIVE, _native),
    (TOKEN_TRANSFER, _token_transfer), (APPROVE, _approve), (READ, _read),
)


def plan(instruction: str) -> PlannedCall | str:
    """The tool call the instruction asks for, or a text saying why there is none."""
    if len(instruction) > MAX_INSTRUCTION_CHARS:
        return f"The instruction is longer than {MAX_INSTRUCTION_CHARS} characters. {HELP}"
    for pattern, build in FORMS:
        match = pattern.fullmatch(instruction)
        if match is not None:
            try:
                return build(match)
            except NotUnderstood as problem:
                return f"I could not act on the instruction: {problem}."
    return f"I did not understand the instruction. {HELP}"


def summarize(messages: list[dict[str, Any]]) -> str:
    """The final answer once tool results are in: each call with its result, in order."""
    calls: dict[str, str] = {}
    for message in messages:
        for call in message.get("tool_calls") or []:
            function = call.get("function", {})
            calls[str(call.get("id"))] = f"{function.get('name')} {function.get('arguments')}"
    lines, failed = [], 0
    for message in messages:
        if message.get("role") != "tool":
            continue
        call_id = str(message.get("tool_call_id"))
        content = str(message.get("content", ""))
        try:
            ok = json.loads(content).get("ok", True) is not False
        except (ValueError, AttributeError):
            ok = True
        failed += not ok
        lines.append(f"- {calls.get(call_id, call_id)}: {'ok' if ok else 'failed'}: "
                     f"{content[:500]}")
    head = "Done." if not failed else f"Finished; {failed} of {len(lines)} step(s) failed."
    return "\n".join([head, *lines])


class LocalPlanner:
    """A deterministic rule-based planner behind the LanguageModel interface."""

    name = PROVIDER

    async def complete(self, request: InferenceInput) -> InferenceOutput:
        return self.answer(request)

    def answer(self, request: InferenceInput) -> InferenceOutput:
        """The planner's output for `request` (the synchronous core of `complete`)."""
        messages = request.messages
        users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
        if not users:
            return _text("There is no instruction to act on.")
        last = users[-1]
        if any(m.get("role") == "tool" for m in messages[last + 1:]):
            return _text(summarize(messages[last + 1:]))
        planned = plan(extract_instruction(str(messages[last].get("content") or "")))
        if isinstance(planned, str):
            return _text(planned)
        if planned.name not in TOOL_NAMES or planned.name not in request.tool_names:
            return _text(f"The instruction needs the tool {planned.name}, which is not offered "
                         f"in this step.")
        call_id = "call_" + sha256_hex(canonical_json(
            {"messages": messages, "model": request.model, "position": 0}))[2:26]
        call = ToolCallOut(call_id, planned.name, canonical_json(planned.arguments))
        return InferenceOutput(model=MODEL, response_text="", tool_calls=(call,),
                               finish_reason="tool_calls")


def _text(text: str) -> InferenceOutput:
    return InferenceOutput(model=MODEL, response_text=text, finish_reason="stop")
