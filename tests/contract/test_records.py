"""Every record class maps to exactly one schema, and the wire bytes do not drift."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from omc_events import codegen
from omc_events.avro import Schemas
from omc_events.chain import seal
from omc_events.envelope import ChainHead
from omc_events.records import RECORDS
from tests.support.samples import sample

SCHEMAS = Schemas()
GOLDEN = Path(__file__).with_name("golden")
RECORD_SCHEMAS = sorted(n for n in SCHEMAS.set if SCHEMAS.set.named[n]["type"] == "record")


def test_records_py_is_generated_from_the_current_schemas() -> None:
    assert codegen.TARGET.read_text() == codegen.render(SCHEMAS.set), (
        "libs/omc_events/records.py is stale: run `omc schemas generate`")


def test_every_record_schema_has_exactly_one_class_and_every_class_one_schema() -> None:
    assert sorted(RECORDS) == RECORD_SCHEMAS
    assert [cls.SCHEMA for cls in RECORDS.values()] == list(RECORDS)
    assert len({id(cls) for cls in RECORDS.values()}) == len(RECORDS)


@pytest.mark.parametrize("name", RECORD_SCHEMAS)
def test_class_fields_are_the_schema_fields_in_order(name: str) -> None:
    schema_fields = [f["name"] for f in SCHEMAS.set.named[name]["fields"]]
    class_fields = [f.name.rstrip("_") for f in dataclasses.fields(RECORDS[name])]

    assert class_fields == schema_fields


@pytest.mark.parametrize("name", RECORD_SCHEMAS)
def test_avro_round_trip_gives_back_an_equal_record(name: str) -> None:
    record = sample(SCHEMAS.set, name)
    body = SCHEMAS.encode(record)

    assert RECORDS[name].from_avro(SCHEMAS.decode(name, body)) == record


GOLDEN_RECORDS = ["omc.command.SubmitTask", "omc.task.TaskSubmitted", "omc.task.PolicyEvaluated",
                  "omc.tx.TxSigned", "omc.proof.CheckpointSigned"]


@pytest.mark.parametrize("name", GOLDEN_RECORDS)
def test_golden_bytes(name: str) -> None:
    """The sealed sample's body and hash are fixed. A change here changes what is on the
    wire: if it is intended (a new schema version), regenerate with OMC_UPDATE_GOLDEN=1."""
    record, _ = seal(SCHEMAS, sample(SCHEMAS.set, name), ChainHead())
    actual = f"{SCHEMAS.encode(record).hex()}\n{record.meta.hash}\n"
    path = GOLDEN / f"{name}.hex"
    if os.environ.get("OMC_UPDATE_GOLDEN") == "1":
        path.write_text(actual)

    assert path.read_text() == actual
