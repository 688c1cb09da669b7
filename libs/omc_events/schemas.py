"""The Avro schemas in `schemas/avro`, loaded and made self-contained.

Each record lives in its own file, `omc/<context>/<Record>.avsc`, and refers to other named
types by full name. `SchemaSet.standalone(name)` inlines every referenced named type at its
first use, giving the one JSON document a registry subject holds and any Avro tool can read
without references.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omc_config.settings import REPO_ROOT
from omc_errors import OmcError

# OMC_SCHEMAS_DIR: where schemas/ is when the code runs outside a checkout (the image)
SCHEMAS_DIR = Path(os.environ.get("OMC_SCHEMAS_DIR") or REPO_ROOT / "schemas")
AVRO_DIR = SCHEMAS_DIR / "avro"
PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


class SchemaError(OmcError):
    """A schema file is missing, malformed, or refers to an unknown type."""


@dataclass(frozen=True)
class SchemaSet:
    """Every named type under one directory, by full name (namespace.name)."""

    named: dict[str, dict[str, Any]]

    @classmethod
    def load(cls, root: Path = AVRO_DIR) -> SchemaSet:
        named: dict[str, dict[str, Any]] = {}
        for path in sorted(root.rglob("*.avsc")):
            try:
                schema = json.loads(path.read_text())
            except ValueError as error:
                raise SchemaError(f"{path}: not valid JSON: {error}") from error
            full = f"{schema.get('namespace', '')}.{schema.get('name', '')}"
            expected = ".".join(path.relative_to(root).with_suffix("").parts)
            if full != expected:
                raise SchemaError(f"{path}: declares {full}, but its path says {expected}")
            named[full] = schema
        return cls(named)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.named))

    def standalone(self, name: str) -> dict[str, Any]:
        """The schema of `name` with every named type it uses defined inline, once."""
        if name not in self.named:
            raise SchemaError(f"unknown schema {name!r}")
        return self._inline(copy.deepcopy(self.named[name]), defined=set())

    def standalone_json(self, name: str) -> str:
        """`standalone(name)` as compact JSON text (what a registry stores)."""
        return json.dumps(self.standalone(name), separators=(",", ":"))

    def _inline(self, node: Any, defined: set[str], namespace: str = "") -> Any:
        if isinstance(node, str):
            if node in PRIMITIVES:
                return node
            full = node if "." in node else f"{namespace}.{node}"
            if full in defined:
                return full
            if full not in self.named:
                raise SchemaError(f"unknown type {node!r}")
            return self._inline(copy.deepcopy(self.named[full]), defined, namespace)
        if isinstance(node, list):
            return [self._inline(branch, defined, namespace) for branch in node]
        if not isinstance(node, dict):
            return node
        kind = node.get("type")
        if kind in ("record", "enum", "fixed"):
            namespace = node.get("namespace", namespace)
            defined.add(f"{namespace}.{node['name']}")
            if kind == "record":
                for field in node["fields"]:
                    field["type"] = self._inline(field["type"], defined, namespace)
            return node
        if kind == "array":
            node["items"] = self._inline(node["items"], defined, namespace)
        elif kind == "map":
            node["values"] = self._inline(node["values"], defined, namespace)
        elif isinstance(kind, (dict, list)) or kind not in PRIMITIVES:
            node["type"] = self._inline(kind, defined, namespace)
        return node
