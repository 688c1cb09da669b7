"""The per-aggregate hash chain: sealing, and detecting every kind of tampering."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from omc_events.avro import Schemas
from omc_events.chain import (
    canonical_bytes,
    chain_hash,
    seal,
    seal_body,
    seal_command,
    verify,
)
from omc_events.envelope import ID_NAMESPACE, ZERO_HASH, ChainHead, derived_id, uuid5_text
from omc_events.records import RECORDS
from tests.support.samples import sample

SCHEMAS = Schemas()


def _chain(aggregate: str, count: int, start: int = 0) -> list[tuple[str, bytes]]:
    head = ChainHead()
    bodies = []
    for i in range(count):
        event = sample(SCHEMAS.set, "omc.task.TaskSubmitted", aggregate_id=aggregate,
                       causation=f"{aggregate}-cmd", position=i)
        sealed, head = seal(SCHEMAS, event, head)
        bodies.append((f"omc.task.events.v1/0@{start + i}", SCHEMAS.encode(sealed)))
    return bodies


def _interleaved() -> list[tuple[str, bytes]]:
    a, b = _chain("task-a", 4), _chain("task-b", 3, start=10)
    return [a[0], b[0], a[1], a[2], b[1], b[2], a[3]]


def test_seal_links_each_event_to_the_previous_one() -> None:
    first, head1 = seal(SCHEMAS, sample(SCHEMAS.set, "omc.task.TaskSubmitted"), ChainHead())
    second, head2 = seal(SCHEMAS, sample(SCHEMAS.set, "omc.task.TaskCancelled"), head1)

    assert (first.meta.sequence, first.meta.prev_hash) == (1, ZERO_HASH)
    assert (second.meta.sequence, second.meta.prev_hash) == (2, first.meta.hash)
    assert head2 == ChainHead(2, second.meta.hash)


def test_hash_is_sha256_of_prev_hash_and_the_body_with_hash_emptied() -> None:
    sealed, _ = seal(SCHEMAS, sample(SCHEMAS.set, "omc.task.TaskSubmitted"), ChainHead())
    body = SCHEMAS.encode(sealed)

    meta, canonical = canonical_bytes(body)

    assert canonical == SCHEMAS.encode(dataclasses.replace(
        sealed, meta=dataclasses.replace(sealed.meta, hash="")))
    assert meta["hash"] == chain_hash(ZERO_HASH, canonical) == sealed.meta.hash


def test_an_untouched_log_verifies() -> None:
    checked, problems = verify(_interleaved())

    assert checked == 7
    assert problems == []


def test_a_single_changed_byte_is_detected_at_that_event() -> None:
    log = _interleaved()
    where, body = log[3]
    position = body.index(b"instruction-value") + 3
    log[3] = (where, body[:position] + b"X" + body[position + 1:])

    _, problems = verify(log)

    assert [(p.where, p.problem.split(" (")[0]) for p in problems] == [
        (where, "hash does not match the event's bytes")]


def test_a_removed_event_is_detected_at_the_next_event() -> None:
    log = _interleaved()
    del log[2]  # task-a's second event

    _, problems = verify(log)

    assert {p.aggregate for p in problems} == {"task/task-a"}
    assert any("sequence 3 follows 1" in p.problem for p in problems)
    assert any("prev_hash" in p.problem for p in problems)


def test_a_swapped_pair_is_detected() -> None:
    log = _interleaved()
    log[2], log[3] = log[3], log[2]  # task-a's second and third events

    _, problems = verify(log)

    assert len(problems) >= 2
    assert all(p.aggregate == "task/task-a" for p in problems)


def test_a_command_is_self_hashed_and_not_chained() -> None:
    command = seal_command(SCHEMAS, sample(SCHEMAS.set, "omc.command.SubmitTask"))

    checked, problems = verify([("omc.commands.v1/0@0", SCHEMAS.encode(command))])

    assert (command.meta.sequence, command.meta.prev_hash) == (0, ZERO_HASH)
    assert (checked, problems) == (1, [])


EVENTS = sorted(name for name, cls in RECORDS.items() if "meta" in cls.__slots__)


@pytest.mark.parametrize("name", EVENTS)
def test_seal_body_gives_the_bytes_and_hash_of_seal_then_encode(name: str) -> None:
    head = ChainHead(41, chain_hash(ZERO_HASH, name.encode()))
    event = sample(SCHEMAS.set, name)
    sealed, new_head = seal(SCHEMAS, event, head)
    unsealed = dataclasses.replace(sealed, meta=dataclasses.replace(sealed.meta, hash=""))

    assert seal_body(SCHEMAS, unsealed) == (SCHEMAS.encode(sealed), new_head.hash)


@pytest.mark.parametrize("meta", [
    {"tenant": "ténant-ü", "actor": "key:" + "k" * 70},  # non-ASCII, a two-byte length
    {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
     "tracestate": "a=" + "b" * 9000, "causation_id": None},  # a three-byte length
    {"sequence": 2**40, "schema_version": 300},
])
def test_seal_body_measures_every_shape_of_envelope(meta: dict) -> None:
    event = sample(SCHEMAS.set, "omc.task.TaskSubmitted")
    unsealed = dataclasses.replace(event, meta=dataclasses.replace(event.meta, **meta))
    body, digest = seal_body(SCHEMAS, unsealed)
    sealed = dataclasses.replace(unsealed, meta=dataclasses.replace(unsealed.meta, hash=digest))

    assert body == SCHEMAS.encode(sealed)


def test_seal_body_refuses_a_record_already_sealed() -> None:
    sealed = seal_command(SCHEMAS, sample(SCHEMAS.set, "omc.command.SubmitTask"))

    with pytest.raises(ValueError, match=r"meta\.hash is empty"):
        seal_body(SCHEMAS, sealed)


def test_garbage_is_reported_not_raised() -> None:
    _, problems = verify([("t/0@0", b"\x07garbage")])

    assert len(problems) == 1
    assert "unreadable envelope" in problems[0].problem


def test_derived_ids_are_deterministic_and_distinct_per_position() -> None:
    assert derived_id("cmd-1", 0) == derived_id("cmd-1", 0)
    assert len({derived_id("cmd-1", i) for i in range(50)}) == 50
    assert derived_id("cmd-1", 0) != derived_id("cmd-2", 0)
    with pytest.raises(ValueError, match="position"):
        derived_id("cmd-1", -1)


@pytest.mark.parametrize("name", ["", "a", "c/0", "ключ:é/17", "x" * 1000, "\x00\uffff"])
def test_uuid5_text_is_the_standard_uuid5(name: str) -> None:
    for namespace in (ID_NAMESPACE, uuid.NAMESPACE_URL, uuid.uuid4()):
        assert uuid5_text(namespace, name) == str(uuid.uuid5(namespace, name))
