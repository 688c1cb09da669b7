"""Canonical JSON and hashes: the one way this package turns values into bytes it hashes.

Canonical JSON is the project's: sorted keys, separators (",", ":"), UTF-8 text kept as is
(ensure_ascii=False), no NaN or infinities. A hash is "0x" + 64 lowercase hex digits of the
SHA-256 of the UTF-8 bytes. Money is a `Decimal` written in plain digits, never an exponent.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any


def canonical_json(value: Any) -> str:
    """`value` as canonical JSON text (sorted keys, no spaces, UTF-8 kept)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def sha256_hex(text: str) -> str:
    """"0x" + the SHA-256 of the UTF-8 bytes of `text`, in 64 lowercase hex digits."""
    return "0x" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def decimal_text(amount: Decimal) -> str:
    """A non-negative Decimal in plain digits without trailing zeros: 0.000375, 12, 0."""
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"not a non-negative finite amount: {amount}")
    text = format(amount, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"
