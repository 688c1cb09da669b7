"""What every registry log (`omc_registry.log.SchemaLog`) promises, written once.

`MemoryLog` runs it in tests/unit and `KafkaLog` in tests/integration: a test module subclasses
`LogContract` and gives it a `logs` fixture, a `LogFactory` over storage of that test's own.

    open      makes the log ready and returns every record in it, oldest first, as JSON
    append    writes one record durably (what was given at that moment), or raises StoreFailed
    restart   a new log over the same storage reads back every record appended before
    keys      the same key (whatever its dict order) names the same thing, so the latest value
              of each key is the one a fold (or compaction) keeps
    close     releases the log; a log that is not open writes nothing
"""

from __future__ import annotations

import json
from typing import Any, Protocol

import pytest

from omc_registry.errors import StoreFailed
from omc_registry.log import Record, SchemaLog


class LogFactory(Protocol):
    def new(self) -> SchemaLog:
        """A log over the same storage as every log made before it: opening it is a restart."""

    async def break_writes(self, log: SchemaLog) -> None:
        """Make every later write of this open log impossible."""


def schema_record(subject: str, version: int, schema_id: int) -> Record:
    return ({"keytype": "SCHEMA", "subject": subject, "version": version},
            {"subject": subject, "version": version, "id": schema_id, "schemaType": "AVRO",
             "schema": '"string"'})


def config_record(subject: str | None, level: str) -> Record:
    return {"keytype": "CONFIG", "subject": subject}, {"compatibilityLevel": level}


def latest_by_key(records: list[Record]) -> dict[str, Any]:
    """What compaction keeps: the last value of each key (keys compared as sorted JSON)."""
    return {json.dumps(key, sort_keys=True): value for key, value in records}


@pytest.mark.anyio
class LogContract:
    """The suite; subclasses provide `logs`."""

    @pytest.fixture
    def logs(self) -> LogFactory:
        raise NotImplementedError("a test module gives the contract its own `logs` fixture")

    async def test_a_new_log_opens_empty(self, logs: LogFactory) -> None:
        assert await logs.new().open() == []

    async def test_a_restart_reads_every_record_oldest_first(self, logs: LogFactory) -> None:
        written = [schema_record("a-value", 1, 1), config_record(None, "FULL"),
                   schema_record("b-value", 1, 1), config_record("a-value", "NONE")]
        log = logs.new()
        await log.open()
        for key, value in written:
            await log.append(key, value)

        assert await logs.new().open() == written

    async def test_records_are_read_back_as_the_json_written(self, logs: LogFactory) -> None:
        key = {"keytype": "CONFIG", "subject": None}
        value = {"text": "é \u2603 \"quoted\"", "int": 2**31 - 1, "float": 0.5, "flag": True,
                 "nothing": None, "list": [1, "two", {"three": 3}], "empty": {}}
        log = logs.new()
        await log.open()
        await log.append(key, value)

        ((read_key, read_value),) = await logs.new().open()

        assert read_key == key
        assert read_value == value
        assert type(read_value["int"]) is int
        assert type(read_value["float"]) is float

    async def test_an_empty_value_is_read_back_as_written_not_as_a_tombstone(
        self, logs: LogFactory,
    ) -> None:
        log = logs.new()
        await log.open()
        await log.append({"keytype": "NOTE", "subject": "s"}, {})

        assert await logs.new().open() == [({"keytype": "NOTE", "subject": "s"}, {})]

    async def test_a_record_is_what_was_appended_at_that_moment(self, logs: LogFactory) -> None:
        key, value = config_record("s", "FULL")
        log = logs.new()
        await log.open()
        await log.append(key, value)
        key["subject"], value["compatibilityLevel"] = "changed", "NONE"  # the caller's dicts

        assert await logs.new().open() == [config_record("s", "FULL")]

    async def test_a_key_written_again_keeps_both_values_in_order_the_latest_last(
        self, logs: LogFactory,
    ) -> None:
        log = logs.new()
        await log.open()
        for level in ("FULL", "NONE", "FORWARD"):
            await log.append(*config_record("s", level))
        await log.append(*config_record(None, "BACKWARD"))

        records = await logs.new().open()

        # Before compaction every value is read, oldest first; after it only the last ones.
        # Either way the latest value of each key is the one a fold ends with.
        assert latest_by_key(records) == latest_by_key(
            [config_record("s", "FORWARD"), config_record(None, "BACKWARD")])
        levels = [value["compatibilityLevel"] for key, value in records if key["subject"] == "s"]
        assert levels
        assert levels == ["FULL", "NONE", "FORWARD"][-len(levels):]

    async def test_a_key_is_the_same_whatever_its_dict_order(self, logs: LogFactory) -> None:
        log = logs.new()
        await log.open()
        await log.append({"keytype": "CONFIG", "subject": "s"}, {"compatibilityLevel": "FULL"})
        await log.append({"subject": "s", "keytype": "CONFIG"}, {"compatibilityLevel": "NONE"})

        records = await logs.new().open()

        assert latest_by_key(records) == latest_by_key([config_record("s", "NONE")])

    async def test_a_restarted_log_appends_after_what_it_read(self, logs: LogFactory) -> None:
        first = logs.new()
        await first.open()
        await first.append(*schema_record("s", 1, 1))
        await first.close()
        second = logs.new()
        assert await second.open() == [schema_record("s", 1, 1)]
        await second.append(*schema_record("s", 2, 2))

        assert await logs.new().open() == [schema_record("s", 1, 1), schema_record("s", 2, 2)]

    async def test_a_write_that_cannot_be_made_raises_store_failed_and_is_not_read_back(
        self, logs: LogFactory,
    ) -> None:
        log = logs.new()
        await log.open()
        await log.append(*schema_record("s", 1, 1))
        await logs.break_writes(log)

        with pytest.raises(StoreFailed):
            await log.append(*schema_record("s", 2, 2))

        assert await logs.new().open() == [schema_record("s", 1, 1)]

    async def test_a_log_that_is_not_open_refuses_writes(self, logs: LogFactory) -> None:
        never_opened = logs.new()
        with pytest.raises(StoreFailed):
            await never_opened.append(*schema_record("s", 1, 1))
        closed = logs.new()
        await closed.open()
        await closed.close()
        with pytest.raises(StoreFailed):
            await closed.append(*schema_record("s", 2, 2))

        assert await logs.new().open() == []

    async def test_closing_twice_is_harmless(self, logs: LogFactory) -> None:
        log = logs.new()
        await log.open()
        await log.close()
        await log.close()
