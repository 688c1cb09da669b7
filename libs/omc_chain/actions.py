"""From a tool call to a typed `omc.task.Action`, and the hash a human approves. Pure.

    build_action(action_id, chain_id, tool_name, arguments, tool_call_id) -> Action
    action_hash(action) -> "0x" + 64 hex digits

The tools and their arguments (anything else, or anything malformed, raises `ActionInvalid`):

    transfer_native  {to, value_wei}                          -> NATIVE_TRANSFER, data "0x"
    erc20_transfer   {token, to, amount}                      -> ERC20_TRANSFER to the token
    erc20_approve    {token, spender, amount}                 -> ERC20_APPROVE to the token
    erc20_balance    {token, holder}                          -> CONTRACT_READ balanceOf
    contract_write   {address, signature, args?, value_wei?}  -> CONTRACT_WRITE
    contract_read    {address, signature, args?}              -> CONTRACT_READ

Amounts are integers in base units (wei, token units), given as JSON integers or decimal
strings, never floats. `signature` is a text signature (names allowed) or a JSON ABI fragment;
`args` a list by position or an object by parameter name. A contract_write whose selector is
ERC-20 transfer or approve becomes ERC20_TRANSFER / ERC20_APPROVE (so policy checks its
recipient or spender whatever tool the model chose), with arguments named as the standard
names them (to, amount / spender, amount). For a CONTRACT_READ `function_signature` carries the
outputs too, e.g. balanceOf(address)(uint256), so the reader can decode the result; for a write
it is the canonical signature, e.g. transfer(address,uint256). `arguments_json` is the decoded
calldata as canonical JSON, by parameter name (unnamed: arg0, arg1, …).

`action_hash` is SHA-256 over the canonical JSON (sorted keys, no spaces, UTF-8) of every field
of the Action, the kind by its name: the hash an approval names, so approving one action can
never approve another.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable, Mapping
from typing import Any

from omc_chain import abi
from omc_chain.errors import AbiError, ActionInvalid
from omc_events.records import Action, ActionKind

ZERO_ADDRESS = "0x" + "0" * 40
TRANSFER = abi.parse_signature("transfer(address to,uint256 amount)")
APPROVE = abi.parse_signature("approve(address spender,uint256 amount)")
BALANCE_OF = abi.parse_signature("balanceOf(address holder)(uint256 balance)")

TOOL_ARGUMENTS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "transfer_native": (frozenset({"to", "value_wei"}), frozenset()),
    "erc20_transfer": (frozenset({"token", "to", "amount"}), frozenset()),
    "erc20_approve": (frozenset({"token", "spender", "amount"}), frozenset()),
    "erc20_balance": (frozenset({"token", "holder"}), frozenset()),
    "contract_write": (frozenset({"address", "signature"}), frozenset({"args", "value_wei"})),
    "contract_read": (frozenset({"address", "signature"}), frozenset({"args"})),
}
"""Tool name -> (required argument names, optional argument names)."""

_UINT = re.compile(r"0|[1-9][0-9]*")
_MAX_UINT256 = 2**256


def build_action(action_id: str, chain_id: int, tool_name: str, arguments: Mapping[str, Any],
                 tool_call_id: str | None) -> Action:
    """The Action a tool call asks for; `ActionInvalid` when it is not a well-formed one."""
    if not isinstance(action_id, str) or not action_id:
        raise ActionInvalid("an action needs a non-empty action_id")
    if isinstance(chain_id, bool) or not isinstance(chain_id, int) or chain_id <= 0:
        raise ActionInvalid(f"chain_id must be a positive integer, got {chain_id!r}")
    if tool_call_id is not None and not isinstance(tool_call_id, str):
        raise ActionInvalid("tool_call_id must be a string or None")
    builder = _BUILDERS.get(tool_name) if isinstance(tool_name, str) else None
    if builder is None:
        raise ActionInvalid(f"{tool_name!r} is not a tool that makes an action; "
                            f"one of {', '.join(sorted(_BUILDERS))}")
    _check_names(tool_name, arguments)
    try:
        fields = builder(arguments)
    except AbiError as error:
        raise ActionInvalid(f"{tool_name}: {error}") from None
    return Action(action_id=action_id, chain_id=chain_id, tool_call_id=tool_call_id, **fields)


def action_hash(action: Action) -> str:
    """SHA-256 of the canonical JSON of all the Action's fields (the kind by its name)."""
    fields = {f.name: getattr(action, f.name) for f in dataclasses.fields(action)}
    fields["kind"] = ActionKind(action.kind).name
    text = abi.canonical_json(fields)
    return "0x" + hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- one builder per tool -------------------------------------------------------------------


def _check_names(tool: str, arguments: Any) -> None:
    if not isinstance(arguments, Mapping):
        raise ActionInvalid(f"{tool}: the arguments must be a JSON object")
    required, optional = TOOL_ARGUMENTS[tool]
    missing = sorted(required - set(arguments))
    unknown = sorted(set(arguments) - required - optional)
    if missing or unknown:
        raise ActionInvalid(f"{tool}: missing {missing or 'none'}, unknown {unknown or 'none'}")


def _native(arguments: Mapping[str, Any]) -> dict[str, Any]:
    return {"kind": ActionKind.NATIVE_TRANSFER, "to": _target(arguments["to"], "to"),
            "value_wei": _amount(arguments["value_wei"], "value_wei"), "data": "0x",
            "function_signature": None, "arguments_json": "{}"}


def _erc20_transfer(arguments: Mapping[str, Any]) -> dict[str, Any]:
    recipient = _target(arguments["to"], "to")
    amount = _amount(arguments["amount"], "amount")
    return _call(ActionKind.ERC20_TRANSFER, _target(arguments["token"], "token"), TRANSFER,
                 {"to": recipient, "amount": amount}, "0")


def _erc20_approve(arguments: Mapping[str, Any]) -> dict[str, Any]:
    spender = _target(arguments["spender"], "spender")
    amount = _amount(arguments["amount"], "amount")
    return _call(ActionKind.ERC20_APPROVE, _target(arguments["token"], "token"), APPROVE,
                 {"spender": spender, "amount": amount}, "0")


def _erc20_balance(arguments: Mapping[str, Any]) -> dict[str, Any]:
    holder = abi.address(arguments["holder"], "holder")
    return _call(ActionKind.CONTRACT_READ, _target(arguments["token"], "token"), BALANCE_OF,
                 {"holder": holder}, "0")


def _contract_write(arguments: Mapping[str, Any]) -> dict[str, Any]:
    fn = abi.parse_signature(arguments["signature"])
    value = _amount(arguments.get("value_wei", "0"), "value_wei")
    calldata = abi.encode_call(fn, arguments.get("args", []))
    target = _target(arguments["address"], "address")
    standard = {TRANSFER.selector: (ActionKind.ERC20_TRANSFER, TRANSFER),
                APPROVE.selector: (ActionKind.ERC20_APPROVE, APPROVE)}.get(fn.selector)
    if standard is not None:
        if value != "0":
            raise ActionInvalid(f"{fn.canonical} sends no native value; value_wei must be 0")
        kind, named = standard
        return _call(kind, target, named, abi.decode_call(calldata, named), value)
    return _call(ActionKind.CONTRACT_WRITE, target, fn, abi.decode_call(calldata, fn), value)


def _contract_read(arguments: Mapping[str, Any]) -> dict[str, Any]:
    fn = abi.parse_signature(arguments["signature"])
    calldata = abi.encode_call(fn, arguments.get("args", []))
    return {"kind": ActionKind.CONTRACT_READ, "to": _target(arguments["address"], "address"),
            "value_wei": "0", "data": calldata,
            "function_signature": fn.canonical_with_outputs,
            "arguments_json": abi.canonical_json(abi.decode_call(calldata, fn))}


def _call(kind: ActionKind, to: str, fn: abi.Function, args: Mapping[str, Any],
          value_wei: str) -> dict[str, Any]:
    calldata = abi.encode_call(fn, args)
    signature = fn.canonical_with_outputs if kind is ActionKind.CONTRACT_READ else fn.canonical
    return {"kind": kind, "to": to, "value_wei": value_wei, "data": calldata,
            "function_signature": signature,
            "arguments_json": abi.canonical_json(abi.decode_call(calldata, fn))}


def _target(value: Any, name: str) -> str:
    checksummed = abi.address(value, name)
    if checksummed == ZERO_ADDRESS:
        raise ActionInvalid(f"{name} is the zero address")
    return checksummed


def _amount(value: Any, name: str) -> str:
    """A non-negative uint256 in base units, as a decimal string."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ActionInvalid(f"{name} must be an integer in base units (a JSON integer or a "
                            f"string of decimal digits), not {type(value).__name__}")
    text = str(value) if isinstance(value, int) else value
    if not _UINT.fullmatch(text) or int(text) >= _MAX_UINT256:
        raise ActionInvalid(f"{name} must be a non-negative integer below 2**256 in base "
                            f"units, got {text[:40]!r}")
    return text


_BUILDERS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "transfer_native": _native,
    "erc20_transfer": _erc20_transfer,
    "erc20_approve": _erc20_approve,
    "erc20_balance": _erc20_balance,
    "contract_write": _contract_write,
    "contract_read": _contract_read,
}
