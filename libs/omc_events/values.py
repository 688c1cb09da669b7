"""The project's string formats (Avro logical types on `string`; other tools see strings).

    omc-address   "0x" + 40 hex digits (an EVM address)
    omc-hash32    "0x" + 64 lowercase hex digits
    omc-hex       "0x" + an even number of lowercase hex digits
    omc-wei       a non-negative integer in decimal digits (amounts, never floats)
    omc-decimal   a non-negative decimal number in digits, e.g. "0.000125"

Generated records check these in `to_avro()`, so a malformed value never reaches the log.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

PATTERNS: dict[str, re.Pattern[str]] = {
    "omc-address": re.compile(r"0x[0-9a-fA-F]{40}"),
    "omc-hash32": re.compile(r"0x[0-9a-f]{64}"),
    "omc-hex": re.compile(r"0x(?:[0-9a-f]{2})*"),
    "omc-wei": re.compile(r"0|[1-9][0-9]*"),
    "omc-decimal": re.compile(r"(?:0|[1-9][0-9]*)(?:\.[0-9]+)?"),
}

CHECKS: dict[str, Callable[[str], Any]] = {name: p.fullmatch for name, p in PATTERNS.items()}
"""A truthy result when the value has the format (a TypeError for a non-string)."""


class BadValue(ValueError):
    """A value does not have its field's format; the codec names the field."""


def bad(record: str, field: str, logical: str) -> None:
    """Raise `BadValue` (called by generated code when a check fails)."""
    raise BadValue(f"{record}.{field} is not a valid {logical}")
