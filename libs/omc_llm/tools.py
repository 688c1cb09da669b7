"""The tool catalogue offered to the model, and the check every tool call passes first.

Tools (OpenAI "function" tool format, JSON schema per tool; every amount is a decimal integer
string in base units — wei for native value — never a JSON number):

    read   get_balance(address)                     native balance of an address
           erc20_balance(token, holder)             ERC-20 balance of holder in token
           contract_read(address, abi, args=[])     eth_call of one function
    write  transfer_native(to, value_wei)           send native value
           erc20_transfer(token, to, amount)        ERC-20 transfer
           erc20_approve(token, spender, amount)    ERC-20 approve (a side door: policy decides)
           contract_write(address, abi, args=[], value_wei="0")

`abi` is one function: a human signature "balanceOf(address)(uint256)" or one JSON ABI
fragment object. `validate_call(name, arguments_json)` is the gate between the model's
untrusted output and an action: it returns the arguments normalized (addresses EIP-55
checksummed, defaults filled in, `args` checked against the function's input types) or raises
`InvalidToolCall` saying exactly what is wrong. Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from typing import Any

from omc_errors import OmcError
from omc_llm.abi import AbiError, check_arguments, normalize_address, parse_function

ADDRESS_SCHEMA = {"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$",
                  "description": "EVM address, 0x + 40 hex digits."}
AMOUNT_SCHEMA = {"type": "string", "pattern": "^(0|[1-9][0-9]*)$",
                 "description": "Integer in base units as a decimal string (never a number)."}
ABI_SCHEMA = {
    "description": ('One function: a human signature such as "balanceOf(address)(uint256)" or '
                    "one JSON ABI fragment object."),
    "anyOf": [{"type": "string"}, {"type": "object"}],
}
ARGS_SCHEMA = {"type": "array", "description": ("Arguments in order; integers as decimal "
                                                "strings, addresses as 0x strings.")}
MAX_ARGUMENTS_CHARS = 16_384
UINT256_MAX = 2**256 - 1


def _tool(name: str, description: str, properties: dict[str, Any],
          required: list[str]) -> dict[str, Any]:
    return {"type": "function", "function": {
        "name": name, "description": description,
        "parameters": {"type": "object", "properties": properties, "required": required,
                       "additionalProperties": False}}}


TOOL_SCHEMAS: tuple[dict[str, Any], ...] = (
    _tool("get_balance", "Native balance (in wei) of an address.",
          {"address": ADDRESS_SCHEMA}, ["address"]),
    _tool("erc20_balance", "ERC-20 balance (in the token's base units) of a holder.",
          {"token": ADDRESS_SCHEMA, "holder": ADDRESS_SCHEMA}, ["token", "holder"]),
    _tool("transfer_native", "Propose sending native value (wei) to an address.",
          {"to": ADDRESS_SCHEMA, "value_wei": AMOUNT_SCHEMA}, ["to", "value_wei"]),
    _tool("erc20_transfer", "Propose an ERC-20 transfer of amount base units to an address.",
          {"token": ADDRESS_SCHEMA, "to": ADDRESS_SCHEMA, "amount": AMOUNT_SCHEMA},
          ["token", "to", "amount"]),
    _tool("erc20_approve", "Propose an ERC-20 approve: let spender move amount base units.",
          {"token": ADDRESS_SCHEMA, "spender": ADDRESS_SCHEMA, "amount": AMOUNT_SCHEMA},
          ["token", "spender", "amount"]),
    _tool("contract_read", "Call a view function of a contract (no transaction).",
          {"address": ADDRESS_SCHEMA, "abi": ABI_SCHEMA, "args": ARGS_SCHEMA},
          ["address", "abi"]),
    _tool("contract_write", "Propose a transaction calling a contract function.",
          {"address": ADDRESS_SCHEMA, "abi": ABI_SCHEMA, "args": ARGS_SCHEMA,
           "value_wei": AMOUNT_SCHEMA}, ["address", "abi"]),
)
TOOLS_BY_NAME: dict[str, dict[str, Any]] = {t["function"]["name"]: t for t in TOOL_SCHEMAS}
TOOL_NAMES: tuple[str, ...] = tuple(TOOLS_BY_NAME)
READ_TOOLS: frozenset[str] = frozenset({"get_balance", "erc20_balance", "contract_read"})
WRITE_TOOLS: frozenset[str] = frozenset(TOOL_NAMES) - READ_TOOLS
_DEFAULTS: dict[str, dict[str, Any]] = {"contract_read": {"args": []},
                                        "contract_write": {"args": [], "value_wei": "0"}}


class InvalidToolCall(OmcError):
    """A tool call from the model does not fit the catalogue; the message says exactly why."""

    def __init__(self, tool: str, problem: str) -> None:
        self.tool = tool
        self.problem = problem
        super().__init__(f"tool call {tool}: {problem}")


def tool_schemas(names: list[str] | tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """The schemas of the named tools (all when None), in catalogue order; unknown → error."""
    if names is None:
        return list(TOOL_SCHEMAS)
    unknown = sorted(set(names) - set(TOOL_NAMES))
    if unknown:
        raise InvalidToolCall(unknown[0], f"unknown tool; known: {', '.join(TOOL_NAMES)}")
    return [t for t in TOOL_SCHEMAS if t["function"]["name"] in set(names)]


def _amount(tool: str, field: str, value: Any) -> str:
    pattern = AMOUNT_SCHEMA["pattern"].strip("^$")
    if isinstance(value, bool) or not isinstance(value, str):
        raise InvalidToolCall(tool, f"field '{field}' must be a decimal integer string in base "
                                    f"units (e.g. \"1000\"), got JSON {type(value).__name__} "
                                    f"{_show(value)}")
    if not re.fullmatch(pattern, value):
        raise InvalidToolCall(tool, f"field '{field}' must be a non-negative decimal integer "
                                    f"string without sign, point or leading zeros, got "
                                    f"{_show(value)}")
    if int(value) > UINT256_MAX:
        raise InvalidToolCall(tool, f"field '{field}' is above 2**256-1")
    return value


def validate_call(name: str, arguments_json: str) -> dict[str, Any]:
    """The checked and normalized arguments of a call to tool `name`; InvalidToolCall if not."""
    schema = TOOLS_BY_NAME.get(name)
    if schema is None:
        raise InvalidToolCall(_show(name) if not isinstance(name, str) else name[:60],
                              f"unknown tool; known: {', '.join(TOOL_NAMES)}")
    if not isinstance(arguments_json, str):
        raise InvalidToolCall(name, "arguments must be a JSON object in text")
    if len(arguments_json) > MAX_ARGUMENTS_CHARS:
        raise InvalidToolCall(name, f"arguments longer than {MAX_ARGUMENTS_CHARS} characters")
    try:
        arguments = json.loads(arguments_json, parse_float=_refuse_float,
                               parse_constant=_refuse_float)
    except (ValueError, RecursionError) as error:
        raise InvalidToolCall(name, f"arguments are not valid JSON ({_reason(error)})") from None
    if not isinstance(arguments, dict):
        raise InvalidToolCall(name, f"arguments must be a JSON object, got "
                                    f"{type(arguments).__name__}")
    parameters = schema["function"]["parameters"]
    unknown = sorted(set(arguments) - set(parameters["properties"]))
    if unknown:
        raise InvalidToolCall(name, f"unknown field(s) {', '.join(map(repr, unknown))}; "
                                    f"allowed: {', '.join(parameters['properties'])}")
    missing = [f for f in parameters["required"] if f not in arguments]
    if missing:
        raise InvalidToolCall(name, f"missing field(s) {', '.join(map(repr, missing))}")
    checked = {**_DEFAULTS.get(name, {}), **arguments}
    for field, spec in parameters["properties"].items():
        value = checked[field]
        if spec is ADDRESS_SCHEMA:
            try:
                checked[field] = normalize_address(value, f"field '{field}'")
            except AbiError as error:
                raise InvalidToolCall(name, str(error)) from None
        elif spec is AMOUNT_SCHEMA:
            checked[field] = _amount(name, field, value)
    if "abi" in checked:
        try:
            function = parse_function(checked["abi"])
            checked["args"] = check_arguments(function, checked["args"])
        except AbiError as error:
            raise InvalidToolCall(name, str(error)) from None
    return checked


class _FloatSeen(ValueError):
    pass


def _refuse_float(text: str) -> Any:
    raise _FloatSeen(f"number {text} is not an integer string; amounts are decimal strings")


def _reason(error: Exception) -> str:
    return str(error) if isinstance(error, _FloatSeen) else type(error).__name__ + ": " + str(
        error)[:80]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
