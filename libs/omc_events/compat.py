"""Avro schema compatibility, by the Avro specification's schema resolution rules. Pure: no I/O.

`check(reader, writer)` says why data written with `writer` could not be read with `reader`
(an empty list means it can). "Reader" is the schema a consumer decodes with, "writer" the
one the data was encoded with; for a BACKWARD check the reader is the new schema and the
writer an earlier one. The rules:

- primitives match themselves; a writer's int is read as long, float or double, a long as
  float or double, a float as double, and string and bytes as each other;
- records match by unqualified name (or a reader alias); reader fields match writer fields by
  name, or by one of the reader field's aliases; a reader field the writer lacks needs a
  default; a writer field the reader lacks is skipped;
- enums: every writer symbol must be a reader symbol, unless the reader enum has a default;
- fixed: same name and size;
- arrays and maps by their items and values;
- unions: each branch of a writer union must be readable by the reader; a non-union writer
  must be readable by some branch of a reader union;
- `logicalType` annotations change nothing (the underlying type is what is encoded).

Named types referred to by name (including recursive ones) are followed; a pair already being
compared further up is taken as compatible, as in Avro's own `SchemaCompatibility`.

Each message names where the problem is, as the reader's record name followed by field names:
`omc.task.TaskSubmitted.instruction: reader type 'int' cannot read writer type 'string'`
(`[]` marks array items, `{}` map values).

`check_level(level, new, previous)` applies a Schema Registry compatibility level (NONE,
BACKWARD, FORWARD, FULL, and their _TRANSITIVE forms) to a new schema and the earlier ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
NAMED_KINDS = frozenset({"record", "error", "enum", "fixed"})

# writer type -> the reader types that can read it, besides itself
PROMOTIONS: dict[str, frozenset[str]] = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}

LEVELS = (
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
)

Schema = dict[str, Any] | list[Any] | str


class SchemaParseError(ValueError):
    """The text is not an Avro schema this checker can follow (bad JSON, unknown type name...)."""


# -- the parsed form -------------------------------------------------------------------------


@dataclass(eq=False)
class _Primitive:
    name: str


@dataclass(eq=False)
class _Field:
    name: str
    type: _Node
    aliases: frozenset[str]
    has_default: bool


@dataclass(eq=False)
class _Named:
    kind: str  # record, enum or fixed ("error" is read as record)
    fullname: str
    aliases: frozenset[str]  # full names
    fields: list[_Field] = field(default_factory=list)
    symbols: tuple[str, ...] = ()
    has_default: bool = False  # an enum's default symbol
    size: int = 0

    @property
    def short(self) -> str:
        return self.fullname.rsplit(".", 1)[-1]

    def field_named(self, names: Iterable[str]) -> _Field | None:
        by_name = {f.name: f for f in self.fields}
        for name in names:
            if name in by_name:
                return by_name[name]
        return None


@dataclass(eq=False)
class _Array:
    items: _Node


@dataclass(eq=False)
class _Map:
    values: _Node


@dataclass(eq=False)
class _Union:
    branches: list[_Node]


_Node = _Primitive | _Named | _Array | _Map | _Union


def _full(name: str, namespace: str) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


class _Parser:
    """Turns one schema document into nodes; named types are shared objects, so cycles work."""

    def __init__(self) -> None:
        self.named: dict[str, _Named] = {}

    def parse(self, node: Any, namespace: str = "") -> _Node:
        if isinstance(node, str):
            return _Primitive(node) if node in PRIMITIVES else self.reference(node, namespace)
        if isinstance(node, list):
            return _Union([self.parse(branch, namespace) for branch in node])
        if not isinstance(node, dict):
            raise SchemaParseError(f"not an Avro schema: {node!r}")
        kind = node.get("type")
        if kind in NAMED_KINDS:
            return self.define(node, namespace)
        if kind == "array":
            return _Array(self.parse(self.attribute(node, "items"), namespace))
        if kind == "map":
            return _Map(self.parse(self.attribute(node, "values"), namespace))
        if kind is None:
            raise SchemaParseError(f"a schema object without 'type': {node!r}")
        return self.parse(kind, namespace)  # {"type": "long", "logicalType": ...} and the like

    def reference(self, name: str, namespace: str) -> _Named:
        for candidate in (_full(name, namespace), name):
            if candidate in self.named:
                return self.named[candidate]
        raise SchemaParseError(f"unknown type {name!r}")

    def define(self, node: dict[str, Any], namespace: str) -> _Named:
        name = self.attribute(node, "name")
        if not isinstance(name, str) or not name:
            raise SchemaParseError(f"a named type needs a name: {node!r}")
        if "." not in name:
            namespace = node.get("namespace") or namespace
        fullname = _full(name, namespace)
        namespace = fullname.rpartition(".")[0]
        if fullname in self.named:
            raise SchemaParseError(f"type {fullname!r} is defined twice")
        kind = "record" if node["type"] == "error" else node["type"]
        aliases = frozenset(_full(alias, namespace) for alias in node.get("aliases", ()))
        named = _Named(kind, fullname, aliases)
        self.named[fullname] = named
        if kind == "record":
            for entry in self.attribute(node, "fields"):
                if not isinstance(entry, dict) or "name" not in entry or "type" not in entry:
                    raise SchemaParseError(f"{fullname}: a field needs a name and a type: "
                                           f"{entry!r}")
                named.fields.append(_Field(
                    name=entry["name"], type=self.parse(entry["type"], namespace),
                    aliases=frozenset(entry.get("aliases", ())), has_default="default" in entry,
                ))
        elif kind == "enum":
            named.symbols = tuple(self.attribute(node, "symbols"))
            named.has_default = "default" in node
        else:
            size = self.attribute(node, "size")
            if not isinstance(size, int):
                raise SchemaParseError(f"{fullname}: fixed size must be an integer, not {size!r}")
            named.size = size
        return named

    @staticmethod
    def attribute(node: dict[str, Any], key: str) -> Any:
        if key not in node:
            raise SchemaParseError(f"{node.get('type')} schema without {key!r}: {node!r}")
        return node[key]


def parse(schema: Schema) -> _Node:
    """The checker's parsed form of a schema given as JSON text or as parsed JSON."""
    if isinstance(schema, str):
        if schema in PRIMITIVES:
            return _Primitive(schema)
        try:
            schema = json.loads(schema)
        except ValueError as error:
            raise SchemaParseError(f"not JSON: {error}") from error
    return _Parser().parse(schema)


# -- comparing -------------------------------------------------------------------------------


def _name(node: _Node) -> str:
    if isinstance(node, _Primitive):
        return node.name
    if isinstance(node, _Named):
        return node.fullname
    if isinstance(node, _Array):
        return f"array<{_name(node.items)}>"
    if isinstance(node, _Map):
        return f"map<{_name(node.values)}>"
    return f"union[{', '.join(_name(branch) for branch in node.branches)}]"


def _names_match(reader: _Named, writer: _Named) -> bool:
    """Same unqualified name, or a reader alias naming the writer (fully or unqualified)."""
    if reader.short == writer.short:
        return True
    shorts = {alias.rsplit(".", 1)[-1] for alias in reader.aliases}
    return writer.fullname in reader.aliases or writer.short in shorts


def _same_kind(reader: _Node, writer: _Node) -> bool:
    """Whether `reader` is the union branch meant for `writer` (so its own problems matter)."""
    if isinstance(reader, _Named) and isinstance(writer, _Named):
        return reader.kind == writer.kind and _names_match(reader, writer)
    return isinstance(reader, _Array | _Map) and type(reader) is type(writer)


class _Comparison:
    def __init__(self) -> None:
        self.active: set[tuple[int, int]] = set()

    def compare(self, reader: _Node, writer: _Node, path: str) -> list[str]:
        if isinstance(writer, _Union):
            return [p for branch in writer.branches for p in self.compare(reader, branch, path)]
        if isinstance(reader, _Union):
            return self.against_union(reader, writer, path)
        mismatch = [f"{path}: reader type '{_name(reader)}' cannot read writer type "
                    f"'{_name(writer)}'"]
        if isinstance(reader, _Primitive) or isinstance(writer, _Primitive):
            if isinstance(reader, _Primitive) and isinstance(writer, _Primitive) and (
                reader.name == writer.name or reader.name in PROMOTIONS.get(writer.name, ())
            ):
                return []
            return mismatch
        if isinstance(reader, _Array) and isinstance(writer, _Array):
            return self.compare(reader.items, writer.items, f"{path}[]")
        if isinstance(reader, _Map) and isinstance(writer, _Map):
            return self.compare(reader.values, writer.values, f"{path}{{}}")
        if not (isinstance(reader, _Named) and isinstance(writer, _Named)
                and reader.kind == writer.kind):
            return mismatch
        if not _names_match(reader, writer):
            return [f"{path}: reader {reader.kind} '{reader.fullname}' cannot read writer "
                    f"{writer.kind} '{writer.fullname}': the names differ and no reader alias "
                    f"names the writer's"]
        pair = (id(reader), id(writer))
        if pair in self.active:
            return []  # already being compared further up: assume compatible (coinduction)
        self.active.add(pair)
        try:
            return self.named(reader, writer, path)
        finally:
            self.active.discard(pair)

    def named(self, reader: _Named, writer: _Named, path: str) -> list[str]:
        if reader.kind == "fixed":
            if reader.size == writer.size:
                return []
            return [f"{path}: reader fixed '{reader.fullname}' has size {reader.size}, "
                    f"writer fixed '{writer.fullname}' has size {writer.size}"]
        if reader.kind == "enum":
            missing = [s for s in writer.symbols if s not in reader.symbols]
            if not missing or reader.has_default:
                return []
            return [f"{path}: reader enum '{reader.fullname}' has no symbol "
                    f"{', '.join(map(repr, missing))} of the writer's, and no default"]
        problems = []
        for reader_field in reader.fields:
            where = f"{path}.{reader_field.name}"
            writer_field = writer.field_named([reader_field.name, *sorted(reader_field.aliases)])
            if writer_field is not None:
                problems += self.compare(reader_field.type, writer_field.type, where)
            elif not reader_field.has_default:
                problems.append(f"{where}: reader field '{reader_field.name}' is missing from "
                                f"the writer and has no default")
        return problems

    def against_union(self, reader: _Union, writer: _Node, path: str) -> list[str]:
        near_misses = []
        for branch in reader.branches:
            problems = self.compare(branch, writer, path)
            if not problems:
                return []
            if _same_kind(branch, writer):
                near_misses.append(problems)
        if near_misses:
            return near_misses[0]
        return [f"{path}: no branch of reader type '{_name(reader)}' can read writer type "
                f"'{_name(writer)}'"]


def _root(reader: _Node, writer: _Node) -> str:
    for node in (reader, writer):
        if isinstance(node, _Named):
            return node.fullname
    return "(root)"


def _check_parsed(reader: _Node, writer: _Node) -> list[str]:
    problems = _Comparison().compare(reader, writer, _root(reader, writer))
    return list(dict.fromkeys(problems))  # a type reached twice reports once


def check(reader: Schema, writer: Schema) -> list[str]:
    """Why `reader` cannot read data written with `writer`; empty when it can.

    Schemas are JSON text or parsed JSON. Raises `SchemaParseError` when either is not a
    schema the checker can follow.
    """
    return _check_parsed(parse(reader), parse(writer))


def check_level(
    level: str,
    new: Schema,
    previous: Sequence[Schema],
    *,
    versions: Sequence[int | str] | None = None,
) -> list[str]:
    """Incompatibilities of `new` with `previous` (oldest first) under a compatibility level.

    BACKWARD: the new schema reads data written with the latest previous one; FORWARD: the
    latest previous one reads data written with the new one; FULL: both. The _TRANSITIVE forms
    check against every previous schema instead of the latest; NONE checks nothing. Each
    message says which direction and which version failed; `versions` labels the previous
    schemas (default 1, 2, ...). Raises `ValueError` for an unknown level.
    """
    level = level.upper()
    if level not in LEVELS:
        raise ValueError(f"unknown compatibility level {level!r}; one of: {', '.join(LEVELS)}")
    labels = list(versions) if versions is not None else list(range(1, len(previous) + 1))
    if len(labels) != len(previous):
        raise ValueError(f"{len(labels)} version labels for {len(previous)} previous schemas")
    if level == "NONE" or not previous:
        return []
    pairs = list(zip(labels, previous, strict=True))
    if not level.endswith("_TRANSITIVE"):
        pairs = pairs[-1:]
    backward = level.startswith(("BACKWARD", "FULL"))
    forward = level.startswith(("FORWARD", "FULL"))
    candidate = parse(new)
    problems = []
    for label, schema in pairs:
        old = parse(schema)
        if backward:
            problems += [f"[new schema reading version {label}] {p}"
                         for p in _check_parsed(candidate, old)]
        if forward:
            problems += [f"[version {label} reading new schema] {p}"
                         for p in _check_parsed(old, candidate)]
    return problems


def check_backward(new: Schema, previous_versions: Sequence[Schema], transitive: bool = True,
                   ) -> list[str]:
    """BACKWARD_TRANSITIVE (or, with `transitive=False`, BACKWARD) incompatibilities."""
    level = "BACKWARD_TRANSITIVE" if transitive else "BACKWARD"
    return check_level(level, new, previous_versions)
