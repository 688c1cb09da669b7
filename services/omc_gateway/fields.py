"""Declarative field checks: each kind checks a JSON value (or a parameter's text), names the
field in every problem, normalises what it accepts, and describes itself as JSON Schema, so
the validation and the OpenAPI document cannot disagree.

    Obj({"name": Field(Text(max_length=100)), ...})   unknown members are refused
    problems = []; value = kind.check(json_value, "policy", problems)

A kind's `check` returns the normalised value (EIP-55 addresses, lowercase UUIDs, UTC
datetimes) or `INVALID` after appending one `FieldError` per problem found.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from eth_utils import to_checksum_address

from omc_gateway.errors import FieldError

INVALID: Any = type("Invalid", (), {"__repr__": lambda self: "INVALID"})()
MAX_UINT256 = 2**256 - 1
MAX_CHAIN_ID = 4503599627370476  # EIP-2294: chain ids that every JSON reader can hold
MAX_SAFE_INTEGER = 2**53 - 1

Problems = list[FieldError]

WORD = re.compile(r"[^\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]")
"""A character other than white space as JSON Schema (ECMA-262 `\\s`) counts it: Python's
own `\\s` and `str.strip()` also take \\x1c-\\x1f for spaces, so the check and the schema
would disagree."""


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


class Kind:
    """A kind of value. Subclasses implement `check_value` and `schema`."""

    description = ""

    def check(self, value: Any, path: str, problems: Problems) -> Any:
        return self.check_value(value, path, problems)

    def check_value(self, value: Any, path: str, problems: Problems) -> Any:
        raise NotImplementedError

    def check_text(self, text: str, path: str, problems: Problems) -> Any:
        """A parameter's value (path, query string, header), which is always text."""
        return self.check_value(text, path, problems)

    def schema(self) -> dict[str, Any]:
        raise NotImplementedError

    @staticmethod
    def fail(problems: Problems, path: str, problem: str) -> Any:
        problems.append(FieldError(path, problem))
        return INVALID


class Text(Kind):
    """A string of `min_length`..`max_length` characters; with `words`, not only spaces."""

    def __init__(self, *, min_length: int = 1, max_length: int, words: bool = True,
                 pattern: str | None = None, pattern_problem: str = "") -> None:
        self.min_length, self.max_length, self.words = min_length, max_length, words
        self.pattern = re.compile(pattern) if pattern else None
        self.pattern_problem = pattern_problem

    def check_value(self, value: Any, path: str, problems: Problems) -> Any:
        if not isinstance(value, str):
            return self.fail(problems, path, f"must be a string, not {_type_name(value)}")
        if len(value) < self.min_length:
            return self.fail(problems, path, "must not be empty" if self.min_length == 1
                             else f"must have at least {self.min_length} characters")
        if len(value) > self.max_length:
            return self.fail(problems, path, f"must have at most {self.max_length} characters, "
                                             f"not {len(value)}")
        if self.words and value and not WORD.search(value):
            return self.fail(problems, path, "must not be only spaces")
        if self.pattern and not self.pattern.search(value):
            return self.fail(problems, path, self.pattern_problem)
        return value

    def schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string", "minLength": self.min_length,
                                  "maxLength": self.max_length}
        if self.pattern:
            schema["pattern"] = self.pattern.pattern
        elif self.words and self.min_length:
            schema["pattern"] = WORD.pattern
        return schema


class Pattern(Kind):
    """A string matching `regex` exactly; `problem` says what it must be."""

    def __init__(self, regex: str, problem: str, *, fmt: str | None = None,
                 description: str = "") -> None:
        self.regex = re.compile(regex)
        self.problem, self.fmt, self.description = problem, fmt, description

    def check_value(self, value: Any, path: str, problems: Problems) -> Any:
        if not isinstance(value, str):
            return self.fail(problems, path, f"must be a string, not {_type_name(value)}")
        if not self.regex.fullmatch(value):
            return self.fail(problems, path, self.problem)
        return self.normalise(value, path, problems)

    def normalise(self, value: str, path: str, problems: Problems) -> Any:
        return value

    def schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string", "pattern": f"^(?:{self.regex.pattern})$"}
        if self.fmt:
            schema["format"] = self.fmt
        if self.description:
            schema["description"] = self.description
        return schema


class Uuid(Pattern):
    def __init__(self) -> None:
        super().__init__(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                         r"[0-9a-fA-F]{12}", "is not a UUID (8-4-4-4-12 hex digits)", fmt="uuid")

    def normalise(self, value: str, path: str, problems: Problems) -> Any:
        return value.lower()


class Address(Pattern):
    """An EVM address; mixed case must be a valid EIP-55 checksum. Answered checksummed."""

    def __init__(self) -> None:
        super().__init__(r"0x[0-9a-fA-F]{40}", "is not an address (0x and 40 hex digits)",
                         description="EVM address, 0x and 40 hex digits; mixed case must be "
                                     "a valid EIP-55 checksum")

    def normalise(self, value: str, path: str, problems: Problems) -> Any:
        checksummed = to_checksum_address(value)
        digits = value[2:]
        if digits != digits.lower() and digits != digits.upper() and value != checksummed:
            return self.fail(problems, path, "has mixed case but is not a valid EIP-55 checksum "
                                             "(give it all lowercase or correctly checksummed)")
        return checksummed


class Wei(Pattern):
    """An amount in wei: a non-negative integer in decimal digits, at most 2**256 - 1."""

    def __init__(self) -> None:
        super().__init__(r"0|[1-9][0-9]{0,77}",
                         "is not a non-negative integer in decimal digits",
                         description="amount in wei, a decimal integer string (never a number)")

    def normalise(self, value: str, path: str, problems: Problems) -> Any:
        if int(value) > MAX_UINT256:
            return self.fail(problems, path, "is larger than 2**256 - 1")
        return value


class HexDigest(Pattern):
    def __init__(self) -> None:
        super().__init__(r"0x[0-9a-fA-F]{64}", "is not a hash (0x and 64 hex digits)")

    def normalise(self, value: str, path: str, problems: Problems) -> Any:
        return value.lower()


class Selector(Pattern):
    def __init__(self) -> None:
        super().__init__(r"0x[0-9a-f]{8}",
                         "is not a 4-byte function selector (0x and 8 lowercase hex digits)",
                         description="4-byte function selector, e.g. 0xa9059cbb")


class Integer(Kind):
    def __init__(self, minimum: int, maximum: int, *, description: str = "") -> None:
        self.minimum, self.maximum, self.description = minimum, maximum, description

    def check_value(self, value: Any, path: str, problems: Problems) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            return self.fail(problems, path, f"must be an integer, not {_type_name(value)}")
        if not self.minimum <= value <= self.maximum:
            return self.fail(problems, path,
                             f"must be from {self.minimum} to {self.maximum}, not {value}")
        return value

    def check_text(self, text: str, path: str, problems: Problems) -> Any:
        if not re.fullmatch(r"-?[0-9]{1,20}", text):
            return self.fail(problems, path, "must be an integer in decimal digits")
        return self.check_value(int(text), path, problems)

    def schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "integer", "minimum": self.minimum,
                                  "maximum": self.maximum}
        if self.description:
            schema["description"] = self.description
        return schema


def ChainId() -> Integer:  # noqa: N802 - reads as a kind
    return Integer(1, MAX_CHAIN_ID, description="EIP-155 chain id")


class Choice(Kind):
    def __init__(self, *values: str) -> None:
        self.values = values

    def check_value(self, value: Any, path: str, problems: Problems) -> Any:
        if value not in self.values:
            return self.fail(problems, path, f"must be one of {', '.join(self.values)}")
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.values)}


class Timestamp(Kind):
    """An RFC 3339 date-time with an offset; with `future`, later than now. Answered UTC."""

    RFC3339 = re.compile(r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(\.\d+)?"
                         r"([Zz]|[+-]\d{2}:\d{2})")

    def __init__(self, *, future: bool = False) -> None:
        self.future = future

    def check_value(self, value: Any, path: str, problems: Problems) -> Any:
        if not isinstance(value, str):
            return self.fail(problems, path, f"must be a string, not {_type_name(value)}")
        match = self.RFC3339.fullmatch(value)
        when = None
        if match:
            day, time, fraction, offset = match.groups()
            offset = "+00:00" if offset in ("Z", "z") else offset
            fraction = (fraction or "")[:7].ljust(7, "0") if fraction else ""
            try:
                when = datetime.fromisoformat(f"{day}T{time}{fraction}{offset}")
            except ValueError:
                when = None
        if when is None:
            return self.fail(problems, path, "is not an RFC 3339 date-time with an offset, "
                                             "e.g. 2026-12-01T12:00:00Z")
        try:
            when = when.astimezone(UTC)
        except OverflowError:
            return self.fail(problems, path, "is out of range")
        if self.future and when <= datetime.now(UTC):
            return self.fail(problems, path, "is in the past")
        return when

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "date-time"}


class JsonObject(Kind):
    """Any JSON object, kept as canonical JSON (sorted keys, no spaces) of at most
    `max_bytes` bytes; `check` returns that text."""

    def __init__(self, *, max_bytes: int) -> None:
        self.max_bytes = max_bytes

    def check_value(self, value: Any, path: str, problems: Problems) -> Any:
        if not isinstance(value, dict):
            return self.fail(problems, path, f"must be an object, not {_type_name(value)}")
        text = canonical_json(value)
        if len(text.encode()) > self.max_bytes:
            return self.fail(problems, path, f"must be at most {self.max_bytes} bytes as JSON")
        return text

    def schema(self) -> dict[str, Any]:
        return {"type": "object", "additionalProperties": True}


class Array(Kind):
    """An array of `items`; with `unique`, no item twice; with `unique_by` (for arrays of
    objects), no two items with the same value of that member."""

    def __init__(self, items: Kind, *, max_items: int, unique: bool = True,
                 unique_by: str | None = None) -> None:
        self.items, self.max_items = items, max_items
        self.unique, self.unique_by = unique and unique_by is None, unique_by

    def check_value(self, value: Any, path: str, problems: Problems) -> Any:
        if not isinstance(value, list):
            return self.fail(problems, path, f"must be an array, not {_type_name(value)}")
        if len(value) > self.max_items:
            return self.fail(problems, path, f"must have at most {self.max_items} items")
        before = len(problems)
        checked = [self.items.check(item, f"{path}[{i}]", problems) for i, item in
                   enumerate(value)]
        if len(problems) > before:
            return INVALID
        if self.unique:
            seen: dict[Any, int] = {}
            for i, item in enumerate(checked):
                if item in seen:
                    return self.fail(problems, f"{path}[{i}]",
                                     f"repeats item {seen[item]}; items must be unique")
                seen[item] = i
        if self.unique_by is not None:
            first: dict[Any, int] = {}
            for i, item in enumerate(checked):
                member = item[self.unique_by]
                if member in first:
                    return self.fail(problems, f"{path}[{i}].{self.unique_by}",
                                     f"repeats item {first[member]}'s {self.unique_by}; "
                                     f"each {self.unique_by} may appear once")
                first[member] = i
        return tuple(checked)

    def schema(self) -> dict[str, Any]:
        schema = {"type": "array", "items": self.items.schema(), "maxItems": self.max_items}
        if self.unique:
            schema["uniqueItems"] = True
        return schema


@dataclass(frozen=True)
class Field:
    kind: Kind
    required: bool = True
    doc: str = ""


@dataclass
class Obj(Kind):
    """A JSON object with exactly these members; optional members may be null or absent."""

    fields: dict[str, Field]
    name: str = ""
    doc: str = ""
    _names: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._names = frozenset(self.fields)

    def check_value(self, value: Any, path: str, problems: Problems) -> Any:
        if not isinstance(value, dict):
            return self.fail(problems, path or "body",
                             f"must be an object, not {_type_name(value)}")
        prefix = f"{path}." if path else ""
        before = len(problems)
        for unknown in sorted(set(value) - self._names):
            problems.append(FieldError(f"{prefix}{unknown}", "is not a field of this object"))
        checked: dict[str, Any] = {}
        for name, spec in self.fields.items():
            given = value.get(name)
            if given is None:
                if spec.required:
                    problems.append(FieldError(
                        f"{prefix}{name}", "is required" if name not in value
                        else "is required and must not be null"))
                checked[name] = None
                continue
            checked[name] = spec.kind.check(given, f"{prefix}{name}", problems)
        return INVALID if len(problems) > before else checked

    def schema(self) -> dict[str, Any]:
        """A `$ref` to components/schemas when the object is named, else its definition."""
        if self.name:
            return {"$ref": f"#/components/schemas/{self.name}"}
        return self.definition()

    def definition(self) -> dict[str, Any]:
        properties = {}
        for name, spec in self.fields.items():
            schema = dict(spec.kind.schema())
            if not spec.required:
                schema = _nullable(schema)
            if spec.doc:
                schema["description"] = spec.doc
            properties[name] = schema
        schema = {"type": "object", "properties": properties,
                  "required": [n for n, s in self.fields.items() if s.required],
                  "additionalProperties": False}
        if self.doc:
            schema["description"] = self.doc
        return schema


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if "type" in schema:
        kind = schema["type"]
        schema = {**schema, "type": [kind, "null"] if isinstance(kind, str) else [*kind, "null"]}
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
        return schema
    return {"anyOf": [schema, {"type": "null"}]}


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 text: the form the contract's *_json fields take."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
