"""The transaction manager's loop: requests in, signed and broadcast transactions out.

    consumes   omc.tx.events.v1 (every record: TxRequested to act on; its own chain and the
               chain watcher's receipts to know what is signed, sent, included, confirmed)
    produces   omc.tx.events.v1, aggregate ("account", "<chain_id>:<sender>"), key the same,
               chained (sequence 1, 2, …; prev_hash): TxSigned, TxBroadcast, TxReplaced,
               TxFailed (failures before inclusion); omc.deadletter.v1 (poison messages)
    group      omc.txmanager — partitions by key, so one instance writes each account
    guarantee  at-least-once in, effectively once out: TxSigned is acknowledged by Kafka
               (acks=all) BEFORE its bytes go to a node, so a crash after signing rebroadcasts
               the same bytes (same hash) and never signs a second transaction for a request;
               event ids are derived from the causing event and a position, so a retry writes
               the same ids; input offsets are committed only after every output is
               acknowledged; each request_id is handled once, however often it was written
    broadcast  signed transactions leave in JSON-RPC batches (`Limits.broadcast_slice`, 100)
               from one sender thread, in the order they were signed, while the loop signs
               the next slice; the node's answers are recorded (TxBroadcast, or the error
               table below) by the loop as they come back, always before the partition is
               given up or the process closes. A crash before they are recorded leaves the
               transactions signed and unsettled: the restart rebroadcasts the same bytes
    state      per account, folded from the log (omc_domain.account): on assignment a
               partition is read from offset 0 (or where this process already is) up to its
               end before anything is signed; then nonces are reconciled with the chain and
               every signed, unsettled transaction is rebroadcast. In memory only: for each
               pending transaction, the head at the first tick that saw it as the account's
               next nonce on chain (stuck detection counts from there; a restart restarts it)

Node errors, and what the tx manager does (deterministic; the node's message is the detail).
"first" is the first transaction of a request; "later" a rebroadcast or a replacement:

    eth_estimateGas  ExecutionReverted    TxFailed REVERTED (nothing signed, no nonce)
    eth_estimateGas  InsufficientFunds    TxFailed INSUFFICIENT_FUNDS (nothing signed)
    eth_estimateGas  other NodeRefused    TxFailed REJECTED_BY_RPC (nothing signed)
    send raw tx      AlreadyKnown         TxBroadcast already_known=true (first and later)
    send raw tx      NonceTooLow          hash known to the node: TxBroadcast already_known;
                                          first: re-signed once at the chain's pending nonce
                                          (the nonce was used outside), again: TxFailed
                                          NONCE_TOO_LOW; later: nothing (another tx has the
                                          nonce; the watcher says which)
    send raw tx      Underpriced          first: TxFailed UNDERPRICED; later: nothing
    send raw tx      InsufficientFunds    first: TxFailed INSUFFICIENT_FUNDS; later: nothing
    send raw tx      other NodeRefused    first: TxFailed REJECTED_BY_RPC; later: nothing
                                          ("nothing": the earlier tx stays, the stuck timer
                                          tries again after N more blocks)
    any call         ChainUnavailable     every endpoint failed after backoff: retried on
                                          the next step/tick; a signed tx is rebroadcast,
                                          never re-signed; requests not signed yet wait
    stuck timer      not included after   TxSigned(replaces_tx_hash) → ack → broadcast →
                     N blocks             TxBroadcast, TxReplaced; after K replacements or
                                          at the cap: TxFailed REPLACEMENT_CAP
    timer            a CANCEL confirmed   the target: TxFailed CANCELLED (detail: the cancel
                                          request and its transaction)
    timer            the target confirmed the CANCEL: TxFailed NONCE_TOO_LOW ("too late")
                     before its CANCEL

A failure of a transaction no node accepted frees its nonce for the next request. Kafka
errors (an unacknowledged write, a broker gone) and registry outages are not handled here:
they propagate, and `python -m omc_txmanager` exits non-zero for its supervisor to restart
it; the restart rebuilds from the log.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass
from datetime import UTC, datetime

import fastavro
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from opentelemetry.trace import Span, SpanKind

from omc_chain.errors import ChainUnavailable
from omc_chain.signer import Signers
from omc_domain import account as accounts
from omc_domain.account import AccountState, Failure, Fees, Replace, SentTx
from omc_domain.draft import DRAFT
from omc_events.chain import chain_hash
from omc_events.codec import CodecError
from omc_events.envelope import derived_id, headers
from omc_events.record import Record
from omc_events.records import (
    EventMeta,
    TxBroadcast,
    TxFailed,
    TxFailureCode,
    TxPurpose,
    TxReplaced,
    TxRequested,
    TxSigned,
)
from omc_kafka.deadletter import DeadLetters
from omc_kafka.producer import DeliveryFailed, EventProducer
from omc_obs import tracing
from omc_obs.handling import bound_to
from omc_txmanager.fees import market_fees
from omc_txmanager.metrics import Metrics
from omc_txmanager.rpc import (
    ExecutionReverted,
    InsufficientFunds,
    NodeRefused,
    NonceTooLow,
    Rpc,
    Underpriced,
)
from omc_txmanager.wire import Wire

log = logging.getLogger("omc_txmanager")

ACTOR = "svc:tx-manager"
SOURCE = "omc/tx-manager"

_HASH_LENGTH = b"\x80\x01"  # Avro's zig-zag varint of 64, the length of a hash in hex

# positions of derived event ids, per causing event (see docs/envelope.md)
_BY_REQUEST_SIGNED, _BY_REQUEST_FAILED, _BY_REQUEST_REPLACED = 0, 1, 2
_BY_TX_FAILED, _BY_TX_RESIGNED, _BY_TX_REPLACEMENT = 0, 10_000, 10_001
_BY_TX_REPLACED, _BY_TX_CAP, _BY_TX_CANCELLED = 10_002, 10_003, 10_004
_BY_TX_TOO_LATE = 10_005


@dataclass(frozen=True)
class _InFlight:
    """A batch handed to the sender thread: its account, transactions, answer to come."""

    key: str
    batch: list[tuple[SentTx, Replace | None]]
    future: Future
    spans: list  # its broadcast spans (tracing on), ended once the answers are recorded
    parents: dict  # request id -> the request's span, which the answers' events carry


@dataclass(frozen=True)
class Limits:
    stuck_blocks: int = 3
    max_replacements: int = 5
    gas_margin_percent: int = 20
    tick_seconds: float = 1.0
    batch: int = 500
    poll_timeout: float = 0.1
    broadcast_slice: int = 100  # signed transactions per JSON-RPC batch sent


def _now() -> datetime:
    return datetime.now(UTC)


def _event_id(message: Message) -> str | None:
    for name, value in message.headers() or ():
        if name == "ce_id" and value is not None:
            return value.decode(errors="replace")
    return None


def _parse_key(key: str) -> tuple[int, str] | None:
    chain, _, sender = key.partition(":")
    if not chain.isdigit() or not sender.startswith("0x"):
        return None
    return int(chain), sender


class TxManager:
    """See the module docstring. One instance per process; not thread-safe."""

    def __init__(self, consumer: Consumer, producer: EventProducer, rpc: Rpc,
                 signers: Signers, *, topic: str, chain_id: int, dead_letters: DeadLetters,
                 limits: Limits | None = None, metrics: Metrics | None = None,
                 clock: Callable[[], datetime] = _now) -> None:
        self.consumer = consumer
        self.producer = producer
        self.codec = producer.codec
        self.dead_letters = dead_letters
        self._echoes: set[str] = set()  # ids this process wrote and already folded
        self._prefixes: dict[str, bytes] = {}
        self._undelivered: list[str] = []
        self._unpolled = 0
        self._wire = Wire(producer.codec.schemas)
        self.rpc = rpc
        self.signers = signers
        self.topic = topic
        self.chain_id = chain_id
        self.limits = limits or Limits()
        self.metrics = metrics or Metrics()
        self.clock = clock
        self.states: dict[str, AccountState] = {}
        self.homes: dict[str, int] = {}
        self.positions: dict[int, int] = {}
        self.targets: dict[int, int] = {}
        self.assigned: set[int] = set()
        self.reconciled: set[str] = set()
        self.since: dict[str, int] = {}
        self.head: int | None = None
        self._tick_at = 0.0
        self._market: Fees | None = None
        self._warned: set[str] = set()
        self.counts = {"signed": 0, "broadcast": 0, "replaced": 0, "failed": 0}
        self._sender = ThreadPoolExecutor(1, thread_name_prefix="omc-txmanager-send")
        self._sender_rpc = rpc.twin()  # made now: a client's TLS set-up takes ~50 ms
        self._in_flight: list[_InFlight] = []
        self._sending: set[str] = set()  # hashes handed to the sender, answer not recorded
        self._spans: dict[str, Span] = {}  # request id -> its span, while it is signed and sent

    # -- Kafka side ---------------------------------------------------------------------------

    def subscribe(self) -> None:
        self.consumer.subscribe([self.topic], on_assign=self._on_assign,
                                on_revoke=self._on_revoke, on_lost=self._on_revoke)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            _, high = consumer.get_watermark_offsets(TopicPartition(self.topic, tp.partition),
                                                     timeout=10, cached=False)
            self.targets[tp.partition] = high
            tp.offset = self.positions.get(tp.partition, OFFSET_BEGINNING)
            self.assigned.add(tp.partition)
        consumer.assign(partitions)
        log.info("assigned %s", ", ".join(f"{self.topic}/{tp.partition} (catch up to "
                                          f"{self.targets[tp.partition]})" for tp in partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._guarded(self._collect, True)  # outcomes recorded while the accounts are ours
        revoked = {tp.partition for tp in partitions}
        self.assigned -= revoked
        for partition in revoked:
            self.targets.pop(partition, None)
        self.reconciled = {k for k in self.reconciled if self.homes.get(k) not in revoked}
        self._echoes.clear()  # whoever reads these partitions next decodes everything

    def caught_up(self, partition: int) -> bool:
        return (partition in self.assigned
                and self.positions.get(partition, 0) >= self.targets.get(partition, 1 << 62))

    def ready(self) -> bool:
        """Whether every assigned partition is read up to where it was on assignment."""
        return bool(self.assigned) and all(self.caught_up(p) for p in self.assigned)

    # -- the loop -----------------------------------------------------------------------------

    def run(self, should_stop: Callable[[], bool]) -> None:
        """Subscribe and step until `should_stop()` (checked between batches), then close."""
        self.subscribe()
        try:
            while not should_stop():
                self.step()
        finally:
            self.close()

    def step(self) -> int:
        """Read one batch, fold it, act on the accounts this process owns, tick, commit."""
        deliveries = self._poll()
        touched: set[str] = set()
        for message, record in deliveries:
            self.positions[message.partition()] = message.offset() + 1
            if record is None:  # dead-lettered, or our own record folded when written
                continue
            key = record.meta.aggregate_id  # type: ignore[attr-defined]
            state = self.states.get(key)
            if state is None:
                if _parse_key(key) is None:
                    continue
                state = self.states[key] = AccountState.of(key)
            self.homes[key] = message.partition()
            accounts.evolve(state, record)
            touched.add(key)
        self._market = None
        for key in self._owned():
            if key in touched or key not in self.reconciled:
                self._guarded(self._act, key)
        if self._in_flight and not deliveries:  # nothing new to sign: await the node's answer
            wait_for([self._in_flight[0].future], timeout=self.limits.poll_timeout,
                     return_when=FIRST_COMPLETED)
        self._guarded(self._collect)
        if time.monotonic() - self._tick_at >= self.limits.tick_seconds:
            self._tick_at = time.monotonic()
            self._guarded(self._tick)
        self._flush()
        if deliveries:
            self._commit()
        return len(deliveries)

    def _poll(self) -> list[tuple[Message, Record | None]]:
        """The next batch: each message with its record, or None for a poison message (sent
        to the dead-letter topic and acknowledged first) and for a record this process wrote
        and folded already (not decoded again). `RegistryUnavailable` propagates. While a
        broadcast is in flight it does not wait for messages (the answer is awaited instead)."""
        found: list[tuple[Message, Record | None]] = []
        timeout = 0 if self._in_flight else self.limits.poll_timeout
        for message in self.consumer.consume(num_messages=self.limits.batch, timeout=timeout):
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(error)
            if self._echoes and _event_id(message) in self._echoes:
                self._echoes.discard(_event_id(message))
                found.append((message, None))
                continue
            try:
                found.append((message, self.codec.decode(message.value())))
            except CodecError as poison:
                self.dead_letters.send(message, poison)
                found.append((message, None))
        return found

    def _guarded(self, action: Callable[..., None], *args: object) -> None:
        try:
            action(*args)
        except ChainUnavailable as error:
            self.metrics.chain_unavailable.inc()
            log.warning("the chain is unavailable; retrying on the next step: %s", error)
        finally:
            self._flush()  # whatever was written is acknowledged before going on

    def _commit(self) -> None:
        try:
            self.consumer.commit(asynchronous=False)
        except KafkaException as error:
            if error.args[0].code() != KafkaError._NO_OFFSET:
                raise

    def _owned(self) -> list[str]:
        """Accounts of this chain whose partition is assigned and read to its end, and whose
        key this process holds."""
        owned = []
        for key, partition in self.homes.items():
            if not self.caught_up(partition):
                continue
            parsed = _parse_key(key)
            if parsed is None or parsed[0] != self.chain_id:
                continue
            if parsed[1] not in self.signers:
                if key not in self._warned:
                    self._warned.add(key)
                    log.warning("no key for account %s in this process: its requests wait",
                                key)
                continue
            owned.append(key)
        return owned

    def close(self) -> None:
        try:
            self._guarded(self._collect, True)  # the answers of what was sent are recorded
            self._flush()
        finally:
            self._sender.shutdown(wait=True)
            self._sender_rpc.close()
            try:
                self.consumer.close()
            except (KafkaException, RuntimeError):
                log.debug("closing the consumer failed", exc_info=True)

    # -- acting on one account ----------------------------------------------------------------

    def _act(self, key: str) -> None:
        state = self.states[key]
        if key not in self.reconciled:
            self._reconcile(state)
            self.reconciled.add(key)
        self._sign_pending(state)

    def _reconcile(self, state: AccountState) -> None:
        latest = self.rpc.nonce(state.sender, "latest")
        pending_nonce = self.rpc.nonce(state.sender, "pending")
        found = accounts.reconcile(state, latest, pending_nonce)
        if found.used_outside:
            log.warning("account %s: the chain's pending nonce %d is above the log's; the "
                        "account was used outside the tx manager, continuing at %d",
                        state.key, pending_nonce, accounts.next_nonce(state))
        if found.rebroadcast:
            log.info("account %s: rebroadcasting %d signed, unsettled transaction(s)%s",
                     state.key, len(found.rebroadcast),
                     " (the chain lost some: nonce gap)" if found.gap else "")
        for tx in found.rebroadcast:  # their stuck count starts at the next tick
            self._send(state, tx, rebroadcast=True)

    def _market_fees(self) -> Fees:
        if self._market is None:
            self._market = market_fees(self.rpc)
        return self._market

    def _sign_pending(self, state: AccountState) -> None:
        requests = accounts.pending(state)
        if not requests:
            return
        signed: list[tuple[SentTx, Replace | None]] = []
        if tracing.enabled():  # a span per request, parent of its sign and broadcast spans
            self._spans = {r.request_id: tracing.start(
                f"txmanager {TxRequested.SCHEMA}", traceparent=r.meta.traceparent,
                tracestate=r.meta.tracestate, kind=SpanKind.CONSUMER,
                **{"omc.request_id": r.request_id, "omc.event_id": r.meta.event_id,
                   "omc.correlation_id": r.meta.correlation_id, "omc.account": state.key})
                for r in requests}
        try:
            try:
                market = self._market_fees()
                for request in requests:
                    if len(signed) >= self.limits.broadcast_slice:  # sent while the next
                        self._flush()  # are signed (TxSigned acknowledged BEFORE broadcast)
                        self.broadcast(state, signed)
                        signed = []
                    with bound_to(request), self._traced(request.request_id, "sign"):
                        if request.purpose == TxPurpose.CANCEL:
                            decision = accounts.cancellation(state, request, market)
                            if isinstance(decision, Failure):
                                self._fail(state, decision, request.meta.event_id,
                                           _BY_REQUEST_FAILED)
                                continue
                            signed.append((self._sign_replacement(
                                state, decision, request.meta.event_id, _BY_REQUEST_SIGNED),
                                decision))
                            continue
                        tx = self._sign_new(state, request)
                        if tx is not None:
                            signed.append((tx, None))
            except ChainUnavailable as error:  # what is signed is still sent below
                log.warning("account %s: the chain is unavailable, the remaining requests "
                            "wait: %s", state.key, error)
            self._flush()  # TxSigned acknowledged BEFORE anything is broadcast
            self.broadcast(state, signed)
        finally:
            spans, self._spans = self._spans, {}
            for span in spans.values():
                span.end()

    @contextlib.contextmanager
    def _traced(self, request_id: str, name: str) -> Iterator[None]:
        """A child span of the request's span (nothing when it has none: tracing off)."""
        parent = self._spans.get(request_id)
        if parent is None:
            yield
            return
        with tracing.within(parent), tracing.child(name):
            yield

    def _sign_new(self, state: AccountState, request: TxRequested) -> SentTx | None:
        try:
            gas = request.gas_limit or self._estimate(state, request)
        except NodeRefused as refused:
            code = (TxFailureCode.REVERTED if isinstance(refused, ExecutionReverted)
                    else TxFailureCode.INSUFFICIENT_FUNDS
                    if isinstance(refused, InsufficientFunds)
                    else TxFailureCode.REJECTED_BY_RPC)
            self._fail(state, Failure(request.request_id, code,
                                      f"gas estimation: {refused.node_message}"),
                       request.meta.event_id, _BY_REQUEST_FAILED)
            return None
        fees = accounts.initial_fees(self._market_fees(), int(request.max_fee_per_gas_cap_wei))
        return self._sign(state, request.request_id, accounts.next_nonce(state), request.to,
                          int(request.value_wei), request.data, gas, fees, None,
                          request.meta.event_id, _BY_REQUEST_SIGNED)

    def _estimate(self, state: AccountState, request: TxRequested) -> int:
        estimate = self.rpc.estimate_gas({"from": state.sender, "to": request.to,
                                          "value": hex(int(request.value_wei)),
                                          "data": request.data})
        return estimate * (100 + self.limits.gas_margin_percent) // 100

    def _sign(self, state: AccountState, request_id: str, nonce: int, to: str, value: int,
              data: str, gas: int, fees: Fees, replaces: str | None, cause: str,
              position: int) -> SentTx:
        signer = self.signers[state.sender]
        raw, tx_hash = signer.sign_transaction({
            "type": 2, "chainId": state.chain_id, "nonce": nonce, "gas": gas,
            "maxFeePerGas": fees.max_fee, "maxPriorityFeePerGas": fees.max_priority,
            "to": to, "value": value, "data": data})
        self._emit(state, TxSigned(
            meta=DRAFT, request_id=request_id, chain_id=state.chain_id, sender=state.sender,
            nonce=nonce, tx_hash=tx_hash, raw_tx=raw, gas_limit=gas,
            max_fee_per_gas_wei=str(fees.max_fee),
            max_priority_fee_per_gas_wei=str(fees.max_priority), replaces_tx_hash=replaces),
            request_id, cause, position)
        self.counts["signed"] += 1
        kind = ("replacement" if replaces else "resigned" if position == _BY_TX_RESIGNED
                else "new")
        self.metrics.signed.labels(kind).inc()
        return state.txs[tx_hash]

    def _sign_replacement(self, state: AccountState, decision: Replace, cause: str,
                          position: int) -> SentTx:
        return self._sign(state, decision.request_id, decision.nonce, decision.to,
                          decision.value_wei, decision.data, decision.gas_limit, decision.fees,
                          decision.replaces, cause, position)

    def broadcast(self, state: AccountState,
                  batch: list[tuple[SentTx, Replace | None]]) -> None:
        """Send freshly signed (and acknowledged) transactions in one JSON-RPC batch, in
        nonce order, from the sender thread (batches leave in the order they are handed
        over); `_collect` records what happened to each (TxReplaced too for a replacement)
        while the loop signs the next batch."""
        if not batch:
            return
        spans = [tracing.start("broadcast", parent=self._spans[tx.request_id],
                               kind=SpanKind.CLIENT, **{"omc.tx_hash": tx.tx_hash})
                 for tx, _ in batch if tx.request_id in self._spans]
        future = self._sender.submit(self._sender_rpc.send_raw_many,
                                     [tx.raw_tx for tx, _ in batch])
        parents = {tx.request_id: self._spans[tx.request_id] for tx, _ in batch
                   if tx.request_id in self._spans}
        self._in_flight.append(_InFlight(state.key, batch, future, spans, parents))
        self._sending.update(tx.tx_hash for tx, _ in batch)

    def _collect(self, wait: bool = False) -> None:
        """Record the node's answers to the batches handed to the sender thread, oldest
        first: those it has (all, waiting for them, with `wait`)."""
        while self._in_flight and (wait or self._in_flight[0].future.done()):
            flight = self._in_flight.pop(0)
            try:
                outcomes = flight.future.result()
            except ChainUnavailable as error:  # signed, not sent: the tick sends them again
                log.warning("broadcast of %d transaction(s) waits for the chain: %s",
                            len(flight.batch), error)
                outcomes = None
            finally:
                self._sending.difference_update(tx.tx_hash for tx, _ in flight.batch)
            saved, self._spans = self._spans, flight.parents
            try:
                state = self.states[flight.key]
                for (tx, decision), outcome in zip(flight.batch, outcomes or (), strict=False):
                    with self._about(state, tx.request_id):
                        accepted = self._settle(state, tx, outcome, rebroadcast=False)
                        if accepted and decision is not None:
                            self._replaced(state, tx, decision)
            finally:
                self._spans = saved
                for span in flight.spans:
                    span.end()

    def _replaced(self, state: AccountState, tx: SentTx, decision: Replace) -> None:
        if decision.request_id == decision.replaced_request_id:  # STUCK
            cause, position = state.txs[decision.replaces].signed_event_id, _BY_TX_REPLACED
        else:  # CANCEL: caused by the cancel request
            cause = state.requests[decision.request_id].request.meta.event_id
            position = _BY_REQUEST_REPLACED
        self._emit(state, TxReplaced(
            meta=DRAFT, request_id=decision.replaced_request_id, old_tx_hash=decision.replaces,
            new_tx_hash=tx.tx_hash, nonce=tx.nonce, reason=decision.reason),
            decision.request_id, cause, position)
        self.counts["replaced"] += 1
        self.metrics.replaced.labels(decision.reason.value).inc()

    def _send(self, state: AccountState, tx: SentTx, *, rebroadcast: bool) -> bool:
        """Broadcast `tx`'s bytes alone; see `_settle`."""
        with self._about(state, tx.request_id):
            try:
                outcome: tuple[str, bool] | NodeRefused = self.rpc.send_raw(tx.raw_tx)
            except ChainUnavailable as error:
                log.warning("broadcast of %s waits for the chain: %s", tx.tx_hash, error)
                return False
            except NodeRefused as refused:
                outcome = refused
            return self._settle(state, tx, outcome, rebroadcast=rebroadcast)

    @staticmethod
    def _about(state: AccountState, request_id: str) -> contextlib.AbstractContextManager:
        """Log lines inside carry the request's ids (correlation, task, trace)."""
        found = state.requests.get(request_id)
        return bound_to(found.request) if found is not None else contextlib.nullcontext()

    def _settle(self, state: AccountState, tx: SentTx, outcome: tuple[str, bool] | NodeRefused,
                *, rebroadcast: bool) -> bool:
        """Record a node's answer to `tx`: TxBroadcast when a node has it, else the error
        table (module docstring). Whether a node has it."""
        request = state.requests.get(tx.request_id)
        own_replacement = request is not None and tx.replaces is not None \
            and tx.replaces in request.txs
        try:
            if isinstance(outcome, NodeRefused):
                raise outcome
            endpoint, known = outcome
        except NonceTooLow as refused:
            if self.rpc.transaction(tx.tx_hash) is not None:
                endpoint, known = refused.endpoint, True
            elif rebroadcast or own_replacement or request is None or request.accepted \
                    or request.terminal:
                log.info("%s: nonce %d is used on chain by another transaction", tx.tx_hash,
                         tx.nonce)
                return False
            elif request.repairs == 0 and tx.replaces is None:
                accounts.raise_floor(state, self.rpc.nonce(state.sender, "pending"))
                r = request.request
                log.warning("%s: nonce %d was used outside the tx manager; re-signing request "
                            "%s at nonce %d", tx.tx_hash, tx.nonce, r.request_id,
                            accounts.next_nonce(state))
                again = self._sign(state, r.request_id, accounts.next_nonce(state), r.to,
                                   int(r.value_wei), r.data, tx.gas_limit, tx.fees, None,
                                   tx.signed_event_id, _BY_TX_RESIGNED)
                self._flush()
                return self._send(state, again, rebroadcast=False)
            else:
                self._refused(state, tx, TxFailureCode.NONCE_TOO_LOW, refused)
                return False
        except NodeRefused as refused:
            if rebroadcast or own_replacement or request is None or request.accepted \
                    or request.terminal:
                log.info("%s refused by %s (%s): an earlier transaction stays", tx.tx_hash,
                         refused.endpoint, refused.node_message)
                return False
            code = (TxFailureCode.UNDERPRICED if isinstance(refused, Underpriced)
                    else TxFailureCode.INSUFFICIENT_FUNDS
                    if isinstance(refused, InsufficientFunds)
                    else TxFailureCode.REJECTED_BY_RPC)
            self._refused(state, tx, code, refused)
            return False
        attempt = tx.broadcasts + 1
        self._emit(state, TxBroadcast(meta=DRAFT, request_id=tx.request_id, tx_hash=tx.tx_hash,
                                      rpc_endpoint=endpoint, attempt=attempt,
                                      already_known=known),
                   tx.request_id, tx.signed_event_id, attempt)
        self.counts["broadcast"] += 1
        self.metrics.broadcasts.labels(endpoint, str(known).lower()).inc()
        return True

    def _refused(self, state: AccountState, tx: SentTx, code: TxFailureCode,
                 refused: NodeRefused) -> None:
        self._fail(state, Failure(tx.request_id, code, f"{refused.endpoint}: "
                                  f"{refused.node_message}", tx.tx_hash, tx.nonce),
                   tx.signed_event_id, _BY_TX_FAILED)

    def _fail(self, state: AccountState, failure: Failure, cause: str, position: int) -> None:
        self._emit(state, TxFailed(meta=DRAFT, request_id=failure.request_id,
                                   tx_hash=failure.tx_hash, nonce=failure.nonce,
                                   code=failure.code, detail=failure.detail[:2000]),
                   failure.request_id, cause, position)
        self.counts["failed"] += 1
        self.metrics.failed.labels(failure.code.value).inc()

    def _emit(self, state: AccountState, record: Record, request_id: str, cause: str,
              position: int) -> Record:
        """Seal `record` after the account's head, fold it, queue it (`_flush` acknowledges).

        The same bytes as `omc_events.chain.seal` then `EventProducer.send`, with one Avro
        encoding instead of two: the canonical body (meta.hash = "") is hashed, and the hash
        spliced into it where the envelope puts it (the end of `meta`, the first field, right
        after prev_hash). The record is encoded from its draft's Avro datum with the envelope
        put in (no unsealed copy of the record is built).
        """
        request = state.requests[request_id].request
        head = state.head
        span = self._spans.get(request_id)  # while it is handled (tracing on): its span's
        traceparent, tracestate = (tracing.traceparent_of(span) if span is not None
                                   else (request.meta.traceparent, request.meta.tracestate))
        envelope = {
            "event_id": derived_id(cause, position), "event_type": record.SCHEMA,
            "schema_version": 1, "aggregate_type": accounts.ACCOUNT, "aggregate_id": state.key,
            "sequence": head.sequence + 1, "occurred_at": self.clock(),
            "tenant": request.meta.tenant, "actor": ACTOR,
            "correlation_id": request.meta.correlation_id, "causation_id": cause,
            "traceparent": traceparent, "tracestate": tracestate, "prev_hash": head.hash,
            "hash": ""}
        canonical = self._canonical(record, envelope)
        digest = chain_hash(head.hash, canonical)
        envelope["hash"] = digest
        sealed = dataclasses.replace(record, meta=EventMeta(**envelope))
        prefix = self._prefixes.get(record.SCHEMA)
        if prefix is None:  # the registry's id, looked up (and checked) once per record type
            prefix = self._prefixes[record.SCHEMA] = self.codec.encode(self.topic, sealed)[:5]
        marker = _HASH_LENGTH + head.hash.encode() + b"\x00"  # prev_hash, then hash = ""
        at = canonical.find(marker) + len(marker) - 1  # the envelope's first field: the
        if at < len(marker) - 1:                       # first match is its own
            at = len(self.codec.schemas.encode(sealed.meta)) - 66  # (hash: 66 bytes)
        value = b"".join((prefix, canonical[:at], _HASH_LENGTH, digest.encode(),
                          canonical[at + 1:]))
        meta = sealed.meta
        accounts.evolve(state, sealed)
        self.producer.producer.produce(self.topic, value=value, key=state.key,
                                       headers=headers(sealed.meta, SOURCE),
                                       on_delivery=self._delivered)
        self._unpolled += 1
        if self._unpolled >= 256:  # delivery reports served now and then (and by _flush)
            self._unpolled = 0
            self.producer.producer.poll(0)
        self._echoes.add(meta.event_id)
        return sealed

    def _canonical(self, draft: Record, envelope: dict) -> bytes:
        """The Avro bytes of `draft` with `envelope` (EventMeta's fields) as its meta:
        written directly for TxSigned and TxBroadcast (`omc_txmanager.wire`), by fastavro
        for the others."""
        direct = self._wire.encode(draft, envelope)
        if direct is not None:
            return direct
        schemas = self.codec.schemas
        datum = draft.to_avro()
        datum["meta"] = envelope
        buffer = io.BytesIO()
        try:
            fastavro.schemaless_writer(buffer, schemas.parsed(draft.SCHEMA), datum)
        except (ValueError, TypeError, AttributeError, KeyError, OverflowError):
            # the codec's path names the bad field (RecordInvalid)
            return schemas.encode(dataclasses.replace(draft, meta=EventMeta(**envelope)))
        return buffer.getvalue()

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._undelivered.append(f"{message.topic()}: {error.str()}")

    def _flush(self) -> None:
        """Wait until Kafka acknowledged everything written; `DeliveryFailed` otherwise."""
        self.producer.flush()
        failures, self._undelivered = self._undelivered, []
        if failures:
            raise DeliveryFailed("Kafka did not acknowledge: " + "; ".join(failures))

    # -- the timer: retries, stuck transactions, cancels --------------------------------------

    def _tick(self) -> None:
        owned = self._owned()
        self._gauges(owned)
        if not owned:
            return
        self.head = head = self.rpc.block_number()
        for key in owned:
            if key not in self.reconciled:
                continue
            state = self.states[key]
            self._sign_pending(state)  # requests left waiting by an unavailable chain
            for tx in accounts.unbroadcast(state):
                if tx.tx_hash not in self._sending:  # (the sender thread has those)
                    self._send(state, tx, rebroadcast=False)
            for request in state.requests.values():
                if request.status == accounts.Status.SIGNED and request.accepted and request.txs:
                    self.since.setdefault(request.txs[-1], head)
            stuck = accounts.stuck(state, head, self.since, self.limits.stuck_blocks)
            if stuck:
                self._replace(state, stuck, head)
            for target, cancel in accounts.cancelled(state):
                last = state.latest_tx(target)
                by = state.latest_tx(cancel)
                assert by is not None
                self._fail(state, Failure(
                    target.request_id, TxFailureCode.CANCELLED,
                    f"cancelled by request {cancel.request_id}: its transaction {by.tx_hash} "
                    f"used nonce {by.nonce} and is confirmed", last.tx_hash if last else None,
                    by.nonce), by.signed_event_id, _BY_TX_CANCELLED)
            for cancel, target in accounts.too_late(state):
                by = state.latest_tx(cancel)
                assert by is not None
                self._fail(state, Failure(
                    cancel.request_id, TxFailureCode.NONCE_TOO_LOW,
                    f"too late to cancel request {target.request_id}: its transaction "
                    f"{target.included} is confirmed at nonce {by.nonce}", by.tx_hash,
                    by.nonce), by.signed_event_id, _BY_TX_TOO_LATE)

    def _gauges(self, owned: list[str]) -> None:
        pending = unsettled = 0
        waiting: set[str] = set()
        by_state = dict.fromkeys(accounts.Status, 0)
        for key in owned:
            for request in self.states[key].requests.values():
                by_state[request.status] += 1
                pending += request.status == accounts.Status.REQUESTED
                if request.status == accounts.Status.SIGNED:
                    unsettled += 1
                    waiting.update(request.txs)
        if len(self.since) > 2 * len(waiting) + 1000:  # forget settled transactions
            self.since = {h: b for h, b in self.since.items() if h in waiting}
        self.metrics.pending.set(pending)
        self.metrics.unsettled.set(unsettled)
        for status, count in by_state.items():
            self.metrics.requests.labels(status.value).set(count)
        self.metrics.rpc_failovers.set(self.rpc.failovers)

    def _replace(self, state: AccountState, stuck: list[accounts.RequestState],
                 head: int) -> None:
        mined = self.rpc.nonce(state.sender, "latest")
        accounts.raise_floor(state, mined)
        market = self._market_fees()
        for request in stuck:
            last = state.latest_tx(request)
            assert last is not None
            if last.nonce < mined:
                continue  # one of its transactions (or another) is mined: the watcher says
            if last.nonce > mined:  # it waits behind a lower nonce, not for its fee: its
                self.since[last.tx_hash] = head  # count starts when it is next in line
                continue
            decision = accounts.replacement(state, request, market,
                                            self.limits.max_replacements)
            if isinstance(decision, Failure):
                self._fail(state, decision, last.signed_event_id, _BY_TX_CAP)
                continue
            new = self._sign_replacement(state, decision, last.signed_event_id,
                                         _BY_TX_REPLACEMENT)
            self._flush()  # acknowledged before broadcast
            with bound_to(request.request):
                log.info("request %s stuck since block %d at nonce %d: replacing %s by %s "
                         "(max fee %d -> %d wei)", request.request_id,
                         self.since.get(last.tx_hash, -1), last.nonce, last.tx_hash,
                         new.tx_hash, last.fees.max_fee, new.fees.max_fee)
            self.broadcast(state, [(new, decision)])
            self.since[new.tx_hash] = head
            self.since[last.tx_hash] = head


__all__ = ["ACTOR", "SOURCE", "Limits", "TxManager"]
