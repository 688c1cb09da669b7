"""A schema text as the registry takes it: parsed, validated, and normalised for comparison.

Two texts are the same schema when their JSON is equal: `canonical` is the document dumped
with sorted keys and no whitespace, so formatting and key order do not matter but every
attribute (docs, defaults, aliases) does. What the registry stores and serves is `text`, the
document as compact JSON in the key order it was given.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

import fastavro
from fastavro.schema import SchemaParseException, UnknownType

from omc_events import compat
from omc_registry.errors import InvalidSchema

SCHEMA_TYPES = ("AVRO",)


@dataclass(frozen=True)
class Schema:
    """A valid Avro schema."""

    text: str
    canonical: str

    @property
    def document(self) -> Any:
        return json.loads(self.text)


def canonical(document: Any) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def parse(text: object, schema_type: object = None, references: object = None) -> Schema:
    """Validate a schema as a client sends it; raise `InvalidSchema` saying what is wrong."""
    kind = "AVRO" if schema_type is None else schema_type
    if kind not in SCHEMA_TYPES:
        raise InvalidSchema(
            f"Invalid schema: schemaType {kind!r} is not supported; this registry serves "
            f"{', '.join(SCHEMA_TYPES)} only."
        )
    if references:
        raise InvalidSchema("Invalid schema: schema references are not supported; register the "
                            "self-contained schema (every named type defined inline).")
    if not isinstance(text, str):
        raise InvalidSchema("Invalid schema: 'schema' must be the schema's JSON as a string.")
    try:
        document = json.loads(text)
    except ValueError as error:
        raise InvalidSchema(f"Invalid schema: not JSON: {error}") from error
    try:
        fastavro.parse_schema(copy.deepcopy(document), _write_hint=False)
        compat.parse(document)
    except (SchemaParseException, UnknownType, ValueError, TypeError, KeyError,
            AttributeError) as error:
        raise InvalidSchema(f"Invalid schema: {type(error).__name__}: {error}") from error
    return Schema(text=json.dumps(document, separators=(",", ":")), canonical=canonical(document))
