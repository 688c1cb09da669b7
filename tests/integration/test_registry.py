"""The project's schema registry, as a real process on the real Kafka, through the real client.

Each registry started here listens on a free port, keeps its state in a fresh topic of its own
(OMC_REGISTRY_TOPIC, deleted afterwards) and preloads a small schemas/ folder written by the
test, so nothing touches the shared stack's registry or its `_omc_schemas` topic.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType
from confluent_kafka.schema_registry import (
    Schema,
    SchemaRegistryClient,
    SchemaRegistryError,
)
from confluent_kafka.schema_registry import topic_record_subject_name_strategy as by_topic_record
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from omc_config import Settings
from omc_config.settings import REPO_ROOT
from omc_events.schemas import SchemaSet

TOPIC = "omc.demo.events.v1"
GREETING, FAREWELL, MOOD = "omc.demo.Greeting", "omc.demo.Farewell", "omc.demo.Mood"
GREETING_SUBJECT, FAREWELL_SUBJECT = f"{TOPIC}-{GREETING}", f"{TOPIC}-{FAREWELL}"

MOOD_AVSC = {"type": "enum", "name": "Mood", "namespace": "omc.demo", "doc": "How it is said.",
             "symbols": ["WARM", "FORMAL"]}
GREETING_AVSC = {
    "type": "record", "name": "Greeting", "namespace": "omc.demo", "doc": "Someone said hello.",
    "fields": [
        {"name": "who", "type": "string", "doc": "Who said it."},
        {"name": "mood", "type": "omc.demo.Mood", "doc": "How."},
        {"name": "times", "type": "int", "default": 1, "doc": "How many times."},
    ],
}
FAREWELL_AVSC = {
    "type": "record", "name": "Farewell", "namespace": "omc.demo", "doc": "Someone left.",
    "fields": [
        {"name": "who", "type": "string", "doc": "Who left."},
        {"name": "mood", "type": ["null", "omc.demo.Mood"], "default": None, "doc": "How."},
    ],
}
TOPICS_YAML = f"""topics:
  - name: {TOPIC}
    doc: demo
    key: who
    partitions: 1
    config: {{cleanup.policy: delete}}
    records: [{GREETING}, {FAREWELL}]
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_schemas(root: Path, greeting: dict | None = None, *, catalogue: bool = True) -> Path:
    """A schemas/ folder: avro/omc/demo/*.avsc, and topics.yaml unless `catalogue` is False."""
    demo = root / "avro" / "omc" / "demo"
    demo.mkdir(parents=True, exist_ok=True)
    for name, schema in (("Mood", MOOD_AVSC), ("Greeting", greeting or GREETING_AVSC),
                         ("Farewell", FAREWELL_AVSC)):
        (demo / f"{name}.avsc").write_text(json.dumps(schema, indent=2))
    if catalogue:
        (root / "topics.yaml").write_text(TOPICS_YAML)
    return root


def standalone(schemas_dir: Path, record: str) -> str:
    return SchemaSet.load(schemas_dir / "avro").standalone_json(record)


def with_field(schema: dict, field: dict) -> dict:
    return {**schema, "fields": [*schema["fields"], field]}


@dataclass
class Registry:
    """One registry process started by a test."""

    url: str
    topic: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def client(self) -> SchemaRegistryClient:
        return SchemaRegistryClient({"url": self.url})

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


class Registries:
    """Starts registry processes; each test's topic is fresh unless one is given."""

    def __init__(self, settings: Settings, workdir: Path) -> None:
        self.settings = settings
        self.workdir = workdir
        self.started: list[Registry] = []
        self.topics: set[str] = set()

    def start(self, schemas_dir: Path | None, *, topic: str | None = None, wait: bool = True,
              extra: tuple[str, ...] = (), env: dict[str, str] | None = None) -> Registry:
        topic = topic or f"omc.test.registry.{uuid.uuid4().hex[:12]}"
        self.topics.add(topic)
        port = _free_port()
        log_path = self.workdir / f"registry-{len(self.started)}.log"
        command = [sys.executable, "-m", "omc_registry", "--port", str(port),
                   "--kafka-bootstrap", self.settings.kafka_bootstrap, "--kafka-wait", "60",
                   *(["--schemas-dir", str(schemas_dir)] if schemas_dir else ["--no-preload"]),
                   *extra]
        with log_path.open("wb") as log:
            child = subprocess.Popen(command, cwd=self.workdir, stdout=log,
                                     stderr=subprocess.STDOUT,
                                     env={**os.environ, "OMC_REGISTRY_TOPIC": topic, **(env or {})})
        registry = Registry(f"http://127.0.0.1:{port}", topic, child, log_path)
        self.started.append(registry)
        if wait:
            self.await_ready(registry)
        return registry

    @staticmethod
    def await_ready(registry: Registry, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if registry.process.poll() is not None:
                pytest.fail(f"the registry exited with {registry.process.returncode}:\n"
                            f"{registry.log()[-3000:]}")
            try:
                if httpx.get(f"{registry.url}/subjects", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        pytest.fail(f"the registry did not answer within {timeout}s:\n{registry.log()[-3000:]}")

    def close(self, admin: AdminClient) -> None:
        for registry in self.started:
            registry.stop()
        existing = set(admin.list_topics(timeout=10).topics)
        doomed = sorted(self.topics & existing)
        if doomed:
            for future in admin.delete_topics(doomed).values():
                future.result(timeout=30)


@pytest.fixture
def registries(stack, settings: Settings, kafka_admin: AdminClient,
               tmp_path: Path) -> Iterator[Registries]:
    made = Registries(settings, tmp_path)
    yield made
    made.close(kafka_admin)


@pytest.fixture(scope="module")
def shared(stack, settings: Settings, kafka_admin: AdminClient,
           tmp_path_factory) -> Iterator[tuple[Registry, Path]]:
    """One registry for the tests that only read, or write subjects of their own."""
    workdir = tmp_path_factory.mktemp("registry")
    made = Registries(settings, workdir)
    schemas_dir = write_schemas(workdir / "schemas")
    yield made.start(schemas_dir), schemas_dir
    made.close(kafka_admin)


@pytest.fixture
def subject() -> Callable[[], str]:
    return lambda: f"omc.test.{uuid.uuid4().hex[:8]}-omc.demo.Greeting"


def _error(call: Callable[[], object]) -> SchemaRegistryError:
    with pytest.raises(SchemaRegistryError) as raised:
        call()
    return raised.value


# -- preload, serialisation ------------------------------------------------------------------


def test_the_catalogue_records_are_preloaded_under_topic_record_subjects(shared) -> None:
    registry, schemas_dir = shared
    client = registry.client()

    assert client.get_subjects() == sorted([FAREWELL_SUBJECT, GREETING_SUBJECT])
    latest = client.get_latest_version(GREETING_SUBJECT)
    assert latest.version == 1
    assert json.loads(latest.schema.schema_str) == json.loads(standalone(schemas_dir, GREETING))
    assert client.get_schema(latest.schema_id).schema_str == latest.schema.schema_str


def test_values_round_trip_through_kafka_with_the_confluent_serializers(
    shared, settings: Settings, fresh_topic,
) -> None:
    registry, schemas_dir = shared
    client = registry.client()
    topic = fresh_topic()
    serialize = AvroSerializer(client, standalone(schemas_dir, GREETING), conf={
        "auto.register.schemas": False, "use.latest.version": True,
        "subject.name.strategy": by_topic_record,
    })
    deserialize = AvroDeserializer(client)
    greeting = {"who": "ada", "mood": "WARM", "times": 3}

    # The subject is named after the Kafka topic; here the preloaded catalogue's one.
    value = serialize(greeting, SerializationContext(TOPIC, MessageField.VALUE))
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "acks": "all"})
    producer.produce(topic, key=b"ada", value=value)
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": topic,
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    try:
        message = None
        deadline = time.monotonic() + 30
        while message is None and time.monotonic() < deadline:
            message = consumer.poll(1)
    finally:
        consumer.close()

    assert message is not None
    assert message.error() is None
    assert message.value()[0] == 0  # Confluent wire format: magic byte, then the schema id
    schema_id = int.from_bytes(message.value()[1:5], "big")
    assert schema_id == client.get_latest_version(GREETING_SUBJECT).schema_id
    assert deserialize(message.value(), SerializationContext(topic, MessageField.VALUE)) == greeting


def test_a_serializer_that_looks_its_schema_up_finds_the_preloaded_version(shared) -> None:
    registry, schemas_dir = shared
    client = registry.client()
    serialize = AvroSerializer(client, standalone(schemas_dir, FAREWELL), conf={
        "auto.register.schemas": False, "subject.name.strategy": by_topic_record,
    })

    value = serialize({"who": "bob", "mood": None}, SerializationContext(TOPIC, MessageField.VALUE))

    preloaded = client.get_latest_version(FAREWELL_SUBJECT)
    assert int.from_bytes(value[1:5], "big") == preloaded.schema_id
    registered = client.lookup_schema(FAREWELL_SUBJECT,
                                      Schema(standalone(schemas_dir, FAREWELL), "AVRO"))
    assert (registered.subject, registered.version) == (FAREWELL_SUBJECT, 1)


# -- registering -----------------------------------------------------------------------------


def test_registering_is_idempotent_and_ids_are_global(shared, subject) -> None:
    registry, schemas_dir = shared
    client = registry.client()
    text = standalone(schemas_dir, GREETING)
    preloaded = client.get_latest_version(GREETING_SUBJECT).schema_id
    first, second = subject(), subject()

    ids = [client.register_schema(first, Schema(text, "AVRO")) for _ in range(2)]
    pretty = json.dumps(json.loads(text), indent=4)  # formatting does not make another schema
    ids.append(SchemaRegistryClient({"url": registry.url}).register_schema(
        second, Schema(pretty, "AVRO")))
    with registry.http() as http:
        usages = http.get(f"/schemas/ids/{preloaded}/versions").json()
        again = http.post(f"/subjects/{first}/versions", json={"schema": text})

    assert ids == [preloaded] * 3
    assert client.get_versions(first) == [1]
    assert again.json() == {"id": preloaded}
    assert {"subject": first, "version": 1} in usages
    assert {"subject": second, "version": 1} in usages
    assert {"subject": GREETING_SUBJECT, "version": 1} in usages


def test_a_new_schema_gets_a_new_id_and_the_next_version(shared, subject) -> None:
    registry, schemas_dir = shared
    client = registry.client()
    name = subject()
    v1 = standalone(schemas_dir, GREETING)
    v2 = json.dumps(with_field(json.loads(v1), {"name": "note", "type": "string",
                                                "default": "", "doc": "A remark."}))

    id1 = client.register_schema(name, Schema(v1, "AVRO"))
    id2 = client.register_schema(name, Schema(v2, "AVRO"))

    assert id2 > id1
    assert client.get_versions(name) == [1, 2]
    assert client.get_version(name, 2).schema_id == id2
    assert client.get_latest_version(name).version == 2
    with registry.http() as http:
        assert http.get(f"/subjects/{name}/versions/1/schema").json() == json.loads(v1)
        assert http.get(f"/subjects/{name}/versions/-1").json()["version"] == 2
        assert http.get(f"/schemas/ids/{id2}/subjects").json() == [name]


def test_an_added_field_without_default_is_refused_naming_the_field(shared, subject) -> None:
    registry, schemas_dir = shared
    client = registry.client()
    name = subject()
    v1 = json.loads(standalone(schemas_dir, GREETING))
    client.register_schema(name, Schema(json.dumps(v1), "AVRO"))
    v2 = with_field(v1, {"name": "language", "type": "string", "doc": "Which language."})

    error = _error(lambda: client.register_schema(name, Schema(json.dumps(v2), "AVRO")))

    assert (error.http_status_code, error.error_code) == (409, 409)
    assert "omc.demo.Greeting.language" in error.error_message
    assert "no default" in error.error_message
    assert client.get_versions(name) == [1]


def test_a_changed_field_type_is_refused_naming_the_field(shared, subject) -> None:
    registry, schemas_dir = shared
    client = registry.client()
    name = subject()
    v1 = json.loads(standalone(schemas_dir, GREETING))
    client.register_schema(name, Schema(json.dumps(v1), "AVRO"))
    v2 = {**v1, "fields": [{**field, "type": "int"} if field["name"] == "who" else field
                           for field in v1["fields"]]}

    error = _error(lambda: client.register_schema(name, Schema(json.dumps(v2), "AVRO")))

    assert error.http_status_code == 409
    assert ("omc.demo.Greeting.who: reader type 'int' cannot read writer type 'string'"
            in error.error_message)


def test_invalid_and_non_avro_schemas_are_refused_with_42201(shared, subject) -> None:
    registry, _ = shared
    name = subject()
    with registry.http() as http:
        not_json = http.post(f"/subjects/{name}/versions", json={"schema": "{nope"})
        bad_type = http.post(f"/subjects/{name}/versions", json={"schema": json.dumps(
            {"type": "record", "name": "R", "fields": [{"name": "a", "type": "Nope"}]})})
        bad_default = http.post(f"/subjects/{name}/versions", json={"schema": json.dumps(
            {"type": "record", "name": "R", "fields": [{"name": "a", "type": "int",
                                                        "default": "x"}]})})
        protobuf = http.post(f"/subjects/{name}/versions",
                             json={"schema": "syntax = 'proto3';", "schemaType": "PROTOBUF"})
        no_schema = http.post(f"/subjects/{name}/versions", json={"schemaa": "int"})
        types = http.get("/schemas/types").json()

    for answer in (not_json, bad_type, bad_default, protobuf):
        assert answer.status_code == 422
        assert answer.json()["error_code"] == 42201
    assert "Nope" in bad_type.json()["message"]
    assert "PROTOBUF" in protobuf.json()["message"]
    assert no_schema.status_code == 400
    assert types == ["AVRO"]


# -- lookups and errors ----------------------------------------------------------------------


def test_unknown_subject_version_and_id_answer_confluent_errors(shared) -> None:
    registry, schemas_dir = shared
    client = registry.client()

    unknown = _error(lambda: client.get_versions("no-such-subject"))
    with registry.http() as http:
        no_version = http.get(f"/subjects/{GREETING_SUBJECT}/versions/99")
        bad_version = http.get(f"/subjects/{GREETING_SUBJECT}/versions/zero")
        no_id = http.get("/schemas/ids/987654")
        not_registered = http.post(f"/subjects/{GREETING_SUBJECT}",
                                   json={"schema": json.dumps("string")})
        unknown_lookup = http.post("/subjects/no-such-subject",
                                   json={"schema": standalone(schemas_dir, GREETING)})

    assert (unknown.http_status_code, unknown.error_code) == (404, 40401)
    assert unknown.error_message == "Subject 'no-such-subject' not found."
    assert (no_version.status_code, no_version.json()["error_code"]) == (404, 40402)
    assert (bad_version.status_code, bad_version.json()["error_code"]) == (422, 42202)
    assert (no_id.status_code, no_id.json()["error_code"]) == (404, 40403)
    assert (not_registered.status_code, not_registered.json()["error_code"]) == (404, 40403)
    assert unknown_lookup.json()["error_code"] == 40401
    assert no_id.headers["content-type"] == "application/vnd.schemaregistry.v1+json"


def test_lookup_finds_a_registered_schema(shared) -> None:
    registry, schemas_dir = shared
    with registry.http() as http:
        found = http.post(f"/subjects/{GREETING_SUBJECT}",
                          content=json.dumps({"schema": standalone(schemas_dir, GREETING)}),
                          headers={"Content-Type": "application/vnd.schemaregistry.v1+json"})

    body = found.json()
    assert found.status_code == 200
    assert (body["subject"], body["version"]) == (GREETING_SUBJECT, 1)
    assert json.loads(body["schema"]) == json.loads(standalone(schemas_dir, GREETING))


def test_deletes_are_refused_because_the_log_is_an_audit_trail(shared) -> None:
    registry, _ = shared
    with registry.http() as http:
        answers = [http.delete(f"/subjects/{GREETING_SUBJECT}"),
                   http.delete(f"/subjects/{GREETING_SUBJECT}/versions/1"),
                   http.delete(f"/config/{GREETING_SUBJECT}")]
        still_there = http.get(f"/subjects/{GREETING_SUBJECT}/versions")

    for answer in answers:
        assert answer.status_code == 405
        assert answer.json()["error_code"] == 405
        assert "never deletes" in answer.json()["message"]
        assert "audit trail" in answer.json()["message"]
    assert still_there.json() == [1]


# -- compatibility and config ----------------------------------------------------------------


def test_the_compatibility_endpoint_says_false_with_messages(shared) -> None:
    registry, schemas_dir = shared
    v1 = json.loads(standalone(schemas_dir, GREETING))
    breaking = with_field(v1, {"name": "language", "type": "string", "doc": "Which language."})
    fine = with_field(v1, {"name": "language", "type": "string", "default": "en", "doc": "x"})
    client = registry.client()

    with registry.http() as http:
        verbose = http.post(f"/compatibility/subjects/{GREETING_SUBJECT}/versions/latest",
                            params={"verbose": "true"}, json={"schema": json.dumps(breaking)})
        against_all = http.post(f"/compatibility/subjects/{GREETING_SUBJECT}/versions",
                                json={"schema": json.dumps(breaking)})
        quiet = http.post(f"/compatibility/subjects/{GREETING_SUBJECT}/versions/1",
                          json={"schema": json.dumps(fine)})

    assert verbose.json()["is_compatible"] is False
    assert any("omc.demo.Greeting.language" in m for m in verbose.json()["messages"])
    assert against_all.json() == {"is_compatible": False}
    assert quiet.json() == {"is_compatible": True}
    assert client.test_compatibility(GREETING_SUBJECT, Schema(json.dumps(fine), "AVRO")) is True
    assert client.test_compatibility(GREETING_SUBJECT,
                                     Schema(json.dumps(breaking), "AVRO")) is False


def test_config_is_read_and_set_globally_and_per_subject(registries, tmp_path) -> None:
    registry = registries.start(write_schemas(tmp_path / "schemas"))
    client = registry.client()
    v1 = json.loads(standalone(tmp_path / "schemas", GREETING))
    breaking = with_field(v1, {"name": "language", "type": "string", "doc": "Which language."})

    assert client.get_compatibility() == "BACKWARD_TRANSITIVE"
    with registry.http() as http:
        no_own_level = http.get(f"/config/{GREETING_SUBJECT}")
        defaulted = http.get(f"/config/{GREETING_SUBJECT}", params={"defaultToGlobal": "true"})
        invalid = http.put("/config", json={"compatibility": "SIDEWAYS"})
    assert (no_own_level.status_code, no_own_level.json()["error_code"]) == (404, 40408)
    assert defaulted.json() == {"compatibilityLevel": "BACKWARD_TRANSITIVE"}
    assert (invalid.status_code, invalid.json()["error_code"]) == (422, 42203)

    assert client.set_compatibility(level="FULL") == {"compatibility": "FULL"}
    assert client.set_compatibility(GREETING_SUBJECT, "NONE") == {"compatibility": "NONE"}
    assert client.get_compatibility() == "FULL"
    assert client.get_compatibility(GREETING_SUBJECT) == "NONE"
    with registry.http() as http:  # a subject without a level of its own has the global one
        assert http.get(f"/config/{FAREWELL_SUBJECT}", params={"defaultToGlobal": "true"}
                        ).json() == {"compatibilityLevel": "FULL"}
    # NONE lets the breaking change in.
    assert client.register_schema(GREETING_SUBJECT, Schema(json.dumps(breaking), "AVRO")) > 0
    assert client.get_versions(GREETING_SUBJECT) == [1, 2]


# -- persistence -----------------------------------------------------------------------------


def test_a_restart_keeps_every_id_version_and_level(registries, tmp_path,
                                                    kafka_admin: AdminClient) -> None:
    schemas_dir = write_schemas(tmp_path / "schemas")
    first = registries.start(schemas_dir)
    client = first.client()
    v1 = json.loads(standalone(schemas_dir, GREETING))
    v2 = with_field(v1, {"name": "note", "type": "string", "default": "", "doc": "A remark."})
    extra = "omc.test.extra-omc.demo.Greeting"
    client.register_schema(GREETING_SUBJECT, Schema(json.dumps(v2), "AVRO"))
    client.register_schema(extra, Schema(json.dumps(v1), "AVRO"))
    client.set_compatibility(extra, "FORWARD")

    def snapshot(registry: Registry) -> dict:
        with registry.http() as http:
            return {subject: [http.get(f"/subjects/{subject}/versions/{v}").json()
                              for v in http.get(f"/subjects/{subject}/versions").json()]
                    for subject in http.get("/subjects").json()}

    before = snapshot(first)
    first.stop()
    second = registries.start(schemas_dir, topic=first.topic)
    after = snapshot(second)
    v3 = with_field(v2, {"name": "lang", "type": "string", "default": "en", "doc": "Language."})
    new_id = second.client().register_schema(GREETING_SUBJECT, Schema(json.dumps(v3), "AVRO"))

    assert after == before
    assert [v["version"] for v in after[GREETING_SUBJECT]] == [1, 2]
    assert second.client().get_compatibility(extra) == "FORWARD"
    assert new_id == max(v["id"] for versions in before.values() for v in versions) + 1
    assert "preloaded 2 subjects" in second.log()
    assert "(0 new versions)" in second.log()


def test_the_registry_topic_is_compacted_with_one_partition(registries, kafka_admin) -> None:
    registry = registries.start(None)

    metadata = kafka_admin.list_topics(registry.topic, timeout=10).topics[registry.topic]
    (future,) = kafka_admin.describe_configs(
        [ConfigResource(ResourceType.TOPIC, registry.topic)]).values()
    config = {name: entry.value for name, entry in future.result(timeout=30).items()}

    assert len(metadata.partitions) == 1
    assert config["cleanup.policy"] == "compact"
    assert config["min.insync.replicas"] == "1"
    assert registry.client().get_subjects() == []  # --no-preload


def test_a_preload_the_registered_schemas_refuse_fails_the_start(registries, tmp_path) -> None:
    schemas_dir = write_schemas(tmp_path / "schemas")
    first = registries.start(schemas_dir)
    first.stop()
    breaking = with_field(GREETING_AVSC, {"name": "language", "type": "string", "doc": "x"})
    write_schemas(schemas_dir, breaking)

    second = registries.start(schemas_dir, topic=first.topic, wait=False)
    code = second.process.wait(timeout=90)

    assert code != 0
    log = second.log()
    assert f"preloading {GREETING_SUBJECT}" in log
    assert "omc.demo.Greeting.language" in log
    assert "OMC_REGISTRY_TOPIC" in log


def test_without_a_topics_yaml_nothing_is_preloaded(registries, tmp_path) -> None:
    registry = registries.start(write_schemas(tmp_path / "schemas", catalogue=False))

    assert registry.client().get_subjects() == []
    assert "nothing to preload" in registry.log()


def test_without_kafka_the_registry_gives_up_with_a_clear_message(registries) -> None:
    registry = registries.start(None, wait=False, extra=(
        "--kafka-bootstrap", f"127.0.0.1:{_free_port()}", "--kafka-wait", "2"))

    code = registry.process.wait(timeout=60)

    assert code != 0
    assert "did not answer within 2s" in registry.log()
    assert "omc stack up kafka" in registry.log()


# -- in the local stack ----------------------------------------------------------------------


def test_the_local_stack_runs_the_registry(stack) -> None:
    omc = REPO_ROOT / ".venv" / "bin" / "omc"
    command = [str(omc)] if omc.exists() else [sys.executable, "-m", "omc_cli.main"]

    up = subprocess.run([*command, "stack", "up", "registry"], capture_output=True, text=True,
                        timeout=300, check=False)
    status = subprocess.run([*command, "stack", "status", "--json", "registry"],
                            capture_output=True, text=True, timeout=60, check=False)

    assert up.returncode == 0, up.stderr
    registry = json.loads(status.stdout)["registry"]
    assert registry["running"] is True
    assert registry["ready"] is True
    assert registry["url"] == f"http://127.0.0.1:{registry['port']}"
    assert httpx.get(f"{registry['url']}/subjects", timeout=10).status_code == 200
    assert httpx.get(f"{registry['url']}/schemas/types", timeout=10).json() == ["AVRO"]


def test_an_existing_registry_topic_is_reused(registries) -> None:
    registry = registries.start(None)
    registry.client().set_compatibility(level="FORWARD")
    registry.stop()

    again = registries.start(None, topic=registry.topic)

    assert again.client().get_compatibility() == "FORWARD"
    assert "created topic" not in again.log()
