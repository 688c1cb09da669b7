"""The gateway as a process (`python -m omc_gateway`, uvicorn) on the real stack: Kafka, the
schema registry, MariaDB (a fresh database with the read model and `api_keys`), Redis.

Commands are read back from omc.commands.v1 and decoded with the registry; every route's
key and scope checks are driven from the served OpenAPI document.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient

from omc_config import Settings
from omc_events.chain import verify
from omc_events.codec import Codec, split
from omc_gateway import apikeys
from omc_gateway.commands import COMMAND_NAMESPACE
from omc_kafka.consumer import consumer_config
from omc_proj_mysql import migrations as read_model
from omc_proj_proofs import migrations as proof_index
from omc_store.mysql import connect
from tests.unit.test_gateway_app import (
    ACTION,
    ACTION_HASH,
    ADDRESS,
    AGENT,
    MATRIX,
    TASK,
    agent_body,
    policy,
    submit_body,
)

pytestmark = pytest.mark.integration
TOPIC = "omc.commands.v1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def database(stack, settings: Settings) -> Iterator[str]:
    """A fresh database with the read model's tables and `api_keys`."""
    name = f"{settings.mysql.database}_test_gw_{uuid.uuid4().hex[:10]}"
    admin = connect(settings, database="")
    admin.cursor().execute(f"CREATE DATABASE `{name}`")
    fresh = Settings.from_env({**os.environ, "OMC_MYSQL_DATABASE": name})
    connection = connect(fresh)
    read_model.apply(connection)
    proof_index.apply(connection)
    connection.close()
    apikeys.migrate(fresh)
    yield name
    admin.cursor().execute(f"DROP DATABASE `{name}`")
    admin.close()


def make_keys(settings: Settings, database: str, tenants: tuple[str, ...]) -> dict[str, str]:
    """A key with every scope per tenant (by tenant name), and one per scope for the first
    tenant (by scope name)."""
    connection = connect(settings, database=database)
    tokens = {tenant: apikeys.create_key(connection, tenant, apikeys.SCOPES)[0]
              for tenant in tenants}
    for scope in apikeys.SCOPES:
        tokens[scope] = apikeys.create_key(connection, tenants[0], [scope])[0]
    connection.close()
    return tokens


@dataclass
class Served:
    url: str
    tokens: dict[str, str]
    log: Path
    env: dict[str, str]
    process: subprocess.Popen = field(repr=False)

    def auth(self, name: str = "acme") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def key_id(self, name: str = "acme") -> str:
        return self.tokens[name].split("_")[1]


def serve(database: str, tokens: dict[str, str], log: Path,
          **env: str) -> Iterator[Served]:
    """`python -m omc_gateway` on a free port, until the block ends (SIGTERM)."""
    port = free_port()
    environment = {**os.environ, "OMC_MYSQL_DATABASE": database,
                   "OMC_GATEWAY_PORT": str(port), "OMC_GATEWAY_RATE_LIMIT": "1000000",
                   **env}
    with log.open("wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "omc_gateway"], env=environment,
                                   stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"the gateway did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    try:
        yield Served(url, tokens, log, environment, process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def gateway(database: str, settings: Settings, tmp_path_factory) -> Iterator[Served]:
    tokens = make_keys(settings, database, ("acme", "globex"))
    log = tmp_path_factory.mktemp("gateway") / "gateway.log"
    yield from serve(database, tokens, log, OMC_GATEWAY_KEY_CACHE="0")


@pytest.fixture(scope="module")
def codec(stack, settings: Settings) -> Codec:
    return Codec(SchemaRegistryClient({"url": settings.schema_registry_url}))


class CommandLog:
    """Reads omc.commands.v1 from where it ended when the reader was made."""

    def __init__(self, settings: Settings) -> None:
        self.consumer = Consumer(consumer_config(settings, f"omc.test.{uuid.uuid4()}"))
        metadata = self.consumer.list_topics(TOPIC, timeout=10)
        partitions = sorted(metadata.topics[TOPIC].partitions)
        self.start = []
        for partition in partitions:
            _, high = self.consumer.get_watermark_offsets(TopicPartition(TOPIC, partition),
                                                         timeout=10)
            self.start.append(TopicPartition(TOPIC, partition, high))
        self.consumer.assign(self.start)

    def read(self, count: int, *, settle: float = 1.0, timeout: float = 30) -> list[Any]:
        """At least `count` messages (and whatever else comes within `settle` seconds)."""
        messages: list[Any] = []
        deadline = time.monotonic() + timeout
        quiet_until = None
        while time.monotonic() < deadline:
            batch = [m for m in self.consumer.consume(500, timeout=0.2) if m.error() is None]
            messages += batch
            if len(messages) >= count:
                quiet_until = quiet_until or time.monotonic() + settle
                if time.monotonic() >= quiet_until:
                    break
        self.consumer.close()
        return messages


def ours(messages: list[Any], command_id: str) -> list[Any]:
    return [m for m in messages if dict(m.headers() or [])["ce_id"] == command_id.encode()]


# -- commands reach the log -------------------------------------------------------------------


def test_a_command_lands_on_the_log_sealed_with_the_keys_tenant_and_actor(
        gateway: Served, settings: Settings, codec: Codec) -> None:
    log = CommandLog(settings)

    answer = httpx.post(f"{gateway.url}/v1/tasks", json=submit_body(), headers=gateway.auth())

    assert answer.status_code == 202, answer.text
    body = answer.json()
    (message,) = ours(log.read(1), body["command_id"])
    record = codec.decode(message.value())
    assert record.SCHEMA == "omc.command.SubmitTask"
    assert message.key() == record.task_id.encode() == body["aggregate_id"].encode()
    assert (record.meta.tenant, record.meta.actor) == ("acme", f"key:{gateway.key_id()}")
    assert record.meta.event_id == record.meta.correlation_id == body["command_id"]
    assert (record.agent_id, record.instruction, record.chain_id) == (AGENT, "Send 0.1 ETH to Bob",
                                                                      31337)
    headers = dict(message.headers())
    assert headers["omc_tenant"] == b"acme"
    assert headers["ce_source"] == b"omc/gateway"
    assert headers["ce_type"] == b"omc.command.SubmitTask"
    assert verify([("commands", split(message.value())[1])]) == (1, [])


@pytest.mark.parametrize(("method", "path", "body", "scope", "kind", "key"), [
    ("POST", f"/v1/tasks/{TASK}/cancel", {"reason": "stop"}, "commands:write", "CancelTask",
     TASK),
    ("POST", f"/v1/tasks/{TASK}/actions/{ACTION}/approve",
     {"action_hash": ACTION_HASH, "comment": "ok"}, "approver", "ApproveAction", TASK),
    ("POST", f"/v1/tasks/{TASK}/actions/{ACTION}/reject",
     {"action_hash": ACTION_HASH, "reason": "no"}, "approver", "RejectAction", TASK),
    ("POST", "/v1/agents", agent_body(agent_id=AGENT), "admin", "RegisterAgent", AGENT),
    ("PUT", f"/v1/agents/{AGENT}/policy", {"policy": policy(2)}, "admin", "SetPolicy", AGENT),
])
def test_every_command_lands_decodable_and_keyed_by_its_aggregate(
        gateway: Served, settings: Settings, codec: Codec, method: str, path: str,
        body: dict, scope: str, kind: str, key: str) -> None:
    log = CommandLog(settings)

    answer = httpx.request(method, f"{gateway.url}{path}", json=body, headers=gateway.auth(scope))

    assert answer.status_code == 202, answer.text
    (message,) = ours(log.read(1), answer.json()["command_id"])
    record = codec.decode(message.value())
    assert record.SCHEMA.rsplit(".", 1) == ["omc.command", kind]
    assert message.key() == key.encode()
    assert record.meta.actor == f"key:{gateway.key_id(scope)}"
    if kind in ("ApproveAction", "RejectAction"):
        assert record.approver == f"key:{gateway.key_id(scope)}"
        assert record.action_hash == ACTION_HASH
    if kind == "RegisterAgent":
        assert record.signer_address == ADDRESS


def test_an_idempotency_key_yields_one_command_and_the_same_answer(
        gateway: Served, settings: Settings) -> None:
    log = CommandLog(settings)
    headers = {**gateway.auth(), "Idempotency-Key": f"order-{uuid.uuid4()}"}

    answers = [httpx.post(f"{gateway.url}/v1/tasks", json=submit_body(), headers=headers)
               for _ in range(3)]
    conflict = httpx.post(f"{gateway.url}/v1/tasks", json=submit_body(instruction="else"),
                          headers=headers)

    assert [a.status_code for a in answers] == [202, 202, 202]
    assert answers[0].json() == answers[1].json() == answers[2].json()
    assert answers[2].headers["idempotency-replayed"] == "true"
    command_id = answers[0].json()["command_id"]
    key = headers["Idempotency-Key"]
    assert command_id == str(uuid.uuid5(COMMAND_NAMESPACE, f"{gateway.key_id()}:{key}"))
    assert len(ours(log.read(1, settle=2), command_id)) == 1
    assert conflict.status_code == 409
    assert conflict.json()["type"].endswith("/idempotency-conflict")


# -- precise refusals -----------------------------------------------------------------------


def _problem(answer: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["type"] == f"https://openmcp-chain.dev/problems/{slug}"
    return body


def test_refusals_are_precise_problems(gateway: Served, settings: Settings,
                                      database: str) -> None:
    tenant = f"refusals-{uuid.uuid4().hex[:8]}"  # its own: other tests write commands too
    connection = connect(settings, database=database)
    token, _ = apikeys.create_key(connection, tenant, ["commands:write", "queries:read"])
    connection.close()
    url, auth = f"{gateway.url}/v1/tasks", {"Authorization": f"Bearer {token}"}
    json_type = {**auth, "Content-Type": "application/json"}
    log = CommandLog(settings)

    malformed = httpx.post(url, content=b'{"agent_id": "', headers=json_type)
    wrong = httpx.post(url, json=submit_body(chain_id="1", max_value_wei=1.5), headers=auth)
    unknown = httpx.post(url, json=submit_body(priority="high"), headers=auth)
    media = httpx.post(url, content=json.dumps(submit_body()), headers=auth)
    large = httpx.post(url, content=b" " * 70_000 + json.dumps(submit_body()).encode(),
                       headers=json_type)
    route = httpx.get(f"{gateway.url}/v1/nothing", headers=auth)
    method = httpx.patch(url, json={}, headers=auth)

    assert "not JSON" in _problem(malformed, 400, "invalid-json")["detail"]
    assert {e["field"]: e["problem"] for e in _problem(wrong, 422, "invalid-body")["errors"]} \
        == {"chain_id": "must be an integer, not a string",
            "max_value_wei": "must be a string, not a number"}
    assert _problem(unknown, 422, "invalid-body")["errors"] == [
        {"field": "priority", "problem": "is not a field of this object"}]
    _problem(media, 415, "unsupported-media-type")
    assert "65536 bytes" in _problem(large, 413, "body-too-large")["detail"]
    _problem(route, 404, "not-found")
    assert _problem(method, 405, "method-not-allowed")
    produced = [m for m in log.read(0, settle=1)
                if dict(m.headers() or []).get("omc_tenant") == tenant.encode()]
    assert produced == [], "a refused command never reaches the log"


# -- keys and scopes on every route ------------------------------------------------------------


def _operations(gateway: Served) -> list[tuple[str, str, dict]]:
    document = httpx.get(f"{gateway.url}/openapi.json").json()
    return [(method.upper(), path, operation) for path, item in document["paths"].items()
            for method, operation in item.items()]


def test_every_route_refuses_a_missing_key_and_a_key_without_its_scope(gateway: Served) -> None:
    checked = 0
    for method, _, operation in _operations(gateway):
        path, body, _ = MATRIX[operation["operationId"]]
        url = f"{gateway.url}{path}"
        if not operation["security"]:
            assert httpx.request(method, url).status_code == 200, path
            continue
        scope = operation["description"].split("`")[1]
        assert _problem(httpx.request(method, url, json=body), 401, "unauthorized")
        for other in apikeys.SCOPES:
            if other != scope:
                answer = httpx.request(method, url, json=body, headers=gateway.auth(other))
                _problem(answer, 403, "forbidden")
        allowed = httpx.request(method, url, json=body, headers=gateway.auth(scope),
                                timeout=30)
        assert allowed.status_code not in (401, 403, 500), (method, path, allowed.text)
        checked += 1
    assert checked == 19


def test_a_revoked_key_is_refused(gateway: Served, settings: Settings, database: str) -> None:
    connection = connect(settings, database=database)
    token, key = apikeys.create_key(connection, "acme", ["queries:read"])
    before = httpx.get(f"{gateway.url}/v1/agents", headers={"Authorization": f"Bearer {token}"})
    apikeys.revoke_key(connection, key.key_id)
    connection.close()

    after = httpx.get(f"{gateway.url}/v1/agents", headers={"Authorization": f"Bearer {token}"})

    assert before.status_code == 200
    assert "revoked" in _problem(after, 401, "unauthorized")["detail"]


def test_the_cli_creates_lists_and_revokes_keys(gateway: Served, database: str) -> None:
    env = {**os.environ, "OMC_MYSQL_DATABASE": database}
    omc = str(Path(sys.executable).with_name("omc"))

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([omc, "keys", *args], capture_output=True, text=True, env=env,
                              timeout=60, check=False)

    created = run("create", "--tenant", "initech", "--scopes", "queries:read,admin")
    token = created.stdout.strip()
    key_id = token.split("_")[1]
    listed = run("list", "--tenant", "initech", "--json")
    used = httpx.get(f"{gateway.url}/metrics", headers={"Authorization": f"Bearer {token}"})
    revoked = run("revoke", key_id)
    refused = httpx.get(f"{gateway.url}/metrics", headers={"Authorization": f"Bearer {token}"})
    bad = run("create", "--tenant", "initech", "--scopes", "superuser")

    assert created.returncode == 0, created.stderr
    assert apikeys.parse_token(token) is not None
    assert "not shown again" in created.stderr
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["key_id"] == key_id
    assert row["scopes"] == ["admin", "queries:read"]
    assert token.split("_", 2)[2] not in listed.stdout
    assert used.status_code == 200
    assert "omc_gateway_requests_total" in used.text
    assert "omc_gateway_request_seconds_bucket" in used.text
    assert revoked.returncode == 0
    assert refused.status_code == 401
    assert bad.returncode == 1
    assert "unknown scope(s) superuser" in bad.stderr


# -- operations -----------------------------------------------------------------------------


def test_readiness_checks_kafka_mysql_and_redis(gateway: Served) -> None:
    answer = httpx.get(f"{gateway.url}/readyz")

    assert answer.status_code == 200, answer.text
    assert {name: check["status"] for name, check in answer.json()["checks"].items()} == {
        "kafka": "up", "mysql": "up", "redis": "up"}


def test_log_lines_are_json_with_request_and_correlation_ids_and_no_secret(
        gateway: Served) -> None:
    answer = httpx.post(f"{gateway.url}/v1/tasks", json=submit_body(),
                        headers={**gateway.auth(), "X-Request-ID": "trace-me-1"})
    time.sleep(0.3)

    lines = [json.loads(line) for line in gateway.log.read_text().splitlines()
             if line.startswith("{")]
    mine = [line for line in lines if line.get("request_id") == "trace-me-1"]
    assert mine, "the request's lines carry its id"
    (access,) = [line for line in mine if line["logger"] == "omc.gateway.access"]
    assert access["status"] == 202
    assert access["tenant"] == "acme"
    assert access["key_id"] == gateway.key_id()
    assert access["correlation_id"] == answer.json()["command_id"]
    text = gateway.log.read_text()
    for token in gateway.tokens.values():
        assert token.split("_", 2)[2] not in text
