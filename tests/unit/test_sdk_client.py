"""`omc_sdk.Client` against `FakeGateway` (docs/api.md in memory, over httpx.MockTransport):
routes, idempotency, retries and their waits, problem mapping, pagination."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from omc_sdk import (
    Client,
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    Page,
    Policy,
    RateLimited,
    ServerError,
    Task,
    TokenLimit,
    TransportError,
    Unauthorized,
    Unavailable,
    routes,
)
from omc_sdk.testing import FakeGateway

URL = "http://gateway.test"
HASH = "0x" + "ab" * 32


@pytest.fixture
def fake() -> FakeGateway:
    return FakeGateway()


@pytest.fixture
def key(fake: FakeGateway) -> str:
    return fake.add_key(tenant="tenant-a")


@pytest.fixture
def client(fake: FakeGateway, key: str):
    with Client(URL, key, transport=fake.transport(), sleep=fake.sleep,
                rng=lambda: 0.0) as client:
        yield client


def commands(fake: FakeGateway) -> list[httpx.Request]:
    return [r for r in fake.requests if r.method in ("POST", "PUT")]


# -- commands ---------------------------------------------------------------------------------


def test_submit_sends_the_documented_body_with_a_key_and_answers_accepted(client, fake, key):
    accepted = client.submit_task("agent-1", "pay 1 wei", chain_id=31337, max_value_wei=10**18,
                                  metadata={"ticket": "OPS-1"})
    (request,) = fake.requests
    assert request.headers["Authorization"] == f"Bearer {key}"
    assert uuid.UUID(request.headers["Idempotency-Key"]).version == 4
    assert request.headers["Content-Type"] == "application/json"
    assert fake.commands[0]["max_value_wei"] == "1000000000000000000"
    assert "deadline" not in fake.commands[0]  # absent options are not sent as null
    assert accepted.command_type == "omc.command.SubmitTask"
    assert accepted.location == f"/v1/tasks/{accepted.aggregate_id}"
    task = client.get_task(accepted.aggregate_id)
    assert (task.status, task.agent_id, task.instruction) == ("accepted", "agent-1", "pay 1 wei")


def test_every_command_answers_accepted_with_its_aggregate(client, fake):
    task = fake.add_task()
    agent_policy = {"version": 1, "allowed_chain_ids": [31337], "max_value_wei": "0"}
    registered = client.register_agent(name="a", signer_address="0x" + "ab" * 20,
                                       model="gpt", policy=agent_policy, description="d")
    results = [
        client.cancel_task(task["task_id"], "changed my mind"),
        client.approve_action(task["task_id"], "act-1", HASH, "fine"),
        client.reject_action(task["task_id"], "act-2", HASH, "too expensive"),
        client.set_policy(registered.aggregate_id, {**agent_policy, "version": 2}),
    ]
    assert [a.command_type for a in results] == [
        f"omc.command.{name}" for name in ("CancelTask", "ApproveAction", "RejectAction",
                                           "SetPolicy")]
    assert results[0].aggregate_id == task["task_id"]
    assert client.get_agent(registered.aggregate_id).policy_version == 2
    assert client.get_policy(registered.aggregate_id).version == 2
    assert {r.method for r in commands(fake)} == {"POST", "PUT"}
    assert all("Idempotency-Key" in r.headers for r in commands(fake))


def test_the_same_idempotency_key_and_body_answer_the_first_result(client, fake):
    first = client.submit_task("agent-1", "x", chain_id=1, idempotency_key="order-7")
    again = client.submit_task("agent-1", "x", chain_id=1, idempotency_key="order-7")
    assert again == first
    assert len(fake.tasks) == 1
    with pytest.raises(Conflict, match="idempotency-conflict"):
        client.submit_task("agent-1", "y", chain_id=1, idempotency_key="order-7")
    assert len(fake.requests) == 3  # a 409 is not retried


# -- retries ----------------------------------------------------------------------------------


def test_429_is_retried_after_retry_after_with_the_same_idempotency_key(client, fake):
    fake.fail_next(429, retry_after="7", times=2)
    accepted = client.submit_task("agent-1", "x", chain_id=1)
    assert fake.slept == [7.0, 7.0]
    keys = {r.headers["Idempotency-Key"] for r in fake.requests}
    assert len(fake.requests) == 3
    assert len(keys) == 1
    assert len(fake.tasks) == 1
    assert accepted.aggregate_id in fake.tasks


def test_503_is_retried_with_growing_waits_then_raised(client, fake):
    fake.fail_next(503, times=4)
    with pytest.raises(Unavailable) as caught:
        client.list_tasks()
    assert len(fake.requests) == 4  # the first try and 3 retries
    assert fake.slept == [0.25, 0.5, 1.0]
    assert caught.value.status == 503
    assert caught.value.slug == "unavailable"


def test_a_retry_after_beyond_the_limit_is_raised_at_once_with_it(client, fake):
    fake.fail_next(429, retry_after="3600")
    with pytest.raises(RateLimited) as caught:
        client.get_task("t")
    assert caught.value.retry_after == 3600.0
    assert "retry after 3600s" in str(caught.value)
    assert fake.slept == []
    assert len(fake.requests) == 1


@pytest.mark.parametrize("status", [400, 404, 409, 413, 422, 500])
def test_other_errors_are_not_retried(client, fake, status):
    fake.fail_next(status, times=2)
    with pytest.raises((InvalidRequest, NotFound, Conflict, ServerError)):
        client.get_task("t")
    assert len(fake.requests) == 1
    assert fake.slept == []


def test_no_connection_is_retried_for_queries_and_commands(client, fake):
    fake.add_task(task_id="t1")
    fake.drop_next(times=2)
    assert client.get_task("t1").task_id == "t1"
    fake.drop_next(times=1)
    client.cancel_task("t1", "r")
    assert fake.slept == [0.25, 0.5, 0.25]


def test_a_command_still_in_progress_is_waited_for(client, fake):
    fake.fail_next(409, retry_after="1", detail="still in progress")
    client.submit_task("agent-1", "x", chain_id=1)
    assert fake.slept == [1.0]
    assert len(fake.tasks) == 1


def test_a_lost_answer_is_retried_and_the_command_happens_once(client, fake):
    fake.drop_next(lost=True)  # the gateway did the work; the answer never came
    accepted = client.submit_task("agent-1", "x", chain_id=1)
    assert len(fake.requests) == 2
    assert len(fake.commands) == 1
    assert list(fake.tasks) == [accepted.aggregate_id]


def test_a_post_without_an_idempotency_key_is_not_resent(client, fake):
    fake.drop_next()
    call = routes.Call("POST", "/v1/tasks", routes.accepted, body={})
    with pytest.raises(TransportError, match="POST /v1/tasks"):
        client.send(call)
    assert len(fake.requests) == 1


def test_no_gateway_at_all_is_a_transport_error_that_says_where(fake, key):
    fake.drop_next(times=10)
    with Client(URL, key, transport=fake.transport(), sleep=fake.sleep, retries=2) as client, \
            pytest.raises(TransportError) as caught:
        client.healthz()
    assert str(caught.value) == (
        "GET /healthz to http://gateway.test got no answer (3 attempts): [Errno 111] "
        "Connection refused; is the gateway running at http://gateway.test (OMC_API_URL)?")
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


# -- problems from the gateway ----------------------------------------------------------------


def test_a_422_names_the_fields(client, fake):
    call = routes.Call("POST", "/v1/tasks", routes.accepted,
                       body={"agent_id": "a", "instruction": "i", "chain_id": 1, "colour": 2},
                       headers={"Idempotency-Key": "k"})
    with pytest.raises(InvalidRequest) as caught:
        client.send(call)
    assert caught.value.slug == "invalid-body"
    assert [(e.field, e.problem) for e in caught.value.errors] == [
        ("colour", "is not a known field")]
    with pytest.raises(InvalidRequest, match="max_value_wei: is not a non-negative integer"):
        client.submit_task("agent-1", "x", chain_id=1, max_value_wei="-1")


def test_auth_errors(fake, key):
    transport = fake.transport()
    with Client(URL, "omc_000000000000_nope", transport=transport) as stranger, \
            pytest.raises(Unauthorized):
        stranger.list_tasks()
    with Client(URL, None, transport=transport) as anonymous, \
            pytest.raises(Unauthorized, match="set OMC_API_KEY"):
        anonymous.list_tasks()
    reader = fake.add_key(scopes={"queries:read"})
    with Client(URL, reader, transport=transport) as client, \
            pytest.raises(Forbidden, match="commands:write"):
        client.cancel_task("t", "r")


def test_another_tenants_task_is_not_found(client, fake):
    theirs = fake.add_task(tenant="tenant-b")
    with pytest.raises(NotFound, match=theirs["task_id"]):
        client.get_task(theirs["task_id"])
    assert client.list_tasks().items == ()


# -- queries and pages ------------------------------------------------------------------------


def test_pages_carry_cursors_and_as_of_and_iteration_walks_them_all(client, fake):
    made = [fake.add_task(status="running" if i % 2 else "completed") for i in range(7)]
    page = client.list_tasks(limit=3)
    assert isinstance(page, Page)
    assert len(page) == 3
    assert page.next_cursor
    assert page.as_of.projection == "mysql"
    assert page.as_of.offsets == {"omc.task.events.v1/0": 41}
    assert [t.task_id for t in page] == [t["task_id"] for t in made[::-1][:3]]
    everything = list(client.iter_tasks(page_size=3))
    assert [t.task_id for t in everything] == [t["task_id"] for t in made[::-1]]
    assert all(isinstance(t, Task) for t in everything)
    assert len(fake.requests) == 1 + 3
    running = list(client.iter_tasks(status="running"))
    assert {t.status for t in running} == {"running"}
    assert len(running) == 3
    with pytest.raises(ValueError, match="1-200"):
        client.list_tasks(limit=500)


def test_events_agents_transactions_and_receipts(client, fake):
    task = fake.add_task()
    for kind in ("TaskStarted", "InferenceCompleted", "TaskCompleted"):
        fake.add_event(task["task_id"], kind)
    trail = client.task_events(task["task_id"], after=1)
    assert [e.sequence for e in trail] == [2, 3]
    assert trail.items[1].prev_hash == trail.items[0].hash
    assert [e.event_type for e in client.iter_task_events(task["task_id"], page_size=2)] == [
        "omc.task.TaskStarted", "omc.task.InferenceCompleted", "omc.task.TaskCompleted"]
    agent = fake.add_agent(name="trader")
    assert [a.name for a in client.iter_agents()] == ["trader"]
    assert client.list_agents(limit=1).items[0].agent_id == agent["agent_id"]
    tx = fake.add_transaction(task_id=task["task_id"], tx_hashes=["0xold"], tx_hash="0xnew")
    tx["tx_hashes"].append("0xnew")
    assert client.get_transaction("0xold").tx_hash == "0xnew"  # any of its hashes
    assert client.list_transactions(task_id=task["task_id"]).items[0].value_wei == "1"
    assert list(client.iter_transactions(status="failed")) == []
    receipt = client.get_receipt("0xnew")
    assert (receipt.status_ok, receipt.gas_used) == (True, 21000)


def test_a_cursor_given_twice_is_a_protocol_error(fake, key):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": [], "next_cursor": "same", "as_of": {}})

    from omc_sdk import ProtocolError

    with Client(URL, key, transport=httpx.MockTransport(handler)) as client, \
            pytest.raises(ProtocolError, match="cursor 'same' twice"):
        list(client.iter_agents())


def test_health_routes_send_no_key_and_not_ready_is_an_answer(client, fake):
    assert client.healthz().ok
    fake.ready = False
    fake.fail_next(503, path="/v1/tasks")  # unrelated; must not be consumed by readyz
    health = client.readyz()
    assert (health.ok, health.status_code, health.checks["mysql"]) == (False, 503, "down")
    assert all("Authorization" not in r.headers for r in fake.requests)
    assert len(fake.requests) == 2
    assert fake.slept == []


def test_a_trail_without_cursors_is_walked_by_sequence(key):
    trail = [{"sequence": n, "event_type": "Step"} for n in range(1, 6)]

    def handler(request: httpx.Request) -> httpx.Response:  # pages by ?after= alone
        after, limit = int(request.url.params.get("after", 0)), int(request.url.params["limit"])
        items = [e for e in trail if e["sequence"] > after][:limit]
        return httpx.Response(200, json={"items": items, "next_cursor": None, "as_of": {}})

    with Client(URL, key, transport=httpx.MockTransport(handler)) as client:
        assert [e.sequence for e in client.iter_task_events("t", page_size=2)] == [1, 2, 3, 4, 5]
        assert [e.sequence for e in client.iter_task_events("t", after=3)] == [4, 5]


def test_approve_and_reject_send_the_action_hash(client, fake):
    task = fake.add_task()
    client.approve_action(task["task_id"], "act-1", HASH)
    client.reject_action(task["task_id"], "act-1", HASH, "no")

    approve, reject = commands(fake)[-2:]
    assert json.loads(approve.content) == {"action_hash": HASH}  # absent options are not sent
    assert json.loads(reject.content) == {"action_hash": HASH, "reason": "no"}


def test_a_policy_carries_its_token_limits_both_ways():
    limit = {"token": "0x" + "cd" * 20, "max_amount": "5", "budget_amount": "50"}
    read = Policy.from_json({"version": 2, "token_limits": [limit]})

    assert read.token_limits == (TokenLimit(token=limit["token"], max_amount="5",
                                            budget_amount="50"),)
    assert Policy(version=2, token_limits=read.token_limits).to_json()["token_limits"] == [limit]
    assert Policy.from_json({"version": 1}).token_limits == ()
