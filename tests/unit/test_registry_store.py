"""The registry's state on the in-memory log: the log contract for `MemoryLog`, then the store.

The store is tested without a broker; that `MemoryLog` behaves as `KafkaLog` does is what the
shared contract (tests/support/registry_log_contract.py) checks against both.
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

import pytest

from omc_registry import avro
from omc_registry.errors import (
    IncompatibleSchema,
    InvalidLevel,
    InvalidVersion,
    RegistryStartFailed,
    SchemaNotFound,
    StoreFailed,
    SubjectLevelNotFound,
    SubjectNotFound,
    VersionNotFound,
)
from omc_registry.log import MemoryLog, SchemaLog
from omc_registry.store import SchemaStore, parse_version
from tests.support.registry_log_contract import LogContract

pytestmark = pytest.mark.anyio


# -- the log contract ------------------------------------------------------------------------


class MemoryLogs:
    """Memory logs over one storage: a new log starts from the records of the one before."""

    def __init__(self) -> None:
        self.last: MemoryLog | None = None

    def new(self) -> MemoryLog:
        self.last = MemoryLog(self.last.records if self.last else None)
        return self.last

    async def break_writes(self, log: SchemaLog) -> None:
        assert isinstance(log, MemoryLog)
        log.fail_writes = True


class TestMemoryLog(LogContract):
    @pytest.fixture
    def logs(self) -> MemoryLogs:
        return MemoryLogs()


# -- schemas ---------------------------------------------------------------------------------


def field(name: str, kind: Any = "string", **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, **extra}


def greeting(*fields: dict[str, Any]) -> avro.Schema:
    """omc.test.Greeting with `who` and the given extra fields."""
    return avro.parse(json.dumps({"type": "record", "name": "Greeting", "namespace": "omc.test",
                                  "fields": [field("who"), *fields]}))


V1 = greeting()
V2 = greeting(field("times", "int", default=1))  # backward and forward compatible with V1
NO_DEFAULT = field("language")  # a reader with it cannot read data written without it


async def opened(log: MemoryLog | None = None, **options: Any) -> SchemaStore:
    store = SchemaStore(log if log is not None else MemoryLog(), **options)
    await store.open()
    return store


def state(store: SchemaStore) -> dict[str, Any]:
    """Everything a client can read: every version of every subject, the ids, the levels."""
    subjects = {s: [store.version(s, v).as_dict() for v in store.versions(s)]
                for s in store.subjects()}
    ids = sorted({v["id"] for versions in subjects.values() for v in versions})
    levels: dict[str | None, str] = {None: store.level()}
    for subject in [*store.subjects(), "never-registered"]:
        with contextlib.suppress(SubjectLevelNotFound):
            levels[subject] = store.level(subject, default_to_global=False)
    return {"subjects": subjects, "schemas": {i: store.schema(i) for i in ids}, "levels": levels}


# -- registering -----------------------------------------------------------------------------


async def test_a_first_schema_gets_id_1_and_version_1_written_to_the_log() -> None:
    log = MemoryLog()
    store = await opened(log)

    registration = await store.register("greetings-value", V1)

    assert (registration.id, registration.version, registration.created) == (1, 1, True)
    assert store.subjects() == ["greetings-value"]
    assert store.versions("greetings-value") == [1]
    assert store.version("greetings-value", 1).as_dict() == {
        "subject": "greetings-value", "version": 1, "id": 1, "schema": V1.text}
    assert store.schema(1) == V1.text
    assert log.records == [
        ({"keytype": "SCHEMA", "subject": "greetings-value", "version": 1},
         {"subject": "greetings-value", "version": 1, "id": 1, "schemaType": "AVRO",
          "schema": V1.text}),
    ]


async def test_registering_the_same_schema_again_is_idempotent() -> None:
    log = MemoryLog()
    store = await opened(log)
    first = await store.register("greetings-value", V1)
    reformatted = avro.parse(json.dumps(json.loads(V1.text), indent=4))

    again = await store.register("greetings-value", V1)
    same = await store.register("greetings-value", reformatted)

    assert (again.id, again.version, again.created) == (first.id, first.version, False)
    assert (same.id, same.version, same.created) == (first.id, first.version, False)
    assert store.versions("greetings-value") == [1]
    assert len(log.records) == 1


async def test_an_old_version_registered_again_answers_its_own_version() -> None:
    store = await opened()
    await store.register("greetings-value", V1)
    await store.register("greetings-value", V2)

    again = await store.register("greetings-value", V1)

    assert (again.id, again.version, again.created) == (1, 1, False)
    assert store.versions("greetings-value") == [1, 2]


async def test_ids_are_global_across_subjects() -> None:
    store = await opened()
    a = await store.register("a-value", V1)
    b = await store.register("b-value", V1)
    other = await store.register("c-value", greeting(field("other")))

    assert (b.id, b.version, b.created) == (a.id, 1, True)
    assert other.id == a.id + 1
    assert [(v.subject, v.version) for v in store.usages(a.id)] == [("a-value", 1),
                                                                    ("b-value", 1)]


async def test_a_new_schema_gets_the_next_id_and_version() -> None:
    store = await opened()
    await store.register("a-value", greeting(field("other")))

    await store.register("greetings-value", V1)
    v2 = await store.register("greetings-value", V2)

    assert (v2.id, v2.version, v2.created) == (3, 2, True)
    assert store.versions("greetings-value") == [1, 2]
    assert store.version("greetings-value", "latest").version == 2
    assert store.version("greetings-value", -1).id == 3
    assert store.version("greetings-value", "1").schema == V1.text


async def test_names_and_prefixes_of_subjects() -> None:
    store = await opened()
    for subject in ("b-value", "a-value", "a-key"):
        await store.register(subject, V1)

    assert store.subjects() == ["a-key", "a-value", "b-value"]
    assert store.subjects("a-") == ["a-key", "a-value"]
    assert store.subjects("z") == []


# -- reading and its errors ------------------------------------------------------------------


async def test_lookup_finds_the_version_holding_a_schema() -> None:
    store = await opened()
    await store.register("greetings-value", V1)
    await store.register("greetings-value", V2)
    await store.register("other-value", greeting(field("other")))

    assert store.lookup("greetings-value", V2).as_dict() == {
        "subject": "greetings-value", "version": 2, "id": 2, "schema": V2.text}
    assert store.lookup("greetings-value", avro.parse(json.dumps(json.loads(V1.text),
                                                                 indent=2))).version == 1
    with pytest.raises(SchemaNotFound, match="under subject 'greetings-value'"):
        store.lookup("greetings-value", greeting(field("other")))  # registered elsewhere only
    with pytest.raises(SchemaNotFound):
        store.lookup("greetings-value", greeting(field("never")))
    with pytest.raises(SubjectNotFound, match=re.escape("Subject 'nobody' not found.")):
        store.lookup("nobody", V1)


async def test_unknown_subjects_versions_and_ids_raise_their_errors() -> None:
    store = await opened()
    await store.register("greetings-value", V1)

    with pytest.raises(SubjectNotFound):
        store.versions("nobody")
    with pytest.raises(SubjectNotFound):
        store.version("nobody", "latest")
    with pytest.raises(VersionNotFound, match="Version 2 not found for subject"):
        store.version("greetings-value", 2)
    with pytest.raises(SchemaNotFound, match="Schema 7 not found"):
        store.schema(7)
    with pytest.raises(SchemaNotFound):
        store.usages(7)


@pytest.mark.parametrize("spec", ["0", "-2", "zero", "1.0", "", str(2**31), "²", "1e3"])
def test_invalid_versions_are_refused(spec: str) -> None:
    with pytest.raises(InvalidVersion, match="not a valid version id"):
        parse_version(spec)


@pytest.mark.parametrize(("spec", "number"), [("1", 1), (7, 7), (str(2**31 - 1), 2**31 - 1),
                                              ("latest", None), ("-1", None), (-1, None)])
def test_valid_versions(spec: object, number: int | None) -> None:
    assert parse_version(spec) == number


# -- compatibility ---------------------------------------------------------------------------


async def test_the_default_level_refuses_an_incompatible_schema_naming_the_field() -> None:
    log = MemoryLog()
    store = await opened(log)
    await store.register("greetings-value", V1)

    with pytest.raises(IncompatibleSchema) as refused:
        await store.register("greetings-value", greeting(NO_DEFAULT))

    message = str(refused.value)
    assert "omc.test.Greeting.language" in message
    assert "subject 'greetings-value'" in message
    assert "BACKWARD_TRANSITIVE" in message
    assert store.versions("greetings-value") == [1]
    assert len(log.records) == 1


async def test_transitive_levels_check_every_version_and_the_others_the_latest() -> None:
    v3 = greeting(field("times", "int"))  # cannot read V1 data (no times, no default)
    for level, accepted in (("BACKWARD", True), ("BACKWARD_TRANSITIVE", False)):
        store = await opened(default_level=level)
        await store.register("s", V1)
        await store.register("s", V2)

        assert (store.incompatibilities("s", v3) == []) is accepted
        assert store.incompatibilities("s", v3, against=2) == []
        if not accepted:
            (problem,) = store.incompatibilities("s", v3)
            assert "version 1" in problem
            assert "omc.test.Greeting.times" in problem


async def test_forward_checks_that_the_previous_schema_reads_the_new_one() -> None:
    store = await opened(default_level="FORWARD")
    await store.register("s", greeting(field("language")))

    added = await store.register("s", greeting(field("language"), field("x")))
    with pytest.raises(IncompatibleSchema, match=re.escape("omc.test.Greeting.language")):
        await store.register("s", V1)  # version 2 could not read data without `language`

    assert added.version == 2


async def test_none_accepts_anything_and_full_checks_both_ways() -> None:
    loose = await opened(default_level="NONE")
    await loose.register("s", V1)
    assert (await loose.register("s", greeting(NO_DEFAULT))).created

    strict = await opened(default_level="FULL")
    await strict.register("s", V1)
    assert strict.incompatibilities("s", V2) == []
    assert strict.incompatibilities("s", greeting(NO_DEFAULT))  # backward fails
    with pytest.raises(IncompatibleSchema):
        await strict.register("s", avro.parse(json.dumps(
            {"type": "record", "name": "Greeting", "namespace": "omc.test", "fields": []})))


async def test_a_subject_level_overrides_the_global_one_for_that_subject_only() -> None:
    store = await opened()
    await store.register("loose-value", V1)
    await store.register("strict-value", V1)

    await store.set_level("loose-value", "NONE")

    assert (await store.register("loose-value", greeting(NO_DEFAULT))).version == 2
    with pytest.raises(IncompatibleSchema):
        await store.register("strict-value", greeting(NO_DEFAULT))
    assert store.level("loose-value") == "NONE"
    assert store.level("strict-value") == "BACKWARD_TRANSITIVE"


async def test_the_global_level_applies_to_subjects_without_their_own() -> None:
    store = await opened()
    await store.register("s", V1)
    await store.set_level("other", "BACKWARD")

    assert await store.set_level(None, "none") == "NONE"

    assert store.level() == "NONE"
    assert store.level("s") == "NONE"
    assert store.level("other") == "BACKWARD"
    assert (await store.register("s", greeting(NO_DEFAULT))).version == 2


async def test_levels_of_their_own_and_invalid_levels() -> None:
    store = await opened(default_level="FULL")

    assert store.level() == "FULL"
    assert store.level("s") == "FULL"
    with pytest.raises(SubjectLevelNotFound, match="defaultToGlobal=true"):
        store.level("s", default_to_global=False)
    for invalid in ("SIDEWAYS", None, 3, ""):
        with pytest.raises(InvalidLevel, match="Valid values are"):
            await store.set_level("s", invalid)
    with pytest.raises(InvalidLevel):
        SchemaStore(MemoryLog(), default_level="SIDEWAYS")


async def test_compatibility_against_a_version_or_an_unknown_subject() -> None:
    store = await opened()
    await store.register("s", V1)

    assert store.incompatibilities("nobody", greeting(NO_DEFAULT)) == []
    assert store.incompatibilities("s", greeting(NO_DEFAULT), against="latest")
    with pytest.raises(VersionNotFound):
        store.incompatibilities("s", V2, against=5)
    with pytest.raises(SubjectNotFound):
        store.incompatibilities("nobody", V2, against=1)


# -- the log: config records, failures, restarts ---------------------------------------------


async def test_level_changes_are_written_to_the_log_once() -> None:
    log = MemoryLog()
    store = await opened(log)

    await store.set_level(None, "FULL")
    await store.set_level("s", "NONE")
    await store.set_level("s", "NONE")  # no change, nothing written
    await store.set_level("s", "FORWARD")

    assert log.records == [
        ({"keytype": "CONFIG", "subject": None}, {"compatibilityLevel": "FULL"}),
        ({"keytype": "CONFIG", "subject": "s"}, {"compatibilityLevel": "NONE"}),
        ({"keytype": "CONFIG", "subject": "s"}, {"compatibilityLevel": "FORWARD"}),
    ]


async def test_a_write_the_log_refuses_leaves_the_state_untouched() -> None:
    log = MemoryLog()
    store = await opened(log)
    await store.register("s", V1)
    before = state(store)
    log.fail_writes = True

    with pytest.raises(StoreFailed):
        await store.register("s", V2)
    with pytest.raises(StoreFailed):
        await store.register("t", V1)
    with pytest.raises(StoreFailed):
        await store.set_level(None, "NONE")
    with pytest.raises(StoreFailed):
        await store.set_level("s", "NONE")

    assert state(store) == before
    log.fail_writes = False
    assert (await store.register("s", V2)).id == 2  # the failed write used no id


async def test_a_store_rebuilt_from_the_same_log_has_the_same_ids_versions_and_levels() -> None:
    log = MemoryLog()
    store = await opened(log)
    await store.register("a-value", V1)
    await store.register("a-value", V2)
    await store.register("b-value", V2)
    await store.register("c-value", greeting(field("other")))
    await store.set_level(None, "FULL")
    await store.set_level("b-value", "NONE")
    await store.set_level("b-value", "FORWARD")
    await store.close()

    again = await opened(MemoryLog(log.records))

    assert state(again) == state(store)
    assert again.level("b-value", default_to_global=False) == "FORWARD"
    assert again.level("a-value") == "FULL"
    assert (await again.register("b-value", V2)).created is False
    new = await again.register("d-value", greeting(field("new")))
    assert (new.id, new.version) == (4, 1)  # ids continue after the largest one read


async def test_a_log_record_the_store_cannot_read_refuses_the_start() -> None:
    schema = ({"keytype": "SCHEMA", "subject": "s", "version": 1},
              {"subject": "s", "version": 1, "id": 1, "schemaType": "AVRO", "schema": V1.text})
    damaged = [
        ({"keytype": "SCHEMA", "subject": "s", "version": 1}, {"subject": "s", "id": 1}),
        ({"keytype": "SCHEMA", "subject": "s", "version": 1},
         {"subject": "s", "version": 1, "id": 1, "schema": "{nope"}),
        ({"keytype": "CONFIG", "subject": None}, {"compatibilityLevel": "SIDEWAYS"}),
        ({"keytype": "SCHEMA", "subject": "t", "version": 1},  # V1 under a second id
         {"subject": "t", "version": 1, "id": 2, "schema": V1.text}),
    ]
    for record in damaged:
        with pytest.raises(RegistryStartFailed, match="a record it cannot read"):
            await opened(MemoryLog([schema, record]))


async def test_tombstones_and_records_of_unknown_kinds_are_skipped() -> None:
    store = await opened(MemoryLog([
        ({"keytype": "SCHEMA", "subject": "s", "version": 1},
         {"subject": "s", "version": 1, "id": 1, "schemaType": "AVRO", "schema": V1.text}),
        ({"keytype": "SCHEMA", "subject": "s", "version": 1}, None),
        ({"keytype": "MODE", "subject": None}, {"mode": "READONLY"}),
    ]))

    assert store.version("s", 1).id == 1
