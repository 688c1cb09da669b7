"""The pure part of the projection: the task-event item and the status machine.

No clock, no I/O, no randomness: the same messages give the same hashes and stream entries,
which is why a rebuild from offset 0 equals the live view.

Status machine (docs/api.md "task"):

    SubmitTask (command)                 accepted, only while the task has no status
    TaskSubmitted                        submitted
    Inference*, ActionProposed, PolicyEvaluated, ActionApproved/Rejected,
    ToolResultRecorded                   running
    ApprovalRequested                    awaiting_approval (pending_action_id = its action)
    TaskCompleted / TaskFailed / TaskCancelled   completed / failed / cancelled (final)
    CommandRejected of the SubmitTask    failed, while the task is not submitted yet;
                                         any other refusal leaves the status as it is

A status never moves backwards: an event whose sequence is not above the task's
`last_sequence` is a duplicate and changes nothing, and a final status stays final. A command
only fills fields the task does not have yet, so the result is the same whichever of the two
topics is read first.

The item (`task_event`): `payload` is the record as JSON without `meta`: nested records as
objects, arrays as lists, enums as their symbol, timestamps as RFC 3339 UTC with microseconds
(`2026-11-25T12:00:00.123456Z`), `bytes` as standard base64 (padded; task events have none
today). Amounts, hashes and addresses stay the strings they are in the event.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from omc_events.record import Record

SUBMIT_TASK = "omc.command.SubmitTask"
COMMAND_REJECTED = "omc.command.CommandRejected"
APPROVAL_REQUESTED = "omc.task.ApprovalRequested"
TERMINAL = frozenset({"omc.task.TaskCompleted", "omc.task.TaskFailed",
                      "omc.task.TaskCancelled"})
FINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})
STATUS_AFTER: Mapping[str, str] = {
    "omc.task.TaskSubmitted": "submitted",
    "omc.task.InferenceRequested": "running",
    "omc.task.InferenceCompleted": "running",
    "omc.task.InferenceFailed": "running",
    "omc.task.ActionProposed": "running",
    "omc.task.PolicyEvaluated": "running",
    APPROVAL_REQUESTED: "awaiting_approval",
    "omc.task.ActionApproved": "running",
    "omc.task.ActionRejected": "running",
    "omc.task.ToolResultRecorded": "running",
    "omc.task.TaskCompleted": "completed",
    "omc.task.TaskFailed": "failed",
    "omc.task.TaskCancelled": "cancelled",
}
TASK_EVENTS = frozenset(STATUS_AFTER) | {COMMAND_REJECTED}


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one message does to one task.

    `status` is the task's whole new status hash (None: unchanged); `entry` the stream entry
    to append at id `<sequence>-0` (None: none); `skipped` says why nothing changes.
    """

    task_id: str
    status: dict[str, str] | None = None
    entry: dict[str, str] | None = None
    sequence: int = 0
    skipped: str | None = None


def rfc3339(moment: datetime) -> str:
    """`moment` in UTC as RFC 3339 with microseconds and a `Z`."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def plain(value: Any) -> Any:
    """`value` (a record, or anything inside one) as JSON-ready data."""
    if isinstance(value, Record):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [plain(item) for item in value]
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


def task_event(record: Record, topic: str, partition: int, offset: int) -> dict[str, Any]:
    """The docs/api.md "task event" item of `record`, read at `topic`/`partition`@`offset`."""
    meta = record.meta  # type: ignore[attr-defined]
    payload = plain(record)
    del payload["meta"]
    return {
        "event_id": meta.event_id, "sequence": meta.sequence, "event_type": meta.event_type,
        "occurred_at": rfc3339(meta.occurred_at), "actor": meta.actor,
        "correlation_id": meta.correlation_id, "causation_id": meta.causation_id,
        "prev_hash": meta.prev_hash, "hash": meta.hash, "topic": topic,
        "partition": partition, "offset": offset, "payload": payload,
    }


def encode_item(item: Mapping[str, Any]) -> str:
    """The JSON text kept in a stream entry (compact, UTF-8, keys in the documented order)."""
    return json.dumps(item, ensure_ascii=False, separators=(",", ":"))


def on_command(current: Mapping[str, str] | None, record: Record) -> Outcome:
    """A command from omc.commands.v1: a SubmitTask fills what its task does not have yet."""
    meta = record.meta  # type: ignore[attr-defined]
    if meta.event_type != SUBMIT_TASK:
        return Outcome(meta.aggregate_id, skipped="not_projected")
    task_id = record.task_id  # type: ignore[attr-defined]
    if current and current.get("tenant", meta.tenant) != meta.tenant:
        return Outcome(task_id, skipped="tenant_mismatch")
    known = dict(current or {})
    filled = {
        "tenant": meta.tenant, "status": "accepted",
        "agent_id": record.agent_id,  # type: ignore[attr-defined]
        "last_sequence": "0", "last_event_type": meta.event_type, "last_hash": meta.hash,
        "updated_at": rfc3339(meta.occurred_at),
    }
    status = {**filled, **known}
    if status == known:
        return Outcome(task_id, skipped="already_known")
    return Outcome(task_id, status=status)


def on_event(current: Mapping[str, str] | None, record: Record, topic: str, partition: int,
             offset: int) -> Outcome:
    """A task event from omc.task.events.v1: appended to the task's stream, and its status
    moved on, unless the task has it already."""
    meta = record.meta  # type: ignore[attr-defined]
    task_id, kind, sequence = meta.aggregate_id, meta.event_type, meta.sequence
    if kind not in TASK_EVENTS:
        return Outcome(task_id, skipped="not_a_task_event")
    if sequence < 1:
        return Outcome(task_id, skipped="unchained")
    known = dict(current or {})
    if known.get("tenant", meta.tenant) != meta.tenant:
        return Outcome(task_id, skipped="tenant_mismatch")
    if sequence <= int(known.get("last_sequence", "0")):
        return Outcome(task_id, skipped="duplicate")

    status = {**known, "tenant": meta.tenant, "last_sequence": str(sequence),
              "last_event_type": kind, "last_hash": meta.hash,
              "updated_at": rfc3339(meta.occurred_at)}
    before = known.get("status")
    if before not in FINAL_STATUSES:
        after = STATUS_AFTER.get(kind)
        if kind == COMMAND_REJECTED:
            refused = record.rejected_command_type  # type: ignore[attr-defined]
            after = "failed" if refused == SUBMIT_TASK and before in (None, "accepted") \
                else before
        if after is not None:
            status["status"] = after
        if kind == "omc.task.TaskSubmitted":
            status["agent_id"] = record.agent_id  # type: ignore[attr-defined]
        if kind == APPROVAL_REQUESTED:
            status["pending_action_id"] = record.action_id  # type: ignore[attr-defined]
        elif after != "awaiting_approval":
            status.pop("pending_action_id", None)
    else:
        status.pop("pending_action_id", None)
    entry = {"type": kind, "event": encode_item(task_event(record, topic, partition, offset))}
    return Outcome(task_id, status=status, entry=entry, sequence=sequence)
