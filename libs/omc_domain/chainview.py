"""The chain watcher's pure parts: the canonical window, reorg detection, receipt tracking.

No clock, no random, no I/O: the shell (services/omc_watcher) fetches blocks, receipts and logs,
hands them here, writes what comes back, and folds what it wrote back in with `evolve`. The
same `evolve` rebuilds everything from the log on start, so a restart decides exactly what
the crashed process would have.

    Window(size)                     the recorded canonical chain: the newest `size` blocks
    detect(window, branch)           -> Extend | Reorg | NeedBlock | Inconsistent | TooDeep
    ChainView(chain_id, size)        the "chain" aggregate (omc.chain.events.v1):
        .evolve(record)              BlockObserved, ReorgDetected, ContractEventObserved
        .advance(verdict)            -> [ReorgDetected, ContractEventObserved(removed)…,
                                         BlockObserved…]
        .observe_logs(sub, logs)     -> [ContractEventObserved…]
    Tracker(chain_id, depth)         the "receipts" aggregates, one per sender (omc.tx.events.v1):
        .evolve(record)              TxSigned, TxReplaced, TxFailed, and its own TxIncluded,
                                     TxConfirmed, TxReorged
        .include(receipts, window)   -> [TxIncluded…]       pending -> included
        .orphaned(window)            -> [TxReorged…]        included -> pending
        .settle(receipts, window)    -> [TxConfirmed | TxFailed(REVERTED) | TxReorged…]

Every decision is an `Emit`: a draft record (meta = DRAFT), its aggregate, and the cause its
event id derives from (`derived_id(causation_id, position)`): the TxSigned that carried the
hash for receipts events, a block for BlockObserved / ReorgDetected, a log for
ContractEventObserved. `position` counts what that cause already produced in the log, so a
restart derives the same ids.

Receipt tracking, per request (the TxSigned hashes of one request_id: the original and its
replacements; whichever is mined wins):

    pending --receipt in a canonical block--> included --depth reached--> confirmed (status 1)
                                                       --depth reached--> failed REVERTED (status 0)
    included --its block left the canonical chain--> pending (TxReorged), tracked again
    pending | included --TxFailed by the tx manager--> failed (no longer tracked), except
        REPLACEMENT_CAP: its last transaction may still be mined, so it is followed on and a
        receipt is recorded as for any other (its TxConfirmed wins); it stops being followed
        when another request of its sender is settled at its nonce

A CANCEL's transaction (TxReplaced reason CANCEL) belongs to the cancel request (its own
TxSigned), never to the target: the cancel is confirmed, and the tx manager then ends the
target with TxFailed CANCELLED.

Confirmations are counted as the schema says: from the inclusion block to the head, both
included (head - number + 1); `depth` of them make a transaction final.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from omc_domain.draft import DRAFT
from omc_events.envelope import ID_NAMESPACE, ChainHead
from omc_events.record import Record
from omc_events.records import (
    BlockObserved,
    ContractEventObserved,
    EventMeta,
    ReorgDetected,
    ReplaceReason,
    TxConfirmed,
    TxFailed,
    TxFailureCode,
    TxIncluded,
    TxReorged,
    TxReplaced,
    TxSigned,
)

CHAIN = "chain"
RECEIPTS = "receipts"
ACCOUNT = "account"

SYSTEM_TENANT = "system"
SCHEMA_VERSION = 1
"""Tenant of the chain aggregate's events, which belong to no customer."""


# -- blocks and the window --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Block:
    """A block header as the watcher needs it. `timestamp` in seconds."""

    number: int
    hash: str
    parent_hash: str
    timestamp: int = 0
    base_fee_per_gas: int | None = None


class Window:
    """The newest `size` blocks of the canonical chain as recorded, contiguous by number."""

    def __init__(self, size: int = 256) -> None:
        if size < 1:
            raise ValueError("a window holds at least one block")
        self.size = size
        self._blocks: dict[int, Block] = {}
        self._low = 0
        self._high = -1

    def __len__(self) -> int:
        return len(self._blocks)

    @property
    def head(self) -> Block | None:
        return self._blocks.get(self._high)

    @property
    def floor(self) -> int | None:
        """Number of the oldest block held (None: empty)."""
        return self._low if self._blocks else None

    def at(self, number: int) -> Block | None:
        return self._blocks.get(number)

    def hash_at(self, number: int) -> str | None:
        block = self._blocks.get(number)
        return block.hash if block else None

    def blocks(self) -> list[Block]:
        return [self._blocks[n] for n in range(self._low, self._high + 1)]

    def observe(self, block: Block) -> None:
        """Fold a BlockObserved: it extends the head, or (a gap, or a block that does not
        follow the head without a rewind first) starts the window again at it."""
        head = self.head
        if head is None or block.number != head.number + 1 or block.parent_hash != head.hash:
            self._blocks = {block.number: block}
            self._low = self._high = block.number
            return
        self._blocks[block.number] = block
        self._high = block.number
        while self._high - self._low + 1 > self.size:
            del self._blocks[self._low]
            self._low += 1

    def rewind(self, ancestor_number: int) -> list[Block]:
        """Fold a ReorgDetected: drop every block above the common ancestor; the dropped
        blocks, newest first."""
        dropped = []
        while self._blocks and self._high > ancestor_number:
            dropped.append(self._blocks.pop(self._high))
            self._high -= 1
        if not self._blocks:
            self._low, self._high = 0, -1
        return dropped


@dataclass(frozen=True, slots=True)
class Extend:
    """The branch continues the recorded chain: record `added` (possibly none)."""

    added: tuple[Block, ...]


@dataclass(frozen=True, slots=True)
class Reorg:
    """The branch replaces recorded blocks above `ancestor`."""

    ancestor: Block
    removed: tuple[Block, ...]  # old head first
    added: tuple[Block, ...]


@dataclass(frozen=True, slots=True)
class NeedBlock:
    """The branch does not attach yet: fetch the node's block `number` and put it first."""

    number: int


@dataclass(frozen=True, slots=True)
class Inconsistent:
    """The blocks fetched do not form one chain (the node changed under the fetch): refetch."""

    reason: str


@dataclass(frozen=True, slots=True)
class TooDeep:
    """The branch forks below the oldest recorded block: a reorg deeper than the window."""

    floor: int


Verdict = Extend | Reorg | NeedBlock | Inconsistent | TooDeep


def detect(window: Window, branch: Sequence[Block]) -> Verdict:
    """How `branch` (the node's blocks, ascending and contiguous) relates to `window`.

    Blocks the window already holds with the same hash are skipped; the first new block must
    have its parent in the window: at the head (Extend), or lower (Reorg: everything recorded
    from its number up is removed). Otherwise its parent is still to be fetched (NeedBlock),
    or lies below the window (TooDeep). A branch that starts beyond head + 1 leaves a gap
    (catching up after a long stop): it is an Extend and the window starts again there.
    """
    for lower, upper in itertools.pairwise(branch):
        if upper.number != lower.number + 1 or upper.parent_hash != lower.hash:
            return Inconsistent(f"block {upper.number} does not follow block {lower.number}")
    head = window.head
    if head is None:
        return Extend(tuple(branch))
    start = 0
    while start < len(branch) and window.hash_at(branch[start].number) == branch[start].hash:
        start += 1
    rest = tuple(branch[start:])
    if not rest:
        return Extend(())
    first = rest[0]
    if first.number > head.number + 1:
        return Extend(rest)
    floor = window.floor
    assert floor is not None
    parent_number = first.number - 1
    if parent_number < floor:
        return TooDeep(floor)
    if window.hash_at(parent_number) != first.parent_hash:
        return NeedBlock(parent_number)
    removed = tuple(b for b in reversed(window.blocks()) if b.number >= first.number)
    if not removed:
        return Extend(rest)
    ancestor = window.at(parent_number)
    assert ancestor is not None
    return Reorg(ancestor, removed, rest)


# -- what the pure parts decide ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Emit:
    """A record to write: its aggregate (and message key), the cause its id derives from."""

    aggregate_type: str
    aggregate_id: str
    causation_id: str
    position: int
    record: Record
    tenant: str = SYSTEM_TENANT
    correlation_id: str | None = None  # None: the causation id
    traceparent: str | None = None

    @property
    def key(self) -> str:
        return self.aggregate_id

    @property
    def event_id(self) -> str:
        """`derived_id(causation_id, position)` (the same UUIDv5, computed faster)."""
        return _uuid5(f"{self.causation_id}/{self.position}")

    def envelope(self, occurred_at: datetime, actor: str, *, event_id: str | None = None,
                 sequence: int = 0, prev_hash: str = "", hash: str = "") -> EventMeta:
        """The record's envelope; the chain fields (sequence, prev_hash, hash) are the
        sealer's."""
        return EventMeta(
            event_id=event_id or self.event_id, event_type=self.record.SCHEMA,
            schema_version=SCHEMA_VERSION, aggregate_type=self.aggregate_type,
            aggregate_id=self.aggregate_id, sequence=sequence, occurred_at=occurred_at,
            tenant=self.tenant, actor=actor,
            correlation_id=self.correlation_id or self.causation_id,
            causation_id=self.causation_id, traceparent=self.traceparent, prev_hash=prev_hash,
            hash=hash)

    def filled(self, occurred_at: datetime, actor: str) -> Record:
        """The record with its envelope filled in, ready to be sealed after its aggregate's
        head (sequence, prev_hash and hash are the sealer's)."""
        return dataclasses.replace(self.record, meta=self.envelope(occurred_at, actor))


def cause_id(kind: str, *parts: object) -> str:
    """A stable id for something on chain that causes events (a block, a log), UUIDv5 in the
    envelope's id namespace."""
    return _uuid5(":".join([kind, *map(str, parts)]))


_NAMESPACE = ID_NAMESPACE.bytes


def _uuid5(name: str) -> str:
    """str(uuid.uuid5(ID_NAMESPACE, name)) without building UUID objects (it is computed
    for every event the watcher writes)."""
    digest = bytearray(hashlib.sha1(_NAMESPACE + name.encode()).digest()[:16])  # noqa: S324
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    x = digest.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


class _Positions:
    """Positions for new emits: what each cause produced already, plus this decision's."""

    def __init__(self, produced: Mapping[str, int]) -> None:
        self.produced = produced
        self.extra: dict[str, int] = {}

    def next(self, cause: str) -> int:
        taken = self.extra.get(cause, 0)
        self.extra[cause] = taken + 1
        return self.produced.get(cause, 0) + taken


def _draft(record_type, **fields) -> Record:
    return record_type(meta=DRAFT, **fields)


def _applies(heads: dict[str, ChainHead], record: Record) -> bool:
    """Whether one of our own chained events is new (not yet folded): advances the head."""
    meta: EventMeta = record.meta  # type: ignore[attr-defined]
    head = heads.get(meta.aggregate_id, ChainHead())
    if meta.sequence <= head.sequence:
        return False
    heads[meta.aggregate_id] = ChainHead(meta.sequence, meta.hash)
    return True


# -- the chain aggregate ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Log:
    """A log as eth_getLogs returns it."""

    address: str
    topics: tuple[str, ...]
    data: str
    block_number: int
    block_hash: str
    tx_hash: str
    transaction_index: int
    log_index: int
    event_signature: str | None = None
    decoded_json: str | None = None


@dataclass
class ChainView:
    """The chain aggregate of one chain: its window, its subscriptions' checkpoints, the logs
    reported from blocks still in the window (to take them back on a reorg)."""

    chain_id: int
    window: Window
    head: ChainHead = field(default_factory=ChainHead)
    checkpoints: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Per subscription, (block, log index) of the last log reported (from the log)."""
    scanned: dict[str, int] = field(default_factory=dict)
    """Per subscription, the last block whose logs were all reported (memory only)."""
    reported: dict[str, dict[tuple[str, int], ContractEventObserved]] = field(
        default_factory=dict)
    """Per block hash in the window, the live logs reported from it by (subscription, index)."""
    produced: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Per cause, (block number, events it produced); pruned below the window."""

    @classmethod
    def new(cls, chain_id: int, window_size: int = 256) -> ChainView:
        return cls(chain_id, Window(window_size))

    @property
    def aggregate_id(self) -> str:
        return str(self.chain_id)

    # fold ------------------------------------------------------------------------------------

    def evolve(self, record: Record) -> None:
        """Fold one of this chain's events (any other record, or one already folded, is
        ignored)."""
        meta = getattr(record, "meta", None)
        if meta is not None:
            self.fold(meta, record)

    def fold(self, meta: EventMeta, record: Record) -> None:
        """`evolve` of `record` sealed with `meta` (its own meta is not read: the writer
        folds what it wrote without building the sealed record)."""
        if meta.aggregate_type != CHAIN or meta.aggregate_id != self.aggregate_id:
            return
        if meta.sequence <= self.head.sequence:
            return
        self.head = ChainHead(meta.sequence, meta.hash)
        if isinstance(record, BlockObserved):
            self.window.observe(Block(record.number, record.hash, record.parent_hash,
                                      int(record.timestamp.timestamp()),
                                      None if record.base_fee_per_gas_wei is None
                                      else int(record.base_fee_per_gas_wei)))
            self._count(meta.causation_id, record.number)
            self._prune()
        elif isinstance(record, ReorgDetected):
            for block in self.window.rewind(record.common_ancestor_number):
                self.reported.pop(block.hash, None)
            for sub, (number, _) in list(self.checkpoints.items()):
                if number > record.common_ancestor_number:
                    self.checkpoints[sub] = (record.common_ancestor_number, 1 << 62)
            for sub, number in list(self.scanned.items()):
                self.scanned[sub] = min(number, record.common_ancestor_number)
            self._count(meta.causation_id, record.new_head_number)
        elif isinstance(record, ContractEventObserved):
            where = (record.subscription_id, record.log_index)
            if record.removed:
                self.reported.get(record.block_hash, {}).pop(where, None)
            else:
                self.checkpoints[record.subscription_id] = (record.block_number,
                                                            record.log_index)
                if self.window.hash_at(record.block_number) == record.block_hash:
                    self.reported.setdefault(record.block_hash, {})[where] = record
            self._count(meta.causation_id, record.block_number)

    def _count(self, cause: str | None, number: int) -> None:
        if cause is not None:
            _, count = self.produced.get(cause, (number, 0))
            self.produced[cause] = (number, count + 1)

    def _prune(self) -> None:
        floor = self.window.floor
        if floor is None or len(self.produced) < 4 * self.window.size + 1024:
            return
        self.produced = {c: v for c, v in self.produced.items() if v[0] >= floor}
        held = {b.hash for b in self.window.blocks()}
        self.reported = {h: logs for h, logs in self.reported.items() if h in held}

    def _positions(self) -> _Positions:
        return _Positions({c: count for c, (_, count) in self.produced.items()})

    def _emit(self, positions: _Positions, cause: str, record: Record) -> Emit:
        return Emit(CHAIN, self.aggregate_id, cause, positions.next(cause), record)

    # decide ----------------------------------------------------------------------------------

    def block_cause(self, block_hash: str) -> str:
        return cause_id("block", self.chain_id, block_hash)

    def log_cause(self, subscription: str, block_hash: str, log_index: int) -> str:
        return cause_id("log", self.chain_id, subscription, block_hash, log_index)

    def advance(self, verdict: Extend | Reorg) -> list[Emit]:
        """The records a verdict of `detect` calls for: for a reorg, ReorgDetected and every
        log reported from the removed blocks again with removed = true; then BlockObserved
        for each added block."""
        positions = self._positions()
        emits: list[Emit] = []
        if isinstance(verdict, Reorg):
            new_head = verdict.added[-1] if verdict.added else verdict.ancestor
            old_head = verdict.removed[0]
            emits.append(self._emit(positions, self.block_cause(new_head.hash), _draft(
                ReorgDetected, chain_id=self.chain_id, depth=len(verdict.removed),
                common_ancestor_number=verdict.ancestor.number,
                common_ancestor_hash=verdict.ancestor.hash,
                old_head_number=old_head.number, old_head_hash=old_head.hash,
                new_head_number=new_head.number, new_head_hash=new_head.hash,
                removed_block_hashes=tuple(b.hash for b in verdict.removed))))
            for block in sorted(verdict.removed, key=lambda b: b.number):
                for (sub, index), seen in sorted(self.reported.get(block.hash, {}).items()):
                    emits.append(self._emit(
                        positions, self.log_cause(sub, block.hash, index),
                        dataclasses.replace(seen, meta=DRAFT, removed=True)))
        for block in verdict.added:
            emits.append(self._emit(positions, self.block_cause(block.hash), _draft(
                BlockObserved, chain_id=self.chain_id, number=block.number, hash=block.hash,
                parent_hash=block.parent_hash,
                timestamp=datetime.fromtimestamp(block.timestamp, UTC),
                base_fee_per_gas_wei=None if block.base_fee_per_gas is None
                else str(block.base_fee_per_gas))))
        return emits

    def resume_from(self, subscription: str, from_block: int) -> int:
        """The first block a subscription's scan must (re)read: after what it scanned this
        run, else the block of its last reported log (its remaining logs), else from_block."""
        if subscription in self.scanned:
            return self.scanned[subscription] + 1
        if subscription in self.checkpoints:
            return max(self.checkpoints[subscription][0], from_block)
        return from_block

    def observe_logs(self, subscription: str, logs: Iterable[Log]) -> list[Emit] | None:
        """ContractEventObserved for the logs not reported yet (after the checkpoint), in
        order; None when a log's block is in the window under another hash (the node moved
        on a reorg the window has not seen yet: scan again after the next advance)."""
        positions = self._positions()
        after = self.checkpoints.get(subscription, (-1, -1))
        emits = []
        for entry in sorted(logs, key=lambda x: (x.block_number, x.log_index)):
            recorded = self.window.hash_at(entry.block_number)
            if recorded is not None and recorded != entry.block_hash:
                return None
            if (entry.block_number, entry.log_index) <= after:
                continue
            emits.append(self._emit(
                positions, self.log_cause(subscription, entry.block_hash, entry.log_index),
                _draft(ContractEventObserved, chain_id=self.chain_id,
                       subscription_id=subscription, address=entry.address,
                       topics=entry.topics, data=entry.data, block_number=entry.block_number,
                       block_hash=entry.block_hash, tx_hash=entry.tx_hash,
                       transaction_index=entry.transaction_index, log_index=entry.log_index,
                       removed=False, event_signature=entry.event_signature,
                       decoded_json=entry.decoded_json)))
        return emits


# -- receipts ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Receipt:
    """A transaction receipt as the watcher needs it."""

    tx_hash: str
    block_number: int
    block_hash: str
    transaction_index: int
    gas_used: int
    effective_gas_price: int
    status_ok: bool
    contract_address: str | None = None


class Phase(StrEnum):
    PENDING = "pending"
    INCLUDED = "included"
    CONFIRMED = "confirmed"
    FAILED = "failed"


@dataclass
class Request:
    """One transaction request of the chain, followed from its TxSigned."""

    request_id: str
    sender: str
    nonce: int | None
    hashes: dict[str, str] = field(default_factory=dict)  # tx hash -> its TxSigned event id
    phase: Phase = Phase.PENDING
    given_up: bool = False  # the tx manager ended it at REPLACEMENT_CAP (still followed)
    included: TxIncluded | None = None
    tenant: str = SYSTEM_TENANT
    correlation_id: str | None = None
    traceparent: str | None = None


@dataclass
class Tracker:
    """The receipts aggregates of one chain (one hash chain per sender) and the requests they
    follow."""

    chain_id: int
    depth: int
    requests: dict[str, Request] = field(default_factory=dict)
    open: dict[str, Request] = field(default_factory=dict)
    """The requests still followed (pending or included); the others are only remembered."""
    by_hash: dict[str, str] = field(default_factory=dict)
    heads: dict[str, ChainHead] = field(default_factory=dict)
    produced: dict[str, int] = field(default_factory=dict)

    def aggregate_of(self, request: Request) -> str:
        return f"{self.chain_id}:{request.sender}"

    # fold ------------------------------------------------------------------------------------

    def evolve(self, record: Record) -> None:
        """Fold a record of the tx topic: the tx manager's TxSigned / TxReplaced / TxFailed
        for this chain, and this watcher's own receipts events (each once)."""
        meta = getattr(record, "meta", None)
        if meta is None:
            return
        if meta.aggregate_type == RECEIPTS:
            if not meta.aggregate_id.startswith(f"{self.chain_id}:"):
                return
            if not _applies(self.heads, record):
                return
            if meta.causation_id is not None:
                self.produced[meta.causation_id] = self.produced.get(meta.causation_id, 0) + 1
            self._own(record)
            return
        if isinstance(record, TxSigned):
            if record.chain_id != self.chain_id:
                return
            request = self.requests.get(record.request_id)
            if request is None:
                request = self.requests[record.request_id] = Request(
                    record.request_id, record.sender, record.nonce, tenant=meta.tenant,
                    correlation_id=meta.correlation_id, traceparent=meta.traceparent)
                self.open[record.request_id] = request
            request.hashes.setdefault(record.tx_hash, meta.event_id)
            request.nonce = record.nonce
            self.by_hash[record.tx_hash] = record.request_id
        elif isinstance(record, TxReplaced):
            if record.reason == ReplaceReason.CANCEL:
                return  # the cancel's transaction is the cancel request's (its TxSigned)
            request = self.requests.get(record.request_id)
            if request is not None and record.new_tx_hash not in request.hashes:
                # its TxSigned comes first; this only covers a replacement signed elsewhere
                request.hashes[record.new_tx_hash] = meta.event_id
                self.by_hash[record.new_tx_hash] = record.request_id
        elif isinstance(record, TxFailed):
            request = self.requests.get(record.request_id)
            if request is None or request.phase not in (Phase.PENDING, Phase.INCLUDED):
                return
            if record.code == TxFailureCode.REPLACEMENT_CAP:
                request.given_up = True  # its last transaction may still be mined
            else:
                self._close(request, Phase.FAILED)

    def _own(self, record: Record) -> None:
        request = self.requests.get(getattr(record, "request_id", ""))
        if request is None:
            return
        if isinstance(record, TxIncluded):
            request.phase, request.included = Phase.INCLUDED, record
        elif isinstance(record, TxReorged):
            request.phase, request.included = Phase.PENDING, None
        elif isinstance(record, TxConfirmed):
            self._close(request, Phase.CONFIRMED)
            self._nonce_taken(request)
        elif isinstance(record, TxFailed):
            self._close(request, Phase.FAILED)
            self._nonce_taken(request)

    def _nonce_taken(self, settled: Request) -> None:
        """`settled`'s transaction took its nonce: requests of the same sender the tx manager
        gave up on at that nonce can never be mined; stop following them."""
        for other in list(self.open.values()):
            if (other.given_up and other.sender == settled.sender
                    and other.nonce == settled.nonce and other is not settled):
                self._close(other, Phase.FAILED)

    def _close(self, request: Request, phase: Phase) -> None:
        request.phase = phase
        self.open.pop(request.request_id, None)
        for tx_hash in request.hashes:
            self.by_hash.pop(tx_hash, None)

    # queries ---------------------------------------------------------------------------------

    def pending_hashes(self) -> list[str]:
        """Every tx hash whose receipt is awaited (all candidates of pending requests)."""
        return [h for r in self.open.values() if r.phase is Phase.PENDING for h in r.hashes]

    def due(self, window: Window) -> list[Request]:
        """Included requests whose depth is reached at the window's head."""
        head = window.head
        if head is None:
            return []
        return [r for r in self.open.values() if r.phase is Phase.INCLUDED
                and r.included is not None
                and head.number - r.included.block_number + 1 >= self.depth]

    def open_requests(self) -> list[Request]:
        return [r for r in self.open.values() if r.phase in (Phase.PENDING, Phase.INCLUDED)]

    # decide ----------------------------------------------------------------------------------

    def _emit(self, positions: _Positions, request: Request, tx_hash: str,
              record: Record) -> Emit:
        cause = request.hashes[tx_hash]
        return Emit(RECEIPTS, self.aggregate_of(request), cause, positions.next(cause), record,
                    request.tenant, request.correlation_id, request.traceparent)

    def include(self, receipts: Mapping[str, Receipt | None], window: Window) -> list[Emit]:
        """TxIncluded for each pending request one of whose hashes has a receipt in a block
        the window holds (same hash) or below the window (checked again when settled).
        Receipts beyond the window's head wait for the window."""
        head = window.head
        if head is None:
            return []
        floor = window.floor
        assert floor is not None
        positions = _Positions(self.produced)
        emits = []
        for request in self.open.values():
            if request.phase is not Phase.PENDING:
                continue
            for tx_hash in request.hashes:
                receipt = receipts.get(tx_hash)
                if receipt is None or receipt.block_number > head.number:
                    continue
                if (receipt.block_number >= floor
                        and window.hash_at(receipt.block_number) != receipt.block_hash):
                    continue
                emits.append(self._emit(positions, request, tx_hash, _draft(
                    TxIncluded, request_id=request.request_id, tx_hash=tx_hash,
                    block_number=receipt.block_number, block_hash=receipt.block_hash,
                    transaction_index=receipt.transaction_index, gas_used=receipt.gas_used,
                    effective_gas_price_wei=str(receipt.effective_gas_price),
                    status_ok=receipt.status_ok, contract_address=receipt.contract_address)))
                break
        return emits

    def orphaned(self, window: Window) -> list[Emit]:
        """TxReorged for each included request whose block the window no longer holds: above
        its head, or replaced at its number."""
        head, floor = window.head, window.floor
        if head is None or floor is None:
            return []
        positions = _Positions(self.produced)
        emits = []
        for request in self.open.values():
            included = request.included
            if request.phase is not Phase.INCLUDED or included is None:
                continue
            number = included.block_number
            if number > head.number or (number >= floor
                                        and window.hash_at(number) != included.block_hash):
                emits.append(self._reorged(positions, request, included))
        return emits

    def _reorged(self, positions: _Positions, request: Request, included: TxIncluded) -> Emit:
        return self._emit(positions, request, included.tx_hash, _draft(
            TxReorged, request_id=request.request_id, tx_hash=included.tx_hash,
            old_block_number=included.block_number, old_block_hash=included.block_hash))

    def settle(self, receipts: Mapping[str, Receipt | None], window: Window) -> list[Emit]:
        """For each request `due`, given its receipt fetched again: TxConfirmed (status 1),
        TxFailed REVERTED (status 0), or TxReorged when the node no longer has the receipt in
        that block. A request whose receipt was not fetched is left for the next head."""
        head = window.head
        if head is None:
            return []
        positions = _Positions(self.produced)
        emits = []
        for request in self.due(window):
            included = request.included
            assert included is not None
            if included.tx_hash not in receipts:
                continue
            receipt = receipts[included.tx_hash]
            recorded = window.hash_at(included.block_number)
            if (receipt is None or receipt.block_hash != included.block_hash
                    or (recorded is not None and recorded != included.block_hash)):
                emits.append(self._reorged(positions, request, included))
                continue
            confirmations = head.number - included.block_number + 1
            if included.status_ok:
                record: Record = _draft(
                    TxConfirmed, request_id=request.request_id, tx_hash=included.tx_hash,
                    block_number=included.block_number, block_hash=included.block_hash,
                    confirmations=confirmations)
            else:
                record = _draft(
                    TxFailed, request_id=request.request_id, tx_hash=included.tx_hash,
                    nonce=request.nonce, code=TxFailureCode.REVERTED,
                    detail=f"reverted: receipt status 0 in block {included.block_number} "
                           f"({included.block_hash}), {confirmations} confirmations")
            emits.append(self._emit(positions, request, included.tx_hash, record))
        return emits
