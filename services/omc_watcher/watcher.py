"""The chain watcher of one chain: the shell around `omc_domain.chainview`.

    watcher = Watcher(settings, node, producer)
    await watcher.start()        # eth_chainId checked; state rebuilt from both topics
    await watcher.step()         # one look at the chain: heads, reorgs, logs, receipts
    await watcher.run(stop)      # start, then step on every newHeads notification or poll
    await watcher.close()

One step:
  1. advance  fetch the blocks after the recorded head (batched, at most `slice` per round,
              only the newest `window` after a long stop); `detect` them against the window,
              walking back (8 blocks a request) to the common ancestor on a parent-hash
              mismatch; write ReorgDetected, the removed logs again (removed = true),
              BlockObserved; then TxReorged for included transactions whose block is gone.
  2. scan     for each subscription, eth_getLogs from where it stands (after this run's scan,
              else its last reported log's block, else from_block) up to the recorded head,
              in chunks of `log_chunk` blocks, 16 chunks per batch request, at most 8 batches
              a step (a long backfill goes on over several steps, heads and receipts are
              followed meanwhile); write ContractEventObserved (decoded when the ABI is
              given).
  3. receipts batch eth_getTransactionReceipt for every pending hash -> TxIncluded; for those
              at depth, fetch again -> TxConfirmed, TxFailed REVERTED, or TxReorged.

Every write is sealed after its aggregate's head, produced, and acknowledged (acks=all)
before it is folded into the state; anything but a node error while writing ends the process
(`run` raises), so a restart rebuilds the state from the log instead of guessing what Kafka
kept. Node errors (`ChainUnavailable`) leave the state as it was: the next step tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from opentelemetry.trace import SpanKind

from omc_chain.errors import ChainUnavailable
from omc_domain.chainview import (
    CHAIN,
    ChainView,
    Emit,
    Extend,
    Inconsistent,
    NeedBlock,
    Reorg,
    TooDeep,
    Tracker,
    detect,
)
from omc_errors import OmcError
from omc_events.envelope import ChainHead
from omc_events.record import Record
from omc_events.records import EventMeta, TxConfirmed
from omc_kafka.follow import TopicReader
from omc_kafka.producer import EventProducer
from omc_obs import tracing
from omc_watcher.heads import follow_heads
from omc_watcher.output import Output
from omc_watcher.rpc import Node
from omc_watcher.settings import WatcherSettings

log = logging.getLogger("omc.watcher")

ACTOR = "svc:chain-watcher"
SOURCE = "omc/chain-watcher"
WALK_BACK = 8
CHUNKS_PER_BATCH = 16
SCAN_BATCHES_PER_STEP = 8
REBUILD_SECONDS = 3600.0  # reading the log at start (a long history takes a while)


class WatcherError(OmcError):
    """The watcher cannot go on safely."""


class WrongChain(WatcherError):
    """The node serves another chain than the one configured."""


class ReorgTooDeep(WatcherError):
    """The chain forked below the oldest block the window keeps."""


def _now() -> datetime:
    return datetime.now(UTC)


@dataclasses.dataclass
class Counters:
    blocks: int = 0
    reorgs: int = 0
    logs: int = 0
    receipts_events: int = 0
    steps: int = 0
    gas_used: int = 0
    fees_wei: int = 0  # gas used times the effective gas price, of confirmed transactions


class Watcher:
    def __init__(self, settings: WatcherSettings, node: Node, producer: EventProducer, *,
                 clock: Callable[[], datetime] = _now, slice_blocks: int = 500) -> None:
        self.settings = settings
        self.node = node
        self.producer = producer
        self.output = Output(producer, SOURCE)
        self.clock = clock
        self.slice_blocks = slice_blocks
        self.view = ChainView.new(settings.chain_id, settings.window)
        self.tracker = Tracker(settings.chain_id, settings.confirmations)
        self.counters = Counters()
        self.wake = asyncio.Event()
        codec = producer.codec
        bootstrap = settings.base.kafka_bootstrap
        self.tx_reader = TopicReader(bootstrap, codec, settings.tx_topic,
                                     lambda record, _: self.tracker.evolve(record),
                                     name="omc.watcher.read")
        self.chain_reader = TopicReader(bootstrap, codec, settings.chain_topic,
                                        lambda record, _: self.view.evolve(record),
                                        name="omc.watcher.read")
        self._tx_task: asyncio.Task | None = None

    # -- life ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Check the node's chain id; rebuild the chain aggregate, the receipts aggregates and
        the pending set from the log; keep following the tx topic."""
        chain_id = await self.node.chain_id()
        if chain_id != self.settings.chain_id:
            raise WrongChain(f"the node serves chain {chain_id}, not the configured "
                             f"{self.settings.chain_id} (OMC_WATCHER_CHAIN_ID)")
        await self.chain_reader.read_to_end(timeout=REBUILD_SECONDS)
        self._tx_task = asyncio.get_running_loop().create_task(self.tx_reader.run())
        await self.tx_reader.wait_current(timeout=REBUILD_SECONDS)
        gc.freeze()  # the rebuilt state lives as long as the process: out of the collector's
        # sight, so that a backfill's allocations do not rescan it (full collections took
        # about a fifth of a 5,000-block backfill before)
        head = self.view.window.head
        log.info("chain %s: recorded head %s, %d open transaction requests, %d subscriptions",
                 self.settings.chain_id, head.number if head else None,
                 len(self.tracker.open_requests()), len(self.settings.subscriptions))

    async def close(self) -> None:
        self.tx_reader.stop()
        if self._tx_task is not None:
            with contextlib.suppress(Exception):
                await self._tx_task
        await self.node.close()

    async def run(self, stop: asyncio.Event, *, retries: int = 8,
                  started: Callable[[], None] = lambda: None) -> None:
        """Start (then call `started`), then step on every newHeads notification (or every
        poll interval) until `stop` is set. Node errors are retried with backoff, `retries`
        in a row at most."""
        await self.start()
        started()
        heads = None
        if self.settings.ws_url:
            heads = asyncio.get_running_loop().create_task(
                follow_heads(self.settings.ws_url, self.wake, stop))
        failures = 0
        try:
            while not stop.is_set():
                self.wake.clear()
                try:
                    await self.step()
                    failures = 0
                except ChainUnavailable as error:
                    failures += 1
                    if failures >= retries:
                        raise
                    log.warning("node: %s (attempt %d of %d)", error, failures, retries)
                    await _sleep_or(stop, min(0.5 * 2 ** failures, 30))
                    continue
                if self._tx_task is not None and self._tx_task.done():
                    self._tx_task.result()  # the tx follower died: raise its error
                    raise WatcherError(f"stopped following {self.settings.tx_topic}")
                await _sleep_or(stop, self.settings.poll_seconds, self.wake)
        finally:
            if heads is not None:
                heads.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await heads

    # -- one step --------------------------------------------------------------------------

    async def step(self) -> None:
        node_head = await self.node.block_number()
        await self._advance(node_head)
        await self._scan()
        await self._receipts()
        self.counters.steps += 1

    def _next_numbers(self, node_head: int, after: int | None) -> Sequence[int]:
        """The blocks to fetch after block `after` (None: nothing recorded yet)."""
        if after is None or node_head <= after:
            return [node_head]
        start = max(after + 1, node_head - self.view.window.size + 1)
        return range(start, min(node_head, start + self.slice_blocks - 1) + 1)

    async def _advance(self, node_head: int) -> None:
        window = self.view.window
        prefetched: asyncio.Task | None = None
        try:
            while True:
                head = window.head
                if prefetched is not None:
                    branch, prefetched = await prefetched, None
                else:
                    branch = await self.node.blocks(
                        self._next_numbers(node_head, head.number if head else None))
                if not branch:
                    return
                verdict = detect(window, branch)
                while isinstance(verdict, NeedBlock):
                    floor = window.floor or 0
                    earlier = await self.node.blocks(
                        range(max(floor, verdict.number - WALK_BACK + 1), verdict.number + 1))
                    if not earlier or earlier[-1].number != verdict.number:
                        return
                    branch = earlier + branch
                    verdict = detect(window, branch)
                if isinstance(verdict, Inconsistent):
                    log.info("the node changed while blocks were fetched (%s); again next "
                             "step", verdict.reason)
                    return
                if isinstance(verdict, TooDeep):
                    raise ReorgTooDeep(
                        f"chain {self.settings.chain_id} forked below block {verdict.floor}, "
                        f"the oldest of the {window.size} kept: raise OMC_WATCHER_WINDOW and "
                        "rebuild")
                if isinstance(verdict, Reorg):
                    self.counters.reorgs += 1
                    log.warning("reorg on chain %s: %d block(s) above %d replaced",
                                self.settings.chain_id, len(verdict.removed),
                                verdict.ancestor.number)
                last = verdict.added[-1].number if verdict.added else None
                more = (isinstance(verdict, Extend) and last is not None and last < node_head)
                if more:  # fetch the next slice while this one is written
                    prefetched = asyncio.ensure_future(
                        self.node.blocks(self._next_numbers(node_head, last)))
                await self._write(self.view.advance(verdict))
                self.counters.blocks += len(verdict.added)
                await self._write_traced(self.tracker.orphaned(window))  # TxReorged
                if not more:
                    return
        finally:
            if prefetched is not None:
                prefetched.cancel()
                with contextlib.suppress(BaseException):
                    await prefetched

    async def _scan(self) -> None:
        head = self.view.window.head
        if head is None:
            return
        chunk = self.settings.log_chunk
        for sub in self.settings.subscriptions:
            start = self.view.resume_from(sub.id, sub.from_block)
            for _ in range(SCAN_BATCHES_PER_STEP):  # a long backfill goes on next step
                if start > head.number:
                    break
                ranges = []
                at = start
                while at <= head.number and len(ranges) < CHUNKS_PER_BATCH:
                    end = min(at + chunk - 1, head.number)
                    ranges.append((at, end))
                    at = end + 1
                found = await self.node.logs([sub.filter(a, b) for a, b in ranges], sub.decode)
                logs = [entry for entries in found for entry in entries]
                emits = self.view.observe_logs(sub.id, logs)
                if emits is None:
                    log.info("subscription %s: logs from a block the window holds under "
                             "another hash; again next step", sub.id)
                    break
                await self._write(emits)
                self.counters.logs += len(emits)
                self.view.scanned[sub.id] = ranges[-1][1]
                start = ranges[-1][1] + 1

    async def _receipts(self) -> None:
        window = self.view.window
        pending = self.tracker.pending_hashes()
        if pending:
            await self._write_traced(
                self.tracker.include(await self.node.receipts(pending), window))
        due = self.tracker.due(window)
        if due:
            hashes = [r.included.tx_hash for r in due if r.included is not None]
            await self._write_traced(
                self.tracker.settle(await self.node.receipts(hashes), window))

    async def _write_traced(self, emits: list[Emit]) -> None:
        """`_write`, with (tracing on) a span per receipts event (TxIncluded, TxConfirmed,
        TxFailed, TxReorged), child of its request's trace (its TxSigned's context), whose
        context the event carries."""
        if not emits or not tracing.enabled():
            return await self._write(emits)
        spans = [tracing.start(
            f"watcher {emit.record.SCHEMA}", traceparent=emit.traceparent,
            kind=SpanKind.CONSUMER, **{
                "omc.request_id": getattr(emit.record, "request_id", None),
                "omc.tx_hash": getattr(emit.record, "tx_hash", None),
                "omc.block_number": getattr(emit.record, "block_number", None),
                "omc.correlation_id": emit.correlation_id}) for emit in emits]
        try:
            return await self._write([
                dataclasses.replace(emit, traceparent=tracing.traceparent_of(span)[0])
                for emit, span in zip(emits, spans, strict=True)])
        finally:
            for span in spans:
                span.end()

    # -- writing ---------------------------------------------------------------------------

    async def _write(self, emits: list[Emit]) -> None:
        """Seal, produce, await every ack, then fold into the state (the chain aggregate's
        events as (envelope, draft) pairs, without building the sealed records)."""
        if not emits:
            return
        heads: dict[tuple[str, str], ChainHead] = {}
        items: list[tuple[str, str, Record, EventMeta, bytes]] = []
        now = self.clock()
        for emit in emits:
            where = (emit.aggregate_type, emit.aggregate_id)
            head = heads.get(where) or (
                self.view.head if emit.aggregate_type == CHAIN
                else self.tracker.heads.get(emit.aggregate_id, ChainHead()))
            meta, body, heads[where] = self.output.seal(emit, head, now, ACTOR)
            topic = (self.settings.chain_topic if emit.aggregate_type == CHAIN
                     else self.settings.tx_topic)
            items.append((topic, emit.key, emit.record, meta, body))
        await asyncio.to_thread(self.output.write, items)
        for _, _, draft, meta, _ in items:
            if meta.aggregate_type == CHAIN:
                self.view.fold(meta, draft)
            else:
                record = dataclasses.replace(draft, meta=meta)
                self.tracker.evolve(record)
                self.counters.receipts_events += 1
                if isinstance(record, TxConfirmed):
                    self._spent(record)


    def _spent(self, confirmed: TxConfirmed) -> None:
        """Count the gas (and fee) a confirmed transaction spent, from its inclusion."""
        request = self.tracker.requests.get(confirmed.request_id)
        included = request.included if request is not None else None
        if included is not None and included.tx_hash == confirmed.tx_hash:
            self.counters.gas_used += included.gas_used
            self.counters.fees_wei += included.gas_used * int(included.effective_gas_price_wei)


async def _sleep_or(stop: asyncio.Event, seconds: float,
                    wake: asyncio.Event | None = None) -> None:
    waiters = [asyncio.ensure_future(stop.wait())]
    if wake is not None:
        waiters.append(asyncio.ensure_future(wake.wait()))
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
