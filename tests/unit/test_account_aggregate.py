"""The account aggregate: the fold (repeats, requests twice, the watcher's chain), nonces from
the log and the chain, rebroadcasts, stuck detection, replacement fees and the cap, cancels."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from omc_domain.account import (
    AccountState,
    Failure,
    Fees,
    Replace,
    Status,
    account_key,
    bump,
    cancellation,
    cancelled,
    evolve,
    initial_fees,
    next_nonce,
    pending,
    reconcile,
    replacement,
    replacement_fees,
    stuck,
    too_late,
    unbroadcast,
)
from omc_events.envelope import ZERO_HASH, derived_id
from omc_events.records import (
    EventMeta,
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

SENDER = "0x1111111111111111111111111111111111111111"
BOB = "0x2222222222222222222222222222222222222222"
KEY = account_key(31337, SENDER)
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
GWEI = 10**9


class Log:
    """Writes records for one account with proper sequences on both chains."""

    def __init__(self) -> None:
        self.state = AccountState.of(KEY)
        self.seq = {"account": 0, "receipts": 0}
        self.n = 0

    def meta(self, kind: str, aggregate: str | None) -> EventMeta:
        self.n += 1
        sequence = 0
        if aggregate is not None:
            self.seq[aggregate] += 1
            sequence = self.seq[aggregate]
        event_id = derived_id("test", self.n)
        return EventMeta(event_id=event_id, event_type=kind, schema_version=1,
                         aggregate_type=aggregate or "account", aggregate_id=KEY,
                         sequence=sequence, occurred_at=NOW, tenant="acme", actor="svc:test",
                         correlation_id=event_id, prev_hash=ZERO_HASH, hash=f"{self.n:064x}")

    def put(self, record):
        evolve(self.state, record)
        return record

    def request(self, n: int, *, cap: int = 100 * GWEI, purpose: TxPurpose = TxPurpose.ACTION,
                cancels: str | None = None) -> TxRequested:
        return self.put(TxRequested(
            meta=self.meta(TxRequested.SCHEMA, None), request_id=rid(n), purpose=purpose,
            chain_id=31337, sender=SENDER, to=BOB, value_wei="5", data="0x",
            max_fee_per_gas_cap_wei=str(cap), cancels_request_id=cancels))

    def signed(self, n: int, nonce: int, tx: int, *, fee: int = 10 * GWEI, tip: int = GWEI,
               replaces: int | None = None) -> TxSigned:
        return self.put(TxSigned(
            meta=self.meta(TxSigned.SCHEMA, "account"), request_id=rid(n), chain_id=31337,
            sender=SENDER, nonce=nonce, tx_hash=h(tx), raw_tx="0x02", gas_limit=21000,
            max_fee_per_gas_wei=str(fee), max_priority_fee_per_gas_wei=str(tip),
            replaces_tx_hash=None if replaces is None else h(replaces)))

    def broadcast(self, n: int, tx: int) -> None:
        self.put(TxBroadcast(meta=self.meta(TxBroadcast.SCHEMA, "account"), request_id=rid(n),
                             tx_hash=h(tx), rpc_endpoint="a", attempt=1, already_known=False))

    def failed(self, n: int, code: TxFailureCode, *, aggregate: str = "account") -> None:
        self.put(TxFailed(meta=self.meta(TxFailed.SCHEMA, aggregate), request_id=rid(n),
                          code=code, detail="x"))

    def included(self, n: int, tx: int) -> None:
        self.put(TxIncluded(meta=self.meta(TxIncluded.SCHEMA, "receipts"), request_id=rid(n),
                            tx_hash=h(tx), block_number=7, block_hash=h(999),
                            transaction_index=0, gas_used=21000, effective_gas_price_wei="1",
                            status_ok=True))

    def confirmed(self, n: int, tx: int) -> None:
        self.put(TxConfirmed(meta=self.meta(TxConfirmed.SCHEMA, "receipts"), request_id=rid(n),
                             tx_hash=h(tx), block_number=7, block_hash=h(999), confirmations=2))

    def reorged(self, n: int, tx: int) -> None:
        self.put(TxReorged(meta=self.meta(TxReorged.SCHEMA, "receipts"), request_id=rid(n),
                           tx_hash=h(tx), old_block_number=7, old_block_hash=h(999)))


def rid(n: int) -> str:
    return derived_id("request", n)


def h(n: int) -> str:
    return f"0x{n:064x}"


@pytest.fixture
def log() -> Log:
    return Log()


def test_a_request_written_twice_is_one_request(log: Log) -> None:
    first = log.request(1)
    evolve(log.state, first)
    log.request(1)

    assert [r.request_id for r in pending(log.state)] == [rid(1)]


def test_a_repeated_chained_event_is_applied_once(log: Log) -> None:
    log.request(1)
    signed = log.signed(1, 0, 1)
    evolve(log.state, signed)  # the same record read again after a restart

    assert log.state.requests[rid(1)].txs == [h(1)]
    assert log.state.occupied == {0: 1}
    assert log.state.head.sequence == 1


def test_nonces_follow_the_highest_signed_and_skip_nothing(log: Log) -> None:
    for n in range(3):
        log.request(n)
        log.signed(n, n, n)

    assert next_nonce(log.state) == 3
    assert pending(log.state) == []


def test_a_nonce_no_node_accepted_is_reused_after_the_request_failed(log: Log) -> None:
    log.request(1)
    log.signed(1, 0, 1)
    log.failed(1, TxFailureCode.INSUFFICIENT_FUNDS)

    assert next_nonce(log.state) == 0
    assert log.state.requests[rid(1)].status == Status.FAILED


def test_an_accepted_transaction_keeps_its_nonce_even_when_its_request_fails(log: Log) -> None:
    log.request(1)
    log.signed(1, 0, 1)
    log.broadcast(1, 1)
    log.failed(1, TxFailureCode.REPLACEMENT_CAP)

    assert next_nonce(log.state) == 1


def test_reconcile_rebroadcasts_what_the_chain_lost(log: Log) -> None:
    for n in range(3):
        log.request(n)
        log.signed(n, n, n)
        log.broadcast(n, n)
    log.included(0, 0)

    found = reconcile(log.state, latest=1, pending_nonce=1)  # nonces 1, 2 were lost

    assert [tx.tx_hash for tx in found.rebroadcast] == [h(1), h(2)]
    assert found.gap
    assert not found.used_outside
    assert next_nonce(log.state) == 3


def test_reconcile_takes_the_chain_nonce_when_the_account_was_used_outside(log: Log) -> None:
    log.request(0)
    log.signed(0, 0, 0)
    log.included(0, 0)

    found = reconcile(log.state, latest=4, pending_nonce=5)

    assert found.used_outside
    assert found.rebroadcast == []
    assert next_nonce(log.state) == 5


def test_unbroadcast_lists_signed_transactions_no_node_accepted(log: Log) -> None:
    log.request(1)
    log.signed(1, 0, 1)
    log.request(2)
    log.signed(2, 1, 2)
    log.broadcast(2, 2)

    assert [tx.tx_hash for tx in unbroadcast(log.state)] == [h(1)]


def test_stuck_until_included_and_again_after_a_reorg(log: Log) -> None:
    log.request(1)
    log.signed(1, 0, 1)
    log.broadcast(1, 1)
    since = {h(1): 10}

    assert stuck(log.state, 12, since, 3) == []
    assert [r.request_id for r in stuck(log.state, 13, since, 3)] == [rid(1)]
    log.included(1, 1)
    assert stuck(log.state, 20, since, 3) == []
    log.reorged(1, 1)
    assert log.state.requests[rid(1)].status == Status.SIGNED
    assert [r.request_id for r in stuck(log.state, 20, since, 3)] == [rid(1)]
    log.confirmed(1, 1)
    assert log.state.requests[rid(1)].status == Status.CONFIRMED


def test_the_watchers_revert_is_terminal(log: Log) -> None:
    log.request(1)
    log.signed(1, 0, 1)
    log.broadcast(1, 1)
    log.included(1, 1)
    log.failed(1, TxFailureCode.REVERTED, aggregate="receipts")

    assert log.state.requests[rid(1)].status == Status.FAILED
    assert next_nonce(log.state) == 1


def test_bump_is_at_least_ten_percent_rounded_up() -> None:
    assert bump(10) == 11
    assert bump(11) == 13  # 12.1 -> 13
    assert bump(10 * GWEI) == 11 * GWEI


def test_replacement_fees_are_10_percent_up_or_the_market_capped() -> None:
    old = Fees(10 * GWEI, GWEI)
    assert replacement_fees(old, Fees(5 * GWEI, GWEI), 100 * GWEI) == Fees(11 * GWEI,
                                                                           bump(GWEI))
    assert replacement_fees(old, Fees(50 * GWEI, 3 * GWEI), 20 * GWEI) == Fees(20 * GWEI,
                                                                               3 * GWEI)
    assert replacement_fees(old, Fees(50 * GWEI, GWEI), 10 * GWEI) is None
    assert initial_fees(Fees(50 * GWEI, GWEI), 20 * GWEI) == Fees(20 * GWEI, GWEI)


def test_a_stuck_request_is_replaced_then_fails_at_the_replacement_cap(log: Log) -> None:
    log.request(1)
    log.signed(1, 4, 1)
    log.broadcast(1, 1)
    market = Fees(GWEI, GWEI)

    decision = replacement(log.state, log.state.requests[rid(1)], market, 1)
    assert isinstance(decision, Replace)
    assert (decision.nonce, decision.replaces, decision.reason) == (4, h(1), ReplaceReason.STUCK)
    assert decision.fees.max_fee >= bump(10 * GWEI)
    assert decision.fees.max_priority >= bump(GWEI)

    log.signed(1, 4, 2, fee=decision.fees.max_fee, tip=decision.fees.max_priority, replaces=1)
    assert log.state.requests[rid(1)].replacements == 1
    again = replacement(log.state, log.state.requests[rid(1)], market, 1)
    assert isinstance(again, Failure)
    assert (again.code, again.nonce, again.tx_hash) == (TxFailureCode.REPLACEMENT_CAP, 4, h(2))


def test_a_request_at_its_cap_fails_instead_of_replacing(log: Log) -> None:
    log.request(1, cap=10 * GWEI)
    log.signed(1, 0, 1)
    log.broadcast(1, 1)

    decision = replacement(log.state, log.state.requests[rid(1)], Fees(GWEI, GWEI), 5)

    assert isinstance(decision, Failure)
    assert decision.code == TxFailureCode.REPLACEMENT_CAP


def test_cancel_is_a_zero_value_self_transfer_at_the_targets_nonce(log: Log) -> None:
    log.request(1)
    log.signed(1, 3, 1)
    log.broadcast(1, 1)
    cancel = log.request(2, purpose=TxPurpose.CANCEL, cancels=rid(1))

    decision = cancellation(log.state, cancel, Fees(GWEI, GWEI))

    assert isinstance(decision, Replace)
    assert (decision.nonce, decision.to, decision.value_wei, decision.data) == (3, SENDER, 0, "0x")
    assert decision.fees.max_fee >= bump(10 * GWEI)
    assert (decision.request_id, decision.replaced_request_id) == (rid(2), rid(1))
    log.signed(2, 3, 2, fee=decision.fees.max_fee, tip=decision.fees.max_priority, replaces=1)
    log.put(TxReplaced(meta=log.meta(TxReplaced.SCHEMA, "account"), request_id=rid(1),
                       old_tx_hash=h(1), new_tx_hash=h(2), nonce=3, reason=ReplaceReason.CANCEL))
    log.broadcast(2, 2)
    assert stuck(log.state, 100, {h(1): 0, h(2): 0}, 1)[0].request_id == rid(2)
    log.included(2, 2)
    log.confirmed(2, 2)
    ((target, by),) = cancelled(log.state)
    assert (target.request_id, by.request_id) == (rid(1), rid(2))
    assert next_nonce(log.state) == 4


def cancel_of_target_at_nonce_3(log: Log) -> None:
    """Request 1 signed at nonce 3 and broadcast; request 2 cancels it (signed, broadcast)."""
    log.request(1)
    log.signed(1, 3, 1)
    log.broadcast(1, 1)
    log.request(2, purpose=TxPurpose.CANCEL, cancels=rid(1))
    log.signed(2, 3, 2, fee=bump(10 * GWEI), tip=bump(GWEI), replaces=1)
    log.put(TxReplaced(meta=log.meta(TxReplaced.SCHEMA, "account"), request_id=rid(1),
                       old_tx_hash=h(1), new_tx_hash=h(2), nonce=3, reason=ReplaceReason.CANCEL))
    log.broadcast(2, 2)


def test_a_confirmed_cancel_ends_its_target_once_as_cancelled(log: Log) -> None:
    cancel_of_target_at_nonce_3(log)
    assert cancelled(log.state) == []
    assert too_late(log.state) == []
    log.included(2, 2)
    log.confirmed(2, 2)

    ((target, by),) = cancelled(log.state)
    assert (target.request_id, by.request_id) == (rid(1), rid(2))
    assert too_late(log.state) == []
    log.failed(1, TxFailureCode.CANCELLED)
    assert cancelled(log.state) == []
    assert log.state.requests[rid(1)].failure == TxFailureCode.CANCELLED


def test_a_target_confirmed_before_its_cancel_makes_the_cancel_too_late(log: Log) -> None:
    cancel_of_target_at_nonce_3(log)
    log.included(1, 1)
    log.confirmed(1, 1)

    assert cancelled(log.state) == []
    ((cancel, target),) = too_late(log.state)
    assert (cancel.request_id, target.request_id) == (rid(2), rid(1))
    log.failed(2, TxFailureCode.NONCE_TOO_LOW)
    assert too_late(log.state) == []


def test_the_cancels_receipt_credited_to_its_target_is_not_the_targets(log: Log) -> None:
    cancel_of_target_at_nonce_3(log)
    log.included(1, 2)  # as a watcher did before CANCELLED: the cancel's tx under the target
    log.confirmed(1, 2)
    log.included(2, 2)
    log.confirmed(2, 2)

    assert log.state.requests[rid(1)].status == Status.SIGNED
    assert [t.request_id for t, _ in cancelled(log.state)] == [rid(1)]


def test_a_confirmation_after_the_replacement_cap_wins(log: Log) -> None:
    log.request(1)
    log.signed(1, 0, 1)
    log.broadcast(1, 1)
    log.failed(1, TxFailureCode.REPLACEMENT_CAP)
    assert log.state.requests[rid(1)].status == Status.FAILED
    log.included(1, 1)
    assert log.state.requests[rid(1)].status == Status.FAILED  # not final yet
    log.confirmed(1, 1)

    request = log.state.requests[rid(1)]
    assert (request.status, request.included) == (Status.CONFIRMED, h(1))
    log.failed(1, TxFailureCode.REPLACEMENT_CAP)  # a late repeat changes nothing
    assert log.state.requests[rid(1)].status == Status.CONFIRMED
    assert next_nonce(log.state) == 1


def test_cancelling_an_included_request_fails(log: Log) -> None:
    log.request(1)
    log.signed(1, 0, 1)
    log.broadcast(1, 1)
    log.included(1, 1)
    cancel = log.request(2, purpose=TxPurpose.CANCEL, cancels=rid(1))

    decision = cancellation(log.state, cancel, Fees(GWEI, GWEI))

    assert isinstance(decision, Failure)
    assert decision.request_id == rid(2)


def test_a_freed_nonce_between_live_ones_is_taken_first_then_the_top(log: Log) -> None:
    for n in range(3):
        log.request(n)
        log.signed(n, n, n)
    log.broadcast(0, 0)
    log.broadcast(2, 2)
    log.failed(1, TxFailureCode.UNDERPRICED)  # never accepted: nonce 1 is free again

    assert next_nonce(log.state) == 1
    log.request(3)
    log.signed(3, 1, 3)
    assert next_nonce(log.state) == 3
