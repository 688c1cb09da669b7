"""The wire codec against the in-memory registry confluent-kafka ships (mock://)."""

from __future__ import annotations

import dataclasses
import re
import struct

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from omc_events.avro import RecordInvalid, Schemas
from omc_events.catalogue import Catalogue
from omc_events.chain import seal
from omc_events.codec import (
    Codec,
    CodecError,
    NotOnTopic,
    RegistryUnavailable,
    Undecodable,
    UnknownSchema,
)
from omc_events.envelope import ChainHead
from tests.support.samples import sample

SCHEMAS = Schemas()
CATALOGUE = Catalogue.load()


@pytest.fixture(scope="module")
def codec() -> Codec:
    registry = SchemaRegistryClient.new_client({"url": "mock://codec-tests"})
    for subject, name in CATALOGUE.subjects():
        registry.register_schema(subject, Schema(SCHEMAS.set.standalone_json(name), "AVRO"))
    return Codec(registry, schemas=SCHEMAS, catalogue=CATALOGUE)


@pytest.mark.parametrize(("topic", "name"), [(t.name, r) for t in CATALOGUE for r in t.records])
def test_every_record_round_trips_on_every_topic_that_allows_it(codec, topic, name) -> None:
    record = sample(SCHEMAS.set, name)
    if name != "omc.deadletter.DeadLetter":
        record, _ = seal(SCHEMAS, record, ChainHead())

    value = codec.encode(topic, record)

    assert value[0] == 0  # Confluent magic byte, then a 4-byte schema id
    assert codec.decode(value) == record


def test_value_is_the_confluent_wire_format_with_the_subjects_id(codec) -> None:
    record = sample(SCHEMAS.set, "omc.task.TaskSubmitted")
    subject = CATALOGUE["omc.task.events.v1"].subject("omc.task.TaskSubmitted")

    value = codec.encode("omc.task.events.v1", record)

    registered = codec.registry.get_latest_version(subject)
    assert struct.unpack(">bI", value[:5]) == (0, registered.schema_id)
    assert value[5:] == SCHEMAS.encode(record)


def test_a_record_not_allowed_on_a_topic_is_refused(codec) -> None:
    refusal = re.escape("omc.tx.TxSigned is not allowed on omc.task.events.v1")
    with pytest.raises(NotOnTopic, match=refusal):
        codec.encode("omc.task.events.v1", sample(SCHEMAS.set, "omc.tx.TxSigned"))


def test_a_malformed_value_names_its_field(codec) -> None:
    signed = sample(SCHEMAS.set, "omc.tx.TxSigned")
    bad_sender = dataclasses.replace(signed, sender="0x1234")

    with pytest.raises(RecordInvalid) as raised:
        codec.encode("omc.tx.events.v1", bad_sender)

    assert raised.value.field == "TxSigned.sender"
    assert "not a valid omc-address" in str(raised.value)


def test_a_wrong_type_names_its_nested_field(codec) -> None:
    submitted = sample(SCHEMAS.set, "omc.task.TaskSubmitted")
    wrong = dataclasses.replace(submitted, meta=dataclasses.replace(submitted.meta, sequence="1"))

    with pytest.raises(RecordInvalid) as raised:
        codec.encode("omc.task.events.v1", wrong)

    assert raised.value.field == "TaskSubmitted.meta.sequence"
    assert "expected long" in str(raised.value)


@pytest.mark.parametrize("value", [None, b"", b"\x00\x00", b"\x01\x00\x00\x00\x01abc"])
def test_bytes_outside_the_wire_format_are_undecodable(codec, value) -> None:
    with pytest.raises(Undecodable):
        codec.decode(value)


def test_an_unknown_schema_id_is_reported_as_such(codec) -> None:
    with pytest.raises(UnknownSchema, match="no schema with id 99999"):
        codec.decode(struct.pack(">bI", 0, 99999) + b"\x00")


def test_a_known_id_with_bytes_that_do_not_decode_is_undecodable(codec) -> None:
    value = codec.encode("omc.task.events.v1", sample(SCHEMAS.set, "omc.task.TaskSubmitted"))

    with pytest.raises(Undecodable, match=re.escape("do not decode as omc.task.TaskSubmitted")):
        codec.decode(value[:5] + b"\xff\xff\xff")


def test_an_unreachable_registry_is_unavailable_not_a_poison_message() -> None:
    unreachable = Codec(SchemaRegistryClient({"url": "http://127.0.0.1:1", "max.retries": 0}),
                        schemas=SCHEMAS, catalogue=CATALOGUE)

    with pytest.raises(RegistryUnavailable, match="registry unreachable for schema id 5"):
        unreachable.decode(struct.pack(">bI", 0, 5) + b"\x00")
    assert not issubclass(RegistryUnavailable, CodecError)  # so consumers never dead-letter it
