"""The notary's core: leaves in, checkpoints and anchors out. No I/O, no clock: time comes in
as `now`, the key signs deterministically (RFC 6979), ids are derived from the log.

    Notary.restore(record)          fold one record of the proof topic (history, read first)
    Notary.observe(topic, partition, offset, value, record) -> [Output]
                                    one message of an event topic, in offset order; answers
                                    AnchorConfirmed when it is the TxConfirmed of an anchor
    Notary.due(now, ready) -> [Output]
                                    checkpoints for the streams that reached `every_events`
                                    new leaves, or have any after `every_seconds`
    Notary.resubmissions() -> [Output]
                                    the TxRequested of anchors submitted but not settled (the
                                    tx manager handles a request_id once, so re-sending is safe)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from omc_chain import abi
from omc_events.avro import Schemas
from omc_events.chain import seal, seal_command
from omc_events.envelope import ZERO_HASH, ChainHead, derived_id
from omc_events.record import Record
from omc_events.records import (
    AnchorConfirmed,
    AnchorSubmitted,
    CheckpointSigned,
    EventMeta,
    TxConfirmed,
    TxFailed,
    TxPurpose,
    TxRequested,
)
from omc_proofs.checkpoint import (
    NotaryKey,
    checkpoint_digest,
    hex32,
    stream_id,
    stream_key,
)
from omc_proofs.leaves import leaf_data
from omc_proofs.merkle import MerkleTree

log = logging.getLogger(__name__)

ACTOR = "svc:notary"
TENANT = "system"
AGGREGATE = "proof_stream"
ANCHOR_CALL = "anchor(bytes32,uint64,bytes32)"


@dataclass(frozen=True)
class Output:
    """A sealed record to produce, and where."""

    topic: str
    key: str
    record: Record


@dataclass(frozen=True)
class Anchoring:
    """Where and as whom roots are anchored."""

    chain_id: int
    registry: str
    sender: str
    max_fee_per_gas_cap_wei: int


@dataclass
class Stream:
    """One topic-partition: its tree, and where its proof history stands."""

    topic: str
    partition: int
    tree: MerkleTree = field(default_factory=MerkleTree)
    offsets: list[int] = field(default_factory=list)
    last_event_id: str | None = None
    checkpoint_size: int = 0
    checkpoint_root: str | None = None
    checkpoint_at: datetime | None = None
    head: ChainHead = field(default_factory=ChainHead)
    recorded: dict[int, str] = field(default_factory=dict)  # tree size -> signed root
    anchor_traffic: int = 0  # leaves since the last checkpoint that are anchors' own txs

    @property
    def id(self) -> str:
        return stream_id(self.topic, self.partition)


@dataclass
class OpenAnchor:
    stream: str
    tree_size: int
    root: str
    chain_id: int
    request: TxRequested | None


class Notary:
    def __init__(self, key: NotaryKey, schemas: Schemas, *, proof_topic: str, tx_topic: str,
                 every_events: int, every_seconds: float,
                 anchoring: Anchoring | None = None,
                 on_mismatch: Callable[[str, int], None] | None = None) -> None:
        self.key = key
        self.schemas = schemas
        self.proof_topic = proof_topic
        self.tx_topic = tx_topic
        self.every_events = every_events
        self.every = timedelta(seconds=every_seconds)
        self.anchoring = anchoring
        self.on_mismatch = on_mismatch
        self.streams: dict[str, Stream] = {}
        self.open_anchors: dict[str, OpenAnchor] = {}  # request_id -> anchor
        self.settled: set[str] = set()
        self.anchor_requests: set[str] = set()  # every anchor's request_id, open or settled
        self.mismatches: list[str] = []

    def _stream(self, topic: str, partition: int) -> Stream:
        key = stream_id(topic, partition)
        found = self.streams.get(key)
        if found is None:
            found = self.streams[key] = Stream(topic, partition)
        return found

    def _stream_by_id(self, key: str) -> Stream:
        topic, _, partition = key.rpartition(":")
        return self._stream(topic, int(partition))

    # -- history --------------------------------------------------------------------------

    def restore(self, record: Record) -> None:
        """Fold one record of the proof topic, in offset order."""
        meta: EventMeta = record.meta  # type: ignore[attr-defined]
        if isinstance(record, CheckpointSigned | AnchorSubmitted | AnchorConfirmed):
            stream = self._stream_by_id(record.stream_id)
            stream.head = ChainHead(meta.sequence, meta.hash)
        if isinstance(record, CheckpointSigned):
            stream.checkpoint_size = record.tree_size
            stream.checkpoint_root = record.root
            stream.checkpoint_at = meta.occurred_at
            stream.recorded[record.tree_size] = record.root
        elif isinstance(record, AnchorSubmitted):
            self.anchor_requests.add(record.request_id)
            if record.request_id not in self.settled:
                self.open_anchors[record.request_id] = OpenAnchor(
                    record.stream_id, record.tree_size, record.root, record.chain_id,
                    self._anchor_request(record) if self.anchoring else None)
        elif isinstance(record, AnchorConfirmed):
            self.settled.add(record.request_id)
            self.open_anchors.pop(record.request_id, None)

    # -- the log ---------------------------------------------------------------------------

    def observe(self, topic: str, partition: int, offset: int, value: bytes | None,
                record: Record | None, now: datetime, *,
                event_id: str | None = None) -> list[Output]:
        """Add one message of an event topic as the next leaf of its stream. `record` is
        needed on the tx topic (anchors' outcomes); elsewhere its `event_id` is enough."""
        stream = self._stream(topic, partition)
        stream.tree.append(leaf_data(value))
        stream.offsets.append(offset)
        meta = getattr(record, "meta", None)
        stream.last_event_id = (meta.event_id if meta is not None else event_id
                                or derived_id(f"notary:{topic}/{partition}@{offset}", 0))
        size = stream.tree.size
        expected = stream.recorded.get(size)
        if expected is not None and hex32(stream.tree.root()) != expected:
            problem = (f"{stream.id}: the log's first {size} events no longer have the root "
                       f"the notary signed ({expected}): the stream was changed")
            log.critical(problem)
            self.mismatches.append(problem)
            if self.on_mismatch:
                self.on_mismatch(stream.id, size)
        if stream.checkpoint_at is None:
            stream.checkpoint_at = now  # the clock for a stream without checkpoints
        if (size > stream.checkpoint_size
                and getattr(record, "request_id", None) in self.anchor_requests):
            stream.anchor_traffic += 1  # anchoring alone never makes a stream due
        if isinstance(record, TxConfirmed | TxFailed):
            return self._settle(record)
        return []

    def _settle(self, record: TxConfirmed | TxFailed) -> list[Output]:
        anchor = self.open_anchors.get(record.request_id)
        if anchor is None:
            return []
        self.open_anchors.pop(record.request_id)
        self.settled.add(record.request_id)
        if isinstance(record, TxFailed):
            log.error("anchor of %s at size %d failed: %s (request %s)", anchor.stream,
                      anchor.tree_size, record.code, record.request_id)
            return []
        stream = self._stream_by_id(anchor.stream)
        confirmed = AnchorConfirmed(
            meta=self._meta(AnchorConfirmed, record.meta.event_id, 0, stream,
                            record.meta.occurred_at, correlation=anchor.stream),
            stream_id=anchor.stream, tree_size=anchor.tree_size, root=anchor.root,
            chain_id=anchor.chain_id, request_id=record.request_id, tx_hash=record.tx_hash,
            block_number=record.block_number, block_hash=record.block_hash)
        return [self._append(stream, confirmed)]

    # -- checkpoints -----------------------------------------------------------------------

    def due(self, now: datetime, ready: bool = True) -> list[Output]:
        """Checkpoints (and anchor requests) for every stream that is due. `ready`: the
        notary has read its topics to where they stood at start (time alone triggers
        nothing before that)."""
        outputs: list[Output] = []
        for stream in self.streams.values():
            new = stream.tree.size - stream.checkpoint_size
            if new <= 0 or new <= stream.anchor_traffic:
                continue
            by_count = new - stream.anchor_traffic >= self.every_events
            by_time = (ready and stream.checkpoint_at is not None
                       and now - stream.checkpoint_at >= self.every)
            if by_count or by_time:
                outputs.extend(self.checkpoint(stream, now))
        return outputs

    def checkpoint(self, stream: Stream, now: datetime) -> list[Output]:
        size = stream.tree.size
        root = hex32(stream.tree.root())
        previous = stream.checkpoint_size
        previous_root = stream.checkpoint_root if previous else None
        proof = tuple(hex32(h) for h in stream.tree.consistency_proof(previous)) \
            if previous else ()
        first_offset, last_offset = stream.offsets[previous], stream.offsets[size - 1]
        digest = checkpoint_digest(stream_id=stream.id, tree_size=size, root=root,
                                   first_offset=first_offset, last_offset=last_offset,
                                   previous_tree_size=previous, previous_root=previous_root)
        cause = stream.last_event_id or derived_id(f"notary:{stream.id}", size)
        signed = CheckpointSigned(
            meta=self._meta(CheckpointSigned, cause, 0, stream, now),
            stream_id=stream.id, tree_size=size, root=root, first_offset=first_offset,
            last_offset=last_offset, previous_tree_size=previous, previous_root=previous_root,
            consistency_proof=proof, digest=digest, signer=self.key.address,
            signature=self.key.sign(digest))
        outputs = [self._append(stream, signed)]
        stream.checkpoint_size, stream.checkpoint_root = size, root
        stream.checkpoint_at = now
        stream.recorded[size] = root
        stream.anchor_traffic = 0
        if self.anchoring is not None:
            outputs.extend(self._anchor(stream, signed, now))
        return outputs

    def _anchor(self, stream: Stream, checkpoint: CheckpointSigned,
                now: datetime) -> list[Output]:
        anchoring = self.anchoring
        assert anchoring is not None
        checkpoint_id = checkpoint.meta.event_id
        submitted = AnchorSubmitted(
            meta=self._meta(AnchorSubmitted, checkpoint_id, 0, stream, now,
                            correlation=stream.id),
            stream_id=stream.id, tree_size=checkpoint.tree_size, root=checkpoint.root,
            chain_id=anchoring.chain_id, request_id=derived_id(checkpoint_id, 1),
            anchor_address=anchoring.registry, tx_hash=None)
        out = self._append(stream, submitted)
        request = self._anchor_request(out.record)  # type: ignore[arg-type]
        self.anchor_requests.add(submitted.request_id)
        self.open_anchors[submitted.request_id] = OpenAnchor(
            stream.id, checkpoint.tree_size, checkpoint.root, anchoring.chain_id, request)
        return [out, Output(self.tx_topic, request.meta.aggregate_id, request)]

    def _anchor_request(self, submitted: AnchorSubmitted) -> TxRequested:
        """The TxRequested of an AnchorSubmitted; the same every time it is made."""
        anchoring = self.anchoring
        assert anchoring is not None
        key = f"{anchoring.chain_id}:{anchoring.sender}"
        data = abi.encode_call(ANCHOR_CALL, [hex32(stream_key(submitted.stream_id)),
                                             submitted.tree_size, submitted.root])
        meta = EventMeta(
            event_id=derived_id(submitted.meta.event_id, 0), event_type=TxRequested.SCHEMA,
            schema_version=1, aggregate_type="account", aggregate_id=key, sequence=0,
            occurred_at=submitted.meta.occurred_at, tenant=TENANT, actor=ACTOR,
            correlation_id=submitted.stream_id, causation_id=submitted.meta.event_id,
            traceparent=None, tracestate=None, prev_hash="", hash="")
        request = TxRequested(
            meta=meta, request_id=submitted.request_id, purpose=TxPurpose.ANCHOR,
            chain_id=anchoring.chain_id, sender=anchoring.sender, to=anchoring.registry,
            value_wei="0", data=data, gas_limit=None,
            max_fee_per_gas_cap_wei=str(anchoring.max_fee_per_gas_cap_wei))
        return seal_command(self.schemas, request)  # type: ignore[return-value]

    def resubmissions(self) -> list[Output]:
        return [Output(self.tx_topic, a.request.meta.aggregate_id, a.request)
                for a in self.open_anchors.values() if a.request is not None]

    # -- envelope --------------------------------------------------------------------------

    def _meta(self, kind: type, cause: str, position: int, stream: Stream, now: datetime,
              correlation: str | None = None) -> EventMeta:
        return EventMeta(
            event_id=derived_id(cause, position), event_type=kind.SCHEMA, schema_version=1,
            aggregate_type=AGGREGATE, aggregate_id=stream.id, sequence=0, occurred_at=now,
            tenant=TENANT, actor=ACTOR, correlation_id=correlation or stream.id,
            causation_id=cause, traceparent=None, tracestate=None, prev_hash=ZERO_HASH,
            hash="")

    def _append(self, stream: Stream, record: Record) -> Output:
        sealed, stream.head = seal(self.schemas, record, stream.head)
        return Output(self.proof_topic, stream.id, sealed)


__all__ = ["Anchoring", "Notary", "Output", "Stream"]
