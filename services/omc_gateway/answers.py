"""JSON Schemas of what the gateway answers (docs/api.md, "Items"), for the OpenAPI
document. Items are described, not closed: a projection may add members, and only the
identifying ones are required, as the SDK reads them."""

from __future__ import annotations

from typing import Any


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Any], required: tuple[str, ...] = (),
            doc: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties,
                              "required": list(required), "additionalProperties": True}
    if doc:
        schema["description"] = doc
    return schema


STRING, INTEGER, BOOLEAN = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
N_STRING = {"type": ["string", "null"]}
N_INTEGER = {"type": ["integer", "null"]}
STRINGS = {"type": "array", "items": STRING}
ANY: dict[str, Any] = {}

TASK_STATUSES = ("accepted", "submitted", "running", "awaiting_approval", "completed",
                 "failed", "cancelled")
TX_STATUSES = ("requested", "signed", "broadcast", "included", "confirmed", "failed",
               "reorged")

SCHEMAS: dict[str, dict[str, Any]] = {
    "Problem": {
        "type": "object", "description": "An error, as RFC 9457 problem details.",
        "properties": {
            "type": STRING, "title": STRING, "status": INTEGER, "detail": STRING,
            "instance": STRING, "request_id": STRING,
            "errors": {"type": "array", "items": {
                "type": "object", "required": ["field", "problem"],
                "properties": {"field": STRING, "problem": STRING}}},
        },
        "required": ["type", "title", "status", "detail"],
    },
    "AsOf": _object({"projection": STRING,
                     "offsets": {"type": "object", "additionalProperties": INTEGER},
                     "updated_at": N_STRING},
                    doc="The projection's position: next offset per partition."),
    "CommandAccepted": {
        "type": "object",
        "properties": {"command_id": {"type": "string", "format": "uuid"},
                       "command_type": STRING, "aggregate_id": STRING,
                       "status": {"type": "string", "enum": ["accepted"]},
                       "links": {"type": "object", "properties": {"self": STRING},
                                 "required": ["self"]}},
        "required": ["command_id", "command_type", "aggregate_id", "status", "links"],
    },
    "Task": _object({
        "task_id": STRING, "tenant": STRING, "agent_id": N_STRING, "status": STRING,
        "instruction": N_STRING, "chain_id": N_INTEGER, "submitted_at": N_STRING,
        "updated_at": N_STRING, "last_sequence": N_INTEGER, "last_event_type": N_STRING,
        "last_hash": N_STRING, "pending_action_id": N_STRING, "result": ANY, "failure": ANY,
        "tx_hashes": STRINGS}, ("task_id", "status")),
    "TaskEvent": _object({
        "event_id": STRING, "sequence": INTEGER, "event_type": STRING, "occurred_at": STRING,
        "actor": STRING, "correlation_id": STRING, "causation_id": N_STRING,
        "prev_hash": STRING, "hash": STRING, "topic": STRING, "partition": INTEGER,
        "offset": INTEGER, "payload": {"type": "object"}}, ("event_id", "sequence",
                                                             "event_type")),
    "Agent": _object({
        "agent_id": STRING, "tenant": STRING, "name": STRING, "description": STRING,
        "signer_address": STRING, "model": STRING, "status": STRING,
        "policy_version": N_INTEGER, "registered_at": N_STRING, "updated_at": N_STRING},
        ("agent_id",)),
    "PolicyItem": _object({
        "version": INTEGER, "allowed_chain_ids": {"type": "array", "items": INTEGER},
        "allowed_contracts": STRINGS, "allowed_selectors": STRINGS,
        "deny_addresses": STRINGS, "allowed_recipients": STRINGS, "max_value_wei": STRING,
        "budget_wei": STRING, "budget_window_seconds": INTEGER,
        "max_fee_per_gas_wei": STRING, "approval_threshold_wei": STRING,
        "max_inferences_per_task": INTEGER}, ("version",),
        doc="An agent's current policy (omc.agent.Policy)."),
    "Transaction": _object({
        "request_id": STRING, "tenant": STRING, "task_id": N_STRING, "action_id": N_STRING,
        "chain_id": INTEGER, "sender": STRING, "to": STRING, "value_wei": STRING,
        "nonce": N_INTEGER, "tx_hash": N_STRING, "tx_hashes": STRINGS, "status": STRING,
        "block_number": N_INTEGER, "block_hash": N_STRING, "confirmations": N_INTEGER,
        "gas_used": N_INTEGER, "effective_gas_price_wei": N_STRING, "updated_at": N_STRING},
        ("request_id", "status")),
    "Receipt": _object({
        "tx_hash": STRING, "block_number": INTEGER, "block_hash": STRING, "gas_used": INTEGER,
        "effective_gas_price_wei": STRING, "status_ok": BOOLEAN,
        "contract_address": N_STRING, "confirmations": N_INTEGER}, ("tx_hash",)),
    "Checkpoint": _object({
        "stream_id": STRING, "tree_size": INTEGER, "root": STRING, "first_offset": INTEGER,
        "last_offset": INTEGER, "previous_tree_size": INTEGER, "digest": STRING,
        "signer": STRING, "signature": STRING, "event_id": STRING,
        "anchor": {"type": ["object", "null"], "properties": {
            "chain_id": INTEGER, "registry": N_STRING, "tx_hash": STRING,
            "block_number": INTEGER}}}, ("stream_id", "tree_size", "root"),
        doc="A notary's signed checkpoint (omc.proof.CheckpointSigned) and its anchor."),
    "InclusionProof": _object({
        "event_id": STRING, "stream_id": STRING, "topic": STRING, "partition": INTEGER,
        "offset": INTEGER, "leaf_index": INTEGER, "leaf": STRING, "tree_size": N_INTEGER,
        "audit_path": STRINGS, "checkpoint": {"oneOf": [ref("Checkpoint"), {"type": "null"}]},
        "root_matches": BOOLEAN}, ("event_id", "stream_id", "leaf_index", "audit_path"),
        doc="RFC 9162 inclusion proof of an event's hash (the leaf) in a checkpoint's tree; "
            "checkpoint null: not covered by a checkpoint yet."),
    "ConsistencyProof": _object({
        "stream_id": STRING, "from": ref("Checkpoint"), "to": ref("Checkpoint"),
        "proof": STRINGS, "roots_match": BOOLEAN}, ("stream_id", "from", "to", "proof"),
        doc="RFC 9162 consistency proof between two checkpoints of a stream."),
    "Health": {"type": "object", "properties": {"status": {"type": "string",
                                                           "enum": ["ok"]}},
               "required": ["status"]},
    "Readiness": {"type": "object", "properties": {
        "status": {"type": "string", "enum": ["ready"]},
        "checks": {"type": "object", "additionalProperties": {
            "type": "object", "properties": {"status": STRING, "latency_ms": {"type": "number"},
                                             "detail": STRING}}}},
        "required": ["status", "checks"]},
}


def page(item: str) -> dict[str, Any]:
    return {"type": "object", "required": ["items", "next_cursor", "as_of"],
            "properties": {"items": {"type": "array", "items": ref(item)},
                           "next_cursor": N_STRING, "as_of": ref("AsOf")}}


def one(item: str) -> dict[str, Any]:
    return {"type": "object", "required": ["item", "as_of"],
            "properties": {"item": ref(item), "as_of": ref("AsOf")}}
