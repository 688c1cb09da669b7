"""The chain watcher's pure parts: the window, reorg detection, the chain aggregate (blocks,
reorgs, logs and their checkpoints) and receipt tracking (pending -> included -> confirmed |
failed, included -> reorged -> pending), with ids and positions that a rebuild reproduces."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from omc_domain.chainview import (
    CHAIN,
    RECEIPTS,
    Block,
    ChainView,
    Emit,
    Extend,
    Inconsistent,
    Log,
    NeedBlock,
    Phase,
    Receipt,
    Reorg,
    TooDeep,
    Tracker,
    Window,
    detect,
)
from omc_events.avro import Schemas
from omc_events.chain import seal
from omc_events.envelope import ChainHead, derived_id
from omc_events.record import Record
from omc_events.records import (
    BlockObserved,
    ContractEventObserved,
    EventMeta,
    ReorgDetected,
    TxConfirmed,
    TxFailed,
    TxFailureCode,
    TxIncluded,
    TxReorged,
    TxReplaced,
    TxSigned,
)

SCHEMAS = Schemas()
T0 = datetime(2026, 11, 25, tzinfo=UTC)
SENDER = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
CHAIN_ID = 31337


def h(tag: str) -> str:
    """A 32-byte hash made from a short tag, e.g. h('a5')."""
    return "0x" + tag.encode().hex().ljust(64, "0")[:64]


def chain(tag: str, start: int, end: int, parent: str | None = None) -> list[Block]:
    """Blocks start..end of branch `tag`, linked by parent hash."""
    blocks = []
    previous = parent if parent is not None else h(f"{tag}{start - 1}")
    for n in range(start, end + 1):
        block = Block(n, h(f"{tag}{n}"), previous, timestamp=1_700_000_000 + n,
                      base_fee_per_gas=7)
        blocks.append(block)
        previous = block.hash
    return blocks


def window_of(blocks: list[Block], size: int = 256) -> Window:
    window = Window(size)
    for block in blocks:
        window.observe(block)
    return window


class FakeLog:
    """The log these tests write to: emits sealed after their aggregate's head, in order."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.heads: dict[tuple[str, str], ChainHead] = {}

    def write(self, emits: list[Emit], *folds) -> list[Record]:
        written = []
        for emit in emits:
            where = (emit.aggregate_type, emit.aggregate_id)
            record, self.heads[where] = seal(SCHEMAS, emit.filled(T0, "svc:chain-watcher"),
                                             self.heads.get(where, ChainHead()))
            SCHEMAS.encode(record)  # valid against its schema
            written.append(record)
            for fold in folds:
                fold.evolve(record)
        self.records += written
        return written

    def append(self, record: Record, *folds) -> Record:
        self.records.append(record)
        for fold in folds:
            fold.evolve(record)
        return record


# -- the window -----------------------------------------------------------------------------


def test_the_window_keeps_the_newest_blocks_contiguous() -> None:
    window = window_of(chain("a", 1, 10), size=4)
    assert [b.number for b in window.blocks()] == [7, 8, 9, 10]
    assert window.floor == 7
    assert window.head.number == 10
    assert window.hash_at(6) is None
    assert window.hash_at(8) == h("a8")


def test_a_block_that_does_not_follow_the_head_starts_the_window_again() -> None:
    window = window_of(chain("a", 1, 5))
    window.observe(chain("b", 9, 9)[0])  # a gap
    assert [b.number for b in window.blocks()] == [9]
    window.observe(Block(10, h("x"), h("not-b9")))  # right number, wrong parent
    assert [b.hash for b in window.blocks()] == [h("x")]


def test_rewinding_drops_the_blocks_above_the_ancestor_newest_first() -> None:
    window = window_of(chain("a", 1, 5))
    dropped = window.rewind(2)
    assert [b.number for b in dropped] == [5, 4, 3]
    assert window.head.number == 2
    assert window.rewind(0)
    assert len(window) == 0
    assert window.head is None


def test_an_empty_window_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Window(0)


# -- detect -----------------------------------------------------------------------------------


def test_the_first_blocks_seen_extend_an_empty_window() -> None:
    assert detect(Window(), chain("a", 5, 6)) == Extend(tuple(chain("a", 5, 6)))


def test_blocks_that_follow_the_head_extend_it() -> None:
    window = window_of(chain("a", 1, 5))
    assert detect(window, chain("a", 6, 8)) == Extend(tuple(chain("a", 6, 8)))


def test_blocks_already_held_are_nothing_new() -> None:
    window = window_of(chain("a", 1, 5))
    assert detect(window, chain("a", 4, 5)) == Extend(())
    assert detect(window, chain("a", 4, 7)) == Extend(tuple(chain("a", 6, 7)))


def test_a_parent_hash_mismatch_at_the_head_asks_for_the_parent() -> None:
    window = window_of(chain("a", 1, 5))
    fork = chain("b", 4, 6, parent=h("a3"))
    assert detect(window, fork[2:]) == NeedBlock(5)
    assert detect(window, fork[1:]) == NeedBlock(4)


def test_a_branch_that_attaches_below_the_head_is_a_reorg() -> None:
    window = window_of(chain("a", 1, 5))
    fork = chain("b", 4, 6, parent=h("a3"))
    verdict = detect(window, fork)
    assert isinstance(verdict, Reorg)
    assert verdict.ancestor.hash == h("a3")
    assert [b.hash for b in verdict.removed] == [h("a5"), h("a4")]
    assert [b.hash for b in verdict.added] == [h("b4"), h("b5"), h("b6")]


def test_the_walk_back_prepends_node_blocks_until_it_attaches() -> None:
    window = window_of(chain("a", 1, 10))
    node = {b.number: b for b in chain("a", 1, 6) + chain("b", 7, 12, parent=h("a6"))}
    branch = [node[11], node[12]]
    verdict = detect(window, branch)
    while isinstance(verdict, NeedBlock):
        branch.insert(0, node[verdict.number])
        verdict = detect(window, branch)
    assert isinstance(verdict, Reorg)
    assert verdict.ancestor.number == 6
    assert len(verdict.removed) == 4
    assert [b.number for b in verdict.added] == [7, 8, 9, 10, 11, 12]


def test_a_node_chain_shorter_than_ours_removes_every_block_above_its_fork() -> None:
    window = window_of(chain("a", 1, 8))
    verdict = detect(window, chain("b", 5, 5, parent=h("a4")))
    assert isinstance(verdict, Reorg)
    assert [b.number for b in verdict.removed] == [8, 7, 6, 5]
    assert [b.number for b in verdict.added] == [5]


def test_a_fork_below_the_window_is_too_deep() -> None:
    window = window_of(chain("a", 1, 10), size=3)  # holds 8..10
    assert detect(window, chain("b", 8, 11, parent=h("x7"))) == TooDeep(8)


def test_blocks_that_do_not_link_up_are_inconsistent() -> None:
    window = window_of(chain("a", 1, 5))
    broken = [chain("a", 6, 6)[0], chain("b", 7, 7)[0]]
    assert isinstance(detect(window, broken), Inconsistent)
    skipping = [chain("a", 6, 6)[0], Block(8, h("a8"), h("a6"))]
    assert isinstance(detect(window, skipping), Inconsistent)


def test_a_branch_beyond_the_head_after_a_gap_extends_and_the_window_restarts() -> None:
    window = window_of(chain("a", 1, 5))
    verdict = detect(window, chain("a", 50, 51))
    assert verdict == Extend(tuple(chain("a", 50, 51)))


# -- the chain aggregate ----------------------------------------------------------------------


def transfer_log(block: Block, index: int, tag: str = "t") -> Log:
    return Log(TOKEN, (h("Transfer"), h(f"from{index}")), "0x" + "00" * 31 + "05",
               block.number, block.hash, h(f"{tag}x{block.number}.{index}"), 0, index,
               "Transfer(address,address,uint256)", '{"value":"5"}')


def test_blocks_are_observed_once_each_with_ids_from_the_block() -> None:
    view, log = ChainView.new(CHAIN_ID), FakeLog()
    written = log.write(view.advance(Extend(tuple(chain("a", 1, 3)))), view)
    assert [type(r) for r in written] == [BlockObserved] * 3
    assert [r.meta.sequence for r in written] == [1, 2, 3]
    assert written[0].meta.aggregate_type == CHAIN
    assert written[0].meta.aggregate_id == "31337"
    assert written[0].meta.event_id == derived_id(view.block_cause(h("a1")), 0)
    assert written[0].timestamp == datetime.fromtimestamp(1_700_000_001, UTC)
    assert written[0].base_fee_per_gas_wei == "7"
    assert view.window.head.hash == h("a3")
    again = log.write(view.advance(detect(view.window, chain("a", 2, 3))))
    assert again == []


def test_a_reorg_is_recorded_and_its_logs_are_taken_back() -> None:
    view, log = ChainView.new(CHAIN_ID), FakeLog()
    a = chain("a", 1, 5)
    log.write(view.advance(Extend(tuple(a))), view)
    logs = [transfer_log(a[3], 0), transfer_log(a[3], 1), transfer_log(a[4], 0),
            transfer_log(a[1], 0)]
    log.write(view.observe_logs("demo", logs), view)
    assert view.checkpoints["demo"] == (5, 0)

    fork = chain("b", 4, 6, parent=h("a3"))
    written = log.write(view.advance(detect(view.window, fork)), view)
    reorg = written[0]
    assert isinstance(reorg, ReorgDetected)
    assert (reorg.depth, reorg.common_ancestor_number, reorg.old_head_number,
            reorg.new_head_number) == (2, 3, 5, 6)
    assert reorg.removed_block_hashes == (h("a5"), h("a4"))
    taken_back = [r for r in written if isinstance(r, ContractEventObserved)]
    assert [(r.block_number, r.log_index, r.removed) for r in taken_back] == [
        (4, 0, True), (4, 1, True), (5, 0, True)]
    assert taken_back[0].meta.event_id == derived_id(view.log_cause("demo", h("a4"), 0), 1)
    assert [type(r) for r in written[4:]] == [BlockObserved] * 3
    assert view.checkpoints["demo"][0] == 3  # the removed blocks' logs are to be read again
    assert view.resume_from("demo", 0) == 3
    assert [b.hash for b in view.window.blocks()][-3:] == [h("b4"), h("b5"), h("b6")]


def test_logs_already_reported_are_not_reported_again() -> None:
    view, log = ChainView.new(CHAIN_ID), FakeLog()
    a = chain("a", 1, 3)
    log.write(view.advance(Extend(tuple(a))), view)
    first = [transfer_log(a[1], 0), transfer_log(a[1], 1)]
    log.write(view.observe_logs("demo", first), view)
    again = view.observe_logs("demo", [*first, transfer_log(a[1], 2), transfer_log(a[2], 0)])
    assert [(e.record.block_number, e.record.log_index) for e in again] == [(2, 2), (3, 0)]


def test_logs_from_a_block_the_window_holds_under_another_hash_wait() -> None:
    view, log = ChainView.new(CHAIN_ID), FakeLog()
    log.write(view.advance(Extend(tuple(chain("a", 1, 3)))), view)
    stranger = transfer_log(chain("b", 2, 2)[0], 0)
    assert view.observe_logs("demo", [stranger]) is None


def test_a_subscription_resumes_after_its_scan_then_its_last_log_then_its_start() -> None:
    view, log = ChainView.new(CHAIN_ID), FakeLog()
    a = chain("a", 1, 9)
    log.write(view.advance(Extend(tuple(a))), view)
    assert view.resume_from("demo", 4) == 4
    log.write(view.observe_logs("demo", [transfer_log(a[6], 3)]), view)
    assert view.resume_from("demo", 4) == 7
    view.scanned["demo"] = 9
    assert view.resume_from("demo", 4) == 10


def test_the_chain_aggregate_rebuilt_from_the_log_decides_the_same() -> None:
    view, log = ChainView.new(CHAIN_ID), FakeLog()
    a = chain("a", 1, 5)
    log.write(view.advance(Extend(tuple(a))), view)
    log.write(view.observe_logs("demo", [transfer_log(a[4], 0)]), view)
    log.write(view.advance(detect(view.window, chain("b", 5, 6, parent=h("a4")))), view)
    back = chain("a", 5, 7)  # the old branch wins again: a5 is observed a second time
    fork = detect(view.window, back)
    while isinstance(fork, NeedBlock):
        fork = detect(view.window, [*chain("a", fork.number, fork.number), *back])

    rebuilt = ChainView.new(CHAIN_ID)
    for record in log.records:
        rebuilt.evolve(record)
        rebuilt.evolve(record)  # folding twice changes nothing
    assert rebuilt.head == view.head
    assert rebuilt.window.blocks() == view.window.blocks()
    assert rebuilt.checkpoints == view.checkpoints
    live, replayed = view.advance(fork), rebuilt.advance(fork)
    assert live == replayed
    observed_a5 = [e for e in live if isinstance(e.record, BlockObserved)
                   and e.record.hash == h("a5")]
    assert observed_a5[0].position == 1  # the same block, observed again: a new id
    ids = [r.meta.event_id for r in log.records] + [e.event_id for e in live]
    assert len(ids) == len(set(ids))


def test_other_chains_and_other_aggregates_are_not_folded() -> None:
    view, other, log = ChainView.new(CHAIN_ID), ChainView.new(1), FakeLog()
    log.write(other.advance(Extend(tuple(chain("a", 1, 2)))), other)
    for record in log.records:
        view.evolve(record)
    assert view.window.head is None
    assert view.head == ChainHead()


# -- receipts ---------------------------------------------------------------------------------


def signed(request_id: str, tx_hash: str, nonce: int = 0, *, chain_id: int = CHAIN_ID,
           replaces: str | None = None, sequence: int = 1) -> TxSigned:
    meta = EventMeta(event_id=derived_id(request_id, sequence), event_type=TxSigned.SCHEMA,
                     schema_version=1, aggregate_type="account",
                     aggregate_id=f"{chain_id}:{SENDER}", sequence=sequence, occurred_at=T0,
                     tenant="acme", actor="svc:tx-manager", correlation_id="corr-1",
                     prev_hash="0" * 64, hash="1" * 64)
    return TxSigned(meta=meta, request_id=request_id, chain_id=chain_id, sender=SENDER,
                    nonce=nonce, tx_hash=tx_hash, raw_tx="0x02", gas_limit=21000,
                    max_fee_per_gas_wei="100", max_priority_fee_per_gas_wei="1",
                    replaces_tx_hash=replaces)


def receipt(tx_hash: str, block: Block, ok: bool = True) -> Receipt:
    return Receipt(tx_hash, block.number, block.hash, 0, 21000, 1_000_000_007, ok)


REQ = "6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5"
REQ2 = "7f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5"


def test_a_signed_transaction_is_pending_until_its_receipt_is_in_a_canonical_block() -> None:
    tracker, log = Tracker(CHAIN_ID, depth=2), FakeLog()
    log.append(signed(REQ, h("tx1")), tracker)
    assert tracker.pending_hashes() == [h("tx1")]
    a = chain("a", 1, 5)
    window = window_of(a[:3])
    assert tracker.include({h("tx1"): None}, window) == []
    assert tracker.include({h("tx1"): receipt(h("tx1"), a[3])}, window) == []  # beyond head
    assert tracker.include({h("tx1"): receipt(h("tx1"), chain("b", 3, 3)[0])}, window) == []
    (included,) = log.write(tracker.include({h("tx1"): receipt(h("tx1"), a[2])}, window),
                            tracker)
    assert isinstance(included, TxIncluded)
    assert (included.request_id, included.block_number, included.block_hash,
            included.effective_gas_price_wei, included.status_ok) == (
        REQ, 3, h("a3"), "1000000007", True)
    assert included.meta.aggregate_type == RECEIPTS
    assert included.meta.aggregate_id == f"{CHAIN_ID}:{SENDER}"
    assert included.meta.causation_id == signed(REQ, h("tx1")).meta.event_id
    assert (included.meta.tenant, included.meta.correlation_id) == ("acme", "corr-1")
    assert tracker.requests[REQ].phase is Phase.INCLUDED
    assert tracker.pending_hashes() == []


def test_an_included_transaction_is_confirmed_at_depth() -> None:
    tracker, log = Tracker(CHAIN_ID, depth=3), FakeLog()
    log.append(signed(REQ, h("tx1")), tracker)
    a = chain("a", 1, 10)
    window = window_of(a[:4])
    log.write(tracker.include({h("tx1"): receipt(h("tx1"), a[3])}, window), tracker)
    window = window_of(a[:5])
    assert tracker.due(window) == []  # 2 confirmations of 3
    window = window_of(a[:6])
    assert [r.request_id for r in tracker.due(window)] == [REQ]
    assert tracker.settle({}, window) == []  # receipt not fetched: wait
    (confirmed,) = log.write(tracker.settle({h("tx1"): receipt(h("tx1"), a[3])}, window),
                             tracker)
    assert isinstance(confirmed, TxConfirmed)
    assert (confirmed.block_number, confirmed.confirmations, confirmed.request_id) == (4, 3, REQ)
    assert confirmed.meta.sequence == 2
    assert tracker.requests[REQ].phase is Phase.CONFIRMED
    assert tracker.due(window_of(a)) == []
    assert tracker.open_requests() == []


def test_a_reverted_transaction_fails_at_depth() -> None:
    tracker, log = Tracker(CHAIN_ID, depth=2), FakeLog()
    log.append(signed(REQ, h("tx1"), nonce=7), tracker)
    a = chain("a", 1, 4)
    log.write(tracker.include({h("tx1"): receipt(h("tx1"), a[1], ok=False)}, window_of(a[:2])),
              tracker)
    assert tracker.requests[REQ].included.status_ok is False
    (failed,) = log.write(tracker.settle({h("tx1"): receipt(h("tx1"), a[1], ok=False)},
                                         window_of(a[:3])), tracker)
    assert isinstance(failed, TxFailed)
    assert (failed.code, failed.tx_hash, failed.nonce) == (TxFailureCode.REVERTED, h("tx1"), 7)
    assert "status 0" in failed.detail
    assert tracker.requests[REQ].phase is Phase.FAILED


def test_a_reorged_transaction_is_pending_again_and_included_again() -> None:
    tracker, log = Tracker(CHAIN_ID, depth=3), FakeLog()
    log.append(signed(REQ, h("tx1")), tracker)
    a = chain("a", 1, 5)
    window = window_of(a)
    log.write(tracker.include({h("tx1"): receipt(h("tx1"), a[3])}, window), tracker)
    window.rewind(2)
    for block in chain("b", 3, 4, parent=h("a2")):
        window.observe(block)
    (reorged,) = log.write(tracker.orphaned(window), tracker)
    assert isinstance(reorged, TxReorged)
    assert (reorged.old_block_number, reorged.old_block_hash) == (4, h("a4"))
    assert tracker.requests[REQ].phase is Phase.PENDING
    assert tracker.orphaned(window) == []
    b4 = window.at(4)
    (again,) = log.write(tracker.include({h("tx1"): receipt(h("tx1"), b4)}, window), tracker)
    assert again.block_hash == h("b4")
    cause = signed(REQ, h("tx1")).meta.event_id
    assert [r.meta.event_id for r in log.records[1:]] == [derived_id(cause, 0),
                                                          derived_id(cause, 1),
                                                          derived_id(cause, 2)]


def test_an_inclusion_block_above_a_lower_new_head_is_orphaned() -> None:
    tracker, log = Tracker(CHAIN_ID, depth=2), FakeLog()
    log.append(signed(REQ, h("tx1")), tracker)
    a = chain("a", 1, 5)
    window = window_of(a)
    log.write(tracker.include({h("tx1"): receipt(h("tx1"), a[4])}, window), tracker)
    window.rewind(3)
    assert [type(e.record) for e in tracker.orphaned(window)] == [TxReorged]


def test_settling_a_receipt_that_moved_records_the_reorg_instead() -> None:
    tracker, log = Tracker(CHAIN_ID, depth=2), FakeLog()
    log.append(signed(REQ, h("tx1")), tracker)
    a = chain("a", 1, 5)
    log.write(tracker.include({h("tx1"): receipt(h("tx1"), a[2])}, window_of(a[:3])), tracker)
    moved = receipt(h("tx1"), chain("b", 3, 3)[0])
    assert [type(e.record) for e in tracker.settle({h("tx1"): moved}, window_of(a))] == [
        TxReorged]
    assert [type(e.record) for e in tracker.settle({h("tx1"): None}, window_of(a))] == [
        TxReorged]


def test_whichever_replacement_is_mined_settles_the_request() -> None:
    tracker, log = Tracker(CHAIN_ID, depth=1), FakeLog()
    log.append(signed(REQ, h("old"), nonce=3), tracker)
    log.append(signed(REQ, h("new"), nonce=3, replaces=h("old"), sequence=2), tracker)
    replaced = TxReplaced(meta=dataclasses.replace(signed(REQ, h("new")).meta, sequence=3,
                                                   event_id=derived_id(REQ, 3)),
                          request_id=REQ, old_tx_hash=h("old"), new_tx_hash=h("new"), nonce=3,
                          reason="STUCK")
    log.append(replaced, tracker)
    assert tracker.pending_hashes() == [h("old"), h("new")]
    a = chain("a", 1, 3)
    (included,) = log.write(tracker.include({h("old"): None, h("new"): receipt(h("new"), a[2])},
                                            window_of(a)), tracker)
    assert (included.tx_hash, included.request_id) == (h("new"), REQ)
    assert included.meta.causation_id == signed(REQ, h("new"), sequence=2).meta.event_id
    (confirmed,) = log.write(tracker.settle({h("new"): receipt(h("new"), a[2])},
                                            window_of(a)), tracker)
    assert isinstance(confirmed, TxConfirmed)
    assert confirmed.tx_hash == h("new")
    assert tracker.by_hash == {}


def manager_failed(request_id: str, tx_hash: str, code: TxFailureCode, sequence: int,
                   nonce: int = 0) -> TxFailed:
    """A TxFailed of the tx manager's chain ("account")."""
    return TxFailed(meta=dataclasses.replace(signed(request_id, tx_hash).meta, sequence=sequence,
                                             event_id=derived_id(request_id, sequence)),
                    request_id=request_id, tx_hash=tx_hash, nonce=nonce, code=code,
                    detail=str(code))


def test_a_failure_recorded_by_the_tx_manager_ends_the_tracking() -> None:
    tracker, log = Tracker(CHAIN_ID, depth=1), FakeLog()
    log.append(signed(REQ, h("tx1")), tracker)
    log.append(manager_failed(REQ, h("tx1"), TxFailureCode.NONCE_TOO_LOW, 2), tracker)
    assert tracker.requests[REQ].phase is Phase.FAILED
    assert tracker.pending_hashes() == []


def test_a_request_given_up_at_the_replacement_cap_is_still_followed_and_confirmed() -> None:
    tracker, log = Tracker(CHAIN_ID, depth=2), FakeLog()
    log.append(signed(REQ, h("tx1"), nonce=4), tracker)
    log.append(manager_failed(REQ, h("tx1"), TxFailureCode.REPLACEMENT_CAP, 2, nonce=4),
               tracker)
    assert tracker.pending_hashes() == [h("tx1")]  # it may still be mined
    a = chain("a", 1, 3)
    (included,) = log.write(tracker.include({h("tx1"): receipt(h("tx1"), a[1])},
                                            window_of(a[:2])), tracker)
    (confirmed,) = log.write(tracker.settle({h("tx1"): receipt(h("tx1"), a[1])},
                                            window_of(a)), tracker)
    assert isinstance(included, TxIncluded)
    assert isinstance(confirmed, TxConfirmed)
    assert (confirmed.request_id, confirmed.tx_hash) == (REQ, h("tx1"))
    assert tracker.requests[REQ].phase is Phase.CONFIRMED
    assert tracker.open_requests() == []


def test_the_cap_failure_written_after_the_inclusion_does_not_stop_the_confirmation() -> None:
    tracker, log = Tracker(CHAIN_ID, depth=2), FakeLog()
    log.append(signed(REQ, h("tx1")), tracker)
    a = chain("a", 1, 3)
    log.write(tracker.include({h("tx1"): receipt(h("tx1"), a[1])}, window_of(a[:2])), tracker)
    log.append(manager_failed(REQ, h("tx1"), TxFailureCode.REPLACEMENT_CAP, 2), tracker)
    (confirmed,) = log.write(tracker.settle({h("tx1"): receipt(h("tx1"), a[1])},
                                            window_of(a)), tracker)
    assert isinstance(confirmed, TxConfirmed)


def test_a_request_given_up_is_no_longer_followed_once_another_takes_its_nonce() -> None:
    tracker, log = Tracker(CHAIN_ID, depth=1), FakeLog()
    log.append(signed(REQ, h("stuck"), nonce=4), tracker)
    log.append(manager_failed(REQ, h("stuck"), TxFailureCode.REPLACEMENT_CAP, 2, nonce=4),
               tracker)
    log.append(signed(REQ2, h("other"), nonce=4, sequence=3), tracker)
    a = chain("a", 1, 2)
    log.write(tracker.include({h("stuck"): None, h("other"): receipt(h("other"), a[1])},
                              window_of(a)), tracker)
    log.write(tracker.settle({h("other"): receipt(h("other"), a[1])}, window_of(a)), tracker)
    assert tracker.requests[REQ2].phase is Phase.CONFIRMED
    assert tracker.requests[REQ].phase is Phase.FAILED
    assert tracker.pending_hashes() == []


def test_a_cancels_transaction_settles_the_cancel_never_its_target() -> None:
    tracker, log = Tracker(CHAIN_ID, depth=1), FakeLog()
    log.append(signed(REQ, h("target"), nonce=2), tracker)
    log.append(signed(REQ2, h("cancel"), nonce=2, replaces=h("target"), sequence=2), tracker)
    log.append(TxReplaced(meta=dataclasses.replace(signed(REQ2, h("cancel")).meta, sequence=3,
                                                   event_id=derived_id(REQ2, 3)),
                          request_id=REQ, old_tx_hash=h("target"), new_tx_hash=h("cancel"),
                          nonce=2, reason="CANCEL"), tracker)
    assert tracker.requests[REQ].hashes.keys() == {h("target")}
    a = chain("a", 1, 2)
    receipts = {h("target"): None, h("cancel"): receipt(h("cancel"), a[1])}
    (included,) = log.write(tracker.include(receipts, window_of(a)), tracker)
    (confirmed,) = log.write(tracker.settle(receipts, window_of(a)), tracker)
    assert (included.request_id, confirmed.request_id) == (REQ2, REQ2)
    assert tracker.requests[REQ].phase is Phase.PENDING  # until the tx manager's CANCELLED
    log.append(manager_failed(REQ, h("target"), TxFailureCode.CANCELLED, 4, nonce=2), tracker)
    assert tracker.requests[REQ].phase is Phase.FAILED
    assert tracker.pending_hashes() == []


def test_other_chains_are_not_tracked() -> None:
    tracker = Tracker(CHAIN_ID, depth=1)
    tracker.evolve(signed(REQ, h("tx1"), chain_id=1))
    assert tracker.requests == {}


def test_receipts_rebuilt_from_the_log_decide_the_same_and_each_event_is_folded_once() -> None:
    tracker, log = Tracker(CHAIN_ID, depth=2), FakeLog()
    log.append(signed(REQ, h("tx1")), tracker)
    log.append(signed(REQ2, h("tx2"), nonce=1, sequence=2), tracker)
    a = chain("a", 1, 6)
    window = window_of(a[:3])
    log.write(tracker.include({h("tx1"): receipt(h("tx1"), a[1]),
                               h("tx2"): receipt(h("tx2"), a[2])}, window), tracker)
    window.rewind(2)
    log.write(tracker.orphaned(window), tracker)

    rebuilt = Tracker(CHAIN_ID, depth=2)
    for record in log.records + log.records:  # everything twice: each is folded once
        rebuilt.evolve(record)
    assert rebuilt.heads == tracker.heads
    assert rebuilt.produced == tracker.produced
    assert {k: (r.phase, r.included) for k, r in rebuilt.requests.items()} == {
        k: (r.phase, r.included) for k, r in tracker.requests.items()}
    window = window_of(a[:4])
    fetched = {h("tx1"): receipt(h("tx1"), a[1]), h("tx2"): receipt(h("tx2"), a[3])}
    assert rebuilt.include(fetched, window) == tracker.include(fetched, window)
    assert rebuilt.settle(fetched, window) == tracker.settle(fetched, window)
    assert [e.position for e in tracker.include(fetched, window)] == [2]  # included, reorged


@pytest.mark.parametrize("name", ["", "a", "block:31337:0xab", "é/ü" * 40])
def test_ids_are_the_envelopes_uuid5(name: str) -> None:
    import uuid

    from omc_domain.chainview import _uuid5
    from omc_events.envelope import ID_NAMESPACE

    assert _uuid5(name) == str(uuid.uuid5(ID_NAMESPACE, name))
    emit = Emit(CHAIN, "1", name or "x", 3, BlockObserved.__new__(BlockObserved))
    assert emit.event_id == derived_id(name or "x", 3)
