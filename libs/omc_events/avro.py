"""Avro encoding of records with fastavro: parsed schemas, and errors that name the
offending field. The project's string formats are in `values`."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable
from typing import Any

import fastavro

from omc_errors import OmcError
from omc_events.record import Record
from omc_events.schemas import SchemaSet
from omc_events.values import PATTERNS


class RecordInvalid(OmcError):
    """A record does not match its schema; `field` is the dotted path of the bad value."""

    def __init__(self, record: str, field: str, problem: str) -> None:
        self.record, self.field, self.problem = record, field, problem
        super().__init__(f"{record}: field {field!r} {problem}")


class Schemas:
    """Parsed, self-contained schemas by full record name, cached."""

    def __init__(self, schema_set: SchemaSet | None = None) -> None:
        self.set = schema_set or SchemaSet.load()
        self._parsed: dict[str, Any] = {}

    def parsed(self, name: str) -> Any:
        """The fastavro-parsed standalone schema of `name`."""
        parsed = self._parsed.get(name)
        if parsed is None:
            parsed = self._parsed[name] = fastavro.parse_schema(self.set.standalone(name))
        return parsed

    def parsed_for_reading(self, name: str) -> Any:
        """`parsed(name)` without uuid annotations: ids are read as the strings they are
        (the annotation only changes fastavro's Python type; the bytes are the same)."""
        key = f"read:{name}"
        parsed = self._parsed.get(key)
        if parsed is None:
            parsed = self._parsed[key] = for_reading(self.set.standalone(name))
        return parsed

    def encode(self, record: Record, prefix: bytes = b"") -> bytes:
        """`prefix` followed by the Avro binary body of `record`; `RecordInvalid` names a
        bad field."""
        name = record.SCHEMA
        buffer = io.BytesIO()
        buffer.write(prefix)
        try:
            fastavro.schemaless_writer(buffer, self.parsed(name), record.to_avro())
        except (ValueError, TypeError, AttributeError, KeyError, OverflowError) as error:
            plain = dataclasses.asdict(record)  # type: ignore[call-overload]
            raise explain(self.set.standalone(name), plain, name, error) from error
        return buffer.getvalue()

    def decode(self, name: str, body: bytes, writer: Any | None = None, *,
               offset: int = 0) -> dict[str, Any]:
        """Read the Avro body starting at `offset`, written with `writer` (a `for_reading`
        schema; default: this build's schema of `name`)."""
        reader = self.parsed_for_reading(name)
        stream = io.BytesIO(body)
        stream.seek(offset)
        if writer is None:  # written with this very schema: nothing to resolve
            return fastavro.schemaless_reader(stream, reader, None)
        return fastavro.schemaless_reader(stream, writer, reader)


def for_reading(schema: Any) -> Any:
    """`schema` parsed with its uuid logical types removed."""

    def strip(node: Any) -> Any:
        if isinstance(node, list):
            return [strip(branch) for branch in node]
        if not isinstance(node, dict):
            return node
        if node.get("logicalType") == "uuid":
            return {k: v for k, v in node.items() if k != "logicalType"}
        return {k: strip(v) if k in ("type", "items", "values", "fields") else v
                for k, v in node.items()}

    return fastavro.parse_schema(strip(schema))


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
