"""The registry's HTTP API (Confluent's REST API) in-process: Starlette's TestClient over a
store on the in-memory log. The same API through a real process and the Confluent client is
tests/integration/test_registry.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from omc_registry.app import MEDIA_TYPE, create_app
from omc_registry.log import MemoryLog
from omc_registry.settings import RegistrySettings
from omc_registry.store import SchemaStore

SUBJECT = "omc.test.events.v1-omc.test.Greeting"
SETTINGS = RegistrySettings(kafka_bootstrap="127.0.0.1:9", host="127.0.0.1", port=18081,
                            topic="_omc_schemas_test", kafka_wait=1.0, schemas_dir=None,
                            default_level="BACKWARD_TRANSITIVE")


def greeting(*fields: dict[str, Any]) -> str:
    return json.dumps({"type": "record", "name": "Greeting", "namespace": "omc.test",
                       "fields": [{"name": "who", "type": "string"}, *fields]},
                      separators=(",", ":"))  # as the registry keeps it


V1 = greeting()
V2 = greeting({"name": "times", "type": "int", "default": 1})
BREAKING = greeting({"name": "language", "type": "string"})  # a new field without a default


@pytest.fixture
def log() -> MemoryLog:
    return MemoryLog()


@pytest.fixture
def client(log: MemoryLog) -> Iterator[TestClient]:
    with TestClient(create_app(SETTINGS, SchemaStore(log))) as client:
        yield client


def register(client: TestClient, subject: str, schema: str) -> int:
    answer = client.post(f"/subjects/{subject}/versions", json={"schema": schema})
    assert answer.status_code == 200, answer.text
    return answer.json()["id"]


def error(answer: Any, status: int, code: int) -> str:
    """The Confluent error body's message, after checking the status, code and content type."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == MEDIA_TYPE
    body = answer.json()
    assert set(body) == {"error_code", "message"}
    assert body["error_code"] == code
    return body["message"]


# -- registering and reading -----------------------------------------------------------------


def test_register_answers_the_id_in_the_registry_media_type(client: TestClient) -> None:
    answer = client.post(f"/subjects/{SUBJECT}/versions", json={"schema": V1})

    assert answer.status_code == 200
    assert answer.headers["content-type"] == MEDIA_TYPE
    assert answer.json() == {"id": 1}


def test_bodies_are_json_whatever_their_content_type(client: TestClient) -> None:
    for content_type in (MEDIA_TYPE, "application/octet-stream", None):
        headers = {"Content-Type": content_type} if content_type else {}
        answer = client.post(f"/subjects/{SUBJECT}/versions",
                             content=json.dumps({"schema": V1}), headers=headers)
        assert answer.json() == {"id": 1}


def test_registering_is_idempotent_and_ids_are_global(client: TestClient, log: MemoryLog) -> None:
    first = register(client, SUBJECT, V1)
    again = register(client, SUBJECT, json.dumps(json.loads(V1), indent=2))
    elsewhere = register(client, "other-value", V1)
    newer = register(client, SUBJECT, V2)

    assert (first, again, elsewhere, newer) == (1, 1, 1, 2)
    assert client.get(f"/subjects/{SUBJECT}/versions").json() == [1, 2]
    assert client.get("/schemas/ids/1/versions").json() == [
        {"subject": SUBJECT, "version": 1}, {"subject": "other-value", "version": 1}]
    assert client.get("/schemas/ids/1/subjects").json() == [SUBJECT, "other-value"]
    assert len(log.records) == 3


def test_subjects_versions_and_schemas_are_read_back(client: TestClient) -> None:
    register(client, SUBJECT, V1)
    register(client, SUBJECT, V2)
    register(client, "other-value", V1)

    assert client.get("/subjects").json() == [SUBJECT, "other-value"]
    assert client.get("/subjects", params={"subjectPrefix": "oth"}).json() == ["other-value"]
    assert client.get(f"/subjects/{SUBJECT}/versions/1").json() == {
        "subject": SUBJECT, "version": 1, "id": 1, "schema": V1}
    for latest in ("latest", "-1"):
        assert client.get(f"/subjects/{SUBJECT}/versions/{latest}").json()["version"] == 2
    assert client.get(f"/subjects/{SUBJECT}/versions/2/schema").json() == json.loads(V2)
    assert client.get("/schemas/ids/2").json() == {"schema": V2}
    assert client.get("/schemas/ids/2/schema").json() == json.loads(V2)
    for path in ("/subjects", f"/subjects/{SUBJECT}/versions/1/schema", "/schemas/ids/2/schema"):
        assert client.get(path).headers["content-type"] == MEDIA_TYPE


def test_lookup_answers_the_subject_version_id_and_schema(client: TestClient) -> None:
    register(client, SUBJECT, V1)
    register(client, SUBJECT, V2)

    found = client.post(f"/subjects/{SUBJECT}", json={"schema": json.dumps(json.loads(V1))})

    assert found.status_code == 200
    assert found.json() == {"subject": SUBJECT, "version": 1, "id": 1, "schema": V1}


def test_the_fixed_answers(client: TestClient) -> None:
    assert client.get("/").json() == {}
    assert client.get("/schemas/types").json() == ["AVRO"]
    assert client.get("/mode").json() == {"mode": "READWRITE"}
    assert client.get("/subjects").json() == []


def test_the_app_serves_what_its_log_held_at_start() -> None:
    log = MemoryLog()
    with TestClient(create_app(SETTINGS, SchemaStore(log))) as first:
        register(first, SUBJECT, V1)
        first.put(f"/config/{SUBJECT}", json={"compatibility": "NONE"})

    with TestClient(create_app(SETTINGS, SchemaStore(MemoryLog(log.records)))) as second:
        assert second.get(f"/subjects/{SUBJECT}/versions/1").json()["id"] == 1
        assert second.get(f"/config/{SUBJECT}").json() == {"compatibilityLevel": "NONE"}
        assert register(second, SUBJECT, BREAKING) == 2


# -- errors ----------------------------------------------------------------------------------


def test_an_unknown_subject_is_40401(client: TestClient) -> None:
    for answer in (client.get("/subjects/nobody/versions"),
                   client.get("/subjects/nobody/versions/1"),
                   client.get("/subjects/nobody/versions/latest/schema"),
                   client.post("/subjects/nobody", json={"schema": V1})):
        assert error(answer, 404, 40401) == "Subject 'nobody' not found."


def test_an_unknown_version_is_40402_and_an_invalid_one_42202(client: TestClient) -> None:
    register(client, SUBJECT, V1)

    missing = client.get(f"/subjects/{SUBJECT}/versions/2")

    assert error(missing, 404, 40402) == f"Version 2 not found for subject '{SUBJECT}'."
    for invalid in ("0", "zero", "-2", str(2**31), "%C2%B2"):  # the last is '²'
        assert "not a valid version id" in error(
            client.get(f"/subjects/{SUBJECT}/versions/{invalid}"), 422, 42202)


def test_an_unknown_schema_is_40403(client: TestClient) -> None:
    register(client, SUBJECT, V1)

    for path in ("/schemas/ids/2", "/schemas/ids/2/schema", "/schemas/ids/2/versions",
                 "/schemas/ids/2/subjects", "/schemas/ids/abc", "/schemas/ids/-1",
                 "/schemas/ids/%C2%B2"):
        assert "not found" in error(client.get(path), 404, 40403)
    not_registered = client.post(f"/subjects/{SUBJECT}", json={"schema": V2})
    assert "not found" in error(not_registered, 404, 40403)


def test_an_invalid_schema_is_42201(client: TestClient) -> None:
    bodies = {
        "not JSON": {"schema": "{nope"},
        "Nope": {"schema": json.dumps({"type": "record", "name": "R",
                                       "fields": [{"name": "a", "type": "Nope"}]})},
        "PROTOBUF": {"schema": "syntax = 'proto3';", "schemaType": "PROTOBUF"},
        "references": {"schema": V1, "references": [{"name": "x", "subject": "x",
                                                     "version": 1}]},
        "as a string": {"schema": {"type": "string"}},
    }
    for hint, body in bodies.items():
        assert hint in error(client.post(f"/subjects/{SUBJECT}/versions", json=body), 422, 42201)
    assert client.get("/subjects").json() == []


def test_a_body_that_is_not_the_object_expected_is_400(client: TestClient) -> None:
    path = f"/subjects/{SUBJECT}/versions"
    assert "not JSON" in error(client.post(path, content=b"{nope"), 400, 400)
    assert "JSON object" in error(client.post(path, json=["schema"]), 400, 400)
    assert "no 'schema'" in error(client.post(path, json={"schemaa": V1}), 400, 400)
    assert "no 'schema'" in error(client.post(path), 400, 400)


def test_an_incompatible_schema_is_409_naming_the_field(client: TestClient) -> None:
    register(client, SUBJECT, V1)

    message = error(client.post(f"/subjects/{SUBJECT}/versions", json={"schema": BREAKING}),
                    409, 409)

    assert "omc.test.Greeting.language" in message
    assert "BACKWARD_TRANSITIVE" in message
    assert client.get(f"/subjects/{SUBJECT}/versions").json() == [1]


def test_every_delete_is_refused_with_405(client: TestClient, log: MemoryLog) -> None:
    register(client, SUBJECT, V1)
    client.put(f"/config/{SUBJECT}", json={"compatibility": "FULL"})
    written = list(log.records)

    for path in (f"/subjects/{SUBJECT}", f"/subjects/{SUBJECT}/versions/1",
                 f"/subjects/{SUBJECT}/versions/latest", "/config", f"/config/{SUBJECT}"):
        message = error(client.delete(path), 405, 405)
        assert "never deletes" in message
        assert "audit trail" in message
    assert "PUT" in error(client.delete("/config"), 405, 405)

    assert log.records == written
    assert client.get(f"/subjects/{SUBJECT}/versions").json() == [1]
    assert client.get(f"/config/{SUBJECT}").json() == {"compatibilityLevel": "FULL"}


def test_unknown_paths_and_methods_answer_confluent_bodies(client: TestClient) -> None:
    assert "Not Found" in error(client.get("/nowhere"), 404, 404)
    assert "Method Not Allowed" in error(client.put("/subjects"), 405, 405)


def test_a_write_the_log_refuses_is_500_50001(client: TestClient, log: MemoryLog) -> None:
    log.fail_writes = True

    assert "told to fail" in error(
        client.post(f"/subjects/{SUBJECT}/versions", json={"schema": V1}), 500, 50001)
    assert "told to fail" in error(client.put("/config", json={"compatibility": "NONE"}),
                                   500, 50001)
    assert client.get("/subjects").json() == []


# -- compatibility and config ----------------------------------------------------------------


def test_compatibility_against_a_version_and_against_what_the_level_checks(
    client: TestClient,
) -> None:
    register(client, SUBJECT, V1)
    base = f"/compatibility/subjects/{SUBJECT}/versions"

    verbose = client.post(f"{base}/latest", params={"verbose": "true"},
                          json={"schema": BREAKING})
    quiet = client.post(f"{base}/1", json={"schema": BREAKING})
    fine = client.post(base, json={"schema": V2}, params={"verbose": "true"})

    assert verbose.headers["content-type"] == MEDIA_TYPE
    assert verbose.json()["is_compatible"] is False
    assert any("omc.test.Greeting.language" in m for m in verbose.json()["messages"])
    assert quiet.json() == {"is_compatible": False}
    assert fine.json() == {"is_compatible": True, "messages": []}
    assert client.post("/compatibility/subjects/nobody/versions",
                       json={"schema": BREAKING}).json() == {"is_compatible": True}


def test_compatibility_errors(client: TestClient) -> None:
    register(client, SUBJECT, V1)
    base = f"/compatibility/subjects/{SUBJECT}/versions"

    error(client.post(f"{base}/2", json={"schema": V2}), 404, 40402)
    error(client.post("/compatibility/subjects/nobody/versions/1", json={"schema": V2}),
          404, 40401)
    error(client.post(f"{base}/zero", content=b"not even JSON"), 422, 42202)
    error(client.post(f"{base}/1", json={"schema": "{nope"}), 422, 42201)


def test_the_global_level_is_read_and_set(client: TestClient, log: MemoryLog) -> None:
    assert client.get("/config").json() == {"compatibilityLevel": "BACKWARD_TRANSITIVE"}

    answer = client.put("/config", json={"compatibility": "full"})

    assert answer.status_code == 200
    assert answer.headers["content-type"] == MEDIA_TYPE
    assert answer.json() == {"compatibility": "FULL"}
    assert client.get("/config").json() == {"compatibilityLevel": "FULL"}
    assert log.records == [({"keytype": "CONFIG", "subject": None},
                            {"compatibilityLevel": "FULL"})]


def test_a_subject_level_is_its_own_or_defaults_to_the_global_one(client: TestClient) -> None:
    register(client, SUBJECT, V1)
    client.put("/config", json={"compatibility": "FORWARD"})

    assert "defaultToGlobal" in error(client.get(f"/config/{SUBJECT}"), 404, 40408)
    assert client.get(f"/config/{SUBJECT}", params={"defaultToGlobal": "true"}).json() == {
        "compatibilityLevel": "FORWARD"}
    assert client.put(f"/config/{SUBJECT}", json={"compatibility": "NONE"}).json() == {
        "compatibility": "NONE"}
    assert client.get(f"/config/{SUBJECT}").json() == {"compatibilityLevel": "NONE"}
    assert client.get("/config").json() == {"compatibilityLevel": "FORWARD"}
    assert register(client, SUBJECT, BREAKING) == 2


def test_an_invalid_level_is_42203(client: TestClient) -> None:
    for body in ({"compatibility": "SIDEWAYS"}, {}, {"compatibilityLevel": "FULL"}):
        assert "Valid values are" in error(client.put("/config", json=body), 422, 42203)
    error(client.put("/config/s", json={"compatibility": 1}), 422, 42203)
    assert client.get("/config").json() == {"compatibilityLevel": "BACKWARD_TRANSITIVE"}
