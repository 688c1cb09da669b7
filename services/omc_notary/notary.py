"""The notary's core: leaves in, checkpoints and anchors out. No I/O, no clock: time comes in
as `now`, the key signs deterministically (RFC 6979), ids are derived from the log.

    Notary.restore(record)          fold one record of the proof topic (history, read first)
    Notary.observe(topic, partition, offset, value, record) -> [Output]
                                    one message of an event topic, in offset order; answers
                                    AnchorConfirmed when it is the TxConfirmed of an anchor
    Notary.due(now, ready) -> [Output]
                                    checkpoints for the streams that reached `every_events`
                                    new leaves, or have any after `every_seconds`
    Notary.checkpoint(stream, now) -> [Output]
                                    a checkpoint of the stream's new leaves now (anchored
                                    when they hold a leaf that is not anchoring traffic;
                                    see below)
    Notary.resubmissions() -> [Output]
                                    the TxRequested of anchors submitted but not settled (the
                                    tx manager handles a request_id once, so re-sending is safe)

Anchors are retried: when an anchor's transaction fails (TxFailed) or has no outcome
`Anchoring.timeout_seconds` after it was submitted, `due` (once `ready`) records a new
AnchorSubmitted of the same checkpoint with a new request, after a backoff of
`retry_seconds`, doubling per attempt (at most an hour), `attempts` in all. Attempt n of a
checkpoint has event id derived_id(checkpoint id, 2(n-1)) and request id
derived_id(checkpoint id, 2n-1) (n = 1: the first anchor), so a restart makes the same ones.
The first TxConfirmed of any attempt gives the checkpoint's one AnchorConfirmed; later
outcomes of its other attempts are ignored. Failures are timed by the notary's clock when it
reads them (a restart restarts a backoff); timeouts by the AnchorSubmitted's own time.
`anchor_outcomes` counts what happened since start (submitted, retried, failed, timed_out,
confirmed, abandoned; superseded: not retried since a later checkpoint of the stream is
anchored, which covers its events), for metrics.

Anchoring traffic (the tx-topic events of the notary's own anchor requests: TxRequested,
TxSigned, TxBroadcast, TxIncluded, TxConfirmed, TxFailed ... whose request_id is an anchor's)
is covered like any event but never causes an anchor, so anchoring cannot feed itself:
    - it does not count towards `every_events`;
    - a stream whose new leaves are all anchoring traffic is checkpointed on the time
      trigger (`every_seconds`, once `ready`) and that checkpoint is NOT anchored: it is
      signed and chained (consistency proof) to the stream's others, and the stream's next
      anchored checkpoint, whose root extends it, anchors its events too;
    - a checkpoint is anchored only when it adds at least one leaf that is not anchoring
      traffic.
So an anchor's transaction adds leaves to one stream that at most a few unanchored
checkpoints cover (one per `every_seconds` while its events arrive), and no anchor.
The block that includes an anchor is anchoring traffic too: its BlockObserved (chain topic)
is matched by block hash with the anchor's TxIncluded, whichever is read first (on a chain
that mines a block per transaction, as anvil does by default, that block exists only
because of the anchor: without this, chain-stream anchor -> block -> BlockObserved ->
chain-stream anchor ... every `every_seconds`, for ever). Both are remembered for the last
`RECENT_BLOCKS` blocks. A block read before its anchor's TxIncluded cannot be told apart
yet, so a checkpoint whose only new leaves besides anchoring traffic are blocks not matched
(yet) is not anchored while an anchor is in flight (submitted, its TxIncluded, TxFailed or
TxConfirmed not read, for at most `Anchoring.timeout_seconds`); once nothing is in flight,
if any of those blocks is still not an anchor's, the stream's newest checkpoint is anchored
(`due`). So no anchor's block can cause an anchor, and other blocks are anchored late.
A ContractEventObserved of an anchor's transaction (a subscription to the registry's own
event) is anchoring traffic too, matched by tx hash with the anchor's TxSigned or TxReplaced
(written before the broadcast, so long before the event exists).

Trace context: each record the notary writes carries one (meta.traceparent), from `spans`
(a `Spans`; the service's opens an OpenTelemetry span per record; without one, a record
carries its cause's context unchanged): a CheckpointSigned starts a trace; its
AnchorSubmitted (every attempt) is a child of it; the anchor's TxRequested carries its
AnchorSubmitted's context (so the tx manager's and the watcher's spans of the transaction
join the trace, and a re-sent request is the same record); the AnchorConfirmed is a child
of the TxConfirmed's context. One trace: checkpoint -> anchor -> tx -> confirmation.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from omc_chain import abi
from omc_events.avro import Schemas
from omc_events.chain import seal, seal_command
from omc_events.envelope import ZERO_HASH, ChainHead, derived_id
from omc_events.record import Record
from omc_events.records import (
    AnchorConfirmed,
    AnchorSubmitted,
    BlockObserved,
    CheckpointSigned,
    ContractEventObserved,
    EventMeta,
    TxConfirmed,
    TxFailed,
    TxIncluded,
    TxPurpose,
    TxReplaced,
    TxRequested,
    TxSigned,
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
RECENT_BLOCKS = 4096  # blocks remembered to match a BlockObserved with an anchor's TxIncluded


TraceContext = tuple[str | None, str | None]  # (traceparent, tracestate), W3C
NO_TRACE: TraceContext = (None, None)


class Spans(Protocol):
    """Where the notary's records get their trace context (omc_notary.app's opens spans)."""

    def begin(self, name: str, parent: TraceContext, **attributes: object) -> TraceContext:
        """A span `name` for writing a record, child of `parent` (a new trace without one);
        returns the context the record carries."""
        ...


class Untraced:
    """No spans: a record carries its parent's context unchanged."""

    def begin(self, name: str, parent: TraceContext, **attributes: object) -> TraceContext:
        return parent


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
    attempts: int = 5  # anchors of one checkpoint, the first included
    retry_seconds: float = 30.0  # backoff before the 2nd attempt; doubles, at most an hour
    timeout_seconds: float = 1800.0  # an attempt with no outcome this long is retried

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th attempt failed."""
        return timedelta(seconds=min(self.retry_seconds * 2 ** (attempts - 1), 3600.0))


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
    blocks: int = 0  # BlockObserved leaves since the last checkpoint not (yet) an anchor's
    new_blocks: set[str] = field(default_factory=set)  # their hashes
    deferred: set[str] = field(default_factory=set)  # such blocks in checkpoints not anchored
    #                                 while an anchor was in flight: to anchor once none is
    newest_at: datetime | None = None  # occurred_at of the newest leaf, when known

    @property
    def id(self) -> str:
        return stream_id(self.topic, self.partition)


@dataclass
class Attempt:
    """One AnchorSubmitted of a checkpoint, and what became of it."""

    request_id: str
    number: int  # 1: the first anchor of the checkpoint
    submitted_at: datetime
    request: TxRequested | None
    failed_at: datetime | None = None  # a TxFailed (or the timeout) ended it


@dataclass
class OpenAnchor:
    """A checkpoint being anchored: its attempts, until one is confirmed."""

    stream: str
    tree_size: int
    root: str
    chain_id: int
    checkpoint_id: str
    signed_at: datetime | None = None
    trace: TraceContext = NO_TRACE  # the CheckpointSigned's: its attempts' parent
    attempts: list[Attempt] = field(default_factory=list)
    confirmed: bool = False
    abandoned: bool = False

    @property
    def request(self) -> TxRequested | None:
        return self.attempts[-1].request if self.attempts else None


class Notary:
    def __init__(self, key: NotaryKey, schemas: Schemas, *, proof_topic: str, tx_topic: str,
                 every_events: int, every_seconds: float,
                 anchoring: Anchoring | None = None,
                 on_mismatch: Callable[[str, int], None] | None = None,
                 spans: Spans | None = None) -> None:
        self.key = key
        self.schemas = schemas
        self.proof_topic = proof_topic
        self.tx_topic = tx_topic
        self.every_events = every_events
        self.every = timedelta(seconds=every_seconds)
        self.anchoring = anchoring
        self.on_mismatch = on_mismatch
        self.spans: Spans = spans or Untraced()
        self.streams: dict[str, Stream] = {}
        self.anchors: dict[tuple[str, int], OpenAnchor] = {}  # (stream, size) -> pending
        self.anchored_size: dict[str, int] = {}  # stream -> its newest confirmed anchor's size
        self.open_anchors: dict[str, OpenAnchor] = {}  # request_id -> its checkpoint's
        self.settled: set[str] = set()
        self.anchor_requests: set[str] = set()  # every anchor's request_id, open or settled
        self.checkpoint_ids: dict[tuple[str, int], tuple[str, datetime, TraceContext]] = {}
        # (stream, size) -> the checkpoint's event id, when it was signed, its trace context
        self.mismatches: list[str] = []
        self.anchor_outcomes: Counter[str] = Counter()  # since start, for metrics
        self.anchor_blocks: dict[str, None] = {}  # hashes of blocks with an anchor, not seen
        self.block_leaves: dict[str, tuple[Stream, int]] = {}  # block hash -> (its stream,
        #                                          tree size with its BlockObserved), recent
        self.anchor_txs: dict[str, None] = {}  # hashes of anchors' transactions, recent
        self.in_flight: dict[str, datetime] = {}  # anchor request -> submitted at, until its
        #                                           inclusion (or failure) is read

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
            self.checkpoint_ids[(record.stream_id, record.tree_size)] = (
                meta.event_id, meta.occurred_at, (meta.traceparent, meta.tracestate))
        elif isinstance(record, AnchorSubmitted):
            self.anchor_requests.add(record.request_id)
            anchor = self._anchoring_of(record.stream_id, record.tree_size, record.root,
                                        record.chain_id, meta.causation_id)
            attempt = Attempt(record.request_id, len(anchor.attempts) + 1, meta.occurred_at,
                              self._anchor_request(record) if self.anchoring else None)
            anchor.attempts.append(attempt)
            if record.request_id not in self.settled and not anchor.confirmed:
                self.open_anchors[record.request_id] = anchor
            self.in_flight[record.request_id] = meta.occurred_at  # the log says when it lands
        elif isinstance(record, AnchorConfirmed):
            self.settled.add(record.request_id)
            self.in_flight.pop(record.request_id, None)
            self._confirmed(self._anchoring_of(record.stream_id, record.tree_size,
                                               record.root, record.chain_id, ""))

    def _confirmed(self, anchor: OpenAnchor) -> None:
        """The checkpoint is anchored: its other attempts' outcomes no longer matter."""
        anchor.confirmed = True
        self.anchors.pop((anchor.stream, anchor.tree_size), None)
        for request_id, other in list(self.open_anchors.items()):
            if other is anchor:
                del self.open_anchors[request_id]
        self.anchored_size[anchor.stream] = max(self.anchored_size.get(anchor.stream, 0),
                                                anchor.tree_size)

    def _anchoring_of(self, stream: str, tree_size: int, root: str, chain_id: int,
                      checkpoint_id: str) -> OpenAnchor:
        found = self.anchors.get((stream, tree_size))
        if found is None:
            signed = self.checkpoint_ids.get((stream, tree_size))
            found = self.anchors[(stream, tree_size)] = OpenAnchor(
                stream, tree_size, root, chain_id,
                checkpoint_id or (signed[0] if signed else ""),
                signed[1] if signed else None, signed[2] if signed else NO_TRACE)
        return found

    def signed_at(self, stream: str, tree_size: int) -> datetime | None:
        """When the checkpoint of (stream, size) was signed (its occurred_at), if known."""
        found = self.checkpoint_ids.get((stream, tree_size))
        return found[1] if found else None

    # -- the log ---------------------------------------------------------------------------

    def observe(self, topic: str, partition: int, offset: int, value: bytes | None,
                record: Record | None, now: datetime, *,
                event_id: str | None = None,
                occurred_at: datetime | None = None) -> list[Output]:
        """Add one message of an event topic as the next leaf of its stream. `record` is
        needed on the tx topic (anchors' outcomes) and for BlockObserved (anchors' blocks);
        elsewhere its `event_id` (and `occurred_at`, for the checkpoint delay) is enough."""
        stream = self._stream(topic, partition)
        stream.tree.append(leaf_data(value))
        stream.offsets.append(offset)
        meta = getattr(record, "meta", None)
        stream.newest_at = meta.occurred_at if meta is not None else occurred_at
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
        request_id = getattr(record, "request_id", None)
        if size > stream.checkpoint_size and request_id in self.anchor_requests:
            stream.anchor_traffic += 1  # anchoring alone never causes an anchor
        if isinstance(record, BlockObserved):
            self._block_seen(record.hash, stream, size)
        elif isinstance(record, ContractEventObserved):
            if record.tx_hash.lower() in self.anchor_txs and size > stream.checkpoint_size:
                stream.anchor_traffic += 1  # a log of an anchor's transaction
        elif request_id in self.anchor_requests:
            if isinstance(record, TxIncluded | TxFailed | TxConfirmed):
                self.in_flight.pop(request_id, None)
            if isinstance(record, TxIncluded):
                self._anchor_included(record.block_hash)
            elif isinstance(record, TxSigned | TxReplaced):
                _remember(self.anchor_txs, (record.tx_hash if isinstance(record, TxSigned)
                                            else record.new_tx_hash).lower(), None)
        if isinstance(record, TxConfirmed | TxFailed):
            return self._settle(record, now)
        return []

    def _block_seen(self, block_hash: str, stream: Stream, size: int) -> None:
        if block_hash in self.anchor_blocks:  # an anchor's block: anchoring traffic
            del self.anchor_blocks[block_hash]
            if size > stream.checkpoint_size:
                stream.anchor_traffic += 1
            return
        _remember(self.block_leaves, block_hash, (stream, size))
        if size > stream.checkpoint_size:
            stream.blocks += 1
            stream.new_blocks.add(block_hash)

    def _anchor_included(self, block_hash: str) -> None:
        found = self.block_leaves.pop(block_hash, None)
        if found is None:  # its BlockObserved not read yet
            _remember(self.anchor_blocks, block_hash, None)
        elif found[1] > found[0].checkpoint_size:  # read, not checkpointed yet: anchoring
            found[0].anchor_traffic += 1
            found[0].blocks -= 1
            found[0].new_blocks.discard(block_hash)
        else:  # in a checkpoint already: not one to anchor later
            found[0].deferred.discard(block_hash)

    def _anchor_in_flight(self, now: datetime) -> bool:
        """An anchor was submitted and its inclusion (or failure) not read yet (for at most
        the anchors' timeout)."""
        timeout = timedelta(seconds=self.anchoring.timeout_seconds if self.anchoring else 0)
        for request_id, at in list(self.in_flight.items()):
            if now - at >= timeout:
                del self.in_flight[request_id]
        return bool(self.in_flight)

    def _settle(self, record: TxConfirmed | TxFailed, now: datetime) -> list[Output]:
        anchor = self.open_anchors.get(record.request_id)
        if anchor is None:
            return []
        self.open_anchors.pop(record.request_id)
        self.settled.add(record.request_id)
        if isinstance(record, TxFailed):
            attempt = next((a for a in anchor.attempts if a.request_id == record.request_id),
                           None)
            if attempt is not None and attempt.failed_at is None:
                attempt.failed_at = now
                self.anchor_outcomes["failed"] += 1
            log.error("anchor of %s at size %d failed: %s (request %s, attempt %s of %d)",
                      anchor.stream, anchor.tree_size, record.code, record.request_id,
                      attempt.number if attempt else "?",
                      self.anchoring.attempts if self.anchoring else 0)
            return []
        if anchor.confirmed:  # another attempt of the checkpoint was confirmed first
            return []
        self._confirmed(anchor)
        self.anchor_outcomes["confirmed"] += 1
        stream = self._stream_by_id(anchor.stream)
        event_id = derived_id(record.meta.event_id, 0)
        trace = self.spans.begin(
            f"notary {AnchorConfirmed.SCHEMA}", (record.meta.traceparent, record.meta.tracestate),
            **{"omc.event_id": event_id, "omc.stream_id": anchor.stream,
               "omc.tree_size": anchor.tree_size, "omc.root": anchor.root,
               "omc.request_id": record.request_id, "omc.tx_hash": record.tx_hash})
        confirmed = AnchorConfirmed(
            meta=self._meta(AnchorConfirmed, record.meta.event_id, 0, stream,
                            record.meta.occurred_at, correlation=anchor.stream, trace=trace),
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
            if new <= 0:
                continue
            by_count = new - stream.anchor_traffic >= self.every_events  # anchoring: not
            by_time = (ready and stream.checkpoint_at is not None     # counted, covered
                       and now - stream.checkpoint_at >= self.every)  # by time, unanchored
            if by_count or by_time:
                outputs.extend(self.checkpoint(stream, now))
        if ready and self.anchoring is not None:
            outputs.extend(self.retries(now))
            outputs.extend(self._deferred_anchors(now))
        return outputs

    def _deferred_anchors(self, now: datetime) -> list[Output]:
        """Anchor the newest checkpoint of each stream with blocks left unanchored while an
        anchor was in flight, once none is (and the blocks are still not anchors')."""
        assert self.anchoring is not None
        outputs: list[Output] = []
        for stream in self.streams.values():
            if not stream.deferred or self._anchor_in_flight(now):
                continue
            stream.deferred.clear()
            size = stream.checkpoint_size
            checkpoint_id = self.checkpoint_ids.get((stream.id, size), ("",))[0]
            if not checkpoint_id or self.anchored_size.get(stream.id, 0) >= size:
                continue
            anchor = self._anchoring_of(stream.id, size, stream.checkpoint_root or "",
                                        self.anchoring.chain_id, checkpoint_id)
            if not anchor.attempts:
                outputs.extend(self._submit(anchor, now))
        return outputs

    def retries(self, now: datetime) -> list[Output]:
        """New attempts for the checkpoints whose newest anchor failed or timed out, once
        their backoff has passed; a checkpoint out of attempts is abandoned (logged)."""
        anchoring = self.anchoring
        assert anchoring is not None
        timeout = timedelta(seconds=anchoring.timeout_seconds)
        outputs: list[Output] = []
        for anchor in list(self.anchors.values()):  # pending: not confirmed, not abandoned
            if not anchor.attempts:
                continue
            if self.anchored_size.get(anchor.stream, 0) > anchor.tree_size:
                self._abandon(anchor)  # a later anchored root covers its events
                self.anchor_outcomes["superseded"] += 1
                continue
            last = anchor.attempts[-1]
            if last.failed_at is None:
                if now - last.submitted_at < timeout:
                    continue
                self._time_out(anchor, now, timeout)
                if last.failed_at is None:
                    continue
            if len(anchor.attempts) >= anchoring.attempts:
                self._abandon(anchor)
                self.anchor_outcomes["abandoned"] += 1
                log.error("anchor of %s at size %d abandoned after %d attempts; the next "
                          "checkpoint's anchor covers its events", anchor.stream,
                          anchor.tree_size, len(anchor.attempts))
                continue
            if now - last.failed_at < anchoring.backoff(len(anchor.attempts)):
                continue
            outputs.extend(self._submit(anchor, now))
        return outputs

    def _abandon(self, anchor: OpenAnchor) -> None:
        """No more attempts (a late TxConfirmed of an open one still confirms it)."""
        anchor.abandoned = True
        self.anchors.pop((anchor.stream, anchor.tree_size), None)

    def _time_out(self, anchor: OpenAnchor, now: datetime, timeout: timedelta) -> None:
        last = anchor.attempts[-1] if anchor.attempts else None
        if last is not None and last.failed_at is None and now - last.submitted_at >= timeout:
            last.failed_at = last.submitted_at + timeout  # still open: it may yet confirm
            self.anchor_outcomes["timed_out"] += 1
            log.warning("anchor of %s at size %d: no outcome of request %s after %s",
                        anchor.stream, anchor.tree_size, last.request_id, timeout)

    def checkpoint(self, stream: Stream, now: datetime) -> list[Output]:
        """Sign the stream's tree as it stands (it must have new leaves); request its anchor
        (anchoring on) unless every new leaf is anchoring traffic."""
        size = stream.tree.size
        others = size - stream.checkpoint_size - stream.anchor_traffic  # not anchoring
        anchored = others > 0
        if anchored and others == stream.blocks and self._anchor_in_flight(now):
            anchored = False  # blocks only, maybe anchors': anchored later if they are not
            stream.deferred |= stream.new_blocks
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
        event_id = derived_id(cause, 0)
        trace = self.spans.begin(
            f"notary {CheckpointSigned.SCHEMA}", NO_TRACE,
            **{"omc.event_id": event_id, "omc.stream_id": stream.id, "omc.tree_size": size,
               "omc.root": root, "omc.anchored": self.anchoring is not None and anchored})
        signed = CheckpointSigned(
            meta=self._meta(CheckpointSigned, cause, 0, stream, now, trace=trace),
            stream_id=stream.id, tree_size=size, root=root, first_offset=first_offset,
            last_offset=last_offset, previous_tree_size=previous, previous_root=previous_root,
            consistency_proof=proof, digest=digest, signer=self.key.address,
            signature=self.key.sign(digest))
        outputs = [self._append(stream, signed)]
        stream.checkpoint_size, stream.checkpoint_root = size, root
        stream.checkpoint_at = now
        stream.recorded[size] = root
        stream.anchor_traffic = stream.blocks = 0
        stream.new_blocks = set()
        if anchored:
            stream.deferred.clear()  # this anchor covers them
        self.checkpoint_ids[(stream.id, size)] = (signed.meta.event_id, now, trace)
        if self.anchoring is not None and anchored:
            outputs.extend(self._submit(self._anchoring_of(
                stream.id, size, root, self.anchoring.chain_id, signed.meta.event_id), now))
        return outputs

    def _submit(self, anchor: OpenAnchor, now: datetime) -> list[Output]:
        """The next attempt at anchoring a checkpoint: AnchorSubmitted and its TxRequested."""
        anchoring = self.anchoring
        assert anchoring is not None
        stream = self._stream_by_id(anchor.stream)
        number = len(anchor.attempts) + 1
        position = 2 * (number - 1)
        request_id = derived_id(anchor.checkpoint_id, position + 1)
        trace = self.spans.begin(
            f"notary {AnchorSubmitted.SCHEMA}", anchor.trace,
            **{"omc.event_id": derived_id(anchor.checkpoint_id, position),
               "omc.stream_id": stream.id, "omc.tree_size": anchor.tree_size,
               "omc.root": anchor.root, "omc.request_id": request_id,
               "omc.attempt": number})
        meta = self._meta(AnchorSubmitted, anchor.checkpoint_id, position, stream, now,
                          correlation=stream.id, trace=trace)
        submitted = AnchorSubmitted(
            meta=meta, stream_id=stream.id, tree_size=anchor.tree_size, root=anchor.root,
            chain_id=anchoring.chain_id, request_id=request_id,
            anchor_address=anchoring.registry, tx_hash=None)
        out = self._append(stream, submitted)
        request = self._anchor_request(out.record)  # type: ignore[arg-type]
        self.anchor_requests.add(submitted.request_id)
        anchor.attempts.append(Attempt(submitted.request_id, number, now, request))
        self.open_anchors[submitted.request_id] = anchor
        self.in_flight[submitted.request_id] = now
        self.anchor_outcomes["submitted" if number == 1 else "retried"] += 1
        if number > 1:
            log.warning("anchor of %s at size %d: attempt %d of %d (request %s)",
                        anchor.stream, anchor.tree_size, number, anchoring.attempts,
                        submitted.request_id)
        return [out, Output(self.tx_topic, request.meta.aggregate_id, request)]

    def _anchor_request(self, submitted: AnchorSubmitted) -> TxRequested:
        """The TxRequested of an AnchorSubmitted (with its trace context); the same every
        time it is made."""
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
            traceparent=submitted.meta.traceparent, tracestate=submitted.meta.tracestate,
            prev_hash="", hash="")
        request = TxRequested(
            meta=meta, request_id=submitted.request_id, purpose=TxPurpose.ANCHOR,
            chain_id=anchoring.chain_id, sender=anchoring.sender, to=anchoring.registry,
            value_wei="0", data=data, gas_limit=None,
            max_fee_per_gas_cap_wei=str(anchoring.max_fee_per_gas_cap_wei))
        return seal_command(self.schemas, request)  # type: ignore[return-value]

    def resubmissions(self) -> list[Output]:
        return [Output(self.tx_topic, a.request.meta.aggregate_id, a.request)
                for anchor in {id(o): o for o in self.open_anchors.values()}.values()
                for a in anchor.attempts
                if a.request is not None and a.request_id in self.open_anchors
                and a.failed_at is None]

    # -- envelope --------------------------------------------------------------------------

    def _meta(self, kind: type, cause: str, position: int, stream: Stream, now: datetime,
              correlation: str | None = None, trace: TraceContext = NO_TRACE) -> EventMeta:
        return EventMeta(
            event_id=derived_id(cause, position), event_type=kind.SCHEMA, schema_version=1,
            aggregate_type=AGGREGATE, aggregate_id=stream.id, sequence=0, occurred_at=now,
            tenant=TENANT, actor=ACTOR, correlation_id=correlation or stream.id,
            causation_id=cause, traceparent=trace[0], tracestate=trace[1],
            prev_hash=ZERO_HASH, hash="")

    def _append(self, stream: Stream, record: Record) -> Output:
        sealed, stream.head = seal(self.schemas, record, stream.head)
        return Output(self.proof_topic, stream.id, sealed)


def _remember(recent: dict, key: str, value: object) -> None:
    """Keep `key` among the RECENT_BLOCKS newest (a dict keeps insertion order)."""
    recent[key] = value
    if len(recent) > RECENT_BLOCKS:
        del recent[next(iter(recent))]


__all__ = ["NO_TRACE", "Anchoring", "Attempt", "Notary", "OpenAnchor", "Output", "Spans",
           "Stream", "TraceContext", "Untraced"]
