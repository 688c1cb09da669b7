"""Values between records, rows and JSON: UTC times, RFC 3339, compact JSON, plain payloads.

Times are stored as naive UTC `DATETIME(6)` and shown as RFC 3339 with microseconds and `Z`.
JSON is compact (no spaces) and keeps the schema's field order, so the same event always gives
the same bytes.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

from omc_events.record import Record

_FIELDS: dict[type, tuple[str, ...]] = {}


def utc(value: datetime) -> datetime:
    """`value` as a naive UTC datetime (what a DATETIME column holds)."""
    zone = value.tzinfo
    if zone is None:
        return value
    if zone is UTC:  # what the codec gives
        return value.replace(tzinfo=None)
    return value.astimezone(UTC).replace(tzinfo=None)


def rfc3339(value: datetime | None) -> str | None:
    """`2026-11-25T12:00:00.123456Z` for a naive-UTC or aware datetime; None stays None."""
    if value is None:
        return None
    return utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_json(value: Any) -> str:
    """Compact JSON: no spaces, non-ASCII kept, field order kept."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def plain(value: Any) -> Any:
    """A record (or part of one) as JSON-ready values: records become objects in schema
    order, tuples lists, times RFC 3339 strings, bytes base64; enums are their names."""
    if isinstance(value, Record):
        names = _FIELDS.get(type(value))
        if names is None:
            names = _FIELDS[type(value)] = tuple(f.name for f in dataclasses.fields(value))
        return {name: plain(getattr(value, name)) for name in names}
    if isinstance(value, tuple | list):
        return [plain(item) for item in value]
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    return value


def payload(record: Record) -> dict[str, Any]:
    """The record as JSON-ready values without its envelope (`meta`)."""
    body = plain(record)
    body.pop("meta", None)
    return body


def payload_json(record: Record) -> str:
    """`to_json(payload(record))`, faster: the record's own Avro dict, with times and bytes
    turned into text by the JSON encoder as it meets them."""
    body = record.to_avro()
    body.pop("meta", None)
    return _ENCODER.encode(body)


def _text_of(value: Any) -> str:
    if isinstance(value, datetime):
        return rfc3339(value)  # type: ignore[return-value]
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_text_of)
