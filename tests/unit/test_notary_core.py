"""The notary's core in-process (no Kafka): checkpoints by count and time, signed digests,
consistency with the previous checkpoint, the same outputs after a restart from its own
records, anchors requested and confirmed once; and the checkpoint digest and key."""

from __future__ import annotations

import dataclasses
import itertools
import pickle
from datetime import UTC, datetime, timedelta

import pytest

from omc_errors import ConfigError
from omc_events.avro import Schemas
from omc_events.chain import seal
from omc_events.envelope import ChainHead
from omc_events.records import (
    AnchorConfirmed,
    AnchorSubmitted,
    CheckpointSigned,
    TxRequested,
)
from omc_notary.notary import Anchoring, Notary, Output
from omc_proofs.checkpoint import (
    NotaryKey,
    checkpoint_digest,
    checkpoint_problems,
    recover_signer,
    unhex32,
)
from omc_proofs.merkle import verify_consistency
from tests.support.samples import sample

SCHEMAS = Schemas()
T0 = datetime(2026, 11, 25, 12, tzinfo=UTC)
KEY = NotaryKey("0x" + "22" * 32)
ANCHORING = Anchoring(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3",
                      "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", 10**11)


def _events(n: int, start: int = 0) -> list[tuple[int, bytes, object]]:
    head = ChainHead()
    out = []
    for i in range(n):
        record = sample(SCHEMAS.set, "omc.task.TaskCompleted", aggregate_id="t",
                        causation="c", position=start + i)
        record, head = seal(SCHEMAS, record, head)
        out.append((start + i, b"\x00\x00\x00\x00\x01" + SCHEMAS.encode(record), record))
    return out


def _notary(**kw) -> Notary:
    return Notary(KEY, SCHEMAS, proof_topic="proof", tx_topic="tx", every_events=4,
                  every_seconds=60, **kw)


def _feed(notary: Notary, events, now=T0):
    outputs = []
    for offset, value, record in events:
        outputs += notary.observe("task", 0, offset, value, record, now)
        outputs += notary.due(now)
    return outputs


def test_checkpoints_by_count_chain_and_prove_consistency():
    outputs = _feed(_notary(), _events(10))
    checkpoints = [o.record for o in outputs]
    assert [c.tree_size for c in checkpoints] == [4, 8]
    first, second = checkpoints
    assert all(isinstance(c, CheckpointSigned) for c in checkpoints)
    assert (first.first_offset, first.last_offset, first.previous_root) == (0, 3, None)
    assert (second.first_offset, second.last_offset) == (4, 7)
    assert second.previous_root == first.root
    assert verify_consistency(4, 8, unhex32(first.root), unhex32(second.root),
                              [unhex32(h) for h in second.consistency_proof])
    assert [c.meta.sequence for c in checkpoints] == [1, 2]
    assert second.meta.prev_hash == first.meta.hash
    assert all(checkpoint_problems(c, [KEY.address]) == [] for c in checkpoints)
    assert {o.key for o in outputs} == {"task:0"}


def test_time_closes_a_stream_only_when_ready():
    notary = _notary()
    _feed(notary, _events(3))
    assert notary.due(T0 + timedelta(seconds=61), ready=False) == []
    [out] = notary.due(T0 + timedelta(seconds=61))
    assert out.record.tree_size == 3
    assert notary.due(T0 + timedelta(seconds=200)) == []  # nothing new


def test_a_restart_from_its_own_records_continues_without_duplicate_or_gap():
    events = _events(13)
    live = _notary()
    written = _feed(live, events[:9])
    again = _notary()
    for out in written:
        again.restore(out.record)
    assert _feed(again, events[:9]) == []  # the replay writes nothing already written
    rest_live = _feed(live, events[9:])
    rest_again = _feed(again, events[9:])
    assert [o.record for o in rest_again] == [o.record for o in rest_live]
    assert [o.record.tree_size for o in rest_live] == [12]
    assert rest_live[0].record.previous_tree_size == 8


def test_anchors_are_requested_once_and_confirmed_by_the_tx_outcome():
    notary = _notary(anchoring=ANCHORING)
    outputs = _feed(notary, _events(4))
    kinds = [type(o.record) for o in outputs]
    assert kinds == [CheckpointSigned, AnchorSubmitted, TxRequested]
    submitted, request = outputs[1].record, outputs[2].record
    assert outputs[2].topic == "tx"
    assert outputs[2].key == f"31337:{ANCHORING.sender}"
    assert request.purpose == "ANCHOR"
    assert request.to == ANCHORING.registry
    assert request.data.startswith("0x")
    assert request.meta.sequence == 0  # self-hashed
    assert request.request_id == submitted.request_id
    # a restart before the outcome re-sends the very same request
    again = _notary(anchoring=ANCHORING)
    for out in outputs[:2]:
        again.restore(out.record)
    assert [o.record for o in again.resubmissions()] == [request]
    confirmed = sample(SCHEMAS.set, "omc.tx.TxConfirmed", aggregate_id="a")
    confirmed = dataclasses.replace(confirmed, request_id=request.request_id)
    [out] = notary.observe("tx", 0, 0, b"", confirmed, T0)
    assert isinstance(out.record, AnchorConfirmed)
    assert (out.record.root, out.record.tree_size) == (submitted.root, 4)
    assert out.record.meta.prev_hash == submitted.meta.hash
    assert notary.observe("tx", 0, 1, b"", confirmed, T0) == []  # once
    # its own anchoring traffic is covered by time, by a checkpoint that is not anchored
    [out] = notary.due(T0 + timedelta(days=1))
    assert (type(out.record), out.record.stream_id, out.record.tree_size) == (
        CheckpointSigned, "tx:0", 2)
    assert notary.due(T0 + timedelta(days=2)) == []


def test_digest_is_the_documented_canonical_json():
    import hashlib
    import json

    fields = {"first_offset": 0, "last_offset": 3, "previous_root": None,
              "previous_tree_size": 0, "root": "0x" + "ab" * 32, "stream_id": "s:0",
              "tree_size": 4}
    expected = "0x" + hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":"))
                                     .encode()).hexdigest()
    assert checkpoint_digest(**fields) == expected
    assert recover_signer(expected, KEY.sign(expected)) == KEY.address


def test_the_key_is_never_shown():
    text = "22" * 32
    assert text not in repr(KEY) + str(KEY)
    with pytest.raises(TypeError):
        pickle.dumps(KEY)
    with pytest.raises(ConfigError) as error:
        NotaryKey("0x1234")
    assert "1234" not in str(error.value)


def test_the_fast_signature_check_agrees_with_eth_account():
    import random

    from omc_proofs.checkpoint import signed_by

    rng = random.Random(9)
    other = NotaryKey("0x" + "33" * 32)
    for i in range(200):
        digest = "0x" + rng.randbytes(32).hex()
        signature = KEY.sign(digest)
        if i % 4 == 1:
            signature = "0x" + rng.randbytes(64).hex() + rng.choice(["1b", "1c"])
        if i % 4 == 2:
            digest = "0x" + rng.randbytes(32).hex()
        try:
            expected = recover_signer(digest, signature) == KEY.address
        except Exception:
            expected = False
        assert signed_by(digest, signature, KEY.address) == expected
        assert not signed_by(digest, signature, other.address)
    assert not signed_by("0x" + "00" * 32, "0x" + "00" * 65, KEY.address)


# -- anchor retries -------------------------------------------------------------------------

RETRYING = dataclasses.replace(ANCHORING, attempts=3, retry_seconds=30, timeout_seconds=600)


def _outcome(kind: str, request_id: str, position: int = 0):
    record = sample(SCHEMAS.set, kind, aggregate_id="a", causation=request_id,
                    position=position)
    return dataclasses.replace(record, request_id=request_id)


def _submitted(outputs) -> list[AnchorSubmitted]:
    return [o.record for o in outputs if isinstance(o.record, AnchorSubmitted)]


def test_a_failed_anchor_is_retried_after_its_backoff_and_confirmed_once():
    notary = _notary(anchoring=RETRYING)
    outputs = _feed(notary, _events(4))
    [first] = _submitted(outputs)
    failed_at = T0 + timedelta(seconds=5)
    assert notary.observe("tx", 0, 0, b"", _outcome("omc.tx.TxFailed", first.request_id),
                          failed_at) == []
    assert notary.due(failed_at + timedelta(seconds=29)) == []  # the backoff
    retry = notary.due(failed_at + timedelta(seconds=30))
    assert [type(o.record) for o in retry] == [AnchorSubmitted, TxRequested]
    second, request = retry[0].record, retry[1].record
    assert (second.stream_id, second.tree_size, second.root) == (
        first.stream_id, first.tree_size, first.root)
    assert second.request_id != first.request_id == outputs[1].record.request_id
    assert request.request_id == second.request_id
    assert request.purpose == "ANCHOR"
    assert second.meta.prev_hash == first.meta.hash  # on the stream's proof chain
    assert notary.due(failed_at + timedelta(seconds=31)) == []  # the retry is open
    # a restart from its records, replaying the failure, makes no third attempt
    again = _notary(anchoring=RETRYING)
    for out in outputs + retry:
        if out.topic == "proof":
            again.restore(out.record)
    _feed(again, _events(4), now=failed_at)
    again.observe("tx", 0, 0, b"", _outcome("omc.tx.TxFailed", first.request_id), failed_at)
    [unanchored] = again.due(failed_at + timedelta(seconds=120))  # no third attempt; the
    assert unanchored.record.stream_id == "tx:0"  # failure itself is covered, not anchored
    assert [o.record for o in again.resubmissions()] == [request]
    # the retry's confirmation anchors the checkpoint; the first's late one adds nothing
    [out] = notary.observe("tx", 0, 1, b"", _outcome("omc.tx.TxConfirmed", second.request_id),
                           failed_at)
    assert isinstance(out.record, AnchorConfirmed)
    assert (out.record.request_id, out.record.tree_size) == (second.request_id, 4)
    assert notary.observe("tx", 0, 2, b"", _outcome("omc.tx.TxConfirmed", first.request_id,
                                                    1), failed_at) == []
    assert _submitted(notary.due(T0 + timedelta(days=1))) == []  # (tx:0 covered, unanchored)
    assert notary.anchor_outcomes == {"submitted": 1, "failed": 1, "retried": 1,
                                      "confirmed": 1}


def test_an_anchor_without_outcome_times_out_and_attempts_are_bounded():
    notary = _notary(anchoring=RETRYING)
    outputs = _feed(notary, _events(4))
    [first] = _submitted(outputs)
    assert notary.due(T0 + timedelta(seconds=599)) == []
    assert notary.due(T0 + timedelta(seconds=600), ready=False) == []  # the log not read yet
    [second] = _submitted(notary.due(T0 + timedelta(seconds=630)))  # timeout + 30 s backoff
    failed = T0 + timedelta(seconds=700)
    notary.observe("tx", 0, 0, b"", _outcome("omc.tx.TxFailed", second.request_id), failed)
    assert notary.due(failed + timedelta(seconds=59)) == []  # 60 s after the 2nd attempt
    [third] = _submitted(notary.due(failed + timedelta(seconds=60)))
    notary.observe("tx", 0, 1, b"", _outcome("omc.tx.TxFailed", third.request_id), failed)
    assert [(type(o.record), o.key) for o in notary.due(failed + timedelta(days=1))] == [
        (CheckpointSigned, "tx:0")]  # 3 attempts: abandoned; the failures covered, unanchored
    assert len({first.request_id, second.request_id, third.request_id}) == 3
    assert notary.anchor_outcomes["abandoned"] == 1
    # the first, timed out but open, may still land: the checkpoint is then anchored
    [out] = notary.observe("tx", 0, 2, b"", _outcome("omc.tx.TxConfirmed", first.request_id),
                           failed)
    assert isinstance(out.record, AnchorConfirmed)
    assert out.record.tree_size == 4


def test_a_failed_anchor_is_not_retried_once_a_later_root_is_anchored():
    notary = _notary(anchoring=RETRYING)
    [first] = _submitted(_feed(notary, _events(4)))
    [second] = _submitted(_feed(notary, _events(4, start=4)))
    notary.observe("tx", 0, 0, b"", _outcome("omc.tx.TxFailed", first.request_id), T0)
    notary.observe("tx", 0, 1, b"", _outcome("omc.tx.TxConfirmed", second.request_id), T0)
    assert _submitted(notary.due(T0 + timedelta(hours=1))) == []
    assert notary.anchor_outcomes["superseded"] == 1


# -- anchoring traffic: covered, never anchored on its own ----------------------------------

LIFECYCLE = ("omc.tx.TxSigned", "omc.tx.TxBroadcast", "omc.tx.TxIncluded", "omc.tx.TxConfirmed")


class World:
    """The notary, and what the tx manager and the watcher do with its anchor requests: each
    TxRequested is the next leaf of the tx stream, then its transaction's events, one per
    tick (30 s). With `blocks` ("first" or "after" its TxIncluded), the block mined for each
    anchor is observed too (BlockObserved on the chain stream), as on a chain that mines a
    block per transaction. Every leaf it is fed is kept (`fed`), for a restart to replay."""

    def __init__(self, notary: Notary, blocks: str | None = None) -> None:
        self.notary = notary
        self.blocks = blocks
        self.now = T0
        self.offsets: dict[str, int] = {"task": 0, "tx": 0, "chain": 0}
        self.queue: list[tuple[str, object]] = []  # (topic, event) still to come, in order
        self.fed: list[tuple[str, int, bytes, object, datetime]] = []
        self.outputs: list = []

    def feed(self, topic: str, record) -> list:
        value = b"\x00\x00\x00\x00\x01" + SCHEMAS.encode(record)
        offset = self.offsets[topic]
        self.offsets[topic] += 1
        self.fed.append((topic, offset, value, record, self.now))
        return self.notary.observe(topic, 0, offset, value, record, self.now)

    def take(self, outputs: list) -> None:
        self.outputs += outputs
        for out in outputs:
            if not isinstance(out.record, TxRequested):
                continue
            request_id = out.record.request_id
            self.queue.append(("tx", out.record))
            for n, kind in enumerate(LIFECYCLE):
                event = _outcome(kind, request_id, n)
                if kind != "omc.tx.TxIncluded" or self.blocks is None:
                    self.queue.append(("tx", event))
                    continue
                event = dataclasses.replace(event, block_hash=_block_hash(request_id))
                block = _block(_block_hash(request_id))
                self.queue += ([("chain", block), ("tx", event)] if self.blocks == "first"
                               else [("tx", event), ("chain", block)])

    def tick(self) -> list:
        """30 s pass: the next event (if any) is written, the notary checkpoints."""
        self.now += timedelta(seconds=30)
        before = len(self.outputs)
        if self.queue:
            self.take(self.feed(*self.queue.pop(0)))
        self.take(self.notary.due(self.now))
        return self.outputs[before:]

    def proof(self, kind: type, stream: str) -> list:
        return [o.record for o in self.outputs
                if isinstance(o.record, kind) and o.record.stream_id == stream]


def _block_hash(seed: str) -> str:
    import hashlib

    return "0x" + hashlib.sha256(seed.encode()).hexdigest()


def _block(block_hash: str):
    record = sample(SCHEMAS.set, "omc.chain.BlockObserved", aggregate_id="31337",
                    causation=block_hash, position=0)
    return dataclasses.replace(record, hash=block_hash)


def _task_request() -> TxRequested:
    record = sample(SCHEMAS.set, "omc.tx.TxRequested", aggregate_id="31337:0xabc",
                    causation="task-1", position=0)
    return dataclasses.replace(record, request_id="a-task-request")


@pytest.mark.parametrize(("task_tx_events", "blocks"),
                         [(0, None), (1, None), (0, "first"), (0, "after"), (1, "after")])
def test_anchoring_traffic_reaches_a_steady_state_covered_and_never_anchored(task_tx_events,
                                                                              blocks):
    """A task's checkpoint is anchored; its anchor's transaction (5 events on the tx stream,
    30 s apart) is covered by checkpoints that are not anchored, and then nothing more is
    written, however long the notary runs. With a task's transaction on the tx stream too,
    that checkpoint is anchored once, and its anchor's traffic again only covered. The
    blocks mined for the anchors (observed before or after their TxIncluded) likewise."""
    world = World(_notary(anchoring=ANCHORING), blocks)
    for offset, value, record in _events(4):
        world.take(world.notary.observe("task", 0, offset, value, record, T0))
    for _ in range(task_tx_events):
        world.take(world.feed("tx", _task_request()))
    world.take(world.notary.due(T0))
    for _ in range(200):  # 100 minutes
        world.tick()
    assert world.queue == []
    tx_checkpoints = world.proof(CheckpointSigned, "tx:0")
    anchors = [o.record for o in world.outputs if isinstance(o.record, AnchorSubmitted)]
    assert [a.stream_id for a in anchors] == ["task:0"] + ["tx:0"] * task_tx_events
    assert len([o for o in world.outputs if isinstance(o.record, TxRequested)]) == len(anchors)
    # every leaf of the tx stream is covered, by a bounded number of checkpoints
    tx_leaves = world.offsets["tx"]
    assert tx_leaves == 5 * len(anchors) + task_tx_events
    assert tx_checkpoints[-1].tree_size == tx_leaves
    assert 1 <= len(tx_checkpoints) <= 3 * len(anchors)  # one per 60 s while events arrive
    assert all(checkpoint_problems(c, [KEY.address]) == [] for c in tx_checkpoints)
    for before, after in itertools.pairwise(tx_checkpoints):  # a chain of consistent roots
        assert after.previous_tree_size == before.tree_size
        assert verify_consistency(before.tree_size, after.tree_size, unhex32(before.root),
                                  unhex32(after.root),
                                  [unhex32(h) for h in after.consistency_proof])
    assert [world.tick() for _ in range(50)] == [[]] * 50  # steady: nothing more, ever
    confirmed = [o.record for o in world.outputs if isinstance(o.record, AnchorConfirmed)]
    assert len(confirmed) == len(anchors)
    chain_checkpoints = world.proof(CheckpointSigned, "chain:0")
    assert world.offsets["chain"] == (len(anchors) if blocks else 0)
    assert (1 <= len(chain_checkpoints) <= len(anchors)) if blocks else not chain_checkpoints
    assert [c.tree_size for c in chain_checkpoints[-1:]] == (
        [world.offsets["chain"]] if blocks else [])  # every block covered


def test_a_block_is_anchored_unless_it_holds_an_anchor():
    """A block the notary's anchors did not cause is anchored like any event; one that
    includes an anchor is covered, not anchored; the match holds across a restart."""
    notary = _notary(anchoring=ANCHORING)
    outputs = []
    for offset, value, record in _events(4):
        outputs += notary.observe("task", 0, offset, value, record, T0)
    outputs += notary.due(T0)
    [request] = [o.record for o in outputs if isinstance(o.record, TxRequested)]
    included = dataclasses.replace(_outcome("omc.tx.TxIncluded", request.request_id),
                                   block_hash=_block_hash("anchor"))
    notary.observe("tx", 0, 0, b"", included, T0)
    notary.observe("chain", 0, 0, b"a", _block(_block_hash("anchor")), T0)
    first = notary.due(T0 + timedelta(seconds=60))
    assert sorted((type(o.record).__name__, o.key) for o in first) == [
        ("CheckpointSigned", "chain:0"), ("CheckpointSigned", "tx:0")]
    notary.observe("chain", 0, 1, b"b", _block(_block_hash("someone else's")), T0)
    second = notary.due(T0 + timedelta(seconds=120))
    assert [(type(o.record).__name__, o.key) for o in second] == [
        ("CheckpointSigned", "chain:0"), ("AnchorSubmitted", "chain:0"),
        ("TxRequested", request.meta.aggregate_id)]
    # a notary restarted after the task's checkpoint, reading the block before the
    # inclusion this time, writes the same unanchored checkpoints
    again = _notary(anchoring=ANCHORING)
    for out in outputs:
        if out.topic == "proof":
            again.restore(out.record)
    for offset, value, record in _events(4):
        again.observe("task", 0, offset, value, record, T0)
    again.observe("chain", 0, 0, b"a", _block(_block_hash("anchor")), T0)
    again.observe("tx", 0, 0, b"", included, T0)
    assert sorted((o.record for o in again.due(T0 + timedelta(seconds=60))),
                  key=lambda r: r.stream_id) == sorted((o.record for o in first),
                                                       key=lambda r: r.stream_id)


def test_a_restart_after_unanchored_checkpoints_writes_no_duplicate_and_no_gap():
    live = World(_notary(anchoring=ANCHORING))
    for offset, value, record in _events(4):
        live.take(live.notary.observe("task", 0, offset, value, record, T0))
    live.take(live.notary.due(T0))
    for _ in range(4):  # the anchor's request and 3 of its events: one unanchored checkpoint
        live.tick()
    assert [c.tree_size for c in live.proof(CheckpointSigned, "tx:0")] == [3]
    # a second notary reads the proof records, then replays every leaf (not ready: no timer)
    again = World(_notary(anchoring=ANCHORING))
    for out in live.outputs:
        if out.topic == "proof":
            again.notary.restore(out.record)
    assert [o.record for o in again.notary.resubmissions()] == [
        o.record for o in live.outputs if isinstance(o.record, TxRequested)]  # still open
    replayed = []
    for topic, offset, value, record, at in live.fed:
        replayed += again.notary.observe(topic, 0, offset, value, record, at)
    replayed += again.notary.due(live.now, ready=False)
    assert replayed == []
    again.now, again.offsets, again.queue = live.now, dict(live.offsets), list(live.queue)
    rest_live = [o.record for _ in range(10) for o in live.tick()]
    rest_again = [o.record for _ in range(10) for o in again.tick()]
    assert rest_again == rest_live
    sizes = [c.tree_size for c in live.proof(CheckpointSigned, "tx:0")]
    assert sizes == [3, 5]  # contiguous: each follows the previous
    assert [c.previous_tree_size for c in live.proof(CheckpointSigned, "tx:0")] == [0, 3]
    assert [type(r) for r in rest_live].count(AnchorSubmitted) == 0


# -- trace context --------------------------------------------------------------------------


class RecordedSpans:
    """A `Spans` that hands out W3C contexts: a child keeps its parent's trace id."""

    def __init__(self) -> None:
        self.begun: list[tuple[str, tuple, dict]] = []

    def begin(self, name, parent, **attributes):
        trace_id = parent[0].split("-")[1] if parent[0] else f"{len(self.begun) + 1:032x}"
        context = (f"00-{trace_id}-{len(self.begun) + 1:016x}-01", "omc=1")
        self.begun.append((name, parent, attributes))
        return context


def _trace_id(meta) -> str:
    return meta.traceparent.split("-")[1]


def test_one_trace_follows_a_checkpoint_to_its_anchor_and_confirmation():
    spans = RecordedSpans()
    notary = _notary(anchoring=RETRYING, spans=spans)
    outputs = _feed(notary, _events(4))
    checkpoint, submitted, request = (o.record for o in outputs)
    assert spans.begun[0][:2] == ("notary omc.proof.CheckpointSigned", (None, None))
    assert spans.begun[0][2]["omc.anchored"] is True
    assert spans.begun[1][:2] == ("notary omc.proof.AnchorSubmitted",
                                  (checkpoint.meta.traceparent, checkpoint.meta.tracestate))
    assert spans.begun[1][2]["omc.request_id"] == submitted.request_id
    # the tx manager continues the anchor's span: the request carries its context
    assert (request.meta.traceparent, request.meta.tracestate) == (
        submitted.meta.traceparent, submitted.meta.tracestate)
    assert _trace_id(checkpoint.meta) == _trace_id(submitted.meta) == _trace_id(request.meta)
    # a retry is a child of the checkpoint too, also after a restart
    failed = _outcome("omc.tx.TxFailed", submitted.request_id)
    notary.observe("tx", 0, 0, b"", failed, T0)
    retry, retried_request = (o.record for o in notary.due(T0 + timedelta(seconds=30)))
    assert spans.begun[-1][1] == (checkpoint.meta.traceparent, checkpoint.meta.tracestate)
    assert _trace_id(retry.meta) == _trace_id(checkpoint.meta)
    assert retried_request.meta.traceparent == retry.meta.traceparent
    again = _notary(anchoring=RETRYING, spans=RecordedSpans())
    for out in [*outputs, Output("proof", "task:0", retry)]:
        if out.topic == "proof":
            again.restore(out.record)
    assert [o.record for o in again.resubmissions()] == [request, retried_request]  # (both
    # open: the first's TxFailed is not replayed here) the same records, trace context too
    # the watcher's TxConfirmed carries the transaction's trace; AnchorConfirmed continues it
    tx_span = f"00-{_trace_id(request.meta)}-{'ab' * 8}-01"
    confirmed = _outcome("omc.tx.TxConfirmed", retry.request_id)
    confirmed = dataclasses.replace(confirmed, meta=dataclasses.replace(
        confirmed.meta, traceparent=tx_span, tracestate=None))
    [out] = notary.observe("tx", 0, 1, b"", confirmed, T0 + timedelta(seconds=40))
    assert isinstance(out.record, AnchorConfirmed)
    assert spans.begun[-1][:2] == ("notary omc.proof.AnchorConfirmed", (tx_span, None))
    assert _trace_id(out.record.meta) == _trace_id(checkpoint.meta)
    # the anchoring traffic's own checkpoint starts its own trace, and says it is unanchored
    [tx_checkpoint] = notary.due(T0 + timedelta(days=1))
    assert spans.begun[-1][0] == "notary omc.proof.CheckpointSigned"
    assert spans.begun[-1][2]["omc.anchored"] is False
    assert _trace_id(tx_checkpoint.record.meta) != _trace_id(checkpoint.meta)


def test_untraced_records_carry_their_causes_context():
    notary = _notary(anchoring=ANCHORING)
    checkpoint, submitted, request = (o.record for o in _feed(notary, _events(4)))
    assert checkpoint.meta.traceparent is submitted.meta.traceparent is None
    assert request.meta.traceparent is None
    tx_span = "00-" + "12" * 16 + "-" + "34" * 8 + "-01"
    confirmed = _outcome("omc.tx.TxConfirmed", submitted.request_id)
    confirmed = dataclasses.replace(confirmed, meta=dataclasses.replace(
        confirmed.meta, traceparent=tx_span))
    [out] = notary.observe("tx", 0, 0, b"", confirmed, T0)
    assert out.record.meta.traceparent == tx_span


def _log_of(tx_hash: str, position: int):
    record = sample(SCHEMAS.set, "omc.chain.ContractEventObserved", aggregate_id="31337",
                    causation="log", position=position)
    return dataclasses.replace(record, tx_hash=tx_hash)


def test_a_log_of_an_anchors_transaction_is_anchoring_traffic():
    """A subscription to the registry's own event: the ContractEventObserved of an anchor's
    transaction (known by its TxSigned, or TxReplaced) is covered, not anchored; another
    transaction's is anchored."""
    notary = _notary(anchoring=ANCHORING)
    outputs = []
    for offset, value, record in _events(4):
        outputs += notary.observe("task", 0, offset, value, record, T0)
    outputs += notary.due(T0)
    [request] = [o.record for o in outputs if isinstance(o.record, TxRequested)]
    signed = _outcome("omc.tx.TxSigned", request.request_id)
    replaced = _outcome("omc.tx.TxReplaced", request.request_id, 1)
    notary.observe("tx", 0, 0, b"", signed, T0)
    notary.observe("tx", 0, 1, b"", replaced, T0)
    for n, tx_hash in enumerate((signed.tx_hash, replaced.new_tx_hash.upper())):
        notary.observe("chain", 0, n, bytes([n]), _log_of(tx_hash, n), T0)
    assert _submitted(notary.due(T0 + timedelta(seconds=60))) == []
    notary.observe("chain", 0, 2, b"\x02", _log_of("0x" + "ef" * 32, 2), T0)
    assert [a.stream_id for a in _submitted(notary.due(T0 + timedelta(seconds=120)))] == [
        "chain:0"]


def test_an_anchors_block_read_before_its_inclusion_causes_no_anchor():
    """The block is read, the time trigger fires, and only then its anchor's TxIncluded: the
    checkpoint of blocks not matched yet is not anchored while an anchor is in flight; a
    block read once nothing is in flight is anchored."""
    notary = _notary(anchoring=ANCHORING)
    outputs = []
    for offset, value, record in _events(4):
        outputs += notary.observe("task", 0, offset, value, record, T0)
    outputs += notary.due(T0)
    [request] = [o.record for o in outputs if isinstance(o.record, TxRequested)]
    notary.observe("chain", 0, 0, b"a", _block(_block_hash("anchor")), T0)
    early = notary.due(T0 + timedelta(seconds=60))
    assert [(type(o.record).__name__, o.key) for o in early] == [
        ("CheckpointSigned", "chain:0")]  # covered, not anchored: an anchor is in flight
    included = dataclasses.replace(_outcome("omc.tx.TxIncluded", request.request_id),
                                   block_hash=_block_hash("anchor"))
    notary.observe("tx", 0, 0, b"", included, T0 + timedelta(seconds=61))
    assert notary.due(T0 + timedelta(seconds=62)) == []  # it was the anchor's: no anchor
    notary.observe("chain", 0, 1, b"b", _block(_block_hash("someone else's")), T0)
    later = notary.due(T0 + timedelta(seconds=122))
    assert ("AnchorSubmitted", "chain:0") in [(type(o.record).__name__, o.key) for o in later]
    assert notary.in_flight.keys() == {_submitted(later)[0].request_id}


def test_a_block_left_unanchored_while_an_anchor_was_in_flight_is_anchored_after():
    """A block that is not an anchor's, read while an anchor is in flight: its checkpoint is
    not anchored then; once the anchor's inclusion is read, that checkpoint is (once, with
    no new checkpoint). Had the block been the anchor's, nothing would be anchored."""
    notary = _notary(anchoring=ANCHORING)
    outputs = []
    for offset, value, record in _events(4):
        outputs += notary.observe("task", 0, offset, value, record, T0)
    outputs += notary.due(T0)
    [request] = [o.record for o in outputs if isinstance(o.record, TxRequested)]
    notary.observe("chain", 0, 0, b"a", _block(_block_hash("someone else's")), T0)
    [signed] = notary.due(T0 + timedelta(seconds=60))  # in flight: covered, not anchored
    assert (type(signed.record), signed.key) == (CheckpointSigned, "chain:0")
    included = dataclasses.replace(_outcome("omc.tx.TxIncluded", request.request_id),
                                   block_hash=_block_hash("anchor"))
    notary.observe("tx", 0, 0, b"", included, T0 + timedelta(seconds=61))
    later = notary.due(T0 + timedelta(seconds=62))
    [anchor] = _submitted(later)
    assert (anchor.stream_id, anchor.tree_size, anchor.root) == (
        "chain:0", 1, signed.record.root)
    assert anchor.meta.causation_id == signed.record.meta.event_id  # the checkpoint's anchor
    assert not any(isinstance(o.record, CheckpointSigned) for o in later)
    assert _submitted(notary.due(T0 + timedelta(seconds=63))) == []  # once
