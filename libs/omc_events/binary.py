"""Avro's binary encoding, by hand, for the records services write thousands of a second.

    long_(n)            int / long: zig-zag, then a little-endian base-128 varint
    string(text)        UTF-8 length, then the bytes
    recurring(text)     `string`, cached (ids, addresses, names that repeat event to event)
    optional(text)      a ["null", "string"] union
    boolean(flag)       one byte
    micros(moment)      a timestamp-micros value
    envelope(meta)      an EventMeta (a mapping of its fields), fields in schema order
    require(ok, record, field, kind)   `RecordInvalid` unless ok: the value checks that
                        generated `to_avro()` makes, for encoders that skip it (ADDRESS,
                        HASH32, HEX, WEI: the formats' matchers)

fastavro's generic writer costs 30-60 µs a record here; these byte strings a few. They are
only as right as the schema they follow: every user checks its first record of a type
against the codec's (fastavro) bytes and falls back to it when they differ, and unit tests
compare both on edge values.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from omc_events.avro import RecordInvalid
from omc_events.values import CHECKS

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
NULL, SOME = b"\x00", b"\x02"  # union branch 0 (null), branch 1 (the value)
FALSE, TRUE = b"\x00", b"\x01"
END = b"\x00"  # the end of an array (a block of 0 items)
ADDRESS, HASH32 = CHECKS["omc-address"], CHECKS["omc-hash32"]
HEX, WEI = CHECKS["omc-hex"], CHECKS["omc-wei"]


def require(ok: object, record: str, field: str, kind: str) -> None:
    """Raise `RecordInvalid` naming `record.field` unless `ok` (a format matcher's answer)."""
    if not ok:
        raise RecordInvalid(record, field, f"is not a valid {kind}")


def _varint(n: int) -> bytes:
    z = (n << 1) ^ (n >> 63)
    out = []
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


_TABLE = [_varint(n) for n in range(1 << 13)]  # 0 .. 8191: lengths, sequences, indexes


def long_(n: int) -> bytes:
    return _TABLE[n] if 0 <= n < 8192 else _varint(n)


def string(text: str) -> bytes:
    data = text.encode()
    size = len(data)
    return (_TABLE[size] if size < 8192 else _varint(size)) + data


@functools.lru_cache(maxsize=4096)
def recurring(text: str) -> bytes:
    return string(text)


def optional(text: str | None) -> bytes:
    return NULL if text is None else SOME + string(text)


def boolean(flag: bool) -> bytes:
    return TRUE if flag else FALSE


def micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def envelope(meta: Mapping[str, Any]) -> bytes:
    """omc.common.EventMeta from its fields (as `EventMeta.to_avro()` gives them)."""
    return b"".join((
        string(meta["event_id"]), recurring(meta["event_type"]), long_(meta["schema_version"]),
        recurring(meta["aggregate_type"]), recurring(meta["aggregate_id"]),
        long_(meta["sequence"]), long_(micros(meta["occurred_at"])), recurring(meta["tenant"]),
        recurring(meta["actor"]), string(meta["correlation_id"]),
        optional(meta["causation_id"]), optional(meta["traceparent"]),
        optional(meta["tracestate"]), string(meta["prev_hash"]), string(meta["hash"])))
