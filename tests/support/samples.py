"""Deterministic sample records for any schema of the contract, for tests and benchmarks.

Every field gets a valid, recognisable value derived from its type and name, so a sample of
every record can be built without hand-writing 50 fixtures.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from omc_events.envelope import ChainHead, derived_id
from omc_events.record import Record
from omc_events.records import RECORDS
from omc_events.schemas import PRIMITIVES, SchemaSet

WHEN = datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=UTC)
LOGICAL = {
    "omc-address": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "omc-hash32": "0x" + "ab" * 32,
    "omc-hex": "0xa9059cbb",
    "omc-wei": "1000000000000000000",
    "omc-decimal": "0.000125",
}


def datum(schemas: SchemaSet, node: Any, name: str = "x") -> Any:
    """A valid Avro datum for `node` (a schema or a named type's full name)."""
    if isinstance(node, list):
        branches = [b for b in node if b != "null"]
        return datum(schemas, branches[0], name) if branches else None
    if isinstance(node, str):
        if node not in PRIMITIVES:
            return datum(schemas, schemas.named[node], name)
        return _primitive(node, name)
    kind, logical = node["type"], node.get("logicalType")
    if logical in LOGICAL:
        return LOGICAL[logical]
    if logical == "uuid":
        return str(uuid.uuid5(uuid.NAMESPACE_DNS, name))
    if logical in ("timestamp-micros", "timestamp-millis"):
        return WHEN
    if kind == "record":
        return {f["name"]: datum(schemas, f["type"], f["name"]) for f in node["fields"]}
    if kind == "enum":
        return node["symbols"][-1]
    if kind == "array":
        return [datum(schemas, node["items"], name)]
    return datum(schemas, kind, name)


def _primitive(kind: str, name: str) -> Any:
    return {"string": f"{name}-value", "long": 7, "int": 3, "boolean": True,
            "bytes": b"\x01\x02", "null": None}[kind]


def sample(schemas: SchemaSet, name: str, *, aggregate_id: str = "agg-1", causation: str = "c",
           position: int = 0) -> Record:
    """A sample of record `name`; events get a coherent, unsealed envelope."""
    values = datum(schemas, schemas.named[name])
    if "meta" in values:
        event_id = derived_id(causation, position)
        values["meta"].update(
            event_id=event_id, event_type=name, schema_version=1,
            aggregate_type=name.split(".")[1], aggregate_id=aggregate_id,
            sequence=0, correlation_id=event_id, causation_id=causation,
            traceparent=None, tracestate=None, prev_hash=ChainHead().hash, hash="",
        )
    return RECORDS[name].from_avro(values)
