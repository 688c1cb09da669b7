"""Avro encoding of records with fastavro: parsed schemas, the project's value checks, and
errors that name the offending field.

The project's logical types annotate strings (any Avro tool reads them as plain strings):

    omc-address   "0x" + 40 hex digits (an EVM address)
    omc-hash32    "0x" + 64 lowercase hex digits
    omc-hex       "0x" + an even number of lowercase hex digits
    omc-wei       a non-negative integer in decimal digits (amounts, never floats)
    omc-decimal   a non-negative decimal number in digits, e.g. "0.000125"

They are checked whenever a record is written, so a malformed value never reaches the log.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

import fastavro
import fastavro.write

from omc_errors import OmcError
from omc_events.record import Record
from omc_events.schemas import SchemaSet

PATTERNS: dict[str, re.Pattern[str]] = {
    "omc-address": re.compile(r"0x[0-9a-fA-F]{40}"),
    "omc-hash32": re.compile(r"0x[0-9a-f]{64}"),
    "omc-hex": re.compile(r"0x(?:[0-9a-f]{2})*"),
    "omc-wei": re.compile(r"0|[1-9][0-9]*"),
    "omc-decimal": re.compile(r"(?:0|[1-9][0-9]*)(?:\.[0-9]+)?"),
}


class RecordInvalid(OmcError):
    """A record does not match its schema; `field` is the dotted path of the bad value."""

    def __init__(self, record: str, field: str, problem: str) -> None:
        self.record, self.field, self.problem = record, field, problem
        super().__init__(f"{record}: field {field!r} {problem}")


class BadValue(ValueError):
    """Raised inside fastavro by a logical-type check (translated to `RecordInvalid`)."""


def _checker(logical: str) -> Callable[[Any, Any], Any]:
    pattern = PATTERNS[logical]

    def check(value: Any, _schema: Any) -> Any:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise BadValue(f"{value!r} is not a valid {logical}")
        return value

    return check


def install_logical_types() -> None:
    """Teach fastavro's writer the project's string checks (idempotent)."""
    for logical in PATTERNS:
        fastavro.write.LOGICAL_WRITERS[f"string-{logical}"] = _checker(logical)


class Schemas:
    """Parsed, self-contained schemas by full record name, cached."""

    def __init__(self, schema_set: SchemaSet | None = None) -> None:
        self.set = schema_set or SchemaSet.load()
        self._parsed: dict[str, Any] = {}
        install_logical_types()

    def parsed(self, name: str) -> Any:
        """The fastavro-parsed standalone schema of `name`."""
        parsed = self._parsed.get(name)
        if parsed is None:
            parsed = self._parsed[name] = fastavro.parse_schema(self.set.standalone(name))
        return parsed

    def encode(self, record: Record) -> bytes:
        """Avro binary body of `record` (no framing); `RecordInvalid` names a bad field."""
        return self.encode_datum(record.SCHEMA, record.to_avro())

    def encode_datum(self, name: str, datum: dict[str, Any]) -> bytes:
        buffer = io.BytesIO()
        try:
            fastavro.schemaless_writer(buffer, self.parsed(name), datum)
        except (ValueError, TypeError, AttributeError, KeyError, OverflowError) as error:
            raise explain(self.set.standalone(name), datum, name, error) from error
        return buffer.getvalue()

    def decode(self, name: str, body: bytes, writer: Any | None = None) -> dict[str, Any]:
        """Read an Avro body written with `writer` (default: this record's schema)."""
        reader = self.parsed(name)
        return fastavro.schemaless_reader(io.BytesIO(body), writer or reader, reader)


def explain(schema: dict[str, Any], datum: Any, name: str, error: Exception) -> RecordInvalid:
    """The first value in `datum` that `schema` refuses, as a `RecordInvalid`."""
    found = _first_problem(schema, datum, name.rsplit(".", 1)[-1])
    if found:
        return RecordInvalid(name, *found)
    return RecordInvalid(name, "?", f"could not be encoded: {error}")


_PRIMITIVE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool) and -(2**31) <= v < 2**31,
    "long": lambda v: isinstance(v, int) and not isinstance(v, bool) and -(2**63) <= v < 2**63,
    "string": lambda v: isinstance(v, str),
    "bytes": lambda v: isinstance(v, (bytes, bytearray)),
}


def _first_problem(schema: Any, value: Any, path: str) -> tuple[str, str] | None:
    if isinstance(schema, list):
        for branch in schema:
            if _first_problem(branch, value, path) is None:
                return None
        return path, f"is {value!r}, which matches none of {_names(schema)}"
    if isinstance(schema, str):
        check = _PRIMITIVE_CHECKS.get(schema)
        if check is not None and not check(value):
            return path, f"is {value!r} ({type(value).__name__}), expected {schema}"
        return None
    kind = schema["type"]
    logical = schema.get("logicalType")
    if logical in PATTERNS:
        if not isinstance(value, str) or not PATTERNS[logical].fullmatch(value):
            return path, f"is {value!r}, not a valid {logical}"
        return None
    if logical in ("timestamp-micros", "timestamp-millis"):
        if not hasattr(value, "timestamp") and not isinstance(value, int):
            return path, f"is {value!r}, expected a datetime"
        return None
    if kind == "record":
        if not isinstance(value, dict):
            return path, f"is {value!r}, expected a {schema['name']} record"
        for field in schema["fields"]:
            if field["name"] not in value and "default" not in field:
                return f"{path}.{field['name']}", "is missing"
            problem = _first_problem(field["type"], value.get(field["name"], field.get("default")),
                                     f"{path}.{field['name']}")
            if problem:
                return problem
        return None
    if kind == "enum":
        if value not in schema["symbols"]:
            return path, f"is {value!r}, not one of {schema['symbols']}"
        return None
    if kind == "array":
        if not isinstance(value, (list, tuple)):
            return path, f"is {value!r}, expected an array"
        for index, item in enumerate(value):
            problem = _first_problem(schema["items"], item, f"{path}[{index}]")
            if problem:
                return problem
        return None
    return _first_problem(kind, value, path)


def _names(union: list[Any]) -> str:
    return ", ".join(b if isinstance(b, str) else str(b.get("name") or b.get("type"))
                     for b in union)
