# ruff: noqa: F811 (fixtures imported from the integration conftest)
"""Tampering with an audit bundle is always detected, for the right reason.

A real-format log is written to fresh topics (tasks sealed and chained as the runtime writes
them, the inference signed), checkpointed by the notary in-process and anchored on anvil
through its TxRequested (sent as the tx manager would, then confirmed as the watcher would),
except the first checkpoint of the task's stream, which is left unanchored. One task is
exported. The untouched bundle passes, live and offline; then 7 kinds x 30 seeded random
mutations each fail with the expected finding code. Resealing (recomputing the unkeyed hash
chain after a change) is what a capable forger does, so the mutations do it where they can.
"""

from __future__ import annotations

import copy
import dataclasses
import random
from collections.abc import Callable

import pytest

from omc_audit.bundle import Bundle, bundle_codec
from omc_audit.onchain import ChainRoots
from omc_audit.verify import export_task, verify_bundle
from omc_chain.artifacts import load_artifact
from omc_chain.deploy import deploy_contract, send_call
from omc_events.chain import seal
from omc_events.codec import Codec
from omc_events.envelope import ZERO_HASH, ChainHead, derived_id
from omc_events.record import Record
from omc_events.records import (
    AnchorConfirmed,
    AnchorSubmitted,
    CheckpointSigned,
    InferenceCompleted,
)
from omc_proofs.checkpoint import NotaryKey, checkpoint_digest
from tests.integration.conftest import (  # noqa: F401 (fixtures)
    fresh_topic,
    funded_account,
    kafka_admin,
    stack,
    web3,
)
from tests.support.auditlog import SCHEMAS, AuditLog

pytestmark = pytest.mark.integration
PER_KIND = 30


def _hex(data) -> str:
    return "0x" + bytes(data).hex().removeprefix("0x")


@pytest.fixture
def exported(settings, fresh_topic, web3, funded_account):
    registry = deploy_contract(web3, funded_account, load_artifact("AnchorRegistry"))
    log = AuditLog(settings, fresh_topic, task_partitions=1)
    rng = random.Random(7)
    log.tasks(2, rng)
    notary = log.notary(every_events=6, anchor_sender=funded_account.address,
                        registry=registry)
    log.settle(notary)
    task_id, _ = log.task(events=6)
    sender = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    other = log.request(None, sender, 1)  # another request of the same account, before
    log.confirm(other, "0x" + "aa" * 32, 1, "0x" + "bb" * 32)
    mine = log.request(task_id, sender, 2)  # the task's transaction and its outcome
    log.confirm(mine, "0x" + "cc" * 32, 2, "0x" + "dd" * 32)
    log.tasks(2, rng)
    log.settle(notary, tick=61)
    requests = [r for r in log.tx_requests() if r.purpose == "ANCHOR"]
    skipped = requests[0]  # the task stream's first checkpoint stays unanchored
    for request in requests[1:]:
        receipt = send_call(web3, funded_account, request.to, request.data)
        log.confirm(request, _hex(receipt["transactionHash"]), receipt["blockNumber"],
                    _hex(receipt["blockHash"]))
    log.settle(notary)
    notary.close()
    bundle = export_task(settings, task_id, log.topics, registry=registry)
    return log, bundle, registry, skipped


def _codec(bundle: Bundle) -> Codec:
    return bundle_codec(bundle)


def _reseal(codec: Codec, items: list[dict], index: int,
            change: Callable[[Record], Record]) -> None:
    """Change items[index]'s record and recompute the hash chain from there on (the items
    are one aggregate's messages in order, as a bundle holds them)."""
    records = [codec.decode(Bundle_b64(i["value"])) for i in items]
    records[index] = change(records[index])
    previous = records[index - 1].meta if index else None  # type: ignore[attr-defined]
    head = ChainHead(previous.sequence, previous.hash) if previous else ChainHead()
    for j in range(index, len(items)):
        record = records[j]
        unsealed = dataclasses.replace(record, meta=dataclasses.replace(
            record.meta, hash="", prev_hash=ZERO_HASH))  # type: ignore[attr-defined]
        sealed, head = seal(SCHEMAS, unsealed, head)
        prefix = Bundle_b64(items[j]["value"])[:5]
        items[j]["value"] = b64(SCHEMAS.encode(sealed, prefix))


def Bundle_b64(text: str) -> bytes:  # noqa: N802
    import base64

    return base64.b64decode(text)


def b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def _of(codec: Codec, items: list[dict], kind: type) -> list[int]:
    return [i for i, item in enumerate(items)
            if isinstance(codec.decode(Bundle_b64(item["value"])), kind)]


def _stream_of(items: list[dict], index: int) -> tuple[list[dict], int]:
    """The items of items[index]'s aggregate (same key), and its position among them."""
    same = [i for i in items if i["key"] == items[index]["key"]]
    return same, next(n for n, i in enumerate(same) if i is items[index])


def mutate(kind: str, doc: dict, rng: random.Random, codec: Codec, skipped_root: str,
           skipped_size: int, skipped_stream: str) -> str:
    """Apply one mutation of `kind` to the bundle document; the finding code it must cause."""
    events, proof_events = doc["events"], doc["proof_events"]
    task_topic = events[0]["topic"]
    task_events = [e for e in events if e["topic"] == task_topic]  # the chained aggregate
    if kind == "byte":
        item = rng.choice(events)
        value = bytearray(Bundle_b64(item["value"]))
        i = rng.randrange(len(value))
        value[i] ^= 1 << rng.randrange(8)
        item["value"] = b64(bytes(value))
        return "hash|unreadable"
    if kind == "delete":
        del events[rng.randrange(len(events))]
        return "missing_event"
    if kind == "swap":
        i, j = rng.sample(range(len(events)), 2)
        events[i]["value"], events[j]["value"] = events[j]["value"], events[i]["value"]
        return "sequence|inclusion"
    if kind == "truncate":
        k = rng.randint(1, len(task_events) - 1)
        gone = {(e["topic"], e["partition"], e["offset"]) for e in task_events[-k:]}
        doc["events"] = [e for e in events if (e["topic"], e["partition"], e["offset"])
                         not in gone]
        if rng.random() < 0.5:  # a consistent cut: the proofs go too
            doc["proofs"] = [p for p in doc["proofs"]
                             if (p["topic"], p["partition"], p["offset"]) not in gone]
            return "incomplete"
        return "missing_event"
    if kind == "replace_checkpoint":
        at = rng.choice(_of(codec, proof_events, CheckpointSigned))
        if rng.random() < 0.5:  # another genuine checkpoint's bytes in its place
            others = [i for i in _of(codec, proof_events, CheckpointSigned) if i != at]
            proof_events[at]["value"] = proof_events[rng.choice(others)]["value"]
            return "checkpoint_gap"
        forger = NotaryKey(rng.randbytes(32))
        same, position = _stream_of(proof_events, at)

        def forged(cp: CheckpointSigned) -> CheckpointSigned:
            root = "0x" + rng.randbytes(32).hex()
            digest = checkpoint_digest(
                stream_id=cp.stream_id, tree_size=cp.tree_size, root=root,
                first_offset=cp.first_offset, last_offset=cp.last_offset,
                previous_tree_size=cp.previous_tree_size, previous_root=cp.previous_root)
            return dataclasses.replace(cp, root=root, digest=digest, signer=forger.address,
                                       signature=forger.sign(digest))

        _reseal(codec, same, position, forged)
        return "checkpoint_untrusted"
    if kind == "forge_signature":
        if rng.random() < 0.5:
            at = rng.choice(_of(codec, proof_events, CheckpointSigned))
            signature = "0x" + rng.randbytes(64).hex() + rng.choice(["1b", "1c"])
            same, position = _stream_of(proof_events, at)
            _reseal(codec, same, position,
                    lambda cp: dataclasses.replace(cp, signature=signature))
            return "checkpoint_signature"
        at = rng.choice(_of(codec, task_events, InferenceCompleted))
        signature = "0x" + rng.randbytes(64).hex() + rng.choice(["1b", "1c"])
        _reseal(codec, task_events, at,
                lambda ic: dataclasses.replace(ic, signature=signature))
        return "inference_signature"
    if kind == "never_anchored":
        key = b64(skipped_stream.encode())
        confirmed = _of(codec, proof_events, AnchorConfirmed)
        mine = [i for i in confirmed if proof_events[i]["key"] == key]
        if rng.random() < 0.5 and mine:  # an anchor's claim moved to the unanchored root
            same, position = _stream_of(proof_events, rng.choice(mine))
            _reseal(codec, same, position, lambda a: dataclasses.replace(
                a, root=skipped_root, tree_size=skipped_size))
            return "not_anchored"
        # a confirmation appended for the checkpoint that was never anchored
        stream = [i for i in proof_events if i["key"] == key]
        template = codec.decode(Bundle_b64(proof_events[confirmed[0]]["value"]))
        previous = codec.decode(Bundle_b64(stream[-1]["value"])).meta  # type: ignore[attr-defined]
        fake = dataclasses.replace(
            template, root=skipped_root, tree_size=skipped_size, stream_id=skipped_stream,
            tx_hash="0x" + rng.randbytes(32).hex(),
            meta=dataclasses.replace(template.meta, event_id=derived_id(  # type: ignore[attr-defined]
                "forged", rng.randrange(10**9)), aggregate_id=skipped_stream, hash="",
                prev_hash=ZERO_HASH))
        sealed, _ = seal(SCHEMAS, fake, ChainHead(previous.sequence, previous.hash))
        last = proof_events[-1]
        prefix = Bundle_b64(proof_events[confirmed[0]]["value"])[:5]  # AnchorConfirmed's id
        proof_events.append({**last, "key": key, "offset": last["offset"] + 1,
                             "value": b64(SCHEMAS.encode(sealed, prefix))})
        return "not_anchored"
    raise AssertionError(kind)


KINDS = ("byte", "delete", "swap", "truncate", "replace_checkpoint", "forge_signature",
         "never_anchored")


def test_untouched_bundle_passes_and_every_mutation_is_detected(exported, settings):
    log, bundle, registry, skipped = exported
    trusted = (log.key.address,)
    chain = ChainRoots(settings.chain_rpc_url)
    codec = _codec(bundle)
    clean = verify_bundle(bundle, chain=chain, trusted=trusted, registry=registry)
    assert clean.ok, [str(f) for f in clean.findings]
    assert clean.events == len(bundle.evidence.events) == 6 + 2  # the task's and its tx's
    assert clean.proofs == 8
    assert len({m.topic for m in bundle.evidence.events}) == 2
    assert clean.inferences == 1
    assert clean.anchors_on_chain >= 1
    offline = verify_bundle(Bundle.from_json(bundle.to_json()), chain=None, trusted=trusted,
                            registry=registry)
    assert offline.ok, [str(f) for f in offline.findings]
    assert offline.anchors_recorded == clean.anchors_on_chain
    assert any("not live" in n for n in offline.notes)
    submitted = [r for r in (codec.decode(m.value) for m in bundle.evidence.proof_events)
                 if isinstance(r, AnchorSubmitted)]
    unanchored = next(s for s in submitted if s.request_id == skipped.request_id)
    original = bundle.to_json()
    rng = random.Random(20261125)
    missed, tried = [], 0
    for kind in KINDS:
        for n in range(PER_KIND):
            doc = copy.deepcopy(original)
            expected = mutate(kind, doc, rng, codec, unanchored.root, unanchored.tree_size,
                              unanchored.stream_id)
            tried += 1
            report = verify_bundle(Bundle.from_json(doc), chain=chain, trusted=trusted,
                                   registry=registry)
            if report.ok or not set(expected.split("|")) & report.codes():
                missed.append((kind, n, expected, sorted(report.codes())))
    assert tried >= 200
    assert missed == []
    # and the untouched bundle still passes after all that (no state leaked)
    assert verify_bundle(Bundle.from_json(original), chain=chain, trusted=trusted,
                         registry=registry).ok


def test_the_cli_and_the_report_on_an_exported_bundle(exported, tmp_path):
    from click.testing import CliRunner

    from omc_audit.report import render_html, task_report
    from omc_cli.main import cli

    log, bundle, registry, _ = exported
    path = tmp_path / "bundle.json"
    bundle.save(path)
    runner = CliRunner()
    args = ["audit", "verify", "--bundle", str(path), "--notary", log.key.address,
            "--registry", registry]
    ok = runner.invoke(cli, args)
    assert ok.exit_code == 0, ok.output
    assert "OK: the log verifies" in ok.output
    offline = runner.invoke(cli, [*args, "--offline"])
    assert offline.exit_code == 0, offline.output
    assert "not live" in offline.output
    doc = bundle.to_json()
    doc["events"][2]["value"] = doc["events"][1]["value"]
    import json

    path.write_text(json.dumps(doc))
    bad = runner.invoke(cli, args)
    assert bad.exit_code == 1
    assert f"FAIL {doc['events'][2]['topic']}/0@{doc['events'][2]['offset']}" in bad.output
    report = task_report(bundle, verify_bundle(bundle, chain=None,
                                               trusted=(log.key.address,),
                                               registry=registry))
    assert report["verified"]
    assert report["steps"][0]["type"] == "TaskSubmitted"
    assert all(s["proof"]["anchor"] for s in report["steps"])
    page = render_html(report)
    assert "VERIFIED" in page
    assert "<script" not in page
    assert "http" not in page.replace("http-equiv", "")  # self-contained: no external link
