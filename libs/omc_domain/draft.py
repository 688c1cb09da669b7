"""Drafts: the records domain functions return, before the service shell fills their envelope.

`decide` is pure (no clock, no random ids, no I/O), so it cannot know an event's id, time,
tenant, actor, causation or chain position. It returns each record with `meta = DRAFT`, an
`EventMeta` of empty strings and zeros; the shell replaces `meta` (ids derived from the causing
message, occurred_at, tenant, actor, correlation and causation) and seals the hash chain before
anything is produced. A record whose meta is still `DRAFT` must never reach the log.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from omc_events.records import EventMeta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

DRAFT = EventMeta(
    event_id="", event_type="", schema_version=0, aggregate_type="", aggregate_id="",
    sequence=0, occurred_at=EPOCH, tenant="", actor="", correlation_id="", causation_id=None,
    traceparent=None, tracestate=None, prev_hash="", hash="",
)
"""The placeholder envelope of every record a domain function returns."""


def is_draft(record: Any) -> bool:
    """True when `record.meta` is still the placeholder (its envelope has not been filled)."""
    return getattr(record, "meta", None) == DRAFT
