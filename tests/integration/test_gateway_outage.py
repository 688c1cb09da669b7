"""The gateway when a dependency is missing, and its limits, on real services: a private
MariaDB that the test stops and starts again, a Kafka address nothing listens on, the real
Redis for rate limits. The app runs in-process (wiring.build, the composition root) under
Starlette's TestClient."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from omc_config import Settings
from omc_gateway import apikeys
from omc_gateway.settings import GatewaySettings
from omc_gateway.wiring import build
from omc_proj_mysql import migrations as read_model
from omc_stack import Stack
from omc_stack.components import MariaDB
from omc_store.mysql import connect
from tests.integration import test_gateway as served
from tests.integration.test_gateway import free_port, make_keys
from tests.unit.test_gateway_app import submit_body

pytestmark = pytest.mark.integration
database = served.database  # the fresh database fixture (read model and api_keys)


def _problem(answer, status: int, slug: str) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["type"] == f"https://openmcp-chain.dev/problems/{slug}"
    return body


@pytest.fixture
def private_mariadb(tmp_path: Path, stack) -> Iterator[Stack]:
    env = {**os.environ, "OMC_STACK_DIR": str(tmp_path / "stack"),
           "OMC_MYSQL_PORT": str(free_port()), "OMC_STACK_START_TIMEOUT": "60"}
    private = Stack(Settings.from_env(env), report=lambda line: None, components=[MariaDB])
    private.env = env
    private.up()
    try:
        yield private
    finally:
        private.down()


def test_mysql_down_queries_are_503_while_commands_are_still_accepted(
        private_mariadb: Stack) -> None:
    env = {**private_mariadb.env, "OMC_GATEWAY_KEY_CACHE": "0"}
    settings = GatewaySettings.from_env(env)
    connection = connect(settings.base)
    read_model.apply(connection)
    connection.close()
    apikeys.migrate(settings.base)
    tokens = make_keys(settings.base, settings.base.mysql.database, ("acme",))
    auth = {"Authorization": f"Bearer {tokens['acme']}"}

    with TestClient(build(settings), raise_server_exceptions=False) as client:
        before = client.get("/v1/tasks", headers=auth)
        task_id = client.post("/v1/tasks", json=submit_body(), headers=auth).json()[
            "aggregate_id"]

        private_mariadb.down()
        queries = [client.get(path, headers=auth) for path in (
            "/v1/tasks", f"/v1/tasks/{task_id}", f"/v1/tasks/{task_id}/events", "/v1/agents",
            f"/v1/transactions/0x{'ab' * 32}")]
        command = client.post("/v1/tasks", json=submit_body(), headers=auth)
        keyed = client.post("/v1/tasks", json=submit_body(),
                            headers={**auth, "Idempotency-Key": str(uuid.uuid4())})
        ready = client.get("/readyz")
        stream = client.get(f"/v1/tasks/{uuid.uuid4()}/stream", headers=auth)

        private_mariadb.up()
        after = client.get("/v1/tasks", headers=auth)

    assert before.status_code == 200, before.text
    for answer in queries:
        body = _problem(answer, 503, "unavailable")
        assert body["dependency"] == "mysql"
        assert answer.headers["retry-after"].isdigit()
    assert command.status_code == 202, command.text
    assert keyed.status_code == 202, keyed.text
    checks = _problem(ready, 503, "unavailable")["checks"]
    assert {name: check["status"] for name, check in checks.items()} == {
        "kafka": "up", "mysql": "down", "redis": "up"}
    _problem(stream, 404, "not-found")  # the live view is Redis's: no MySQL needed
    assert after.status_code == 200, after.text


def test_kafka_down_is_503_and_the_idempotency_key_stays_free(stack, database: str) -> None:
    env = {**os.environ, "OMC_MYSQL_DATABASE": database,
           "OMC_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}", "OMC_GATEWAY_KAFKA_TIMEOUT": "1"}
    settings = GatewaySettings.from_env(env)
    tokens = make_keys(settings.base, database, ("acme",))
    headers = {"Authorization": f"Bearer {tokens['acme']}", "Idempotency-Key": "k-1"}

    with TestClient(build(settings), raise_server_exceptions=False) as client:
        started = time.monotonic()
        first = client.post("/v1/tasks", json=submit_body(), headers=headers)
        elapsed = time.monotonic() - started
        second = client.post("/v1/tasks", json=submit_body(), headers=headers)
        ready = client.get("/readyz")

    assert _problem(first, 503, "unavailable")["dependency"] == "kafka"
    assert elapsed < 5
    assert _problem(second, 503, "unavailable")["dependency"] == "kafka"  # not 409
    assert _problem(ready, 503, "unavailable")["checks"]["kafka"]["status"] == "down"


def test_the_rate_limit_is_per_key_in_redis_with_retry_after(stack, database: str) -> None:
    env = {**os.environ, "OMC_MYSQL_DATABASE": database, "OMC_GATEWAY_RATE_LIMIT": "3",
           "OMC_GATEWAY_RATE_WINDOW": "30"}
    settings = GatewaySettings.from_env(env)
    tokens = make_keys(settings.base, database, ("acme", "globex"))

    with TestClient(build(settings), raise_server_exceptions=False) as client:
        answers = [client.get("/v1/agents", headers={"Authorization": f"Bearer {tokens['acme']}"})
                   for _ in range(4)]
        other = client.get("/v1/agents", headers={"Authorization": f"Bearer {tokens['globex']}"})

    assert [a.status_code for a in answers[:3]] == [200, 200, 200]
    body = _problem(answers[3], 429, "rate-limited")
    assert 1 <= int(answers[3].headers["retry-after"]) <= 30
    assert "more than 3 requests in 30 s" in body["detail"]
    assert other.status_code == 200
