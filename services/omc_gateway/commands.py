"""Typed command records from validated bodies, with their envelope, sealed.

    command id   UUIDv5(COMMAND_NAMESPACE, "<key_id>:<Idempotency-Key>") when the caller
                 gives an Idempotency-Key (a retry yields the same command), else a random
                 UUID; it is meta.event_id and meta.correlation_id
    task id      derived_id(command id, 0) for a new task; an agent id likewise when the
                 caller gives none
    meta         tenant = the key's tenant, actor = "key:<key_id>", occurred_at = now (UTC),
                 sequence 0 and a self-hash (as chain.seal_command): commands are not chained
    body         the sealed record's Avro body, from one encoding (chain.seal_body): the
                 bus sends it as it is, behind the wire-format prefix
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from omc_events.avro import Schemas
from omc_events.chain import seal_body
from omc_events.envelope import ZERO_HASH, derived_id, uuid5_text
from omc_events.record import Record
from omc_events.records import (
    ApproveAction,
    CancelTask,
    EventMeta,
    Policy,
    RegisterAgent,
    RejectAction,
    SetPolicy,
    SubmitTask,
    TokenLimit,
)

COMMAND_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:openmcp-chain:command-id")
"""UUIDv5 namespace of command ids derived from an Idempotency-Key."""

TRACEPARENT = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
TRACESTATE_MAX = 512


@dataclass(frozen=True)
class Principal:
    """Who is calling: an API key's id, tenant and scopes."""

    key_id: str
    tenant: str
    scopes: frozenset[str]

    @property
    def actor(self) -> str:
        return f"key:{self.key_id}"


@dataclass(frozen=True, slots=True)
class SealedCommand:
    """A command ready for the log: the record and its Avro body (no wire-format prefix)."""

    record: Record
    body: bytes


@dataclass(frozen=True)
class Origin:
    """Where a command comes from: the caller, its command id and its trace context."""

    principal: Principal
    command_id: str
    traceparent: str | None = None
    tracestate: str | None = None


def command_id(key_id: str, idempotency_key: str | None) -> str:
    if idempotency_key is None:
        return str(uuid.uuid4())
    return uuid5_text(COMMAND_NAMESPACE, f"{key_id}:{idempotency_key}")


def trace_context(traceparent: str | None, tracestate: str | None) -> tuple[str | None,
                                                                           str | None]:
    """The W3C trace context to record, or (None, None) when traceparent is malformed."""
    if traceparent is None or not TRACEPARENT.fullmatch(traceparent.strip()):
        return None, None
    state = tracestate.strip() if tracestate else None
    if state and (len(state) > TRACESTATE_MAX or not state.isprintable()):
        state = None
    return traceparent.strip(), state or None


class CommandFactory:
    """Builds and seals the six commands; `schemas` encodes them (`RecordInvalid` names a
    field the contract refuses)."""

    def __init__(self, schemas: Schemas | None = None) -> None:
        self.schemas = schemas or Schemas()

    def _seal(self, origin: Origin, cls: type[Record], aggregate_type: str,
              aggregate_id: str, **fields: Any) -> SealedCommand:
        """`cls(meta=..., **fields)` self-hashed as `chain.seal_command` does (the tests hold
        it to that), built directly: the hot path of every command."""
        meta = {
            "event_id": origin.command_id, "event_type": cls.SCHEMA, "schema_version": 1,
            "aggregate_type": aggregate_type, "aggregate_id": aggregate_id, "sequence": 0,
            "occurred_at": datetime.now(UTC), "tenant": origin.principal.tenant,
            "actor": origin.principal.actor, "correlation_id": origin.command_id,
            "causation_id": None, "traceparent": origin.traceparent,
            "tracestate": origin.tracestate, "prev_hash": ZERO_HASH,
        }
        unsealed = cls(meta=EventMeta(**meta, hash=""), **fields)  # type: ignore[call-arg]
        body, digest = seal_body(self.schemas, unsealed)
        sealed = cls(meta=EventMeta(**meta, hash=digest), **fields)  # type: ignore[call-arg]
        return SealedCommand(sealed, body)

    def submit_task(self, origin: Origin, body: dict[str, Any]) -> SealedCommand:
        task_id = derived_id(origin.command_id, 0)
        return self._seal(origin, SubmitTask, "task", task_id, task_id=task_id,
                          agent_id=body["agent_id"], instruction=body["instruction"],
                          chain_id=body["chain_id"], max_value_wei=body["max_value_wei"],
                          deadline=body["deadline"], metadata_json=body["metadata"])

    def cancel_task(self, origin: Origin, task_id: str, body: dict[str, Any]) -> SealedCommand:
        return self._seal(origin, CancelTask, "task", task_id, task_id=task_id,
                          reason=body["reason"])

    def approve_action(self, origin: Origin, task_id: str, action_id: str,
                       body: dict[str, Any]) -> SealedCommand:
        return self._seal(origin, ApproveAction, "task", task_id, task_id=task_id,
                          action_id=action_id, approver=origin.principal.actor,
                          action_hash=body["action_hash"], comment=body["comment"])

    def reject_action(self, origin: Origin, task_id: str, action_id: str,
                      body: dict[str, Any]) -> SealedCommand:
        return self._seal(origin, RejectAction, "task", task_id, task_id=task_id,
                          action_id=action_id, approver=origin.principal.actor,
                          reason=body["reason"], action_hash=body["action_hash"])

    def register_agent(self, origin: Origin, body: dict[str, Any]) -> SealedCommand:
        agent_id = body["agent_id"] or derived_id(origin.command_id, 0)
        return self._seal(origin, RegisterAgent, "agent", agent_id, agent_id=agent_id,
                          name=body["name"], description=body["description"],
                          signer_address=body["signer_address"], model=body["model"],
                          parameters_json=body["parameters"], policy=policy(body["policy"]))

    def set_policy(self, origin: Origin, agent_id: str, body: dict[str, Any]) -> SealedCommand:
        return self._seal(origin, SetPolicy, "agent", agent_id, agent_id=agent_id,
                          policy=policy(body["policy"]))


def policy(checked: dict[str, Any]) -> Policy:
    limits = tuple(TokenLimit(**limit) for limit in checked.get("token_limits") or ())
    return Policy(**{**checked, "token_limits": limits})
