"""The notary on fresh topics: checkpoints over real-format events, contiguous across a
restart, anchored on anvil through the TxRequested / TxConfirmed round trip (the real tx
manager's too), the anchors' own traffic covered by unanchored checkpoints and traced with
them, and the audit of the log passing (and failing when a stored event is changed or an
unanchored root is claimed anchored)."""

from __future__ import annotations

import random

import pytest

from omc_audit.verify import verify_log
from omc_chain.artifacts import load_artifact
from omc_chain.deploy import deploy_contract, send_call
from omc_events.records import AnchorConfirmed, AnchorSubmitted, CheckpointSigned
from omc_proofs.checkpoint import checkpoint_problems
from tests.support.auditlog import AuditLog

pytestmark = pytest.mark.integration


def _checkpoints(log: AuditLog) -> dict[str, list[CheckpointSigned]]:
    found: dict[str, list[CheckpointSigned]] = {}
    for record in log.proof_records():
        if isinstance(record, CheckpointSigned):
            found.setdefault(record.stream_id, []).append(record)
    return found


def test_checkpoints_are_contiguous_across_a_restart_and_the_log_verifies(settings,
                                                                          fresh_topic):
    log = AuditLog(settings, fresh_topic)
    log.tasks(6, random.Random(1))
    notary = log.notary(every_events=4)
    log.settle(notary)
    notary.close()
    first = _checkpoints(log)
    assert first, "no checkpoint written"
    log.tasks(5, random.Random(2))
    restarted = log.notary(every_events=4)  # state from the proof topic and the event topics
    log.settle(restarted, tick=61)  # and the time trigger closes every stream
    restarted.close()
    streams = _checkpoints(log)
    for stream, checkpoints in streams.items():
        sizes = [c.tree_size for c in checkpoints]
        assert sizes == sorted(set(sizes)), f"{stream}: duplicate or reordered {sizes}"
        assert [c.previous_tree_size for c in checkpoints] == [0, *sizes[:-1]]  # no gap
        assert all(checkpoint_problems(c, [log.key.address]) == [] for c in checkpoints)
        assert checkpoints[:len(first.get(stream, []))] == first.get(stream, [])
    task_sizes = {s: c[-1].tree_size for s, c in streams.items()}
    report = verify_log(settings, log.topics, trusted=(log.key.address,))
    assert report.ok, [str(f) for f in report.findings]
    assert report.checkpoints == sum(len(c) for c in streams.values())
    assert report.inferences == log.inferences > 0
    assert sum(task_sizes.values()) == report.events  # every event is covered
    assert not report.notes


def test_a_changed_event_fails_the_audit_of_the_log(settings, fresh_topic):
    log = AuditLog(settings, fresh_topic, task_partitions=1)
    task_id, _ = log.task(events=4)
    notary = log.notary(every_events=4)
    log.settle(notary)
    notary.close()
    # the same key and offset cannot be rewritten in Kafka: a forged copy appended instead
    # is a new leaf and a broken chain, which the audit reports
    log.heads.pop(task_id)
    log.task(task_id=task_id, events=1)  # a second chain start for the same aggregate
    report = verify_log(settings, log.topics, task_id=task_id, trusted=(log.key.address,))
    assert not report.ok
    assert {"sequence", "prev_hash"} <= report.codes()
    assert any("@4" in f.where for f in report.findings)


def test_roots_are_anchored_through_tx_requests_and_confirmed(settings, fresh_topic, web3,
                                                              funded_account):
    registry = deploy_contract(web3, funded_account, load_artifact("AnchorRegistry"))
    log = AuditLog(settings, fresh_topic, task_partitions=1)
    task_id, _ = log.task(events=5)
    notary = log.notary(every_events=5, anchor_sender=funded_account.address,
                        registry=registry)
    log.settle(notary)
    requests = log.tx_requests()
    assert len(requests) == 1
    assert requests[0].purpose == "ANCHOR"
    request = requests[0]
    assert request.to == registry
    assert request.sender == funded_account.address
    # what the tx manager and the watcher do with it
    receipt = send_call(web3, funded_account, request.to, request.data)
    log.confirm(request, "0x" + bytes(receipt["transactionHash"]).hex().removeprefix("0x"),
                receipt["blockNumber"],
                "0x" + bytes(receipt["blockHash"]).hex().removeprefix("0x"))
    log.settle(notary)
    notary.close()
    records = log.proof_records()
    submitted = [r for r in records if isinstance(r, AnchorSubmitted)]
    confirmed = [r for r in records if isinstance(r, AnchorConfirmed)]
    assert len(submitted) == 1
    assert len(confirmed) == 1
    assert confirmed[0].request_id == request.request_id
    assert confirmed[0].root == submitted[0].root
    # a restart neither re-anchors nor re-confirms: the request is re-sent only while open
    again = log.notary(every_events=5, anchor_sender=funded_account.address,
                       registry=registry)
    log.settle(again)
    again.close()
    assert len(log.tx_requests()) == 1
    assert len([r for r in log.proof_records() if isinstance(r, AnchorConfirmed)]) == 1
    report = verify_log(settings, log.topics, task_id=task_id, trusted=(log.key.address,),
                        registry=registry)
    assert report.ok, [str(f) for f in report.findings]
    assert report.anchors_on_chain == 1
    assert report.inferences == 1  # the task's own, checked


def test_checkpoint_now_covers_every_event_once(settings, fresh_topic):
    log = AuditLog(settings, fresh_topic)
    log.tasks(4, random.Random(3))
    notary = log.notary(every_events=1000)  # thresholds never reached
    assert notary.checkpoint_now() == 2  # one checkpoint per task partition
    assert notary.checkpoint_now() == 0  # nothing new
    metric = notary.metrics.registry.get_sample_value
    assert sum(metric("omc_notary_checkpoints_signed_total",
                      {"topic": log.topics.task, "partition": str(p)}) or 0
               for p in (0, 1)) == 2
    report = verify_log(settings, log.topics, trusted=(log.key.address,))
    assert report.ok, [str(f) for f in report.findings]
    assert not report.notes  # every event covered
    assert report.checkpoints == 2
    log.task(events=3)  # written, not read yet: the notary's lag
    notary._lag_sampled = 0.0
    notary._sample_lag()
    assert metric("omc_notary_lag_events") == 3
    notary.close()


def test_a_failed_anchor_is_retried_when_funds_arrive(settings, fresh_topic, web3,
                                                      funded_account):
    """The real tx manager fails the anchor of an account without funds (TxFailed); funds
    arrive; after its backoff the notary anchors the same checkpoint again with a new
    request, which is mined; one AnchorConfirmed, and the root is on chain."""
    import dataclasses
    import uuid

    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
    from eth_account import Account

    from omc_audit.source import read_partitions
    from omc_chain.signer import LocalKeySigner, Signers
    from omc_events.catalogue import Catalogue
    from omc_events.records import TxBroadcast, TxFailed, TxSigned
    from omc_txmanager.app import build as build_manager
    from omc_txmanager.settings import TxManagerSettings
    from tests.support.auditlog import CATALOGUE, SCHEMAS

    registry = deploy_contract(web3, funded_account, load_artifact("AnchorRegistry"))
    poor = Account.create()  # no funds yet
    log = AuditLog(settings, fresh_topic, task_partitions=1)
    task_id, _ = log.task(events=5)
    env = {"OMC_NOTARY_ANCHOR_RETRY_SECONDS": "10", "OMC_NOTARY_ANCHOR_ATTEMPTS": "3"}
    notary = log.notary(every_events=5, anchor_sender=poor.address, registry=registry,
                        extra=env)
    log.settle(notary)
    (first,) = log.tx_requests()
    dead = fresh_topic()
    catalogue = Catalogue({**log.catalogue.topics,
                           dead: dataclasses.replace(CATALOGUE["omc.deadletter.v1"], name=dead)})
    schemas = SchemaRegistryClient({"url": settings.schema_registry_url})
    for name in catalogue[dead].records:
        schemas.register_schema(catalogue[dead].subject(name),
                                Schema(SCHEMAS.set.standalone_json(name), "AVRO"))
    manager = build_manager(TxManagerSettings.from_env({
        "OMC_TXMANAGER_TOPIC": log.tx_topic, "OMC_TXMANAGER_DEADLETTER_TOPIC": dead,
        "OMC_TXMANAGER_GROUP": f"omc.test.txmanager.{uuid.uuid4().hex[:8]}",
        "OMC_TXMANAGER_RPC_RETRIES": "1", "OMC_TXMANAGER_RPC_TIMEOUT": "5"}),
        signers=Signers([LocalKeySigner(bytes(poor.key))]), catalogue=catalogue,
        chain_id=31337)
    manager.subscribe()

    def tx_records():
        return [log.codec.decode(m.value)
                for m in read_partitions(settings.kafka_bootstrap, [(log.tx_topic, 0)])]

    def until(found, what: str):
        for _ in range(200):
            manager.step()
            records = tx_records()
            if found(records):
                return records
        raise AssertionError(f"the tx manager did not {what}")

    try:
        until(lambda rs: any(isinstance(r, TxFailed) and r.request_id == first.request_id
                             for r in rs), "fail the unfunded anchor")
        web3.provider.make_request("anvil_setBalance", [poor.address, hex(10**18)])
        log.settle(notary)  # reads the failure: within the backoff, nothing new
        assert len(log.tx_requests()) == 1
        log.clock.advance(10)
        log.settle(notary)
        requests = log.tx_requests()
        assert len(requests) == 2
        retry = requests[1]
        assert retry.request_id != first.request_id
        assert retry.data == first.data
        records = until(lambda rs: any(isinstance(r, TxBroadcast)
                                       and r.request_id == retry.request_id for r in rs),
                        "broadcast the retried anchor")
    finally:
        manager.close()
    (signed,) = [r for r in records if isinstance(r, TxSigned)
                 and r.request_id == retry.request_id]
    receipt = web3.eth.wait_for_transaction_receipt(signed.tx_hash, timeout=10)
    assert receipt["status"] == 1
    log.confirm(retry, signed.tx_hash, receipt["blockNumber"],
                "0x" + bytes(receipt["blockHash"]).hex().removeprefix("0x"))
    log.settle(notary)
    notary.close()
    proof = log.proof_records()
    submitted = [r for r in proof if isinstance(r, AnchorSubmitted)]
    assert [s.request_id for s in submitted] == [first.request_id, retry.request_id]
    assert len({(s.tree_size, s.root) for s in submitted}) == 1  # the same checkpoint
    (confirmed,) = [r for r in proof if isinstance(r, AnchorConfirmed)]
    assert confirmed.request_id == retry.request_id
    assert notary.notary.anchor_outcomes == {"submitted": 1, "failed": 1, "retried": 1,
                                             "confirmed": 1}
    metric = notary.metrics.registry.get_sample_value
    for outcome in ("submitted", "failed", "retried", "confirmed"):
        assert metric("omc_notary_anchors_total", {"outcome": outcome}) == 1
    stream = {"topic": log.topics.task, "partition": "0"}
    assert metric("omc_notary_checkpoints_signed_total", stream) == 1
    assert metric("omc_notary_events_covered_total", stream) == 5
    assert metric("omc_notary_checkpoint_delay_seconds_count") == 1
    assert metric("omc_notary_checkpoint_delay_seconds_sum") == 0  # signed when written
    assert metric("omc_notary_anchor_delay_seconds_count") == 1
    assert metric("omc_notary_anchor_delay_seconds_sum") == 10  # the backoff the clock ran
    report = verify_log(settings, log.topics, task_id=task_id, trusted=(log.key.address,),
                        registry=registry)
    assert report.ok, [str(f) for f in report.findings]
    assert report.anchors_on_chain == 1


def test_anchoring_traffic_is_covered_unanchored_and_one_trace_follows_the_anchor(
        spans, settings, fresh_topic, web3, funded_account):
    """The real tx manager sends the anchor of the task stream's checkpoint; the anchor's own
    transaction events on the tx stream are then covered by a checkpoint that is signed and
    NOT anchored (no second anchor, however long the notary runs, nor after a restart); the
    audit of the log passes with every event covered, and fails `not_anchored` when an
    AnchorConfirmed claims that unanchored root. The checkpoint's span, its anchor's, the tx
    manager's and the AnchorConfirmed's are one trace. (Also: the anchor's TxRequested as the
    real tx manager takes it: signed, broadcast, mined, the root on chain.)"""
    import dataclasses
    import uuid

    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

    from omc_audit.source import read_partitions
    from omc_chain.signer import LocalKeySigner, Signers
    from omc_events.catalogue import Catalogue
    from omc_events.chain import seal
    from omc_events.envelope import ChainHead
    from omc_events.records import TxBroadcast, TxSigned
    from omc_proofs.checkpoint import stream_id
    from omc_txmanager.app import build as build_manager
    from omc_txmanager.settings import TxManagerSettings
    from tests.support.auditlog import CATALOGUE, SCHEMAS
    from tests.support.samples import sample

    registry = deploy_contract(web3, funded_account, load_artifact("AnchorRegistry"))
    log = AuditLog(settings, fresh_topic, task_partitions=1)
    log.task(events=5)
    anchoring = {"anchor_sender": funded_account.address, "registry": registry}
    notary = log.notary(every_events=5, **anchoring)
    log.settle(notary)
    (request,) = log.tx_requests()
    dead = fresh_topic()
    catalogue = Catalogue({**log.catalogue.topics,
                           dead: dataclasses.replace(CATALOGUE["omc.deadletter.v1"], name=dead)})
    schemas = SchemaRegistryClient({"url": settings.schema_registry_url})
    for name in catalogue[dead].records:
        schemas.register_schema(catalogue[dead].subject(name),
                                Schema(SCHEMAS.set.standalone_json(name), "AVRO"))
    manager = build_manager(TxManagerSettings.from_env({
        "OMC_TXMANAGER_TOPIC": log.tx_topic, "OMC_TXMANAGER_DEADLETTER_TOPIC": dead,
        "OMC_TXMANAGER_GROUP": f"omc.test.txmanager.{uuid.uuid4().hex[:8]}",
        "OMC_TXMANAGER_RPC_RETRIES": "1", "OMC_TXMANAGER_RPC_TIMEOUT": "5"}),
        signers=Signers([LocalKeySigner(bytes(funded_account.key))]), catalogue=catalogue,
        chain_id=31337)
    manager.subscribe()
    try:
        for _ in range(200):
            manager.step()
            records = [log.codec.decode(m.value) for m in
                       read_partitions(settings.kafka_bootstrap, [(log.tx_topic, 0)])]
            if any(isinstance(r, TxBroadcast) for r in records):
                break
        else:
            raise AssertionError("the tx manager did not broadcast the anchor")
    finally:
        manager.close()
    (signed,) = [r for r in records if isinstance(r, TxSigned)]
    assert signed.request_id == request.request_id
    receipt = web3.eth.wait_for_transaction_receipt(signed.tx_hash, timeout=10)
    assert receipt["status"] == 1
    head = [r.meta for r in records if r.meta.sequence][-1]  # the account's chain, so far
    log.heads[request.meta.aggregate_id] = ChainHead(head.sequence, head.hash)
    log.confirm(request, signed.tx_hash, receipt["blockNumber"],
                "0x" + bytes(receipt["blockHash"]).hex().removeprefix("0x"),
                traceparent=signed.meta.traceparent)  # as the watcher carries it
    log.settle(notary, tick=61)  # the confirmation, then the time trigger, until idle
    notary.close()
    task_stream, tx_stream = stream_id(log.topics.task, 0), stream_id(log.tx_topic, 0)
    proof = log.proof_records()
    tx_log = [log.codec.decode(m.value)
              for m in read_partitions(settings.kafka_bootstrap, [(log.tx_topic, 0)])]
    tx_leaves = len(tx_log)
    assert [type(r).__name__ for r in tx_log] == [  # all of them anchoring traffic
        "TxRequested", "TxSigned", "TxBroadcast", "TxConfirmed"]
    tx_checkpoints = [r for r in proof if isinstance(r, CheckpointSigned)
                      and r.stream_id == tx_stream]
    assert [c.tree_size for c in tx_checkpoints] == [tx_leaves]  # every leaf covered, once
    assert [r.stream_id for r in proof if isinstance(r, AnchorSubmitted)] == [task_stream]
    # (and no second TxRequested: the anchoring traffic caused no anchor)
    (confirmed,) = [r for r in proof if isinstance(r, AnchorConfirmed)]
    # a restart rebuilds the same state: nothing new, even with time passing
    again = log.notary(every_events=5, **anchoring)
    log.settle(again, tick=61)
    again.close()
    assert log.proof_records() == proof
    report = verify_log(settings, log.topics, trusted=(log.key.address,), registry=registry)
    assert report.ok, [str(f) for f in report.findings]
    assert report.coverage[tx_stream] == (tx_leaves, tx_leaves)
    assert report.coverage[task_stream] == (5, 5)
    assert not report.notes
    assert report.anchors_on_chain == 1
    assert report.anchored == {task_stream: 5}  # the tx stream: covered by signature only
    # one trace: checkpoint -> anchor -> the tx manager's request span -> AnchorConfirmed
    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished}
    (anchor_span,) = [s for s in finished if s.name == "notary omc.proof.AnchorSubmitted"]
    checkpoint_span = by_id[anchor_span.parent.span_id]
    assert checkpoint_span.name == "notary omc.proof.CheckpointSigned"
    assert checkpoint_span.attributes["omc.stream_id"] == task_stream
    assert checkpoint_span.parent is None  # the trace starts at the checkpoint
    (manager_span,) = [s for s in finished if s.name == "txmanager omc.tx.TxRequested"]
    assert manager_span.parent.span_id == anchor_span.context.span_id
    (confirmed_span,) = [s for s in finished if s.name == "notary omc.proof.AnchorConfirmed"]
    trace_id = checkpoint_span.context.trace_id
    assert {anchor_span.context.trace_id, manager_span.context.trace_id,
            confirmed_span.context.trace_id} == {trace_id}
    assert confirmed.meta.traceparent.split("-")[1] == f"{trace_id:032x}"
    (tx_span,) = [s for s in finished if s.name == "notary omc.proof.CheckpointSigned"
                  and s.attributes["omc.stream_id"] == tx_stream]
    assert tx_span.attributes["omc.anchored"] is False
    # an anchor claimed for the unanchored root is reported: the chain does not hold it
    last = [r for r in proof if r.stream_id == tx_stream][-1]
    forged = sample(SCHEMAS.set, "omc.proof.AnchorConfirmed", aggregate_id=tx_stream,
                    causation="forged", position=0)
    forged = dataclasses.replace(
        forged, stream_id=tx_stream, tree_size=tx_checkpoints[0].tree_size,
        root=tx_checkpoints[0].root, chain_id=31337, request_id=str(uuid.uuid4()),
        tx_hash=confirmed.tx_hash, block_number=confirmed.block_number,
        block_hash=confirmed.block_hash,
        meta=dataclasses.replace(forged.meta, aggregate_type="proof_stream",
                                 tenant="system", actor="svc:notary"))
    forged, _ = seal(SCHEMAS, forged, ChainHead(last.meta.sequence, last.meta.hash))
    log.producer.send(log.topics.proof, forged, key=tx_stream)
    log.producer.flush()
    report = verify_log(settings, log.topics, trusted=(log.key.address,), registry=registry)
    assert report.codes() == {"not_anchored"}, [str(f) for f in report.findings]
    assert report.anchored == {task_stream: 5}
