"""The audit's per-message checks on the raw bytes, fast: envelope, hash, chain links, leaf.

    check_segment(values, offsets, previous_offset, chained, runs, tree=False) -> Segment
        one run of messages of a single topic-partition, in the given order: offsets
        increasing, each message's envelope read from the body's EventMeta prefix, its hash
        recomputed over the canonical bytes, and the chain links between the events of an
        aggregate inside the run; the first event of each aggregate in the run is not checked
        here but returned (`deferred`) with the run's last head per aggregate (`heads`), so
        that runs checked apart (in other processes) are stitched in order by the caller
        into exactly the answer of one pass over all of them. With `tree`, also the run's
        Merkle tree over its leaves (`levels`, for MerkleTree.of_levels).

This is the arithmetic of omc_proofs.audit (the same findings, codes and texts), done with
as little Python per message as it takes: the EventMeta prefix is read inline with the
common one-byte lengths (anything else falls back to omc_proofs.fastmeta and
omc_events.chain's reader), hex is handled as bytes, and aggregates are byte strings until a
finding needs a name. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import re
from binascii import Error as HexError
from binascii import unhexlify
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from omc_events.chain import canonical_bytes
from omc_proofs.fastmeta import scan
from omc_proofs.leaves import leaf_data
from omc_proofs.merkle import MerkleTree

ZERO = b"0" * 64
_VARINT_END = re.compile(rb"[\x00-\x7f]").search  # the last byte of a varint
_SHA = hashlib.sha256


@dataclass
class Segment:
    leaves: list[bytes] = field(default_factory=list)  # each message's leaf (32 bytes)
    findings: list[tuple[int, str, str]] = field(default_factory=list)  # (index, code, text)
    # the first chained event of each aggregate in the run: (index, aggregate, seq, prev, hash)
    deferred: list[tuple[int, bytes, int, bytes, bytes]] = field(default_factory=list)
    heads: dict[bytes, tuple[int, bytes]] = field(default_factory=dict)  # last (seq, hash)
    last_offset: int = -1
    levels: list[list[bytes]] | None = None  # the run's Merkle tree (MerkleTree._levels)


def read_meta(body: bytes) -> tuple[bytes, int, bytes, bytes, int, int] | None:
    """(aggregate "<type>/<id>", sequence, prev_hash hex, hash hex, hash_start, end) of a
    body whose EventMeta uses one-byte string lengths (nearly all), else None."""
    try:
        n = body[0]                              # event_id
        if n > 127 or n & 1:
            return None
        i = 1 + (n >> 1)
        body[1:i].decode()                       # text, as the general readers require
        n = body[i]                              # event_type
        if n > 127 or n & 1:
            return None
        i += 1 + (n >> 1)
        if body[i] > 127:                        # schema_version
            return None
        i += 1
        n = body[i]                              # aggregate_type
        if n > 127 or n & 1:
            return None
        start = i + 1
        i = start + (n >> 1)
        kind = body[start:i]
        n = body[i]                              # aggregate_id
        if n > 127 or n & 1:
            return None
        start = i + 1
        i = start + (n >> 1)
        aggregate = kind + b"/" + body[start:i]
        aggregate.decode()
        n = body[i]                              # sequence
        if n > 127:
            return None
        sequence = (n >> 1) ^ -(n & 1)
        i += 1
        i = _VARINT_END(body, i).end()           # occurred_at (a long of several bytes)
        n = body[i]                              # tenant
        if n > 127 or n & 1:
            return None
        i += 1 + (n >> 1)
        n = body[i]                              # actor
        if n > 127 or n & 1:
            return None
        i += 1 + (n >> 1)
        n = body[i]                              # correlation_id
        if n > 127 or n & 1:
            return None
        i += 1 + (n >> 1)
        for _ in range(3):                       # causation_id, traceparent, tracestate
            branch = body[i]
            i += 1
            if branch == 2:
                n = body[i]
                if n > 127 or n & 1:
                    return None
                i += 1 + (n >> 1)
            elif branch:
                return None
        if body[i] != 0x80 or body[i + 1] != 1:  # prev_hash: 64 characters
            return None
        start = i + 66
        if body[start] != 0x80 or body[start + 1] != 1:  # hash: 64 characters
            return None
        end = start + 66
        if end > len(body):
            return None
        return aggregate, sequence, body[i + 2:start], body[start + 2:end], start, end
    except (IndexError, UnicodeDecodeError, AttributeError):  # AttributeError: no end byte
        return None


def _slow(body: bytes) -> tuple[bytes, int, bytes, bytes, bytes]:
    """(aggregate, sequence, prev hex, hash hex, canonical bytes) by the general readers;
    raises on an unreadable envelope."""
    try:
        found = scan(body)
        return ((found.aggregate_type + "/" + found.aggregate_id).encode(), found.sequence,
                found.prev_hash.encode(), found.hash.encode(),
                body[:found.hash_start] + b"\x00" + body[found.end:])
    except ValueError:
        meta, canonical = canonical_bytes(body)
        return (f"{meta['aggregate_type']}/{meta['aggregate_id']}".encode(),
                meta["sequence"], str(meta["prev_hash"]).encode(),
                str(meta["hash"]).encode(), canonical)


def _hex32(text: bytes) -> bytes | None:
    """The 32 bytes of 64 lowercase hex digits, else None."""
    if len(text) != 64 or text.lower() != text:
        return None
    try:
        return unhexlify(text)
    except (HexError, ValueError):
        return None


def label(aggregate: bytes, sequence: int) -> str:
    return f"{aggregate.decode(errors='replace')} seq {sequence}"


def check_segment(values: Sequence[bytes], offsets: Sequence[int], previous_offset: int,
                  chained: Collection[bytes] | None, runs: bool,
                  tree: bool = False) -> Segment:
    out = Segment()
    leaves, findings, deferred, heads = out.leaves, out.findings, out.deferred, out.heads
    previous = previous_offset
    sha = _SHA
    for index, value in enumerate(values):
        offset = offsets[index]
        if offset <= previous:
            findings.append((index, "order", f"offset {offset} after {previous}"))
        else:
            previous = offset
        body = value[5:]
        found = read_meta(body) if len(value) > 5 and value[0] == 0 else None
        if found is not None:
            aggregate, sequence, prev, stored, start, end = found
            canonical = None
            try:  # both exactly 64 long (read_meta): lowercase hex?
                if stored.lower() != stored or prev.lower() != prev:
                    raise ValueError("not lowercase")
                stored_bytes, prev_bytes = unhexlify(stored), unhexlify(prev)
            except (HexError, ValueError):
                found = None  # the general readers decide (text, or unreadable)
        if found is None:
            try:
                if len(value) <= 5 or value[0] != 0:
                    raise ValueError("not the Confluent wire format")
                aggregate, sequence, prev, stored, canonical = _slow(value[5:])
            except Exception as error:  # whatever the bytes, a finding, never a crash
                findings.append((index, "unreadable", f"unreadable envelope: {error}"))
                leaves.append(leaf_data(value))
                continue
            stored_bytes, prev_bytes = _hex32(stored), _hex32(prev)
        if stored_bytes is None or prev_bytes is None:
            findings.append((index, "hash", "meta.hash or meta.prev_hash is not 64 hex digits "
                             "(the event was altered)"))
            leaves.append(leaf_data(value))
            continue
        leaves.append(stored_bytes)
        if canonical is None:
            digest = sha(prev_bytes + body[:start] + b"\x00" + body[end:]).digest()
        else:
            digest = sha(prev_bytes + canonical).digest()
        if digest != stored_bytes:
            findings.append((index, "hash", f"{label(aggregate, sequence)}: hash does not "
                             "match the event's bytes (the event was altered)"))
        if sequence == 0:  # a request: self-hashed, not chained
            continue
        if chained is not None and aggregate not in chained:
            continue
        head = heads.get(aggregate)
        if head is None:
            deferred.append((index, aggregate, sequence, prev, stored))
        else:
            if sequence != head[0] + 1:
                findings.append((index, "sequence", f"{label(aggregate, sequence)}: follows "
                                 f"{head[0]} (an event is missing or out of order)"))
            if prev != head[1]:
                findings.append((index, "prev_hash", f"{label(aggregate, sequence)}: "
                                 "prev_hash is not the hash of the aggregate's previous "
                                 "event"))
        heads[aggregate] = (sequence, stored)
    out.last_offset = previous
    if tree:  # the stream's tree, built where its leaves are (another process, maybe)
        out.levels = MerkleTree.of_leaves(leaves).levels
    return out


def stitch(deferred: Sequence[tuple[int, bytes, int, bytes, bytes]],
           heads: dict[bytes, tuple[int, bytes]], runs: bool) -> list[tuple[int, str, str]]:
    """Check a run's deferred first events against the heads before the run (updated in
    place by the caller afterwards with the run's own heads)."""
    findings = []
    for index, aggregate, sequence, prev, _ in deferred:
        head = heads.get(aggregate)
        if head is None:
            if runs and sequence != 1:  # the run starts here: nothing before it held
                continue
            head = (0, ZERO)
        if sequence != head[0] + 1:
            findings.append((index, "sequence", f"{label(aggregate, sequence)}: follows "
                             f"{head[0]} (an event is missing or out of order)"))
        if prev != head[1]:
            findings.append((index, "prev_hash", f"{label(aggregate, sequence)}: prev_hash "
                             "is not the hash of the aggregate's previous event"))
    return findings


__all__ = ["Segment", "check_segment", "read_meta", "stitch"]
