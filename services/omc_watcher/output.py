"""Writing the watcher's events: sealed after their aggregate's head, encoded once, produced,
acknowledged.

    out = Output(producer, source)
    meta, body, head = out.seal(emit, head, occurred_at, actor)   # the sealed envelope
    out.write([(topic, key, emit.record, meta, body), …])  # blocking; every ack awaited

The record is Avro-encoded once, with meta.hash = "": those are its canonical bytes
(docs/envelope.md), hashed after prev_hash; the hash's encoding (0x80 0x01 and 64 hex
digits) then replaces the empty string's single 0x00 byte, which is the last byte of `meta`,
itself the record's first field. That gives exactly the bytes a second full encoding would,
at a fraction of the cost (the integration tests verify every chain with
`omc_events.chain.verify`). Blocks and logs, thousands a second in a backfill, are encoded
by `omc_watcher.wire` (byte strings, checked against the codec on first use); anything else
by the codec's fastavro path. The sealed record itself is never built here: the caller folds
(envelope, draft) pairs. The value carries the Confluent wire-format prefix the codec
gives the record on that topic; nothing the contract refuses can be written, since the codec
is asked for every (topic, record type) before its first use.

A delivery that Kafka does not acknowledge raises `DeliveryFailed` (after the whole batch was
tried): the caller must not fold the records, and the watcher exits to be rebuilt from the log.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from confluent_kafka import KafkaError, Message

from omc_domain.chainview import Emit
from omc_events.chain import chain_hash, seal_body
from omc_events.envelope import ChainHead
from omc_events.record import Record
from omc_events.records import EventMeta
from omc_kafka.producer import DeliveryFailed, EventProducer
from omc_watcher.wire import Wire

_HASH_LENGTH = b"\x80\x01"  # zig-zag varint of 64, the length of a hex SHA-256


class Output:
    def __init__(self, producer: EventProducer, source: str) -> None:
        self.producer = producer
        self.source = source
        self._source = source.encode()
        self._prefixes: dict[tuple[str, str], bytes] = {}
        self._failures: list[str] = []
        self._time: tuple[datetime | None, bytes] = (None, b"")
        self.wire = Wire(producer.codec.schemas)

    def seal(self, emit: Emit, head: ChainHead, occurred_at: datetime,
             actor: str) -> tuple[EventMeta, bytes, ChainHead]:
        """(the envelope of `emit`'s record sealed after `head`, the sealed record's Avro
        body, the aggregate's new head). The sealed record is
        `dataclasses.replace(emit.record, meta=<the envelope>)`; it is not built here."""
        event_id = emit.event_id
        sequence = head.sequence + 1
        parts = self.wire.parts(emit, occurred_at, actor, event_id, sequence, head.hash)
        if parts is not None:  # a block or a log: encoded directly (omc_watcher.wire)
            envelope, rest = parts
            digest = chain_hash(head.hash, b"".join((envelope, b"\x00", rest)))
            body = b"".join((envelope, _HASH_LENGTH, digest.encode(), rest))
        else:
            body, digest = self._generic(emit, emit.envelope(
                occurred_at, actor, event_id=event_id, sequence=sequence, prev_hash=head.hash),
                head)
        meta = emit.envelope(occurred_at, actor, event_id=event_id, sequence=sequence,
                             prev_hash=head.hash, hash=digest)
        return meta, body, ChainHead(sequence, digest)

    def _generic(self, emit: Emit, meta: EventMeta, head: ChainHead) -> tuple[bytes, str]:
        """(value body, hash) through the codec's fastavro encoding, for any record."""
        return seal_body(self.producer.codec.schemas, dataclasses.replace(emit.record, meta=meta))

    def headers(self, meta: EventMeta) -> list[tuple[str, bytes]]:
        """`omc_events.envelope.headers(meta, source)`, the same list, built for speed (the
        batch's records share one occurred_at)."""
        if meta.occurred_at != self._time[0]:
            self._time = (meta.occurred_at,
                          meta.occurred_at.isoformat().replace("+00:00", "Z").encode())
        pairs = [("ce_specversion", b"1.0"), ("ce_id", meta.event_id.encode()),
                 ("ce_type", meta.event_type.encode()), ("ce_source", self._source),
                 ("ce_time", self._time[1]),
                 ("ce_subject", f"{meta.aggregate_type}/{meta.aggregate_id}".encode()),
                 ("content-type", b"application/avro"), ("omc_tenant", meta.tenant.encode())]
        if meta.traceparent:
            pairs.append(("traceparent", meta.traceparent.encode()))
        if meta.tracestate:
            pairs.append(("tracestate", meta.tracestate.encode()))
        return pairs

    def prefix(self, topic: str, record: Record, meta: EventMeta) -> bytes:
        """The wire-format prefix (magic byte, schema id) of `record`'s type on `topic`
        (`record` sealed with `meta`, or its draft)."""
        key = (topic, record.SCHEMA)
        found = self._prefixes.get(key)
        if found is None:
            sealed = dataclasses.replace(record, meta=meta)
            found = self._prefixes[key] = self.producer.codec.encode(topic, sealed)[:5]
        return found

    def write(self, items: Sequence[tuple[str, str, Record, EventMeta, bytes]]) -> None:
        """Produce (topic, key, record or its draft, its sealed envelope, body) in order and
        wait for every ack."""
        kafka = self.producer.producer
        for topic, key, record, meta, body in items:
            kafka.produce(topic, value=self.prefix(topic, record, meta) + body, key=key,
                          headers=self.headers(meta),
                          on_delivery=self._delivered)
            kafka.poll(0)
        remaining = kafka.flush(30)
        failures, self._failures = self._failures, []
        if remaining:
            failures.append(f"{remaining} message(s) still unacknowledged after 30s")
        if failures:
            raise DeliveryFailed("Kafka did not acknowledge: " + "; ".join(failures))

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._failures.append(f"{message.topic()}: {error.str()}")
