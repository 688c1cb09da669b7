"""Schema hygiene: every .avsc and the topic catalogue follow the event contract's conventions.

The conventions (DESIGN.md section 2): one named type per file at
`schemas/avro/omc/<context>/<Name>.avsc`; a doc on every record, field and enum; no maps, no
floats, no named types defined inline; the envelope `meta` first in every command and event;
value types as logical types on strings; every command and event on a topic, helpers on none.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastavro.schema import UnknownType, parse_schema

REPO = Path(__file__).resolve().parents[2]
AVRO = REPO / "schemas" / "avro"
TOPICS = REPO / "schemas" / "topics.yaml"
ENVELOPE = "omc.common.EventMeta"
META_FIELD = {
    "name": "meta",
    "type": ENVELOPE,
    "doc": "The envelope: identity, chain position, time, tenant, provenance, trace context.",
}
CONTEXTS = {"common", "command", "task", "agent", "tx", "chain", "proof", "deadletter"}
PRIMITIVES = {"null", "boolean", "int", "long", "bytes", "string"}
LOGICAL_TYPES = {
    "omc-address": "string",
    "omc-hash32": "string",
    "omc-hex": "string",
    "omc-wei": "string",
    "omc-decimal": "string",
    "uuid": "string",
    "timestamp-micros": "long",
}
COMPONENTS = {
    "gateway", "agent-runtime", "tx-manager", "chain-watcher", "notary", "proj-mysql",
    "proj-redis", "audit",
}
# The context whose records each topic carries, and the records allowed on it from elsewhere.
TOPIC_CONTEXT = {
    "omc.commands.v1": "command",
    "omc.task.events.v1": "task",
    "omc.agent.events.v1": "agent",
    "omc.tx.events.v1": "tx",
    "omc.chain.events.v1": "chain",
    "omc.proof.events.v1": "proof",
    "omc.deadletter.v1": "deadletter",
}
FOREIGN_ALLOWED = {"omc.command.CommandRejected": {"omc.task.events.v1", "omc.agent.events.v1"}}
PARTITIONS = {
    "omc.commands.v1": 6, "omc.task.events.v1": 6, "omc.agent.events.v1": 3,
    "omc.tx.events.v1": 6, "omc.chain.events.v1": 1, "omc.proof.events.v1": 1,
    "omc.deadletter.v1": 1,
}
YEAR_MS = str(365 * 86_400_000)
SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
UPPER_SNAKE = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$")
PATHS = sorted(AVRO.rglob("*.avsc"))


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _full(schema: dict[str, Any]) -> str:
    return f"{schema['namespace']}.{schema['name']}"


@pytest.fixture(scope="module")
def schemas() -> dict[str, dict[str, Any]]:
    return {_full(schema): schema for schema in map(_read, PATHS)}


@pytest.fixture(scope="module")
def topics() -> list[dict[str, Any]]:
    return yaml.safe_load(TOPICS.read_text())["topics"]


@pytest.fixture(scope="module")
def on_topics(topics: list[dict[str, Any]]) -> dict[str, set[str]]:
    placed: dict[str, set[str]] = {}
    for topic in topics:
        for name in topic["records"]:
            placed.setdefault(name, set()).add(topic["name"])
    return placed


def _types(node: Any) -> Iterator[Any]:
    """Every type node below a field's type, the node itself included."""
    yield node
    if isinstance(node, list):
        for branch in node:
            yield from _types(branch)
    elif isinstance(node, dict):
        if node.get("type") == "array":
            yield from _types(node["items"])
        elif node.get("type") == "map":
            yield from _types(node["values"])
        elif isinstance(node.get("type"), (dict, list)):
            yield from _types(node["type"])


def _fields(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return schema.get("fields", [])


def _has_meta(schema: dict[str, Any]) -> bool:
    return any(field["name"] == "meta" for field in _fields(schema))


def test_there_are_schemas() -> None:
    assert len(PATHS) > 40


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_path_is_namespace_and_name(path: Path) -> None:
    schema = _read(path)
    relative = path.relative_to(AVRO)
    assert schema["type"] in ("record", "enum")
    assert schema["namespace"] == ".".join(relative.parent.parts)
    assert schema["name"] == path.stem
    assert relative.parts[0] == "omc"
    assert relative.parts[1] in CONTEXTS
    assert len(relative.parts) == 3


def test_every_schema_parses_with_named_types_resolved(
    schemas: dict[str, dict[str, Any]],
) -> None:
    named: dict[str, Any] = {}
    pending = dict(schemas)
    while pending:
        parsed = []
        for full, schema in pending.items():
            trial = dict(named)
            try:
                parse_schema(schema, trial)
            except UnknownType:
                continue
            named = trial
            parsed.append(full)
        assert parsed, f"unknown named types referenced from {sorted(pending)}"
        for full in parsed:
            del pending[full]
    assert set(schemas) <= set(named)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_every_record_field_and_enum_has_a_doc(path: Path) -> None:
    schema = _read(path)
    assert schema.get("doc", "").strip(), f"{path.name} has no doc"
    for field in _fields(schema):
        assert field.get("doc", "").strip(), f"{path.name}: field {field['name']} has no doc"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_no_maps_floats_or_inline_named_types(path: Path) -> None:
    schema = _read(path)
    for field in _fields(schema):
        for node in _types(field["type"]):
            kind = node.get("type") if isinstance(node, dict) else node
            where = f"{path.name}: field {field['name']}"
            assert kind not in ("map", "float", "double"), f"{where} uses {kind}"
            assert kind not in ("record", "enum", "fixed"), f"{where} defines a type inline"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_names_and_symbols_follow_the_case_conventions(path: Path) -> None:
    schema = _read(path)
    for field in _fields(schema):
        assert SNAKE.match(field["name"]), f"{path.name}: {field['name']} is not snake_case"
    for symbol in schema.get("symbols", []):
        assert UPPER_SNAKE.match(symbol), f"{path.name}: {symbol} is not UPPER_SNAKE"


@pytest.mark.parametrize(
    "path", [p for p in PATHS if _read(p)["type"] == "enum"], ids=lambda p: p.stem
)
def test_every_enum_has_a_default_among_its_symbols(path: Path) -> None:
    schema = _read(path)
    assert schema.get("default") in schema["symbols"]
    assert schema["symbols"][0] == schema["default"] == "UNKNOWN"
    assert len(set(schema["symbols"])) == len(schema["symbols"])


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_optional_fields_are_null_first_and_default_to_null(path: Path) -> None:
    schema = _read(path)
    for field in _fields(schema):
        for node in _types(field["type"]):
            if isinstance(node, list):
                assert node[0] == "null", f"{path.name}: {field['name']}"
                assert len(node) == 2, f"{path.name}: {field['name']}"
        if isinstance(field["type"], list):
            assert "default" in field, f"{path.name}: {field['name']} needs default null"
            assert field["default"] is None, f"{path.name}: {field['name']} needs default null"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_logical_types_are_known_and_on_their_base_type(path: Path) -> None:
    schema = _read(path)
    for field in _fields(schema):
        for node in _types(field["type"]):
            if isinstance(node, dict) and "logicalType" in node:
                logical = node["logicalType"]
                assert logical in LOGICAL_TYPES, f"{path.name}: unknown logicalType {logical}"
                assert node["type"] == LOGICAL_TYPES[logical], f"{path.name}: {field['name']}"


def _leaf(field_type: Any) -> Any:
    """The type of a field with its nullable union and arrays peeled off."""
    while True:
        if isinstance(field_type, list):
            field_type = next(branch for branch in field_type if branch != "null")
        elif isinstance(field_type, dict) and field_type.get("type") == "array":
            field_type = field_type["items"]
        else:
            return field_type


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_value_fields_carry_their_value_type(path: Path) -> None:
    """Names promise types: *_wei is omc-wei, *_json a string, *_hash a hash, chain_id a long."""
    schema = _read(path)
    for field in _fields(schema):
        name, leaf = field["name"], _leaf(field["type"])
        logical = leaf.get("logicalType") if isinstance(leaf, dict) else None
        if name.endswith("_wei"):
            assert logical == "omc-wei", f"{path.name}: {name}"
        if name.endswith("_json"):
            assert leaf == "string", f"{path.name}: {name}"
        if name.endswith(("_hash", "_hashes")) and path.stem != "EventMeta":
            assert logical == "omc-hash32", f"{path.name}: {name}"
        if name.endswith("_address") or name in ("sender", "signer", "to", "address"):
            assert logical == "omc-address", f"{path.name}: {name}"
        if name == "chain_id":
            assert leaf == "long", f"{path.name}: {name}"
        if name.endswith("_at") and name != "occurred_at":
            assert logical == "timestamp-micros", f"{path.name}: {name}"


def test_topic_catalogue_shape(topics: list[dict[str, Any]]) -> None:
    assert [t["name"] for t in topics] == list(TOPIC_CONTEXT)
    for topic in topics:
        name = topic["name"]
        assert set(topic) == {
            "name", "doc", "key", "partitions", "min_insync_replicas", "config", "records",
            "producers", "consumers",
        }, name
        assert topic["doc"].strip(), name
        assert "\n" not in topic["doc"].strip(), name
        assert str(topic["key"]).strip(), name
        assert topic["partitions"] == PARTITIONS[name]
        assert topic["min_insync_replicas"] == 2, name
        assert all(isinstance(v, str) for v in topic["config"].values()), name
        assert topic["config"]["cleanup.policy"] == "delete", name
        assert topic["records"], name
        assert len(set(topic["records"])) == len(topic["records"]), name
        assert topic["producers"], name
        assert topic["consumers"], name
        assert set(topic["producers"]) | set(topic["consumers"]) <= COMPONENTS, name


def test_event_topics_keep_everything_and_the_others_a_year(
    topics: list[dict[str, Any]],
) -> None:
    for topic in topics:
        retention = topic["config"]["retention.ms"]
        if ".events." in topic["name"]:
            assert retention == "-1", topic["name"]
        else:
            assert retention == YEAR_MS, topic["name"]


def test_every_record_on_a_topic_exists_and_carries_meta_first(
    schemas: dict[str, dict[str, Any]], on_topics: dict[str, set[str]]
) -> None:
    for name in on_topics:
        assert name in schemas, f"topics.yaml names {name}, which has no .avsc"
        schema = schemas[name]
        assert schema["type"] == "record", name
        assert _fields(schema)[0] == META_FIELD, f"{name}: meta must be the first field"


def test_meta_appears_only_as_the_first_field(schemas: dict[str, dict[str, Any]]) -> None:
    for name, schema in schemas.items():
        for index, field in enumerate(_fields(schema)):
            refs = [node for node in _types(field["type"]) if node == ENVELOPE]
            if field["name"] == "meta" or refs:
                assert index == 0, name
                assert field == META_FIELD, name


def test_every_command_and_event_is_on_a_topic_and_helpers_on_none(
    schemas: dict[str, dict[str, Any]], on_topics: dict[str, set[str]]
) -> None:
    for name, schema in schemas.items():
        if _has_meta(schema):
            assert name in on_topics, f"{name} is a command or event on no topic"
        else:
            assert name not in on_topics, f"{name} is a helper type but is on a topic"


def test_records_are_on_the_topic_of_their_context(on_topics: dict[str, set[str]]) -> None:
    for name, placed in on_topics.items():
        context = name.split(".")[1]
        expected = FOREIGN_ALLOWED.get(name) or {
            topic for topic, ctx in TOPIC_CONTEXT.items() if ctx == context
        }
        assert placed == expected, name


def test_commands_are_verbs_and_events_are_past_tense(on_topics: dict[str, set[str]]) -> None:
    for name, placed in on_topics.items():
        short = name.rsplit(".", 1)[1]
        if placed == {"omc.commands.v1"}:
            assert not short.endswith("ed"), f"{name} is a command: an imperative verb"
        elif name != "omc.deadletter.DeadLetter":
            assert short.endswith(("ed", "Set", "Broadcast")), f"{name} is not past tense"
