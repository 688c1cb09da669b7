"""Portable audit bundles: one JSON file that `omc audit verify --bundle` checks offline.

    {"format": "openmcp-chain/audit-bundle@1", "task_id", "exported_at", "notary": [signers],
     "ranges":       [{"stream_id", "first_offset", "last_offset", "first_leaf",
                       "last_leaf"}]     a range bundle's claims (task_id null); a task
                                         bundle has none
     "events":       [{"topic", "partition", "offset", "key", "value"}]   wire bytes, base64
     "proof_events": [ same ]      the proof topic's records of the streams concerned
     "schemas":      {"<schema id>": <writer schema>}   every schema those messages name
     "proofs":       [{"topic", "partition", "offset", "leaf_index", "tree_size",
                       "audit_path": ["0x…"]}]          RFC 9162 inclusion proofs
     "anchors":      [{"stream_id", "tree_size", "root", "chain_id", "registry", "tx_hash",
                       "block_number", "block_hash", "root_on_chain", "receipt_status"}]}

`BundleRegistry` serves the recorded schemas to `omc_events.codec.Codec`, so events decode
exactly as from the log, with no registry running.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry.error import SchemaRegistryError

from omc_errors import OmcError
from omc_events.avro import Schemas
from omc_events.catalogue import Catalogue
from omc_events.codec import Codec
from omc_proofs.audit import AnchorReceipt, Evidence, InclusionProof, RangeClaim, Stored

FORMAT = "openmcp-chain/audit-bundle@1"


class BundleInvalid(OmcError):
    """The file is not an audit bundle this version reads."""


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text, validate=True)


def stored_to_json(m: Stored) -> dict[str, Any]:
    return {"topic": m.topic, "partition": m.partition, "offset": m.offset,
            "key": _b64(m.key), "value": _b64(m.value)}


def stored_from_json(d: dict[str, Any]) -> Stored:
    return Stored(str(d["topic"]), int(d["partition"]), int(d["offset"]), _unb64(d["key"]),
                  _unb64(d["value"]) or b"")


@dataclass
class Bundle:
    task_id: str | None  # None: a range bundle (evidence.ranges says what it holds)
    exported_at: str
    evidence: Evidence
    schemas: dict[int, dict[str, Any]]
    notary: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        e = self.evidence
        return {
            "format": FORMAT, "task_id": self.task_id, "exported_at": self.exported_at,
            "notary": self.notary, "ranges": [asdict(c) for c in e.ranges],
            "events": [stored_to_json(m) for m in e.events],
            "proof_events": [stored_to_json(m) for m in e.proof_events],
            "schemas": {str(k): v for k, v in sorted(self.schemas.items())},
            "proofs": [{"topic": p.topic, "partition": p.partition, "offset": p.offset,
                        "leaf_index": p.leaf_index, "tree_size": p.tree_size,
                        "audit_path": list(p.path)} for p in e.proofs],
            "anchors": [asdict(r) for r in e.receipts],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Bundle:
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise BundleInvalid(f"not an audit bundle ({FORMAT})")
        try:
            task_id = None if d["task_id"] is None else str(d["task_id"])
            ranges = [RangeClaim(str(c["stream_id"]), int(c["first_offset"]),
                                 int(c["last_offset"]), int(c["first_leaf"]),
                                 int(c["last_leaf"])) for c in d.get("ranges") or []]
            if (task_id is None) == (not ranges):
                raise ValueError("a bundle holds a task_id or ranges (one of them)")
            evidence = Evidence(
                events=[stored_from_json(m) for m in d["events"]],
                proof_events=[stored_from_json(m) for m in d["proof_events"]],
                proofs=[InclusionProof(str(p["topic"]), int(p["partition"]), int(p["offset"]),
                                       int(p["leaf_index"]), int(p["tree_size"]),
                                       tuple(str(h) for h in p["audit_path"]))
                        for p in d["proofs"]],
                receipts=[AnchorReceipt(**r) for r in d["anchors"]],
                task_id=task_id, chained={f"task/{task_id}"} if task_id else None,
                ranges=ranges, runs=not task_id)
            schemas = {int(k): v for k, v in d["schemas"].items()}
            return cls(task_id, str(d["exported_at"]), evidence, schemas,
                       list(d.get("notary") or []))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise BundleInvalid(f"the bundle is malformed: {type(error).__name__}: "
                                f"{error}") from None

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=1, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> Bundle:
        try:
            return cls.from_json(json.loads(path.read_text()))
        except (OSError, ValueError) as error:
            raise BundleInvalid(f"{path}: cannot be read as JSON ({error})") from None


_SCHEMAS: list[Schemas] = []


def bundle_codec(bundle: Bundle) -> Codec:
    """A codec decoding with the bundle's recorded writer schemas only (no registry, and no
    topic catalogue: nothing is encoded)."""
    if not _SCHEMAS:
        _SCHEMAS.append(Schemas())
    return Codec(BundleRegistry(bundle.schemas), schemas=_SCHEMAS[0],  # type: ignore[arg-type]
                 catalogue=Catalogue())


class BundleRegistry:
    """The part of SchemaRegistryClient that Codec.decode uses, over recorded schemas."""

    def __init__(self, schemas: dict[int, dict[str, Any]]) -> None:
        self.schemas = schemas

    def get_schema(self, schema_id: int) -> Schema:
        found = self.schemas.get(schema_id)
        if found is None:
            raise SchemaRegistryError(404, 40403, f"schema {schema_id} is not in the bundle")
        return Schema(json.dumps(found), "AVRO")
