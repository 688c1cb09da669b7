"""The audit's fast per-message checks (omc_proofs.fastcheck, stitched and optionally spread
over processes by omc_proofs.audit) give exactly the findings and leaves of the plain
one-message-at-a-time reference below (the implementation they replaced), on real-format
events and on hundreds of random changes to them; and an audit in several processes gives
the same report as in one."""

from __future__ import annotations

import dataclasses
import random
import re

import pytest

from omc_events.avro import Schemas
from omc_events.chain import canonical_bytes, chain_hash, seal, seal_command
from omc_events.envelope import ChainHead
from omc_proofs import audit as audit_module
from omc_proofs.audit import Evidence, Report, Stored, audit
from omc_proofs.fastcheck import read_meta
from omc_proofs.fastmeta import scan
from omc_proofs.leaves import leaf_data
from omc_proofs.merkle import MerkleTree
from tests.support.samples import sample

SCHEMAS = Schemas()
HEADER = b"\x00\x00\x00\x00\x07"
_HEX64 = re.compile(r"[0-9a-f]{64}")
KINDS = ("omc.task.TaskSubmitted", "omc.task.InferenceRequested", "omc.task.ActionProposed",
         "omc.task.PolicyEvaluated", "omc.task.TaskCompleted")


def _reference(messages: list[Stored], chained: set[str] | None = None, runs: bool = False,
               ) -> tuple[list[tuple[str, str, str]], dict]:
    """The checks as omc_proofs.audit made them before fastcheck: one message at a time."""
    findings, leaves, heads, last = [], {}, {}, {}

    def envelope(body: bytes) -> tuple[dict, bytes]:
        try:
            found = scan(body)
        except ValueError:
            return canonical_bytes(body)
        meta = {"hash": found.hash, "prev_hash": found.prev_hash, "sequence": found.sequence,
                "aggregate_type": found.aggregate_type, "aggregate_id": found.aggregate_id}
        return meta, body[:found.hash_start] + b"\x00" + body[found.end:]

    for m in messages:
        key = (m.topic, m.partition, m.offset)
        previous = last.get((m.topic, m.partition), -1)
        if m.offset <= previous:
            findings.append(("order", m.where, f"offset {m.offset} after {previous}"))
        last[(m.topic, m.partition)] = max(previous, m.offset)
        value = m.value
        try:
            if len(value) <= 5 or value[0] != 0:
                raise ValueError("not the Confluent wire format")
            meta, canonical = envelope(value[5:])
        except Exception as error:
            findings.append(("unreadable", m.where, f"unreadable envelope: {error}"))
            leaves[key] = leaf_data(value)
            continue
        stored, prev = meta["hash"], meta["prev_hash"]
        if not (_HEX64.fullmatch(str(stored)) and _HEX64.fullmatch(str(prev))):
            findings.append(("hash", m.where, "meta.hash or meta.prev_hash is not 64 hex "
                             "digits (the event was altered)"))
            leaves[key] = leaf_data(value)
            continue
        leaves[key] = bytes.fromhex(stored)
        aggregate = f"{meta['aggregate_type']}/{meta['aggregate_id']}"
        label = f"{aggregate} seq {meta['sequence']}"
        if chain_hash(prev, canonical) != stored:
            findings.append(("hash", m.where, f"{label}: hash does not match the event's "
                             "bytes (the event was altered)"))
        if meta["sequence"] == 0:
            continue
        if chained is not None and aggregate not in chained:
            continue
        head = heads.get(aggregate)
        if head is None:
            head = ChainHead()
            if runs and meta["sequence"] != 1:
                heads[aggregate] = ChainHead(meta["sequence"], stored)
                continue
        if meta["sequence"] != head.sequence + 1:
            findings.append(("sequence", m.where, f"{label}: follows {head.sequence} (an "
                             "event is missing or out of order)"))
        if prev != head.hash:
            findings.append(("prev_hash", m.where, f"{label}: prev_hash is not the hash of "
                             "the aggregate's previous event"))
        heads[aggregate] = ChainHead(meta["sequence"], stored)
    return findings, leaves


def _fast(messages: list[Stored], chained: set[str] | None = None, runs: bool = False,
          ) -> tuple[list[tuple[str, str, str]], dict]:
    report = Report()
    audit_module._SHARED["events"] = messages
    try:
        results = audit_module._check_chains("events", report, chained, runs)
    finally:
        audit_module._SHARED.clear()
    bounds = audit_module._segments(messages)
    leaves = {}
    for (start, end), result in zip(bounds, results, strict=True):
        for m, leaf in zip(messages[start:end], result.leaves, strict=True):
            leaves[(m.topic, m.partition, m.offset)] = leaf
    return [(f.code, f.where, f.detail) for f in report.findings], leaves


def _log(rng: random.Random) -> list[Stored]:
    """Three partitions of tasks (each chained, some with long ids) and requests."""
    messages = []
    for partition in range(3):
        offset = 0
        for t in range(6):
            task = f"task-{partition}-{t}" + ("x" * 70 if t == 5 else "")  # a 2-byte length
            head = ChainHead()
            for i in range(rng.randint(1, 6)):
                record = sample(SCHEMAS.set, KINDS[i % len(KINDS)], aggregate_id=task,
                                causation=task, position=i)
                record = dataclasses.replace(record, meta=dataclasses.replace(
                    record.meta, aggregate_type="task"))
                record, head = seal(SCHEMAS, record, head)
                messages.append(Stored("t", partition, offset, task.encode(),
                                       SCHEMAS.encode(record, HEADER)))
                offset += 1
            if t % 2:
                request = sample(SCHEMAS.set, "omc.tx.TxRequested", aggregate_id="1:0xab",
                                 causation=task, position=9)
                messages.append(Stored("t", partition, offset, b"r",
                                       SCHEMAS.encode(seal_command(SCHEMAS, request),
                                                      HEADER)))
                offset += 1
    return messages


def _mutate(messages: list[Stored], rng: random.Random) -> list[Stored]:
    out = list(messages)
    i = rng.randrange(len(out))
    m = out[i]
    kind = rng.randrange(8)
    if kind == 0:  # one bit of one byte
        value = bytearray(m.value)
        j = rng.randrange(len(value))
        value[j] ^= 1 << rng.randrange(8)
        out[i] = dataclasses.replace(m, value=bytes(value))
    elif kind == 1:
        del out[i]
    elif kind == 2:
        j = rng.randrange(len(out))
        out[i], out[j] = out[j], out[i]
    elif kind == 3:  # a copy of another message at this offset
        out[i] = dataclasses.replace(m, value=rng.choice(messages).value)
    elif kind == 4:  # the hash in upper case, or not hex
        text = m.value.replace(m.value[-66:], m.value[-66:].upper()) if rng.random() < 0.5 \
            else m.value
        found = scan(m.value[5:])
        value = bytearray(text)
        value[5 + found.hash_start + 2 + rng.randrange(64)] = ord(rng.choice("Gz "))
        out[i] = dataclasses.replace(m, value=bytes(value))
    elif kind == 5:  # cut short
        out[i] = dataclasses.replace(m, value=m.value[:rng.randrange(len(m.value))])
    elif kind == 6:  # an offset moved back
        out[i] = dataclasses.replace(m, offset=max(0, m.offset - rng.randint(1, 3)))
    else:  # a byte inserted in the envelope
        j = rng.randrange(5, min(len(m.value), 200))
        out[i] = dataclasses.replace(m, value=m.value[:j] + bytes([rng.randrange(256)])
                                     + m.value[j:])
    return out


def test_read_meta_reads_what_the_general_scan_reads():
    for m in _log(random.Random(3)):
        body = m.value[5:]
        found, general = read_meta(body), scan(body)
        if found is None:  # a long id (2-byte length): the general readers take it
            assert b"x" * 70 in body
            continue
        aggregate, sequence, prev, stored, start, end = found
        assert aggregate.decode() == f"{general.aggregate_type}/{general.aggregate_id}"
        assert (sequence, prev.decode(), stored.decode(), start, end) == (
            general.sequence, general.prev_hash, general.hash, general.hash_start,
            general.end)


@pytest.mark.parametrize(("chained", "runs"), [(None, False), ({"task/task-1-1"}, False),
                                                (None, True)])
def test_the_fast_checks_equal_the_reference_on_random_changes(chained, runs):
    rng = random.Random(20261125)
    log = _log(rng)
    assert _fast(log, chained, runs) == _reference(log, chained, runs)
    assert _reference(log, chained, runs)[0] == []  # the untouched log passes
    changed = 0
    for _ in range(300):
        mutated = _mutate(log, rng)
        for _ in range(rng.randint(0, 2)):
            mutated = _mutate(mutated, rng)
        fast, reference = _fast(mutated, chained, runs), _reference(mutated, chained, runs)
        assert fast == reference
        changed += bool(reference[0])
    assert changed > 250  # nearly every change is a finding (a few are no-ops)


def test_the_bulk_tree_equals_appending():
    rng = random.Random(5)
    for n in (0, 1, 2, 3, 5, 8, 13, 64, 100, 1025):
        leaves = [rng.randbytes(32) for _ in range(n)]
        one_by_one = MerkleTree(leaves)
        bulk = MerkleTree.of_leaves(leaves)
        assert bulk.levels == one_by_one.levels
        assert MerkleTree.of_levels(bulk.levels).root() == one_by_one.root()


def test_an_audit_in_several_processes_is_the_audit_in_one(monkeypatch):
    rng = random.Random(8)
    log = _log(rng)
    mutated = _mutate(_mutate(log, rng), rng)
    evidence = Evidence(events=mutated, complete={"t:0", "t:1", "t:2"})

    def decode(value: bytes):
        raise AssertionError("no inference is among these events: nothing is decoded")

    one = audit(evidence, decode, kind=lambda value: "")
    monkeypatch.setattr(audit_module, "PARALLEL_FROM", 10)
    several = audit(evidence, decode, kind=lambda value: "", workers=2)
    assert several.findings == one.findings
    assert several.coverage == one.coverage
    assert one.findings  # the changes were found


def test_inferences_read_as_fields_give_the_report_of_typed_records(monkeypatch):
    """An inference check over the Avro datum (`fields`), in one process or several, finds
    what the typed-record check finds: forged signatures and changed responses."""
    from omc_events.records import InferenceCompleted
    from omc_llm.attest import Attestor, inference_digest

    attestor = Attestor("0x" + "11" * 32)
    name = "omc.task.InferenceCompleted"
    messages, head = [], ChainHead()
    for i in range(40):
        record = sample(SCHEMAS.set, name, aggregate_id="task-i", causation="c", position=i)
        record = dataclasses.replace(record, meta=dataclasses.replace(
            record.meta, aggregate_type="task"))
        digest = inference_digest(record.inference_id, record.model, record.parameters_json,
                                  record.prompt_hash, record.response, record.tool_calls)
        record = dataclasses.replace(record, digest=digest, signer=attestor.address,
                                     signature=attestor.sign(digest))
        if i % 7 == 3:  # a forged signature
            record = dataclasses.replace(record, signature="0x" + "ab" * 64 + "1b")
        if i % 11 == 5:  # a response changed after signing (and resealed)
            record = dataclasses.replace(record, response=record.response + "!")
        record, head = seal(SCHEMAS, record, head)
        messages.append(Stored("t", 0, i, b"task-i", SCHEMAS.encode(record, HEADER)))
    evidence = Evidence(events=messages, complete={"t:0"})

    def decode(value: bytes):
        return InferenceCompleted.from_avro(SCHEMAS.decode(name, value, offset=5))

    def fields(value: bytes) -> dict:
        return SCHEMAS.decode(name, value, offset=5)

    def kind(value: bytes) -> str:
        return name

    typed = audit(evidence, decode, kind=kind)
    assert typed.inferences == 40
    assert {f.where for f in typed.findings} == {
        m.where for i, m in enumerate(messages) if i % 7 == 3 or i % 11 == 5}
    assert audit(evidence, decode, kind=kind, fields=fields).findings == typed.findings
    monkeypatch.setattr(audit_module, "PARALLEL_FROM", 10)
    several = audit(evidence, decode, kind=kind, fields=fields, workers=2)
    assert several.findings == typed.findings
    assert several.inferences == 40
