"""One contract function, from a human signature or a JSON ABI fragment, and its arguments.

    parse_function("balanceOf(address)(uint256)")              -> FunctionAbi
    parse_function("balanceOf(address owner) returns (uint256)")
    parse_function({"type": "function", "name": "balanceOf",
                    "inputs": [{"name": "owner", "type": "address"}],
                    "outputs": [{"type": "uint256"}]})
    check_arguments(fn, ["0xAbC…"])                            -> normalized list

Supported types: address, bool, string, bytes, bytes1..bytes32, uint8..uint256, int8..int256
(`uint`/`int` mean 256 bits) and arrays of them (T[], T[k]). Tuples are refused. Argument
values are JSON: integers as decimal strings (never JSON numbers, never floats), addresses as
"0x" + 40 hex (EIP-55 checked when mixed case, returned checksummed), bytes as "0x" hex
(returned lowercase), bools as true/false, arrays as JSON arrays. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from eth_utils import is_checksum_address, keccak, to_checksum_address

from omc_errors import OmcError

_IDENT = r"[A-Za-z_$][A-Za-z0-9_$]*"
_SIGNATURE = re.compile(
    rf"\s*(?:function\s+)?({_IDENT})\s*\(([^()]*)\)\s*(?:(?:returns\s*)?\(([^()]*)\))?\s*")
_ELEMENTARY = re.compile(
    r"(?P<int>u?int)(?P<bits>[0-9]*)|address|bool|string|bytes(?P<size>[0-9]*)")
_ARRAY = re.compile(r"\[([0-9]*)\]$")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_UINT = re.compile(r"0|[1-9][0-9]*")
_INT = re.compile(r"0|-?[1-9][0-9]*")
_HEX = re.compile(r"0x(?:[0-9a-fA-F]{2})*")
MAX_SIGNATURE_CHARS = 1000


class AbiError(OmcError):
    """A signature, ABI fragment or argument list is not usable; the message says which part."""


@dataclass(frozen=True, slots=True)
class FunctionAbi:
    """A contract function: its name, canonical input and output types, and parameter names."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...] = ()
    input_names: tuple[str, ...] = ()

    @property
    def signature(self) -> str:
        """The canonical signature the selector is hashed from, e.g. transfer(address,uint256)."""
        return f"{self.name}({','.join(self.inputs)})"

    @property
    def selector(self) -> str:
        """The 4-byte selector, "0x" + 8 lowercase hex digits."""
        return "0x" + keccak(text=self.signature)[:4].hex()


def canonical_type(text: str) -> str:
    """The canonical spelling of a supported ABI type (uint → uint256); AbiError otherwise."""
    kind = text.strip()
    suffix = ""
    while (array := _ARRAY.search(kind)) is not None:
        if array.group(1) and int(array.group(1)) == 0:
            raise AbiError(f"type {text!r}: a fixed array needs a length above 0")
        suffix = array.group(0) + suffix
        kind = kind[: array.start()].rstrip()
    match = _ELEMENTARY.fullmatch(kind)
    if match is None:
        raise AbiError(f"type {text!r} is not supported (elementary types and arrays only)")
    if match.group("int"):
        bits = int(match.group("bits") or 256)
        if bits % 8 or not 8 <= bits <= 256 or match.group("bits").startswith("0"):
            raise AbiError(f"type {text!r}: integer sizes are 8..256 in steps of 8")
        kind = f"{match.group('int')}{bits}"
    elif kind.startswith("bytes") and match.group("size"):
        size = int(match.group("size"))
        if not 1 <= size <= 32 or match.group("size").startswith("0"):
            raise AbiError(f"type {text!r}: fixed bytes sizes are 1..32")
    return kind + suffix


def _parameter_list(text: str, where: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    types, names = [], []
    if not text.strip():
        return (), ()
    for i, part in enumerate(text.split(",")):
        words = part.split()
        if not words or len(words) > 3:
            raise AbiError(f"{where} parameter {i + 1} ({part.strip()!r}) is not 'type [name]'")
        types.append(canonical_type(words[0]))
        names.append(words[-1] if len(words) > 1 else "")
    return tuple(types), tuple(names)


def parse_signature(text: str) -> FunctionAbi:
    """A function from a human signature: name(types)(returns) or name(types) returns (…)."""
    if len(text) > MAX_SIGNATURE_CHARS:
        raise AbiError(f"signature longer than {MAX_SIGNATURE_CHARS} characters")
    match = _SIGNATURE.fullmatch(text)
    if match is None:
        raise AbiError(f"signature {text[:80]!r} is not name(type,…) or name(type,…)(type,…)")
    inputs, names = _parameter_list(match.group(2), "input")
    outputs, _ = _parameter_list(match.group(3) or "", "output")
    return FunctionAbi(match.group(1), inputs, outputs, names)


def _fragment_types(params: Any, where: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if params is None:
        return (), ()
    if not isinstance(params, list):
        raise AbiError(f"ABI fragment {where} must be a list")
    types, names = [], []
    for i, param in enumerate(params):
        if not isinstance(param, dict) or not isinstance(param.get("type"), str):
            raise AbiError(f"ABI fragment {where}[{i}] must be an object with a string 'type'")
        if param["type"].startswith("tuple"):
            raise AbiError(f"ABI fragment {where}[{i}]: tuple types are not supported")
        types.append(canonical_type(param["type"]))
        name = param.get("name", "")
        names.append(name if isinstance(name, str) else "")
    return tuple(types), tuple(names)


def parse_fragment(fragment: dict[str, Any]) -> FunctionAbi:
    """A function from one JSON ABI entry ({"type": "function", "name", "inputs", "outputs"})."""
    if fragment.get("type", "function") != "function":
        raise AbiError(f"ABI fragment type {fragment.get('type')!r} is not 'function'")
    name = fragment.get("name")
    if not isinstance(name, str) or not re.fullmatch(_IDENT, name):
        raise AbiError("ABI fragment needs a 'name' that is an identifier")
    inputs, names = _fragment_types(fragment.get("inputs", []), "inputs")
    outputs, _ = _fragment_types(fragment.get("outputs", []), "outputs")
    return FunctionAbi(name, inputs, outputs, names)


def parse_function(abi: str | dict[str, Any]) -> FunctionAbi:
    """A function from a human signature (str) or a JSON ABI fragment (dict)."""
    if isinstance(abi, str):
        return parse_signature(abi)
    if isinstance(abi, dict):
        return parse_fragment(abi)
    raise AbiError("abi must be a signature string or one ABI fragment object")


def normalize_address(value: Any, where: str) -> str:
    """An EVM address, EIP-55 checksummed; AbiError if malformed or if its checksum is wrong."""
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
        raise AbiError(f"{where} must be an address, 0x + 40 hex digits, got {_show(value)}")
    digits = value[2:]
    if digits != digits.lower() and digits != digits.upper() and not is_checksum_address(value):
        raise AbiError(f"{where} has a wrong EIP-55 checksum: {value}")
    return to_checksum_address(value)


def _check_value(kind: str, value: Any, where: str) -> Any:
    array = _ARRAY.search(kind)
    if array is not None:
        inner = kind[: array.start()]
        if not isinstance(value, list):
            raise AbiError(f"{where} must be a JSON array for {kind}, got {_show(value)}")
        if array.group(1) and len(value) != int(array.group(1)):
            raise AbiError(f"{where} must hold {array.group(1)} items, got {len(value)}")
        return [_check_value(inner, item, f"{where}[{i}]") for i, item in enumerate(value)]
    if kind == "address":
        return normalize_address(value, where)
    if kind == "bool":
        if not isinstance(value, bool):
            raise AbiError(f"{where} must be true or false, got {_show(value)}")
        return value
    if kind == "string":
        if not isinstance(value, str):
            raise AbiError(f"{where} must be a string, got {_show(value)}")
        return value
    if kind.startswith("bytes"):
        if not isinstance(value, str) or not _HEX.fullmatch(value):
            raise AbiError(f"{where} must be 0x + an even number of hex digits, got {_show(value)}")
        size = kind[len("bytes"):]
        if size and len(value) != 2 + 2 * int(size):
            raise AbiError(f"{where} must be exactly {size} bytes for {kind}")
        return value.lower()
    signed = kind.startswith("int")
    bits = int(kind[3 if signed else 4:])
    if not isinstance(value, str) or not (_INT if signed else _UINT).fullmatch(value):
        sort = "integer" if signed else "non-negative integer"
        raise AbiError(f"{where} must be a {sort} as a decimal string, got {_show(value)}")
    number = int(value)
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    if not low <= number <= high:
        raise AbiError(f"{where} is out of range for {kind}")
    return value


def check_arguments(fn: FunctionAbi, args: Any, where: str = "args") -> list[Any]:
    """The arguments for `fn`, checked against its input types and normalized."""
    if not isinstance(args, list):
        raise AbiError(f"{where} must be a JSON array, got {_show(args)}")
    if len(args) != len(fn.inputs):
        raise AbiError(f"{where}: {fn.signature} takes {len(fn.inputs)} arguments, got {len(args)}")
    return [_check_value(kind, value, f"{where}[{i}] ({kind})")
            for i, (kind, value) in enumerate(zip(fn.inputs, args, strict=True))]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
