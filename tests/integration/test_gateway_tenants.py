"""One tenant's key never sees another's data: a coherent history of two tenants (agents,
policies, tasks with every outcome, transactions, receipts) is produced to fresh topics,
projected by the MySQL projector into a fresh database, and read through the gateway (the
real composition root, in-process) with each tenant's key, on every query route."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka.admin import NewTopic
from starlette.testclient import TestClient

from omc_config import Settings
from omc_gateway import apikeys
from omc_gateway.settings import GatewaySettings
from omc_gateway.wiring import build
from tests.integration.test_gateway import make_keys
from tests.integration.test_proj_mysql_support import History, Log, fresh_database

pytestmark = pytest.mark.integration
TENANTS = ("acme", "globex")


@pytest.fixture(scope="module")
def world(stack, settings: Settings, kafka_admin) -> Iterator[tuple[TestClient, dict]]:
    created: list[str] = []

    def fresh_topic(partitions: int = 1) -> str:


        name = f"omc.test.{uuid.uuid4().hex[:12]}"
        kafka_admin.create_topics([NewTopic(name, partitions, 1)])[name].result(timeout=30)
        created.append(name)
        return name

    log = Log.fresh(settings, fresh_topic)
    log.send(History("gw").world(24, tenants=TENANTS, agents_per_tenant=3).records)
    with fresh_database(settings) as database:
        log.project(log.projector(database), database)
        env = {**os.environ, "OMC_MYSQL_DATABASE": database}
        apikeys.migrate(Settings.from_env(env))
        tokens = make_keys(settings, database, TENANTS)
        with TestClient(build(GatewaySettings.from_env(env))) as client:
            yield client, {t: {"Authorization": f"Bearer {tokens[t]}"} for t in TENANTS}
    for future in kafka_admin.delete_topics(created).values():
        future.result(timeout=30)


def walk(client: TestClient, path: str, auth: dict, **query: Any) -> list[dict]:
    """Every item of a list, page by page (limit 3), following next_cursor."""
    items: list[dict] = []
    cursor = None
    while True:
        params = {**query, "limit": 3, **({"cursor": cursor} if cursor else {})}
        answer = client.get(path, params=params, headers=auth)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["as_of"]["projection"] == "mysql"
        assert body["as_of"]["offsets"]
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


@pytest.mark.parametrize(("path", "ident"), [("/v1/tasks", "task_id"),
                                              ("/v1/agents", "agent_id"),
                                              ("/v1/transactions", "request_id")])
def test_lists_hold_only_the_keys_tenant(world, path: str, ident: str) -> None:
    client, auth = world

    seen = {tenant: walk(client, path, auth[tenant]) for tenant in TENANTS}

    for tenant, items in seen.items():
        assert items, f"{tenant} has {path}"
        assert {item["tenant"] for item in items} == {tenant}
        assert len({item[ident] for item in items}) == len(items), "no item twice"
    assert not {i[ident] for i in seen["acme"]} & {i[ident] for i in seen["globex"]}


def test_a_cursor_does_not_cross_tenants(world) -> None:
    client, auth = world
    page = client.get("/v1/tasks", params={"limit": 1}, headers=auth["acme"]).json()

    theirs = client.get("/v1/tasks", params={"limit": 50, "cursor": page["next_cursor"]},
                        headers=auth["globex"])

    assert theirs.status_code == 200
    assert {item["tenant"] for item in theirs.json()["items"]} <= {"globex"}


def test_every_aggregate_is_found_by_its_tenant_and_404_to_the_other(world) -> None:
    client, auth = world
    checked = 0
    for owner, other in (("acme", "globex"), ("globex", "acme")):
        tasks = walk(client, "/v1/tasks", auth[owner])
        agents = walk(client, "/v1/agents", auth[owner])
        txs = walk(client, "/v1/transactions", auth[owner])
        paths = [f"/v1/tasks/{t['task_id']}" for t in tasks]
        paths += [f"/v1/tasks/{t['task_id']}/events" for t in tasks]
        paths += [f"/v1/agents/{a['agent_id']}" for a in agents]
        paths += [f"/v1/agents/{a['agent_id']}/policy" for a in agents]
        paths += [f"/v1/transactions/{h}" for tx in txs for h in tx["tx_hashes"]]
        receipts = [f"/v1/transactions/{tx['tx_hash']}/receipt" for tx in txs
                    if tx["status"] in ("included", "confirmed")]
        for path in paths + receipts:
            mine = client.get(path, headers=auth[owner])
            theirs = client.get(path, headers=auth[other])
            assert mine.status_code == 200, (path, mine.text)
            body = mine.json()
            item = body.get("item") or {}
            if "tenant" in item:
                assert item["tenant"] == owner
            assert theirs.status_code == 404, (path, theirs.text)
            assert theirs.headers["content-type"] == "application/problem+json"
            checked += 1
        assert receipts, "some transactions of each tenant have receipts"
    assert checked > 40


def test_a_task_trail_is_the_tasks_own_events_in_order(world) -> None:
    client, auth = world
    (task, *_) = walk(client, "/v1/tasks", auth["acme"], status="completed")

    events = client.get(f"/v1/tasks/{task['task_id']}/events", headers=auth["acme"]).json()
    after = client.get(f"/v1/tasks/{task['task_id']}/events",
                       params={"after": 2, "limit": 2}, headers=auth["acme"]).json()

    sequences = [e["sequence"] for e in events["items"]]
    assert sequences == list(range(1, len(sequences) + 1))
    assert events["items"][-1]["event_type"] == "omc.task.TaskCompleted"
    assert [e["sequence"] for e in after["items"]] == [3, 4]
    assert after["next_cursor"] == "4"
    rest = client.get(f"/v1/tasks/{task['task_id']}/events",
                      params={"cursor": after["next_cursor"]}, headers=auth["acme"]).json()
    assert [e["sequence"] for e in rest["items"]] == sequences[4:]
