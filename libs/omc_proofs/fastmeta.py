"""Reading the envelope of an Avro body fast: the EventMeta prefix scanned by hand.

    scan(body) -> Meta(event_id, aggregate_type, aggregate_id, sequence, prev_hash, hash,
                       hash_start, end, occurred_at_us)

The same answer as omc_events.chain.read_meta for this build's EventMeta layout (15 fields:
uuid string, string, int, string, string, long, timestamp long, string, string, string,
three optional strings, prev_hash, hash), about ten times faster, so the audit spends its
time on hashing. Canonical bytes are body[:hash_start] + 0x00 + body[end:]. Raises
ValueError on anything it cannot read (the caller falls back to read_meta).
"""

from __future__ import annotations

from typing import NamedTuple


class Meta(NamedTuple):
    event_id: str
    aggregate_type: str
    aggregate_id: str
    sequence: int
    prev_hash: str
    hash: str
    hash_start: int
    end: int
    occurred_at_us: int = 0  # meta.occurred_at, microseconds since the Unix epoch


def _long(body: bytes, i: int) -> tuple[int, int]:
    byte = body[i]
    if byte < 0x80:  # most lengths and small numbers: one byte
        return (byte >> 1) ^ -(byte & 1), i + 1
    shift = result = 0
    while True:
        byte = body[i]
        i += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), i
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _bytes(body: bytes, i: int) -> tuple[bytes, int]:
    n, i = _long(body, i)
    if n < 0 or i + n > len(body):
        raise ValueError("string runs past the body")
    return body[i:i + n], i + n


def scan(body: bytes) -> Meta:
    try:
        event_id, i = _bytes(body, 0)
        _, i = _bytes(body, i)            # event_type
        _, i = _long(body, i)             # schema_version
        aggregate_type, i = _bytes(body, i)
        aggregate_id, i = _bytes(body, i)
        sequence, i = _long(body, i)
        occurred_at, i = _long(body, i)
        for _ in range(3):                # tenant, actor, correlation_id
            _, i = _bytes(body, i)
        for _ in range(3):                # causation_id, traceparent, tracestate
            branch, i = _long(body, i)
            if branch == 1:
                _, i = _bytes(body, i)
            elif branch != 0:
                raise ValueError("bad union branch")
        prev_hash, i = _bytes(body, i)
        start = i
        stored, i = _bytes(body, i)
        return Meta(event_id.decode(), aggregate_type.decode(), aggregate_id.decode(),
                    sequence, prev_hash.decode(), stored.decode(), start, i, occurred_at)
    except (IndexError, UnicodeDecodeError) as error:
        raise ValueError(f"not an envelope: {error}") from None
