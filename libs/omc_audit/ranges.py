"""Ranges of the log an audit bundle can hold: a stream (topic-partition), an offset range of
it, and an event-time window.

    parse_range("TOPIC:PARTITION[:FROM-TO]") -> LogRange   FROM, TO inclusive; either may be
                                                           left out ("12-", "-40")
    parse_time("2026-11-25T12:00:00Z") -> datetime (UTC)
    select(range, held, since=None, until=None) -> (first index, last index) | None
        the contiguous run of a whole partition's messages (`held`, offset order) that the
        range names: offsets FROM..TO, and from the first message with meta.occurred_at >=
        `since` to the last with meta.occurred_at < `until` (messages between them are
        kept whatever their time: a bundle's range is always contiguous)

Pure. A bad range or time is a `RangeInvalid` with the text that was given.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from omc_errors import OmcError
from omc_proofs.audit import Stored
from omc_proofs.fastmeta import scan

_RANGE = re.compile(r"(?P<topic>[A-Za-z0-9._-]+):(?P<partition>\d+)"
                    r"(?::(?P<first>\d*)-(?P<last>\d*))?")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class RangeInvalid(OmcError):
    """A range or time given for an export cannot be read."""


@dataclass(frozen=True)
class LogRange:
    topic: str
    partition: int
    first: int | None = None  # offsets, inclusive; None: from the start / to the end
    last: int | None = None

    @property
    def stream(self) -> str:
        return f"{self.topic}:{self.partition}"


def parse_range(text: str) -> LogRange:
    found = _RANGE.fullmatch(text.strip())
    if found is None:
        raise RangeInvalid(f"range {text!r} is not TOPIC:PARTITION or TOPIC:PARTITION:FROM-TO")
    first = int(found["first"]) if found["first"] else None
    last = int(found["last"]) if found["last"] else None
    if first is not None and last is not None and last < first:
        raise RangeInvalid(f"range {text!r} ends before it starts")
    return LogRange(found["topic"], int(found["partition"]), first, last)


def parse_time(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise RangeInvalid(f"time {text!r} is not ISO 8601 (2026-11-25T12:00:00Z)") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def occurred_at_us(value: bytes) -> int | None:
    """meta.occurred_at of a stored message (µs since the epoch), None if unreadable."""
    try:
        return scan(value[5:]).occurred_at_us if len(value) > 5 and value[0] == 0 else None
    except ValueError:
        return None


def _us(when: datetime) -> int:
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def select(wanted: LogRange, held: Sequence[Stored], since: datetime | None = None,
           until: datetime | None = None) -> tuple[int, int] | None:
    indices = [i for i, m in enumerate(held)
               if (wanted.first is None or m.offset >= wanted.first)
               and (wanted.last is None or m.offset <= wanted.last)]
    if since is not None or until is not None:
        low = _us(since) if since is not None else None
        high = _us(until) if until is not None else None
        timed = []
        for i in indices:
            at = occurred_at_us(held[i].value)
            if at is not None and (low is None or at >= low) and (high is None or at < high):
                timed.append(i)
        indices = timed
    if not indices:
        return None
    return indices[0], indices[-1]


__all__ = ["LogRange", "RangeInvalid", "parse_range", "parse_time", "select"]
