"""A stored message's leaf: the 32 bytes the stream's Merkle tree holds for it.

    leaf_data(value) = bytes.fromhex(meta.hash) of the message (the envelope hash as stored,
                       read from the body's EventMeta prefix, no re-encoding), or, for a
                       value that is not an event of the contract, SHA-256(value)

The stored hash (not a recomputed one) is the leaf: the hash chain check catches a changed
body, and the tree catches a changed or re-sealed hash. Pure.
"""

from __future__ import annotations

import hashlib
import re

from omc_events.chain import read_meta

_HASH = re.compile(r"[0-9a-f]{64}")
_HEADER = 5  # Confluent wire format: magic byte, schema id


def leaf_data(value: bytes | None, writer: dict | None = None) -> bytes:
    """The leaf of a message value (Confluent wire format); `writer` its writer schema."""
    if value and len(value) > _HEADER and value[0] == 0:
        try:
            meta, _ = read_meta(value[_HEADER:], writer)
            stored = meta.get("hash")
            if isinstance(stored, str) and _HASH.fullmatch(stored):
                return bytes.fromhex(stored)
        except (ValueError, EOFError, IndexError, KeyError, TypeError, StopIteration,
                UnicodeDecodeError, OverflowError):
            pass
    return hashlib.sha256(value or b"").digest()
