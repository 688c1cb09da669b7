"""The envelope's rules: deterministic ids, the chain head, CloudEvents-style headers.

docs/envelope.md is the specification; this module and `chain` implement it once.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from omc_events.records import EventMeta

ZERO_HASH = "0" * 64
"""prev_hash of an aggregate's first event, and of every command."""

ID_NAMESPACE = uuid.UUID("6bcb3ca0-d899-598b-9030-221f0f179962")
"""UUIDv5 namespace of derived ids: uuid5(NAMESPACE_URL, "urn:openmcp-chain:event-id")."""


def derived_id(causation_id: str, position: int) -> str:
    """The id of the `position`-th (0-based) message caused by message `causation_id`.

    UUIDv5 over "<causation_id>/<position>": reprocessing a message after a crash yields
    exactly the same ids, so consumers can drop what they have already applied.
    """
    if position < 0:
        raise ValueError("position must be >= 0")
    return uuid5_text(ID_NAMESPACE, f"{causation_id}/{position}")


def uuid5_text(namespace: uuid.UUID, name: str) -> str:
    """`str(uuid.uuid5(namespace, name))`, the same text at a third of the cost (no UUID
    object): RFC 9562 §5.5, SHA-1 over the namespace's bytes and the UTF-8 name."""
    sha1 = hashlib.sha1(namespace.bytes + name.encode(), usedforsecurity=False)  # as uuid5
    digest = bytearray(sha1.digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC 4122 variant
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


@dataclass(frozen=True, slots=True)
class ChainHead:
    """Where an aggregate's hash chain stands: its last sequence number and hash."""

    sequence: int = 0
    hash: str = ZERO_HASH


def headers(meta: EventMeta, source: str) -> list[tuple[str, bytes]]:
    """Kafka headers mirroring the envelope (CloudEvents binary mode, W3C trace context, and
    the tenant, so even a message that cannot be decoded can be routed and attributed).

    `source` names the producing component, e.g. "omc/gateway".
    """
    pairs = [
        ("ce_specversion", "1.0"),
        ("ce_id", meta.event_id),
        ("ce_type", meta.event_type),
        ("ce_source", source),
        ("ce_time", meta.occurred_at.isoformat().replace("+00:00", "Z")),
        ("ce_subject", f"{meta.aggregate_type}/{meta.aggregate_id}"),
        ("content-type", "application/avro"),
        ("omc_tenant", meta.tenant),
    ]
    if meta.traceparent:
        pairs.append(("traceparent", meta.traceparent))
    if meta.tracestate:
        pairs.append(("tracestate", meta.tracestate))
    return [(key, value.encode()) for key, value in pairs]
