"""The account aggregate: one sender on one chain, folded from omc.tx.events.v1.

    account_key(chain_id, sender)              "<chain_id>:<sender>" (the topic's key)
    AccountState.of(key)                        an empty account
    evolve(state, record)            -> state   folds TxRequested (self-hashed requests),
                                                the tx manager's chain (aggregate "account":
                                                TxSigned, TxBroadcast, TxReplaced, TxFailed)
                                                and the watcher's (aggregate "receipts":
                                                TxIncluded, TxConfirmed, TxReorged, TxFailed)
    next_nonce(state)                -> int     the nonce the next new transaction takes
    pending(state)                   -> [TxRequested]   requests to sign, in arrival order
    reconcile(state, latest, pending) -> Reconciliation  the log against the chain at start
    raise_floor(state, nonce)                   the chain used every nonce below `nonce`
    unbroadcast(state)               -> [SentTx]  signed, never accepted by a node, live
    stuck(state, head, since, after_blocks) -> [RequestState]  to replace
    replacement(state, request, market, max_replacements) -> Replace | Failure
    cancellation(state, cancel_request, market) -> Replace | Failure
    cancelled(state)                 -> [(target, cancel)]  targets whose cancel confirmed
                                                (they end with TxFailed CANCELLED)
    too_late(state)                  -> [(cancel, target)]  cancels whose target confirmed
                                                first (they end with TxFailed NONCE_TOO_LOW)
    initial_fees(market, cap), replacement_fees(old, market, cap), bump(fee)

Pure: no clock, no random, no I/O. The shell passes what it learnt from the chain (nonces,
fees, the head) in and records the outcome as events. For speed over long logs the fold
updates `state` in place and returns it; replaying the same records gives the same state.

Every record is applied once: requests by request_id (the same request may be written twice),
chained events by their aggregate's sequence (a record at or below the head is a repeat).

Nonces: the next nonce is the lowest nonce, at or above the floor learnt from the chain, that
no live transaction of the log holds. A transaction is live once signed, unless its request
failed before any node accepted it (insufficient funds, rejected, underpriced), which frees
its nonce for the next request. At start the chain's nonces are compared with the log's:
a chain nonce below a signed, unsettled nonce means the node lost it (rebroadcast it, same
bytes); a chain pending nonce above the log's next nonce means someone used the account
outside the tx manager (take the chain's).

Replacement: a request whose latest transaction has not been included `after_blocks` blocks
after `since[tx_hash]` (the shell's memory: when it saw the transaction pending as the
account's next nonce) is re-signed at the same nonce with max fee and tip each at least 10% higher
(ceil(old * 1.1)), or the market's if higher, the max fee capped by the request's
max_fee_per_gas_cap_wei; after `max_replacements`, or when the cap leaves no room for 10%
more, the request fails with REPLACEMENT_CAP (its last transaction may still be included: the
watcher then records it, and its TxConfirmed wins: a confirmation ends any request as
CONFIRMED, whatever was recorded before). CANCEL is the same at the target's nonce with a
zero-value transfer to self (21,000 gas); once the cancel is confirmed the target ends with
CANCELLED, and if the target is confirmed instead the cancel ends with NONCE_TOO_LOW.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from omc_events.envelope import ChainHead
from omc_events.record import Record
from omc_events.records import (
    ReplaceReason,
    TxBroadcast,
    TxConfirmed,
    TxFailed,
    TxFailureCode,
    TxIncluded,
    TxPurpose,
    TxReorged,
    TxReplaced,
    TxRequested,
    TxSigned,
)

ACCOUNT = "account"
RECEIPTS = "receipts"
TRANSFER_GAS = 21_000


def account_key(chain_id: int, sender: str) -> str:
    """The aggregate id and Kafka key of an account: "<chain_id>:<sender>"."""
    return f"{chain_id}:{sender}"


def bump(fee: int) -> int:
    """`fee` raised by 10%, rounded up: the least a node accepts as a replacement."""
    return (fee * 11 + 9) // 10


class Status(StrEnum):
    REQUESTED = "requested"  # not signed yet
    SIGNED = "signed"        # signed (maybe broadcast), not included
    INCLUDED = "included"    # in a block, not final
    CONFIRMED = "confirmed"  # final (terminal)
    FAILED = "failed"        # terminal


TERMINAL = (Status.CONFIRMED, Status.FAILED)


@dataclass(frozen=True, slots=True)
class Fees:
    """EIP-1559 fees per gas, in wei."""

    max_fee: int
    max_priority: int


@dataclass(slots=True)
class SentTx:
    """A signed transaction of the log."""

    tx_hash: str
    request_id: str
    nonce: int
    raw_tx: str
    gas_limit: int
    fees: Fees
    replaces: str | None
    signed_event_id: str
    broadcasts: int = 0  # TxBroadcast records (accepted by a node)


@dataclass(slots=True)
class RequestState:
    """One request and what became of it."""

    request: TxRequested
    status: Status = Status.REQUESTED
    txs: list[str] = field(default_factory=list)  # hashes, in signing order
    nonce: int | None = None
    replacements: int = 0
    repairs: int = 0  # re-signed at a new nonce after "nonce too low"
    accepted: bool = False  # a node accepted one of its transactions
    included: str | None = None
    failure: TxFailureCode | None = None
    cancelled_by: str | None = None  # request id of the CANCEL that replaced it

    @property
    def request_id(self) -> str:
        return self.request.request_id

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


@dataclass(slots=True)
class AccountState:
    """Everything the tx manager knows about one account, folded from the log."""

    key: str
    head: ChainHead = field(default_factory=ChainHead)  # the tx manager's chain ("account")
    receipts_sequence: int = 0         # the watcher's chain ("receipts"), for repeats
    requests: dict[str, RequestState] = field(default_factory=dict)
    txs: dict[str, SentTx] = field(default_factory=dict)
    floor: int = 0                     # nonces below it are used on chain
    occupied: dict[int, int] = field(default_factory=dict)  # nonce -> live txs holding it
    top: int = 0                       # 1 + the highest nonce ever signed
    holes: set[int] = field(default_factory=set)  # freed nonces below `top`
    queue: list[str] = field(default_factory=list)  # request ids waiting to be signed

    @classmethod
    def of(cls, key: str) -> AccountState:
        return cls(key=key)

    @property
    def chain_id(self) -> int:
        return int(self.key.split(":", 1)[0])

    @property
    def sender(self) -> str:
        return self.key.split(":", 1)[1]

    def latest_tx(self, request: RequestState) -> SentTx | None:
        return self.txs[request.txs[-1]] if request.txs else None


# -- the fold ----------------------------------------------------------------------------------


def evolve(state: AccountState, record: Record) -> AccountState:
    """Fold one record of this account's key (repeats are ignored)."""
    if isinstance(record, TxRequested):
        if record.request_id not in state.requests:
            state.requests[record.request_id] = RequestState(record)
            state.queue.append(record.request_id)
        return state
    meta = record.meta  # type: ignore[attr-defined]
    if meta.aggregate_type == RECEIPTS:
        if meta.sequence <= state.receipts_sequence:
            return state
        state.receipts_sequence = meta.sequence
        _on_receipt(state, record)
    elif meta.aggregate_type == ACCOUNT:
        if meta.sequence <= state.head.sequence:
            return state
        state.head = ChainHead(meta.sequence, meta.hash)
        _on_own(state, record)
    return state


def _request(state: AccountState, request_id: str) -> RequestState | None:
    return state.requests.get(request_id)


def _on_own(state: AccountState, record: Record) -> None:
    if isinstance(record, TxSigned):
        on_tx_signed(state, record)
    elif isinstance(record, TxBroadcast):
        tx = state.txs.get(record.tx_hash)
        if tx is not None:
            tx.broadcasts += 1
        request = _request(state, record.request_id)
        if request is not None:
            request.accepted = True
    elif isinstance(record, TxReplaced):
        request = _request(state, record.request_id)
        new = state.txs.get(record.new_tx_hash)
        if request is not None and record.reason == ReplaceReason.CANCEL and new is not None:
            request.cancelled_by = new.request_id
    elif isinstance(record, TxFailed):
        request = _request(state, record.request_id)
        if request is None or request.terminal:
            return
        request.status = Status.FAILED
        request.failure = record.code
        if not request.accepted:  # no node ever had it: its nonce is free again
            for tx_hash in request.txs:
                _release(state, state.txs[tx_hash].nonce)


def on_tx_signed(state: AccountState, record: TxSigned) -> None:
    tx = SentTx(record.tx_hash, record.request_id, record.nonce, record.raw_tx,
                record.gas_limit, Fees(int(record.max_fee_per_gas_wei),
                                       int(record.max_priority_fee_per_gas_wei)),
                record.replaces_tx_hash, record.meta.event_id)
    state.txs[tx.tx_hash] = tx
    state.occupied[tx.nonce] = state.occupied.get(tx.nonce, 0) + 1
    state.holes.discard(tx.nonce)
    for skipped in range(state.top, tx.nonce):  # signed above a gap (floor raised): not holes
        if skipped >= state.floor and not state.occupied.get(skipped):
            state.holes.add(skipped)
    state.top = max(state.top, tx.nonce + 1)
    request = _request(state, record.request_id)
    if request is None:
        return
    if record.replaces_tx_hash is not None and record.replaces_tx_hash in request.txs:
        request.replacements += 1
    elif request.txs:
        request.repairs += 1
    request.txs.append(tx.tx_hash)
    request.nonce = tx.nonce
    if request.status == Status.REQUESTED:
        request.status = Status.SIGNED


def _release(state: AccountState, nonce: int) -> None:
    count = state.occupied.get(nonce, 0)
    if count <= 1:
        state.occupied.pop(nonce, None)
        state.holes.add(nonce)
    else:
        state.occupied[nonce] = count - 1


def _on_receipt(state: AccountState, record: Record) -> None:
    request = _request(state, getattr(record, "request_id", ""))
    if request is None:
        return
    tx = state.txs.get(getattr(record, "tx_hash", None) or "")
    if tx is not None and tx.request_id != request.request_id:
        return  # another request's transaction (a cancel's, credited to its target by a
        # watcher before CANCELLED existed): it settles that request, not this one
    if isinstance(record, TxIncluded):
        request.included = record.tx_hash
        request.accepted = True
        if tx is not None:
            state.floor = max(state.floor, tx.nonce + 1)
        if not request.terminal:
            request.status = Status.INCLUDED
    elif isinstance(record, TxReorged):
        if request.included == record.tx_hash:
            request.included = None
            if request.status == Status.INCLUDED:
                request.status = Status.SIGNED
    elif isinstance(record, TxConfirmed):  # the chain has the last word: it wins over any
        request.included = record.tx_hash  # earlier failure (e.g. REPLACEMENT_CAP)
        request.status = Status.CONFIRMED
    elif isinstance(record, TxFailed) and not request.terminal:  # REVERTED: nonce used
        request.status = Status.FAILED
        request.failure = record.code


# -- decisions ---------------------------------------------------------------------------------


def next_nonce(state: AccountState) -> int:
    """The lowest nonce at or above the chain's floor that no live transaction holds."""
    if state.holes:
        free = [n for n in state.holes if n >= state.floor and not state.occupied.get(n)]
        if free:
            return min(free)
        state.holes = {n for n in state.holes if n >= state.floor}
    return max(state.top, state.floor)


def pending(state: AccountState) -> list[TxRequested]:
    """Requests still to be signed, in the order they arrived (CANCELs included)."""
    waiting = [rid for rid in state.queue if state.requests[rid].status == Status.REQUESTED]
    state.queue = waiting
    return [state.requests[rid].request for rid in waiting]


def _unsettled(state: AccountState, request: RequestState) -> bool:
    """Whether the request's transactions may still need a node to hold them."""
    if request.included is not None:
        return False
    if request.status == Status.SIGNED:
        return True
    # failed at the fee cap after a node accepted it: it can still be included, and later
    # nonces wait for it
    return (request.status == Status.FAILED and request.accepted
            and request.failure == TxFailureCode.REPLACEMENT_CAP)


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """The log compared with the chain at start."""

    rebroadcast: list[SentTx]   # signed, not known included, at or above the chain's nonce
    used_outside: bool          # the chain's pending nonce is above the log's next nonce
    gap: bool                   # the chain's nonce is below a signed, unsettled nonce


def reconcile(state: AccountState, latest: int, pending_nonce: int) -> Reconciliation:
    """Compare with the chain's nonces (mined `latest`, with the node's pool `pending`);
    raises the floor so that nonces used on chain are never reused."""
    log_next = next_nonce(state)
    used_outside = pending_nonce > log_next
    state.floor = max(state.floor, latest, pending_nonce if used_outside else 0)
    again = [state.txs[tx_hash] for request in state.requests.values()
             if _unsettled(state, request) for tx_hash in request.txs
             if state.txs[tx_hash].nonce >= latest]
    again.sort(key=lambda tx: tx.nonce)  # stable: signing order within a nonce
    gap = any(tx.nonce >= pending_nonce for tx in again)
    return Reconciliation(again, used_outside, gap)


def raise_floor(state: AccountState, nonce: int) -> None:
    """The chain says nonces below `nonce` are used (e.g. after "nonce too low")."""
    state.floor = max(state.floor, nonce)


def unbroadcast(state: AccountState) -> list[SentTx]:
    """Signed transactions no node has accepted yet, of requests still open (retry them)."""
    found = []
    for request in state.requests.values():
        if request.status == Status.SIGNED and not request.accepted:
            found.extend(state.txs[h] for h in request.txs)
    found.sort(key=lambda tx: tx.nonce)
    return found


def stuck(state: AccountState, head: int, since: Mapping[str, int],
          after_blocks: int) -> list[RequestState]:
    """Open requests whose latest transaction was sent at block `since[hash]` (the shell's
    memory; unknown hashes are not judged) and is not included `after_blocks` later."""
    found = []
    for request in state.requests.values():
        if (request.status != Status.SIGNED or not request.accepted or not request.txs
                or request.cancelled_by is not None):
            continue
        sent = since.get(request.txs[-1])
        if sent is not None and head - sent >= after_blocks:
            found.append(request)
    return found


def initial_fees(market: Fees, cap: int) -> Fees:
    """The market's fees, the max fee capped by the request's cap."""
    max_fee = min(market.max_fee, cap)
    return Fees(max_fee, min(market.max_priority, max_fee))


def replacement_fees(old: Fees, market: Fees, cap: int) -> Fees | None:
    """Fees at least 10% above `old` (or the market's, if higher), the max fee capped by
    `cap`; None when the cap leaves no room for 10% more."""
    least_fee, least_tip = bump(old.max_fee), bump(old.max_priority)
    if least_fee > cap:
        return None
    max_fee = min(max(least_fee, market.max_fee), cap)
    tip = min(max(least_tip, market.max_priority), max_fee)
    if tip < least_tip:
        return None
    return Fees(max_fee, tip)


@dataclass(frozen=True, slots=True)
class Replace:
    """Sign a transaction at an already used nonce, replacing `replaces`."""

    request_id: str            # the request the new transaction belongs to
    replaced_request_id: str   # the request whose transaction is replaced
    nonce: int
    to: str
    value_wei: int
    data: str
    gas_limit: int
    fees: Fees
    replaces: str
    reason: ReplaceReason


@dataclass(frozen=True, slots=True)
class Failure:
    """End the request with TxFailed."""

    request_id: str
    code: TxFailureCode
    detail: str
    tx_hash: str | None = None
    nonce: int | None = None


def replacement(state: AccountState, request: RequestState, market: Fees,
                max_replacements: int) -> Replace | Failure:
    """What to do with a stuck request: replace it, or fail it at the cap."""
    last = state.latest_tx(request)
    assert last is not None, "a stuck request has a transaction"
    cap = int(request.request.max_fee_per_gas_cap_wei)
    if request.replacements >= max_replacements:
        return Failure(request.request_id, TxFailureCode.REPLACEMENT_CAP,
                       f"not included after {request.replacements} replacement(s), the most "
                       f"allowed; the last one ({last.tx_hash}) may still be included",
                       last.tx_hash, last.nonce)
    fees = replacement_fees(last.fees, market, cap)
    if fees is None:
        return Failure(request.request_id, TxFailureCode.REPLACEMENT_CAP,
                       f"stuck at max fee {last.fees.max_fee} wei; the cap {cap} wei leaves no "
                       f"room for the 10% a replacement needs", last.tx_hash, last.nonce)
    r = request.request
    if r.purpose == TxPurpose.CANCEL:  # a stuck cancel stays a zero-value transfer to self
        return Replace(r.request_id, r.request_id, last.nonce, state.sender, 0, "0x",
                       last.gas_limit, fees, last.tx_hash, ReplaceReason.STUCK)
    return Replace(r.request_id, r.request_id, last.nonce, r.to, int(r.value_wei), r.data,
                   last.gas_limit, fees, last.tx_hash, ReplaceReason.STUCK)


def cancellation(state: AccountState, cancel: TxRequested, market: Fees) -> Replace | Failure:
    """A CANCEL request: a zero-value transfer to self at the target's nonce, fees 10% up."""
    assert cancel.purpose == TxPurpose.CANCEL
    target = state.requests.get(cancel.cancels_request_id or "")
    if target is None or not target.txs:
        return Failure(cancel.request_id, TxFailureCode.NONCE_TOO_LOW,
                       f"nothing to cancel: request {cancel.cancels_request_id} has no "
                       "transaction of this account")
    last = state.latest_tx(target)
    assert last is not None
    if target.included is not None or target.terminal:
        return Failure(cancel.request_id, TxFailureCode.NONCE_TOO_LOW,
                       f"nothing to cancel: request {target.request_id} is "
                       f"{target.status.value}, its nonce {last.nonce} is used",
                       None, last.nonce)
    fees = replacement_fees(last.fees, market, int(cancel.max_fee_per_gas_cap_wei))
    if fees is None:
        return Failure(cancel.request_id, TxFailureCode.UNDERPRICED,
                       f"the cancel's cap {cancel.max_fee_per_gas_cap_wei} wei is below 10% "
                       f"over the pending max fee {last.fees.max_fee} wei", None, last.nonce)
    return Replace(cancel.request_id, target.request_id, last.nonce, state.sender, 0, "0x",
                   TRANSFER_GAS, fees, last.tx_hash, ReplaceReason.CANCEL)


def cancelled(state: AccountState) -> list[tuple[RequestState, RequestState]]:
    """(target, cancel) pairs whose cancel is confirmed while the target is still open: the
    target ends with TxFailed CANCELLED (its nonce was used by the cancel)."""
    found = []
    for target in state.requests.values():
        if target.cancelled_by is None or target.terminal:
            continue
        cancel = state.requests.get(target.cancelled_by)
        if cancel is not None and cancel.status == Status.CONFIRMED:
            found.append((target, cancel))
    return found


def too_late(state: AccountState) -> list[tuple[RequestState, RequestState]]:
    """(cancel, target) pairs whose target is confirmed (its own transaction took the nonce)
    while the cancel is still open: the cancel ends with TxFailed NONCE_TOO_LOW."""
    found = []
    for target in state.requests.values():
        if target.cancelled_by is None or target.status != Status.CONFIRMED:
            continue
        cancel = state.requests.get(target.cancelled_by)
        if (cancel is not None and not cancel.terminal and cancel.included is None
                and target.included in target.txs):
            found.append((cancel, target))
    return found


__all__ = ["ACCOUNT", "RECEIPTS", "TERMINAL", "TRANSFER_GAS", "AccountState", "Failure", "Fees",
           "Reconciliation", "Replace", "RequestState", "SentTx", "Status", "account_key",
           "bump", "cancellation", "cancelled", "evolve", "initial_fees", "next_nonce",
           "pending", "raise_floor", "reconcile", "replacement", "replacement_fees", "stuck",
           "too_late", "unbroadcast"]
