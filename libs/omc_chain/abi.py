"""Function signatures, calldata and return values: pure functions over `eth_abi`.

    fn = parse_signature("transfer(address,uint256)")
    fn = parse_signature("transfer(address to, uint256 amount)")      # parameter names
    fn = parse_signature("balanceOf(address owner)(uint256)")         # with outputs
    fn = parse_signature({"type": "function", "name": ..., "inputs": [...], "outputs": [...]})
    selector(fn_or_text)              -> "0xa9059cbb"
    encode_call(signature, args)      -> "0x…" calldata; args a list by position or a dict by name
    decode_call(data, signature)      -> {"to": "0x…", "amount": "5"} by parameter name
    decode_result(output_types, data) -> ["5"]
    canonical_json(value)             -> sorted keys, no spaces, UTF-8 text

Decoded values are *canonical JSON values*: integers as decimal strings, addresses EIP-55,
bytes as lowercase 0x hex, booleans and strings as themselves, arrays as lists, tuples as
lists (as objects when every component is named). Parameters without a name are called
`arg0`, `arg1`, … Argument values are checked strictly (no floats, no booleans for numbers,
no out-of-range integers, exact-length fixed bytes, EIP-55 checksums when mixed case); a
mismatch raises `AbiError` naming the parameter. `fixed`/`ufixed` and `function` types are
not supported. No I/O, no clock.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import eth_abi
from eth_abi.exceptions import DecodingError, EncodingError
from eth_utils import keccak, to_checksum_address

from omc_chain.errors import AbiError

# -- well-known selectors (tests recompute each with keccak) ----------------------------------

ERC20_TRANSFER = "0xa9059cbb"          # transfer(address,uint256)
ERC20_APPROVE = "0x095ea7b3"           # approve(address,uint256)
ERC20_TRANSFER_FROM = "0x23b872dd"     # transferFrom(address,address,uint256)
ERC20_PERMIT = "0xd505accf"            # permit(owner,spender,value,deadline,v,r,s) EIP-2612
ERC20_INCREASE_ALLOWANCE = "0x39509351"  # increaseAllowance(address,uint256)
SET_APPROVAL_FOR_ALL = "0xa22cb465"    # setApprovalForAll(address,bool)
MULTICALL = "0xac9650d8"               # multicall(bytes[])
MULTICALL_DEADLINE = "0x5ae401dc"      # multicall(uint256,bytes[])
AGGREGATE = "0x252dba42"               # aggregate((address,bytes)[])
AGGREGATE3 = "0x82ad56cb"              # aggregate3((address,bool,bytes)[])
AGGREGATE3_VALUE = "0x174dea71"        # aggregate3Value((address,bool,uint256,bytes)[])

KNOWN_SELECTORS: dict[str, str] = {
    ERC20_TRANSFER: "transfer(address,uint256)",
    ERC20_APPROVE: "approve(address,uint256)",
    ERC20_TRANSFER_FROM: "transferFrom(address,address,uint256)",
    ERC20_PERMIT: "permit(address,address,uint256,uint256,uint8,bytes32,bytes32)",
    ERC20_INCREASE_ALLOWANCE: "increaseAllowance(address,uint256)",
    SET_APPROVAL_FOR_ALL: "setApprovalForAll(address,bool)",
    MULTICALL: "multicall(bytes[])",
    MULTICALL_DEADLINE: "multicall(uint256,bytes[])",
    AGGREGATE: "aggregate((address,bytes)[])",
    AGGREGATE3: "aggregate3((address,bool,bytes)[])",
    AGGREGATE3_VALUE: "aggregate3Value((address,bool,uint256,bytes)[])",
}
"""Selector -> canonical signature of the calls policy treats with care."""

SIDE_DOOR_SELECTORS: frozenset[str] = frozenset(KNOWN_SELECTORS) - {ERC20_TRANSFER}
"""Calls that grant spending rights or bundle other calls: denied unless a policy allows them."""

# -- types --------------------------------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_INT = re.compile(r"(u?)int([0-9]*)")
_FIXED_BYTES = re.compile(r"bytes([0-9]+)")
_SUFFIX = re.compile(r"\[([0-9]*)\]")
_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]*)")
_HEX = re.compile(r"0x(?:[0-9a-fA-F]{2})*")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_LOCATIONS = {"memory", "calldata", "storage", "indexed", "payable"}


@dataclass(frozen=True, slots=True)
class AbiType:
    """One ABI type: an elementary `base`, or a tuple (`base == "tuple"`) of `components`;
    `dims` are its array suffixes left to right (None: dynamic), e.g. uint8[2][] -> (2, None)."""

    base: str
    components: tuple[Param, ...] = ()
    dims: tuple[int | None, ...] = ()

    @property
    def canonical(self) -> str:
        head = (f"({','.join(p.type.canonical for p in self.components)})"
                if self.base == "tuple" else self.base)
        return head + "".join(f"[{'' if d is None else d}]" for d in self.dims)

    def element(self) -> AbiType:
        """The type of an array's items (this type without its last suffix)."""
        return AbiType(self.base, self.components, self.dims[:-1])


@dataclass(frozen=True, slots=True)
class Param:
    """A named (or unnamed: name "") parameter."""

    name: str
    type: AbiType


@dataclass(frozen=True, slots=True)
class Function:
    """A parsed function: name, inputs and (possibly no) outputs."""

    name: str
    inputs: tuple[Param, ...]
    outputs: tuple[Param, ...] = ()

    @property
    def canonical(self) -> str:
        """The signature the selector is computed from, e.g. transfer(address,uint256)."""
        return f"{self.name}({','.join(self.input_types)})"

    @property
    def canonical_with_outputs(self) -> str:
        """e.g. balanceOf(address)(uint256); the plain canonical form when there are no outputs."""
        if not self.outputs:
            return self.canonical
        return f"{self.canonical}({','.join(self.output_types)})"

    @property
    def selector(self) -> str:
        return "0x" + keccak(text=self.canonical)[:4].hex()

    @property
    def input_types(self) -> list[str]:
        return [p.type.canonical for p in self.inputs]

    @property
    def output_types(self) -> list[str]:
        return [p.type.canonical for p in self.outputs]

    @property
    def input_names(self) -> list[str]:
        return _names(self.inputs)


def _names(params: Sequence[Param]) -> list[str]:
    return [p.name or f"arg{i}" for i, p in enumerate(params)]


# -- parsing ------------------------------------------------------------------------------------


def parse_signature(signature: str | Mapping[str, Any] | Function) -> Function:
    """A `Function` from a text signature or a JSON ABI fragment (a dict, or its JSON text)."""
    if isinstance(signature, Function):
        return signature
    if isinstance(signature, Mapping):
        return _from_fragment(signature)
    if not isinstance(signature, str):
        raise AbiError(f"a function signature must be text or an ABI fragment, "
                       f"not {type(signature).__name__}")
    text = signature.strip()
    if text.startswith("{"):
        try:
            fragment = json.loads(text)
        except ValueError as error:
            raise AbiError(f"the ABI fragment is not valid JSON: {error}") from None
        if not isinstance(fragment, Mapping):
            raise AbiError("an ABI fragment must be a JSON object")
        return _from_fragment(fragment)
    return _from_text(text)


def _from_text(text: str) -> Function:
    if text.startswith("function "):
        text = text[len("function "):].strip()
    open_at = text.find("(")
    name = text[:open_at].strip() if open_at > 0 else ""
    if not _NAME.fullmatch(name):
        raise AbiError(f"{text!r} is not a function signature like transfer(address,uint256)")
    inputs_text, rest = _group(text, open_at)
    rest = rest.strip()
    for modifier in ("external", "public", "view", "pure", "payable", "nonpayable"):
        rest = re.sub(rf"^{modifier}\b", "", rest).strip()
    outputs: tuple[Param, ...] = ()
    if rest.startswith("returns"):
        rest = rest[len("returns"):].strip()
    if rest:
        if not rest.startswith("("):
            raise AbiError(f"unexpected {rest!r} after the parameters of {name}")
        outputs_text, tail = _group(rest, 0)
        if tail.strip():
            raise AbiError(f"unexpected {tail.strip()!r} after the outputs of {name}")
        outputs = _params(outputs_text, name)
    return Function(name, _params(inputs_text, name), outputs)


def _group(text: str, open_at: int) -> tuple[str, str]:
    """The text inside the parenthesis opened at `open_at`, and what follows it."""
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return text[open_at + 1:i], text[i + 1:]
    raise AbiError(f"unbalanced parentheses in {text!r}")


def _split(text: str) -> list[str]:
    """Split on top-level commas."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _params(text: str, where: str) -> tuple[Param, ...]:
    if not text.strip():
        return ()
    params = []
    for part in _split(text):
        if not part:
            raise AbiError(f"an empty parameter in {where}({text})")
        if part.startswith("tuple("):
            part = part[len("tuple"):]
        if part.startswith("("):
            inner, rest = _group(part, 0)
            suffix_and_name = rest.split()
            suffix = suffix_and_name[0] if suffix_and_name and rest[:1] == "[" else ""
            words = suffix_and_name[1:] if suffix else suffix_and_name
            kind = AbiType("tuple", _params(inner, where), _dims(suffix, part))
        else:
            words = part.split()
            kind = _elementary(words[0])
            words = words[1:]
        words = [w for w in words if w not in _LOCATIONS]
        if len(words) > 1 or (words and not _NAME.fullmatch(words[0])):
            raise AbiError(f"{part!r} is not a parameter like 'address to'")
        params.append(Param(words[0] if words else "", kind))
    _check_unique(params, where)
    return tuple(params)


def _dims(suffix: str, where: str) -> tuple[int | None, ...]:
    found = _SUFFIX.findall(suffix)
    if "".join(f"[{d}]" for d in found) != suffix:
        raise AbiError(f"bad array suffix in {where!r}")
    dims = tuple(int(d) if d else None for d in found)
    if any(d == 0 for d in dims):
        raise AbiError(f"a fixed array of length 0 in {where!r}")
    return dims


def _elementary(text: str) -> AbiType:
    base_end = text.find("[")
    base, suffix = (text, "") if base_end < 0 else (text[:base_end], text[base_end:])
    dims = _dims(suffix, text)
    if base in ("address", "bool", "string", "bytes"):
        return AbiType(base, (), dims)
    if match := _INT.fullmatch(base):
        bits = int(match.group(2) or 256)
        if bits % 8 or not 8 <= bits <= 256 or match.group(2).startswith("0"):
            raise AbiError(f"{base!r} is not an integer type (8 to 256 bits, a multiple of 8)")
        return AbiType(f"{match.group(1)}int{bits}", (), dims)
    if match := _FIXED_BYTES.fullmatch(base):
        size = int(match.group(1))
        if not 1 <= size <= 32 or match.group(1).startswith("0"):
            raise AbiError(f"{base!r} is not a fixed bytes type (bytes1 to bytes32)")
        return AbiType(base, (), dims)
    raise AbiError(f"{text!r} is not a supported ABI type")


def _from_fragment(fragment: Mapping[str, Any]) -> Function:
    if fragment.get("type", "function") != "function":
        raise AbiError(f"the ABI fragment is a {fragment.get('type')!r}, not a function")
    name = fragment.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise AbiError("the ABI fragment has no valid function name")
    return Function(name, _fragment_params(fragment.get("inputs", []), name),
                    _fragment_params(fragment.get("outputs", []), name))


def _fragment_params(items: Any, where: str) -> tuple[Param, ...]:
    if not isinstance(items, list):
        raise AbiError(f"the inputs and outputs of {where} must be lists")
    params = []
    for item in items:
        if not isinstance(item, Mapping) or not isinstance(item.get("type"), str):
            raise AbiError(f"a parameter of {where} has no type")
        name = item.get("name") or ""
        if not isinstance(name, str) or (name and not _NAME.fullmatch(name)):
            raise AbiError(f"a parameter of {where} has an invalid name {name!r}")
        text = item["type"]
        if text.startswith("tuple"):
            kind = AbiType("tuple", _fragment_params(item.get("components", []), where),
                           _dims(text[len("tuple"):], text))
        else:
            kind = _elementary(text)
        params.append(Param(name, kind))
    _check_unique(params, where)
    return tuple(params)


def _check_unique(params: Sequence[Param], where: str) -> None:
    names = [p.name for p in params if p.name]
    if len(names) != len(set(names)):
        raise AbiError(f"two parameters of {where} have the same name")


def selector(signature: str | Mapping[str, Any] | Function) -> str:
    """The 4-byte selector, "0x" + 8 lowercase hex digits."""
    return parse_signature(signature).selector


# -- encoding -----------------------------------------------------------------------------------


def encode_call(signature: str | Mapping[str, Any] | Function,
                args: Sequence[Any] | Mapping[str, Any] = ()) -> str:
    """Calldata for a call: the selector followed by the ABI-encoded arguments."""
    fn = parse_signature(signature)
    values = _arguments(fn.inputs, args, fn.name)
    try:
        encoded = eth_abi.encode(fn.input_types, values)
    except (EncodingError, TypeError, ValueError, OverflowError) as error:
        raise AbiError(f"the arguments of {fn.canonical} cannot be encoded: {error}") from None
    return fn.selector + encoded.hex()


def _arguments(params: Sequence[Param], args: Any, where: str) -> list[Any]:
    names = _names(params)
    if isinstance(args, Mapping):
        unknown = sorted(set(args) - set(names))
        missing = [n for n in names if n not in args]
        if unknown or missing:
            raise AbiError(f"{where} takes ({', '.join(names)}); "
                           f"missing {missing or 'none'}, unknown {unknown or 'none'}")
        items = [args[n] for n in names]
    elif isinstance(args, (list, tuple)):
        if len(args) != len(params):
            raise AbiError(f"{where} takes {len(params)} arguments, got {len(args)}")
        items = list(args)
    else:
        raise AbiError(f"the arguments of {where} must be a list or an object")
    return [_value(p.type, v, f"{where}.{n}") for p, n, v in zip(params, names, items, strict=True)]


def _value(kind: AbiType, value: Any, path: str) -> Any:
    if kind.dims:
        length = kind.dims[-1]
        if not isinstance(value, (list, tuple)):
            raise AbiError(f"{path} must be a list ({kind.canonical})")
        if length is not None and len(value) != length:
            raise AbiError(f"{path} must hold exactly {length} items, got {len(value)}")
        item = kind.element()
        return [_value(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if kind.base == "tuple":
        return tuple(_arguments(kind.components, value, path))
    if kind.base == "address":
        return address(value, path)
    if kind.base == "bool":
        if not isinstance(value, bool):
            raise AbiError(f"{path} must be true or false")
        return value
    if kind.base == "string":
        if not isinstance(value, str):
            raise AbiError(f"{path} must be a string")
        return value
    if kind.base.startswith("bytes"):
        if not isinstance(value, str) or not _HEX.fullmatch(value):
            raise AbiError(f"{path} must be 0x-prefixed hex with an even number of digits")
        data = bytes.fromhex(value[2:])
        if kind.base != "bytes" and len(data) != int(kind.base[5:]):
            raise AbiError(f"{path} must be exactly {kind.base[5:]} bytes, got {len(data)}")
        return data
    return _integer(kind.base, value, path)


def _integer(base: str, value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise AbiError(f"{path} must be an integer or a string of decimal digits")
    if isinstance(value, str):
        if not _DECIMAL.fullmatch(value):
            raise AbiError(f"{path} must be decimal digits, got {value[:40]!r}")
        value = int(value)
    signed = base.startswith("int")
    bits = int(base[3:] if signed else base[4:])
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1)) if signed else (0, 2 ** bits)
    if not low <= value < high:
        raise AbiError(f"{path} is out of range for {base}")
    return value


def address(value: Any, path: str = "address") -> str:
    """The EIP-55 form of an address; a mixed-case address must carry a valid checksum."""
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
        raise AbiError(f"{path} must be an address: 0x and 40 hex digits")
    checksummed = to_checksum_address(value)
    digits = value[2:]
    if digits != digits.lower() and digits != digits.upper() and value != checksummed:
        raise AbiError(f"{path} has an invalid EIP-55 checksum")
    return checksummed


# -- decoding -----------------------------------------------------------------------------------


def decode_call(data: str | bytes, signature: str | Mapping[str, Any] | Function) -> dict[str, Any]:
    """The arguments of calldata, by parameter name, as canonical JSON values."""
    fn = parse_signature(signature)
    raw = _bytes(data, "calldata")
    if raw[:4].hex() != fn.selector[2:]:
        raise AbiError(f"the calldata does not start with the selector of {fn.canonical}")
    values = _decode(fn.input_types, raw[4:], fn.canonical)
    return {name: jsonable(p.type, v)
            for name, p, v in zip(fn.input_names, fn.inputs, values, strict=True)}


def decode_result(output_types: Sequence[str] | Function | str, data: str | bytes) -> list[Any]:
    """The return values of a call, in order, as canonical JSON values. `output_types` is a
    list of type strings, or a function (or signature text) with outputs."""
    if isinstance(output_types, (Function, str)):
        kinds = [p.type for p in parse_signature(output_types).outputs]
    else:
        kinds = [_elementary_or_tuple(t) for t in output_types]
    values = _decode([k.canonical for k in kinds], _bytes(data, "return data"), "the result")
    return [jsonable(k, v) for k, v in zip(kinds, values, strict=True)]


def _elementary_or_tuple(text: str) -> AbiType:
    (param,) = _params(text, "output")
    return param.type


def _decode(types: list[str], raw: bytes, where: str) -> tuple[Any, ...]:
    try:
        return eth_abi.decode(types, raw, strict=True)
    except (DecodingError, TypeError, ValueError, OverflowError) as error:
        raise AbiError(f"{where} cannot be decoded as ({','.join(types)}): {error}") from None


def _bytes(data: str | bytes, what: str) -> bytes:
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    if isinstance(data, str) and _HEX.fullmatch(data):
        return bytes.fromhex(data[2:])
    raise AbiError(f"the {what} must be bytes or 0x-prefixed hex")


def jsonable(kind: AbiType, value: Any) -> Any:
    """A decoded `eth_abi` value as a canonical JSON value (see the module docstring)."""
    if kind.dims:
        item = kind.element()
        return [jsonable(item, v) for v in value]
    if kind.base == "tuple":
        values = [jsonable(p.type, v) for p, v in zip(kind.components, value, strict=True)]
        if kind.components and all(p.name for p in kind.components):
            return {p.name: v for p, v in zip(kind.components, values, strict=True)}
        return values
    if kind.base == "address":
        return to_checksum_address(value)
    if kind.base == "bool" or kind.base == "string":
        return value
    if kind.base.startswith("bytes"):
        return "0x" + bytes(value).hex()
    return str(int(value))


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, non-ASCII kept as UTF-8 characters; floats refused."""
    _no_floats(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def _no_floats(value: Any) -> None:
    if isinstance(value, float):
        raise AbiError("canonical JSON holds no floats; use decimal strings")
    if isinstance(value, Mapping):
        for item in value.values():
            _no_floats(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _no_floats(item)
