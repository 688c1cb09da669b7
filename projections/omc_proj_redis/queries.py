"""Reading the Redis projection: the only way the gateway reads it.

    task_status(client, tenant, task_id)            the task's live status, or None
    read_events(client, tenant, task_id, after=, block_ms=)   its events after a sequence,
                                                    waiting for new ones (feeds SSE)
    last_sequence(client, tenant, task_id)          where "from now" starts
    as_of(client)                                   the projection's position (offsets)
    TERMINAL                                        event types after which a stream ends

Every answer is scoped by tenant: another tenant's task reads exactly like a missing one.
A task event is the docs/api.md "task event" item (`event_id, sequence, event_type,
occurred_at, actor, correlation_id, causation_id, prev_hash, hash, topic, partition, offset,
payload`); `payload` is the record as JSON without `meta`, with timestamps as RFC 3339 UTC
(`…Z`, microseconds) and `bytes` fields as standard padded base64.

The per-task stream keeps the latest events only (1000 by default): a reader asking for
events older than that gets the oldest kept ones, and should use the MySQL trail for the
rest. Clients may be created with or without `decode_responses`.
"""

from __future__ import annotations

import json
from typing import Any

import redis
import redis.asyncio

from omc_proj_redis.keys import DEFAULT_PREFIX, Keys
from omc_proj_redis.view import TERMINAL

__all__ = ["TERMINAL", "as_of", "last_sequence", "read_events", "task_status"]

STATUS_FIELDS = ("tenant", "status", "agent_id", "last_sequence", "last_event_type",
                 "last_hash", "updated_at", "pending_action_id")


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def task_status(client: redis.Redis, tenant: str, task_id: str, *,
                prefix: str = DEFAULT_PREFIX) -> dict | None:
    """The task's status, or None when it is unknown, has no status yet, or belongs to
    another tenant: `{task_id, tenant, status, agent_id, last_sequence (int),
    last_event_type, last_hash, updated_at, pending_action_id}` (absent values are None)."""
    found = {_text(k): _text(v) for k, v in client.hgetall(Keys(prefix).status(task_id)).items()}
    if found.get("tenant") != tenant or not found.get("status"):
        return None
    item: dict[str, Any] = {"task_id": task_id}
    item.update((name, found.get(name)) for name in STATUS_FIELDS)
    item["last_sequence"] = int(found.get("last_sequence") or 0)
    return item


async def read_events(client: redis.asyncio.Redis, tenant: str, task_id: str, *, after: int,
                      block_ms: int, limit: int = 100,
                      prefix: str = DEFAULT_PREFIX) -> list[dict]:
    """Up to `limit` task events with sequence > `after`, oldest first. When there are none
    yet, waits up to `block_ms` milliseconds for one (XREAD BLOCK; `block_ms` <= 0 does not
    wait) and returns [] if none came. Another tenant's task answers [] at once.

    The client's socket timeout must exceed `block_ms`, or the wait ends in a TimeoutError.
    """
    keys = Keys(prefix)
    status, stream = keys.status(task_id), keys.events(task_id)
    streams = {stream: f"{max(after, 0)}-0"}
    async with client.pipeline(transaction=False) as pipe:  # one round trip when ready
        pipe.hget(status, "tenant")
        pipe.xread(streams, count=max(limit, 1))
        owner, reply = await pipe.execute()
    owner = _text(owner)
    if owner is not None and owner != tenant:
        return []
    entries = _entries(reply)
    if not entries and block_ms > 0:
        entries = _entries(await client.xread(streams, count=max(limit, 1), block=block_ms))
        if entries and owner is None:  # the task appeared while we waited: whose is it?
            owner = _text(await client.hget(status, "tenant"))
    if not entries or owner != tenant:
        return []
    return [json.loads(_text(_field(fields, "event"))) for _, fields in entries]


async def last_sequence(client: redis.asyncio.Redis, tenant: str, task_id: str, *,
                        prefix: str = DEFAULT_PREFIX) -> int | None:
    """The sequence of the task's latest event (0 when only its SubmitTask is known), or
    None when the task is unknown or another tenant's: "from now" reads after it."""
    owner, sequence = await client.hmget(Keys(prefix).status(task_id), ["tenant",
                                                                        "last_sequence"])
    if _text(owner) != tenant:
        return None
    return int(_text(sequence) or 0)


def as_of(client: redis.Redis, *, prefix: str = DEFAULT_PREFIX) -> dict:
    """The projection's position, for an answer's `as_of`: `{"projection": "redis",
    "offsets": {"<topic>/<partition>": next offset}, "updated_at": RFC 3339 or None}`."""
    keys = Keys(prefix)
    with client.pipeline(transaction=True) as pipe:
        pipe.hgetall(keys.offsets)
        pipe.get(keys.updated_at)
        offsets, updated_at = pipe.execute()
    return {"projection": "redis",
            "offsets": dict(sorted((_text(k), int(v)) for k, v in offsets.items())),
            "updated_at": _text(updated_at)}


def _entries(reply: Any) -> list[tuple[Any, dict]]:
    """The entries of a one-stream XREAD reply, in RESP2 (a list) or RESP3 (a dict) shape."""
    if not reply:
        return []
    if isinstance(reply, dict):
        (entries,) = reply.values()
        return list(entries[0] if entries and isinstance(entries[0], list) else entries)
    (_, entries) = reply[0]
    return list(entries)


def _field(fields: dict, name: str) -> Any:
    return fields[name] if name in fields else fields[name.encode()]
