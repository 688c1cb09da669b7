"""The proof routes: answers from the index with as_of, 404 for another tenant, 422 for a bad
stream, 503 when the gateway has no proof index."""

from __future__ import annotations

from starlette.testclient import TestClient

from omc_gateway.apikeys import SCOPES, CachedKeyStore
from omc_gateway.app import create_app
from omc_gateway.memory import (
    MemoryCommandBus,
    MemoryIdempotency,
    MemoryKeyTable,
    MemoryRateLimiter,
    MemoryReadModel,
)
from omc_gateway.settings import GatewaySettings
from tests.unit.test_gateway_app import EVENT, OTHER_EVENT, STREAM, build, fields, problem


def test_an_inclusion_proof_is_served_to_its_tenant_only() -> None:
    gw = next(build())
    answer = gw.client.get(f"/v1/proofs/events/{EVENT}", headers=gw.auth())
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["item"]["leaf_index"] == 0
    assert body["item"]["checkpoint"]["tree_size"] == 2
    assert body["as_of"]["projection"] == "proj_proofs"
    problem(gw.client.get(f"/v1/proofs/events/{OTHER_EVENT}", headers=gw.auth()), 404,
            "not-found")
    problem(gw.client.get(f"/v1/proofs/events/{EVENT}", headers=gw.auth("queries:read")),
            403, "forbidden")


def test_consistency_needs_a_stream_the_tenant_is_in_and_valid_parameters() -> None:
    gw = next(build())
    ok = gw.client.get(f"/v1/proofs/consistency?stream={STREAM}&from=1&to=2",
                       headers=gw.auth())
    assert ok.json()["item"]["proof"] == ["0x" + "33" * 32]
    problem(gw.client.get(f"/v1/proofs/consistency?stream={STREAM}&from=1&to=2",
                          headers=gw.auth("globex")), 404, "not-found")
    bad = gw.client.get("/v1/proofs/consistency?stream=nocolon&from=0", headers=gw.auth())
    assert set(fields(problem(bad, 422, "invalid-parameters"))) == {"stream", "from", "to"}


def test_without_an_index_the_routes_answer_503() -> None:
    settings = GatewaySettings.from_env({})
    table = MemoryKeyTable()
    app = create_app(settings, commands=MemoryCommandBus(), read_model=MemoryReadModel(),
                     keys=CachedKeyStore(table.lookup, ttl=0),
                     limiter=MemoryRateLimiter(limit=100, window=1),
                     idempotency=MemoryIdempotency())
    token = table.create("acme", SCOPES)
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get(f"/v1/proofs/events/{EVENT}",
                            headers={"Authorization": f"Bearer {token}"})
    problem(answer, 503, "unavailable")
