"""Range bundles on the real stack: ranges of a real-format log (fresh topics, tasks written
as the runtime writes them), checkpointed by the notary in-process and anchored on anvil,
exported by offsets and by event time; the untouched bundles verify live and offline, and
changed ones fail for the right reason (seeded random mutations of each kind)."""

from __future__ import annotations

import base64
import copy
import json
import random

import pytest

from omc_audit.bundle import Bundle
from omc_audit.onchain import ChainRoots
from omc_audit.ranges import LogRange
from omc_audit.verify import export_range, verify_bundle
from omc_chain.artifacts import load_artifact
from omc_chain.deploy import deploy_contract, send_call
from tests.support.auditlog import AuditLog

pytestmark = pytest.mark.integration
PER_KIND = 8


def _hex(data) -> str:
    return "0x" + bytes(data).hex().removeprefix("0x")


@pytest.fixture
def ranged(settings, fresh_topic, web3, funded_account):
    """Tasks before, inside and after a time window; every event checkpointed (every 5
    events, then by time), and every checkpoint anchored."""
    registry = deploy_contract(web3, funded_account, load_artifact("AnchorRegistry"))
    log = AuditLog(settings, fresh_topic, task_partitions=1)
    rng = random.Random(11)
    log.tasks(2, rng)
    log.clock.advance(60)
    since = log.clock()
    inside = log.tasks(3, rng)
    log.clock.advance(60)
    until = log.clock()
    log.tasks(2, rng)
    notary = log.notary(every_events=5, anchor_sender=funded_account.address,
                        registry=registry)
    log.settle(notary, tick=61)
    for request in log.tx_requests():
        receipt = send_call(web3, funded_account, request.to, request.data)
        log.confirm(request, _hex(receipt["transactionHash"]), receipt["blockNumber"],
                    _hex(receipt["blockHash"]))
    log.settle(notary)
    notary.close()
    return log, registry, since, until, set(inside)


def test_a_range_by_offsets_verifies_live_and_offline(ranged, settings):
    log, registry, *_ = ranged
    trusted = (log.key.address,)
    bundle = export_range(settings, [LogRange(log.topics.task, 0, 3, 17)], log.topics,
                          registry=registry)
    (claim,) = bundle.evidence.ranges
    assert (claim.first_offset, claim.last_offset) == (3, 17)
    assert (claim.first_leaf, claim.last_leaf) == (3, 17)
    assert bundle.task_id is None
    live = verify_bundle(bundle, chain=ChainRoots(settings.chain_rpc_url), trusted=trusted,
                         registry=registry)
    assert live.ok, [str(f) for f in live.findings]
    assert live.events == live.proofs == 15
    assert live.anchors_on_chain >= 1
    offline = verify_bundle(Bundle.from_json(json.loads(json.dumps(bundle.to_json()))),
                            chain=None, trusted=trusted, registry=registry)
    assert offline.ok, [str(f) for f in offline.findings]
    assert offline.anchors_recorded == live.anchors_on_chain


def test_a_time_window_holds_exactly_the_events_of_that_time(ranged, settings):
    log, registry, since, until, inside = ranged
    bundle = export_range(settings, [LogRange(log.topics.task, 0)], log.topics,
                          since=since, until=until, registry=registry)
    keys = {m.key.decode() for m in bundle.evidence.events}
    assert keys == inside
    report = verify_bundle(bundle, chain=None, trusted=(log.key.address,), registry=registry)
    assert report.ok, [str(f) for f in report.findings]
    # by time alone (no --range): every event stream; the tx stream holds only anchoring
    # traffic, covered by checkpoints that are signed and not anchored: proven too
    everything = export_range(settings, [], log.topics, since=since, registry=registry)
    assert [c.stream_id for c in everything.evidence.ranges] == [f"{log.topics.task}:0",
                                                                 f"{log.tx_topic}:0"]
    assert {m.topic for m in everything.evidence.events} == {log.topics.task, log.tx_topic}
    assert len(everything.evidence.events) > len(bundle.evidence.events)
    assert verify_bundle(everything, chain=None, trusted=(log.key.address,),
                         registry=registry).ok


def _flip(item: dict, rng: random.Random) -> None:
    value = bytearray(base64.b64decode(item["value"]))
    i = rng.randrange(len(value))
    value[i] ^= 1 << rng.randrange(8)
    item["value"] = base64.b64encode(bytes(value)).decode()


def _where(item: dict) -> tuple:
    return (item["topic"], item["partition"], item["offset"])


def mutate(kind: str, doc: dict, rng: random.Random) -> str:
    """One change of `kind` to a range bundle; the finding codes that must follow."""
    events, proofs, (claim,) = doc["events"], doc["proofs"], doc["ranges"]
    if kind == "byte":
        _flip(rng.choice(events), rng)
        return "hash|unreadable"
    if kind == "delete":  # an event goes; its proof stays
        del events[rng.randrange(len(events))]
        return "missing_event"
    if kind == "delete_consistently":  # an event and its proof go
        gone = _where(events.pop(rng.randrange(len(events))))
        doc["proofs"] = [p for p in proofs if _where(p) != gone]
        return "range"
    if kind == "truncate":  # the tail and its proofs go, the declared range stays
        k = rng.randint(1, len(events) - 1)
        gone = {_where(e) for e in events[-k:]}
        doc["events"] = events[:-k]
        doc["proofs"] = [p for p in proofs if _where(p) not in gone]
        return "range"
    if kind == "widen":  # the declared range claims more than it holds
        side = rng.choice(["first", "last"])
        step = -1 if side == "first" else 1
        claim[f"{side}_offset"] += step
        claim[f"{side}_leaf"] += step
        return "range"
    if kind == "swap":
        i, j = rng.sample(range(len(events)), 2)
        events[i]["value"], events[j]["value"] = events[j]["value"], events[i]["value"]
        return "sequence|prev_hash|inclusion|hash"
    if kind == "replace_checkpoint":
        cps = [i for i, m in enumerate(doc["proof_events"])
               if m["key"] == doc["proof_events"][0]["key"]]
        at, other = rng.sample(cps, 2)
        doc["proof_events"][at]["value"] = doc["proof_events"][other]["value"]
        return "checkpoint_gap|anchor_mismatch|prev_hash|sequence"
    raise AssertionError(kind)


KINDS = ("byte", "delete", "delete_consistently", "truncate", "widen", "swap",
         "replace_checkpoint")


def test_every_change_to_a_range_bundle_is_detected(ranged, settings):
    log, registry, *_ = ranged
    trusted = (log.key.address,)
    bundle = export_range(settings, [LogRange(log.topics.task, 0, 2, 20)], log.topics,
                          registry=registry)
    original = bundle.to_json()
    assert verify_bundle(Bundle.from_json(original), chain=None, trusted=trusted,
                         registry=registry).ok
    rng = random.Random(20261125)
    missed = []
    for kind in KINDS:
        for n in range(PER_KIND):
            doc = copy.deepcopy(original)
            expected = mutate(kind, doc, rng)
            report = verify_bundle(Bundle.from_json(doc), chain=None, trusted=trusted,
                                   registry=registry)
            if report.ok or not set(expected.split("|")) & report.codes():
                missed.append((kind, n, expected, sorted(report.codes())))
    assert missed == []


def test_the_cli_exports_a_range_and_verifies_it(ranged, settings, tmp_path):
    from click.testing import CliRunner

    from omc_cli.main import cli

    log, registry, since, _, _ = ranged
    path = tmp_path / "range.json"
    runner = CliRunner()
    out = runner.invoke(cli, ["audit", "export", "--range", f"{log.topics.task}:0:5-",
                              "--since", since.isoformat(), "--proof-topic", log.topics.proof,
                              "--registry", registry, "-o", str(path)])
    assert out.exit_code == 0, out.output
    assert f"{log.topics.task}:0 offsets " in out.output
    args = ["audit", "verify", "--bundle", str(path), "--notary", log.key.address,
            "--registry", registry]
    ok = runner.invoke(cli, [*args, "--offline"])
    assert ok.exit_code == 0, ok.output
    doc = json.loads(path.read_text())
    doc["ranges"][0]["last_offset"] += 1
    doc["ranges"][0]["last_leaf"] += 1
    path.write_text(json.dumps(doc))
    bad = runner.invoke(cli, [*args, "--offline"])
    assert bad.exit_code == 1
    assert "[range]" in bad.output
    both = runner.invoke(cli, ["audit", "export", "some-task", "--range", "t:0"])
    assert both.exit_code == 2  # a task or ranges, not both
