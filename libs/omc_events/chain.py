"""The per-aggregate hash chain: sealing events as they are written, verifying them later.

    canonical bytes = the Avro binary body of the message with meta.hash = "" (the body as
                      written, with the encoding of meta.hash replaced by the single byte 0x00)
    hash            = SHA-256(bytes.fromhex(prev_hash) || canonical bytes), lowercase hex

Because `meta` is the first field of every record and `hash` the last field of `meta`, a
verifier finds the hash in the raw body by reading just the `EventMeta` prefix: no
re-encoding, so the check is exact to the byte. docs/envelope.md is the specification.

    seal(schemas, record, head) -> (sealed record, new head)      an aggregate's next event
    seal_command(schemas, record) -> sealed record                a self-hashed request
    seal_body(schemas, record) -> (body, hash)    the sealed Avro body from one encoding, for
                                                  writers that produce the bytes themselves
    verify(messages) -> (count, problems)
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import fastavro

from omc_events.avro import Schemas
from omc_events.envelope import ZERO_HASH, ChainHead
from omc_events.record import Record
from omc_events.records import EventMeta
from omc_events.schemas import SchemaSet

_EMPTY_STRING = b"\x00"  # Avro: a string is a zig-zag varint length, then the bytes
_HASH_LENGTH = b"\x80\x01"  # the zig-zag varint of 64, the length of a hex SHA-256
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def chain_hash(prev_hash: str, canonical: bytes) -> str:
    """SHA-256 over the previous hash's 32 bytes followed by the canonical bytes."""
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical).hexdigest()


def seal(schemas: Schemas, record: Record, head: ChainHead) -> tuple[Record, ChainHead]:
    """`record` placed after `head` in its aggregate's chain, and the chain's new head.

    Sets meta.sequence, meta.prev_hash and meta.hash; everything else must already be set.
    """
    meta: EventMeta = record.meta  # type: ignore[attr-defined]
    unsealed = dataclasses.replace(
        record, meta=dataclasses.replace(meta, sequence=head.sequence + 1,
                                         prev_hash=head.hash, hash=""))
    digest = chain_hash(head.hash, schemas.encode(unsealed))
    sealed = dataclasses.replace(unsealed, meta=dataclasses.replace(unsealed.meta, hash=digest))
    return sealed, ChainHead(head.sequence + 1, digest)


def seal_command(schemas: Schemas, record: Record) -> Record:
    """A command's own hash (sequence 0, prev_hash zeros): integrity without a chain, since
    many gateways write commands and none owns an aggregate's order."""
    meta: EventMeta = record.meta  # type: ignore[attr-defined]
    unsealed = dataclasses.replace(
        record, meta=dataclasses.replace(meta, sequence=0, prev_hash=ZERO_HASH, hash=""))
    digest = chain_hash(ZERO_HASH, schemas.encode(unsealed))
    return dataclasses.replace(unsealed, meta=dataclasses.replace(unsealed.meta, hash=digest))


def seal_body(schemas: Schemas, record: Record) -> tuple[bytes, str]:
    """(the Avro body of `record` sealed, its hash), from one encoding instead of two.

    `record.meta` must be complete but for `hash`, which must be "" (sequence and prev_hash
    set, as `seal` or `seal_command` would set them). Encoded so, the body is the canonical
    bytes; their hash (after meta.prev_hash) then replaces the empty string's single 0x00
    byte, the last byte of `meta`. The result equals `schemas.encode` of the sealed record,
    byte for byte (tested).
    """
    meta: EventMeta = record.meta  # type: ignore[attr-defined]
    if meta.hash:
        raise ValueError("seal_body takes a record whose meta.hash is empty")
    canonical = schemas.encode(record)
    end = _meta_length(meta)
    marker = _HASH_LENGTH + meta.prev_hash.encode() + _EMPTY_STRING  # prev_hash, hash = ""
    if canonical[end - len(marker):end] != marker:  # EventMeta changed shape: measure it
        end = len(schemas.encode(meta))
    digest = chain_hash(meta.prev_hash, canonical)
    return b"".join((canonical[:end - 1], _HASH_LENGTH, digest.encode(), canonical[end:])), digest


def _meta_length(meta: EventMeta) -> int:
    """Bytes of the Avro encoding of `meta` (omc.common.EventMeta, fields in schema order),
    computed without encoding; `seal_body` checks it against the bytes."""
    micros = (meta.occurred_at - _EPOCH) // timedelta(microseconds=1)
    length = (_varint_length(meta.schema_version) + _varint_length(meta.sequence)
              + _varint_length(micros) + 3)  # + a union branch byte per optional field
    for text in (meta.event_id, meta.event_type, meta.aggregate_type, meta.aggregate_id,
                 meta.tenant, meta.actor, meta.correlation_id, meta.prev_hash, meta.hash,
                 meta.causation_id, meta.traceparent, meta.tracestate):
        if text is not None:  # a string: its length's zig-zag varint, then its UTF-8 bytes
            size = len(text) if text.isascii() else len(text.encode())
            length += size + (1 if size < 64 else _varint_length(size))
    return length


def _varint_length(n: int) -> int:
    n = (n << 1) ^ (n >> 63)  # zig-zag
    length = 1
    while n > 0x7F:
        n >>= 7
        length += 1
    return length


@functools.cache
def _prefix_schema(meta_schema_json: str | None) -> object:
    """A writer schema covering only the leading `meta` field of a record."""
    meta = (json.loads(meta_schema_json) if meta_schema_json
            else SchemaSet.load().standalone("omc.common.EventMeta"))
    return fastavro.parse_schema({"type": "record", "name": "MetaPrefix",
                                  "namespace": "omc.verify",
                                  "fields": [{"name": "meta", "type": meta}]})


def read_meta(body: bytes, writer: dict | None = None) -> tuple[dict, int]:
    """The `meta` of an Avro body and the offset where it ends.

    `writer` is the body's writer schema (from the registry); by default the current one.
    """
    meta_json = json.dumps(writer["fields"][0]["type"]) if writer else None
    stream = io.BytesIO(body)
    prefix = fastavro.schemaless_reader(stream, _prefix_schema(meta_json), None)
    return prefix["meta"], stream.tell()


def canonical_bytes(body: bytes, writer: dict | None = None) -> tuple[dict, bytes]:
    """(meta, canonical bytes) of a message body as found in the log."""
    meta, end = read_meta(body, writer)
    stored = meta["hash"].encode()
    encoded_hash = _zigzag_varint(len(stored)) + stored
    start = end - len(encoded_hash)
    if body[start:end] != encoded_hash:
        raise ValueError("meta.hash is not where the envelope puts it")
    return meta, body[:start] + _EMPTY_STRING + body[end:]


def _zigzag_varint(n: int) -> bytes:
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


@dataclass(frozen=True)
class ChainProblem:
    """One thing wrong with one event of the log."""

    aggregate: str
    event_id: str
    sequence: int
    where: str  # e.g. "omc.task.events.v1/2@57"
    problem: str

    def __str__(self) -> str:
        return (f"{self.where} {self.aggregate} seq {self.sequence} ({self.event_id}): "
                f"{self.problem}")


def verify(messages: Iterable[tuple[str, bytes]]) -> tuple[int, list[ChainProblem]]:
    """Check the chains of every aggregate in `messages` (where, Avro body), in log order.

    Each event's hash must match its canonical bytes and prev_hash; prev_hash must be the
    hash of the aggregate's previous event; sequences must start at 1 and be contiguous.
    Returns (events checked, problems).
    """
    heads: dict[str, ChainHead] = {}
    problems: list[ChainProblem] = []
    count = 0
    for where, body in messages:
        count += 1
        try:
            meta, canonical = canonical_bytes(body)
        except (ValueError, EOFError, StopIteration, IndexError, UnicodeDecodeError) as error:
            problems.append(ChainProblem("?", "?", -1, where, f"unreadable envelope: {error}"))
            continue
        aggregate = f"{meta['aggregate_type']}/{meta['aggregate_id']}"

        def report(problem: str, meta=meta, aggregate=aggregate, where=where) -> None:
            problems.append(ChainProblem(aggregate, str(meta["event_id"]), meta["sequence"],
                                         where, problem))

        if chain_hash(meta["prev_hash"], canonical) != meta["hash"]:
            report("hash does not match the event's bytes (the event was altered)")
        if meta["sequence"] == 0:  # a command: self-hashed, not chained
            continue
        head = heads.get(aggregate, ChainHead())
        if meta["sequence"] != head.sequence + 1:
            report(f"sequence {meta['sequence']} follows {head.sequence} "
                   "(an event is missing or out of order)")
        if meta["prev_hash"] != head.hash:
            report("prev_hash is not the hash of the aggregate's previous event")
        heads[aggregate] = ChainHead(meta["sequence"], meta["hash"])
    return count, problems
