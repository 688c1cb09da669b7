"""The gateway's HTTP API in-process: Starlette's TestClient over the app built with the
in-memory ports (omc_gateway.memory). The same app over real Kafka, MySQL and Redis is
tests/integration/test_gateway.py."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.testclient import TestClient

from omc_events.chain import seal_command, verify
from omc_events.envelope import ZERO_HASH, derived_id
from omc_events.records import RegisterAgent, SetPolicy, SubmitTask, TokenLimit
from omc_gateway.apikeys import SCOPES, CachedKeyStore
from omc_gateway.app import create_app
from omc_gateway.commands import COMMAND_NAMESPACE, CommandFactory
from omc_gateway.errors import PROBLEM_BASE, PROBLEM_JSON
from omc_gateway.memory import (
    MemoryCommandBus,
    MemoryIdempotency,
    MemoryKeyTable,
    MemoryRateLimiter,
    MemoryReadModel,
)
from omc_gateway.routes_proofs import MemoryProofIndex
from omc_gateway.settings import GatewaySettings

ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
AGENT = "6f1c2b3a-1d2e-4f50-8a9b-0c1d2e3f4a5b"
TASK = "0a1b2c3d-4e5f-4061-8293-a4b5c6d7e8f9"
ACTION = "11111111-2222-4333-8444-555555555555"
ACTION_HASH = "0x" + "ab" * 32
OTHER_TASK = "99999999-8888-4777-8666-555555555555"
TX = "0x" + "ab" * 32
OTHER_TX = "0x" + "cd" * 32
EVENT = "12345678-1234-4234-8234-123456789abc"
OTHER_EVENT = "87654321-4321-4321-8321-cba987654321"
STREAM = "omc.task.events.v1:0"
FACTORY = CommandFactory()


def policy(version: int = 1, **changes: Any) -> dict[str, Any]:
    return {"version": version, "allowed_chain_ids": [31337], "allowed_contracts": [ADDRESS],
            "allowed_selectors": ["0xa9059cbb"], "allowed_recipients": [ADDRESS],
            "deny_addresses": [], "max_value_wei": "1000000000000000000",
            "budget_wei": "5000000000000000000", "budget_window_seconds": 86400,
            "max_fee_per_gas_wei": "100000000000", "approval_threshold_wei": "0",
            "max_inferences_per_task": 8, **changes}


def submit_body(**changes: Any) -> dict[str, Any]:
    return {"agent_id": AGENT, "instruction": "Send 0.1 ETH to Bob", "chain_id": 31337,
            **changes}


def agent_body(**changes: Any) -> dict[str, Any]:
    return {"name": "treasurer", "description": "moves funds within policy",
            "signer_address": ADDRESS, "model": "local-planner", "policy": policy(), **changes}


def event(sequence: int, event_type: str) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "sequence": sequence, "event_type": event_type,
            "occurred_at": "2026-11-25T12:00:00Z", "actor": "svc:agent-runtime",
            "correlation_id": "c", "causation_id": None, "prev_hash": "0" * 64,
            "hash": f"{sequence:064x}", "topic": "omc.task.events.v1", "partition": 0,
            "offset": sequence, "payload": {}}


def fill_proofs(proofs: MemoryProofIndex) -> None:
    """acme has EVENT in STREAM; globex has OTHER_EVENT in another stream."""
    checkpoint = {"stream_id": STREAM, "tree_size": 2, "root": "0x" + "11" * 32}
    proofs.inclusions[("acme", EVENT)] = {
        "event_id": EVENT, "stream_id": STREAM, "leaf_index": 0, "tree_size": 2,
        "audit_path": ["0x" + "22" * 32], "checkpoint": checkpoint}
    proofs.inclusions[("globex", OTHER_EVENT)] = {
        "event_id": OTHER_EVENT, "stream_id": "omc.task.events.v1:1", "leaf_index": 0,
        "tree_size": 1, "audit_path": [], "checkpoint": None}
    proofs.tenants[STREAM] = {"acme"}
    proofs.consistencies[("*", STREAM, 1, 2)] = {
        "stream_id": STREAM, "from": {**checkpoint, "tree_size": 1}, "to": checkpoint,
        "proof": ["0x" + "33" * 32]}


def fill(read: MemoryReadModel) -> None:
    """acme owns TASK, AGENT and TX; globex owns OTHER_TASK and OTHER_TX."""
    read.add_task("acme", {"task_id": TASK, "agent_id": AGENT, "status": "completed"})
    for sequence, kind in enumerate(("TaskSubmitted", "InferenceRequested", "TaskCompleted"), 1):
        read.add_event("acme", TASK, event(sequence, f"omc.task.{kind}"))
    read.add_agent("acme", {"agent_id": AGENT, "name": "treasurer"}, policy())
    read.add_transaction("acme", {"request_id": "r1", "task_id": TASK, "tx_hash": TX,
                                  "status": "confirmed"}, {"tx_hash": TX, "status_ok": True})
    read.add_task("globex", {"task_id": OTHER_TASK, "agent_id": AGENT, "status": "running"})
    read.add_event("globex", OTHER_TASK, event(1, "omc.task.TaskSubmitted"))
    read.add_transaction("globex", {"request_id": "r2", "tx_hash": OTHER_TX,
                                    "status": "signed"}, {"tx_hash": OTHER_TX})


@dataclass
class Gateway:
    client: TestClient
    bus: MemoryCommandBus
    read: MemoryReadModel
    table: MemoryKeyTable
    limiter: MemoryRateLimiter
    idempotency: MemoryIdempotency
    app: Any
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, name: str = "acme") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def key_id(self, name: str = "acme") -> str:
        return self.tokens[name].split("_")[1]


def build(env: dict[str, str] | None = None) -> Iterator[Gateway]:
    settings = GatewaySettings.from_env({"OMC_GATEWAY_SSE_KEEPALIVE": "0.2", **(env or {})})
    bus, read, table = MemoryCommandBus(), MemoryReadModel(), MemoryKeyTable()
    limiter = MemoryRateLimiter(limit=settings.rate_limit, window=settings.rate_window)
    idempotency = MemoryIdempotency()
    fill(read)
    proofs = MemoryProofIndex()
    fill_proofs(proofs)
    app = create_app(settings, commands=bus, read_model=read,
                     keys=CachedKeyStore(table.lookup, ttl=0), limiter=limiter,
                     idempotency=idempotency, factory=FACTORY, proofs=proofs)
    with TestClient(app, raise_server_exceptions=False) as client:
        gateway = Gateway(client, bus, read, table, limiter, idempotency, app)
        gateway.tokens["acme"] = table.create("acme", SCOPES)
        gateway.tokens["globex"] = table.create("globex", SCOPES)
        for scope in SCOPES:
            gateway.tokens[scope] = table.create("acme", [scope])
        yield gateway


@pytest.fixture
def gw() -> Iterator[Gateway]:
    yield from build()


def problem(answer: Any, status: int, slug: str) -> dict[str, Any]:
    """The problem body, after checking the status, media type and RFC 9457 members."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM_JSON
    body = answer.json()
    assert body["type"] == PROBLEM_BASE + slug
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    assert body["instance"] == answer.request.url.path
    assert body["request_id"] == answer.headers["x-request-id"]
    return body


def fields(body: dict[str, Any]) -> dict[str, str]:
    return {e["field"]: e["problem"] for e in body["errors"]}


# -- commands ---------------------------------------------------------------------------------


def test_submit_task_is_sealed_and_carries_the_keys_tenant_and_actor(gw: Gateway) -> None:
    answer = gw.client.post("/v1/tasks", json=submit_body(max_value_wei="10",
                                                          metadata={"b": 1, "a": [True]}),
                            headers={**gw.auth(), "traceparent":
                                     "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})

    assert answer.status_code == 202, answer.text
    body = answer.json()
    (record,) = gw.bus.published
    assert isinstance(record, SubmitTask)
    assert body == {"command_id": record.meta.event_id, "command_type": "omc.command.SubmitTask",
                    "aggregate_id": record.task_id, "status": "accepted",
                    "links": {"self": f"/v1/tasks/{record.task_id}"}}
    assert answer.headers["location"] == f"/v1/tasks/{record.task_id}"
    assert record.task_id == derived_id(record.meta.event_id, 0)
    meta = record.meta
    assert (meta.tenant, meta.actor) == ("acme", f"key:{gw.key_id()}")
    assert meta.correlation_id == meta.event_id
    assert (meta.aggregate_type, meta.aggregate_id, meta.sequence) == ("task", record.task_id, 0)
    assert meta.prev_hash == ZERO_HASH
    assert meta.traceparent == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert seal_command(FACTORY.schemas, record) == record  # the hash is the record's own
    assert verify([("body", FACTORY.schemas.encode(record))]) == (1, [])
    assert (record.agent_id, record.chain_id, record.max_value_wei) == (AGENT, 31337, "10")
    assert record.metadata_json == '{"a":[true],"b":1}'


@pytest.mark.parametrize(("path", "body", "scope", "command"), [
    (f"/v1/tasks/{TASK}/cancel", {"reason": "changed my mind"}, "commands:write",
     "CancelTask"),
    (f"/v1/tasks/{TASK}/actions/{ACTION}/approve", {"action_hash": ACTION_HASH}, "approver",
     "ApproveAction"),
    (f"/v1/tasks/{TASK}/actions/{ACTION}/approve", {"action_hash": ACTION_HASH,
                                                     "comment": "ok"}, "approver",
     "ApproveAction"),
    (f"/v1/tasks/{TASK}/actions/{ACTION}/reject", {"action_hash": ACTION_HASH,
                                                    "reason": "too much"}, "approver",
     "RejectAction"),
])
def test_task_commands_target_the_task(gw: Gateway, path: str, body: dict, scope: str,
                                       command: str) -> None:
    answer = gw.client.post(path, json=body, headers=gw.auth(scope))

    assert answer.status_code == 202, answer.text
    (record,) = gw.bus.published
    assert f"omc.command.{command}" == record.SCHEMA
    assert record.task_id == TASK
    assert answer.json()["aggregate_id"] == TASK
    assert answer.headers["location"] == f"/v1/tasks/{TASK}"
    if hasattr(record, "approver"):
        assert record.approver == f"key:{gw.key_id(scope)}"
        assert record.action_id == ACTION
        assert record.action_hash == ACTION_HASH


def test_approve_without_a_body_is_an_empty_object_so_the_action_hash_is_missing(
        gw: Gateway) -> None:
    answer = gw.client.post(f"/v1/tasks/{TASK}/actions/{ACTION}/approve",
                            headers=gw.auth("approver"))

    assert fields(problem(answer, 422, "invalid-body")) == {"action_hash": "is required"}
    assert gw.bus.published == []


def test_an_approval_without_a_comment_has_none(gw: Gateway) -> None:
    answer = gw.client.post(f"/v1/tasks/{TASK}/actions/{ACTION}/approve",
                            json={"action_hash": ACTION_HASH.upper().replace("0X", "0x")},
                            headers=gw.auth("approver"))

    assert answer.status_code == 202, answer.text
    assert gw.bus.published[0].comment is None
    assert gw.bus.published[0].action_hash == ACTION_HASH  # normalised to lowercase


@pytest.mark.parametrize("verb", ["approve", "reject"])
@pytest.mark.parametrize(("given", "words"), [
    (None, "is required"),
    ("0x1234", "is not a hash"),
    ("ab" * 32, "is not a hash"),
    (12, "must be a string"),
])
def test_approve_and_reject_need_a_well_formed_action_hash(gw: Gateway, verb: str, given: Any,
                                                           words: str) -> None:
    body: dict[str, Any] = {"reason": "no"} if verb == "reject" else {}
    if given is not None:
        body["action_hash"] = given

    answer = gw.client.post(f"/v1/tasks/{TASK}/actions/{ACTION}/{verb}", json=body,
                            headers=gw.auth("approver"))

    assert words in fields(problem(answer, 422, "invalid-body"))["action_hash"]
    assert gw.bus.published == []


def test_a_policy_takes_token_limits_checksummed_and_defaults_to_none(gw: Gateway) -> None:
    limit = {"token": ADDRESS.lower(), "max_amount": "5", "budget_amount": "50"}
    with_limits = gw.client.put(f"/v1/agents/{AGENT}/policy",
                                json={"policy": policy(2, token_limits=[limit])},
                                headers=gw.auth("admin"))
    without = gw.client.put(f"/v1/agents/{AGENT}/policy", json={"policy": policy(3)},
                            headers=gw.auth("admin"))

    assert with_limits.status_code == without.status_code == 202, with_limits.text
    first, second = gw.bus.published
    assert first.policy.token_limits == (
        TokenLimit(token=ADDRESS, max_amount="5", budget_amount="50"),)
    assert second.policy.token_limits == ()


@pytest.mark.parametrize(("limits", "field", "words"), [
    ([{"token": ADDRESS, "max_amount": "5"}], "policy.token_limits[0].budget_amount",
     "is required"),
    ([{"token": ADDRESS, "max_amount": "-1", "budget_amount": "1"}],
     "policy.token_limits[0].max_amount", "non-negative integer"),
    ([{"token": "0x12", "max_amount": "1", "budget_amount": "1"}],
     "policy.token_limits[0].token", "is not an address"),
    ([{"token": ADDRESS, "max_amount": "1", "budget_amount": "1"},
      {"token": ADDRESS.lower(), "max_amount": "2", "budget_amount": "2"}],
     "policy.token_limits[1].token", "repeats item 0"),
    ({"token": ADDRESS}, "policy.token_limits", "must be an array"),
])
def test_bad_token_limits_are_422_naming_the_field(gw: Gateway, limits: Any, field: str,
                                                   words: str) -> None:
    answer = gw.client.put(f"/v1/agents/{AGENT}/policy",
                           json={"policy": policy(2, token_limits=limits)},
                           headers=gw.auth("admin"))

    assert words in fields(problem(answer, 422, "invalid-body"))[field]


def test_register_agent_checksums_addresses_and_derives_the_agent_id(gw: Gateway) -> None:
    body = agent_body(signer_address=ADDRESS.lower(), parameters={"temperature": 0},
                      policy=policy(deny_addresses=[ADDRESS.upper().replace("0X", "0x")]))

    answer = gw.client.post("/v1/agents", json=body, headers=gw.auth("admin"))

    assert answer.status_code == 202, answer.text
    (record,) = gw.bus.published
    assert isinstance(record, RegisterAgent)
    assert record.agent_id == derived_id(record.meta.event_id, 0)
    assert answer.headers["location"] == f"/v1/agents/{record.agent_id}"
    assert record.signer_address == ADDRESS
    assert record.policy.deny_addresses == (ADDRESS,)
    assert record.parameters_json == '{"temperature":0}'
    assert record.meta.aggregate_type == "agent"


def test_register_agent_keeps_a_given_agent_id(gw: Gateway) -> None:
    answer = gw.client.post("/v1/agents", json=agent_body(agent_id=AGENT.upper()),
                            headers=gw.auth("admin"))

    assert answer.status_code == 202, answer.text
    assert gw.bus.published[0].agent_id == AGENT


def test_set_policy(gw: Gateway) -> None:
    answer = gw.client.put(f"/v1/agents/{AGENT}/policy", json={"policy": policy(2)},
                           headers=gw.auth("admin"))

    assert answer.status_code == 202, answer.text
    (record,) = gw.bus.published
    assert isinstance(record, SetPolicy)
    assert (record.agent_id, record.policy.version) == (AGENT, 2)


@pytest.mark.parametrize(("method", "path", "body", "field", "words"), [
    ("POST", "/v1/agents", agent_body(policy=policy(2)), "policy.version", "must be 1"),
    ("PUT", f"/v1/agents/{AGENT}/policy", {"policy": policy(1)}, "policy.version",
     "at least 2"),
])
def test_policy_versions(gw: Gateway, method: str, path: str, body: dict, field: str,
                         words: str) -> None:
    answer = gw.client.request(method, path, json=body, headers=gw.auth("admin"))

    assert words in fields(problem(answer, 422, "invalid-body"))[field]
    assert gw.bus.published == []


# -- bodies -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "expected"), [
    ({"agent_id": AGENT, "chain_id": 1}, {"instruction": "is required"}),
    (submit_body(instruction=None), {"instruction": "is required and must not be null"}),
    (submit_body(chain_id="31337"), {"chain_id": "must be an integer, not a string"}),
    (submit_body(chain_id=True), {"chain_id": "must be an integer, not a boolean"}),
    (submit_body(chain_id=1.5), {"chain_id": "must be an integer, not a number"}),
    (submit_body(chain_id=0), {"chain_id": "must be from 1 to 4503599627370476, not 0"}),
    (submit_body(agent_id="agent-7"), {"agent_id": "is not a UUID (8-4-4-4-12 hex digits)"}),
    (submit_body(instruction="   "), {"instruction": "must not be only spaces"}),
    (submit_body(instruction=""), {"instruction": "must not be empty"}),
    (submit_body(instruction="x" * 8001),
     {"instruction": "must have at most 8000 characters, not 8001"}),
    (submit_body(max_value_wei=10),
     {"max_value_wei": "must be a string, not a number"}),
    (submit_body(max_value_wei="1.5"),
     {"max_value_wei": "is not a non-negative integer in decimal digits"}),
    (submit_body(max_value_wei="-1"),
     {"max_value_wei": "is not a non-negative integer in decimal digits"}),
    (submit_body(max_value_wei="007"),
     {"max_value_wei": "is not a non-negative integer in decimal digits"}),
    (submit_body(max_value_wei=str(2**256)), {"max_value_wei": "is larger than 2**256 - 1"}),
    (submit_body(deadline="tomorrow"),
     {"deadline": "is not an RFC 3339 date-time with an offset, e.g. 2026-12-01T12:00:00Z"}),
    (submit_body(deadline="2030-01-01T00:00:00"),
     {"deadline": "is not an RFC 3339 date-time with an offset, e.g. 2026-12-01T12:00:00Z"}),
    (submit_body(deadline="2001-01-01T00:00:00Z"), {"deadline": "is in the past"}),
    (submit_body(metadata=[1]), {"metadata": "must be an object, not an array"}),
    (submit_body(metadata={"x": "y" * 9000}), {"metadata": "must be at most 8192 bytes as JSON"}),
    (submit_body(colour="blue", size=3), {"colour": "is not a field of this object",
                                          "size": "is not a field of this object"}),
    ([submit_body()], {"body": "must be an object, not an array"}),
])
def test_submit_task_body_problems_name_each_field(gw: Gateway, body: Any,
                                                   expected: dict[str, str]) -> None:
    answer = gw.client.post("/v1/tasks", json=body, headers=gw.auth())

    assert fields(problem(answer, 422, "invalid-body")) == expected
    assert gw.bus.published == []


@pytest.mark.parametrize(("changes", "expected"), [
    ({"signer_address": "0x1234"},
     {"signer_address": "is not an address (0x and 40 hex digits)"}),
    ({"signer_address": ADDRESS.replace("C8", "c8")},
     {"signer_address": "has mixed case but is not a valid EIP-55 checksum (give it all "
                        "lowercase or correctly checksummed)"}),
    ({"model": "gpt 4"}, {"model": "must be a model name without spaces"}),
    ({"policy": policy(allowed_selectors=["0xA9059CBB"])},
     {"policy.allowed_selectors[0]": "is not a 4-byte function selector (0x and 8 lowercase "
                                     "hex digits)"}),
    ({"policy": policy(allowed_chain_ids=[1, 1])},
     {"policy.allowed_chain_ids[1]": "repeats item 0; items must be unique"}),
    ({"policy": policy(allowed_contracts=[ADDRESS, ADDRESS.lower()])},
     {"policy.allowed_contracts[1]": "repeats item 0; items must be unique"}),
    ({"policy": policy(budget_wei="lots", max_inferences_per_task=0, extra=1)},
     {"policy.budget_wei": "is not a non-negative integer in decimal digits",
      "policy.max_inferences_per_task": "must be from 1 to 1000, not 0",
      "policy.extra": "is not a field of this object"}),
    ({"policy": {k: v for k, v in policy().items() if k != "deny_addresses"}},
     {"policy.deny_addresses": "is required"}),
    ({"policy": "default"}, {"policy": "must be an object, not a string"}),
])
def test_register_agent_body_problems_name_each_field(gw: Gateway, changes: dict,
                                                      expected: dict[str, str]) -> None:
    answer = gw.client.post("/v1/agents", json=agent_body(**changes), headers=gw.auth("admin"))

    assert fields(problem(answer, 422, "invalid-body")) == expected


@pytest.mark.parametrize(("content", "detail"), [
    (b'{"agent_id": ', "The body is not JSON: Expecting value at line 1, column 14."),
    (b'{"a": 1, "a": 2}', "the member 'a' appears twice in one object"),
    (b'{"chain_id": NaN}', "NaN is not a JSON number"),
    (b'{"x": "\\ud800"}', "lone UTF-16 surrogate"),
    (b"\xff\xfe{}", "The body is not UTF-8 (byte 0)."),
    (b"[" * 5000 + b"]" * 5000, "nested more than 64 levels deep"),
    (b'{"a": ' * 65 + b"1" + b"}" * 65, "nested more than 64 levels deep"),
    (b'{"chain_id": ' + b"9" * 5000 + b"}", "The body is not acceptable JSON"),
])
def test_malformed_json_is_400(gw: Gateway, content: bytes, detail: str) -> None:
    answer = gw.client.post("/v1/tasks", content=content,
                            headers={**gw.auth(), "Content-Type": "application/json"})

    assert detail in problem(answer, 400, "invalid-json")["detail"]


@pytest.mark.parametrize("media", [None, "text/plain", "application/x-www-form-urlencoded",
                                   "application/json; charset=latin-1"])
def test_a_body_that_is_not_json_is_415(gw: Gateway, media: str | None) -> None:
    headers = gw.auth() | ({"Content-Type": media} if media else {})

    answer = gw.client.post("/v1/tasks", content=json.dumps(submit_body()), headers=headers)

    problem(answer, 415, "unsupported-media-type")


def test_brackets_in_strings_do_not_count_as_nesting(gw: Gateway) -> None:
    answer = gw.client.post("/v1/tasks", json=submit_body(instruction='[{"\\' * 300),
                            headers=gw.auth())

    assert answer.status_code == 202, answer.text


def test_json_media_types_with_suffix_and_charset_are_accepted(gw: Gateway) -> None:
    answer = gw.client.post("/v1/tasks", content=json.dumps(submit_body()), headers={
        **gw.auth(), "Content-Type": "application/vnd.omc+json; charset=UTF-8"})

    assert answer.status_code == 202, answer.text


def test_a_body_over_the_limit_is_413_whether_declared_or_streamed() -> None:
    for gw in build({"OMC_GATEWAY_MAX_BODY": "1024"}):
        big = json.dumps(submit_body(instruction="x" * 2000)).encode()

        declared = gw.client.post("/v1/tasks", content=big,
                                  headers={**gw.auth(), "Content-Type": "application/json"})
        streamed = gw.client.post("/v1/tasks", content=iter([big[:600], big[600:]]),
                                  headers={**gw.auth(), "Content-Type": "application/json"})

        assert "at most 1024 bytes" in problem(declared, 413, "body-too-large")["detail"]
        assert "transfer-encoding" in {k.lower() for k in streamed.request.headers}
        problem(streamed, 413, "body-too-large")
        assert gw.bus.published == []


@pytest.mark.parametrize(("path", "field", "words"), [
    ("/v1/tasks/not-a-uuid/cancel", "task_id", "is not a UUID"),
    (f"/v1/tasks/{TASK}/actions/123/approve", "action_id", "is not a UUID"),
])
def test_bad_path_parameters_are_422(gw: Gateway, path: str, field: str, words: str) -> None:
    answer = gw.client.post(path, json={"reason": "x"},
                            headers=gw.auth())

    assert words in fields(problem(answer, 422, "invalid-parameters"))[field]


@pytest.mark.parametrize("key", ["x" * 201, "caf\u00e9"])
def test_a_bad_idempotency_key_is_422(gw: Gateway, key: str) -> None:
    headers = {**gw.auth(), "Idempotency-Key": key}
    answer = gw.client.post("/v1/tasks", json=submit_body(),
                            headers={k: v.encode() if k == "Idempotency-Key" else v
                                     for k, v in headers.items()})

    assert "Idempotency-Key" in fields(problem(answer, 422, "invalid-parameters"))


# -- idempotency ------------------------------------------------------------------------------


def test_the_same_idempotency_key_and_body_answers_the_same_once(gw: Gateway) -> None:
    headers = {**gw.auth(), "Idempotency-Key": "order-1"}

    first = gw.client.post("/v1/tasks", json=submit_body(), headers=headers)
    second = gw.client.post("/v1/tasks", content=json.dumps(submit_body(), indent=2),
                            headers={**headers, "Content-Type": "application/json"})

    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    assert second.headers["location"] == first.headers["location"]
    assert second.headers["idempotency-replayed"] == "true"
    assert len(gw.bus.published) == 1
    expected = str(uuid.uuid5(COMMAND_NAMESPACE, f"{gw.key_id()}:order-1"))
    assert first.json()["command_id"] == expected


def test_the_same_idempotency_key_with_another_body_is_409(gw: Gateway) -> None:
    headers = {**gw.auth(), "Idempotency-Key": "order-2"}
    gw.client.post("/v1/tasks", json=submit_body(), headers=headers)

    answer = gw.client.post("/v1/tasks", json=submit_body(instruction="other"), headers=headers)
    elsewhere = gw.client.post(f"/v1/tasks/{TASK}/cancel", json={"reason": "x"},
                               headers=headers)

    problem(answer, 409, "idempotency-conflict")
    problem(elsewhere, 409, "idempotency-conflict")
    assert len(gw.bus.published) == 1


def test_idempotency_keys_are_per_api_key(gw: Gateway) -> None:
    first = gw.client.post("/v1/tasks", json=submit_body(),
                           headers={**gw.auth(), "Idempotency-Key": "k"})
    other = gw.client.post("/v1/tasks", json=submit_body(instruction="mine"),
                           headers={**gw.auth("globex"), "Idempotency-Key": "k"})

    assert other.status_code == 202
    assert other.json()["command_id"] != first.json()["command_id"]


def test_kafka_down_is_503_and_stores_nothing_under_the_key(gw: Gateway) -> None:
    headers = {**gw.auth(), "Idempotency-Key": "order-3"}
    gw.bus.down = True

    failed = gw.client.post("/v1/tasks", json=submit_body(), headers=headers)
    gw.bus.down = False
    retried = gw.client.post("/v1/tasks", json=submit_body(), headers=headers)

    assert problem(failed, 503, "unavailable")["dependency"] == "kafka"
    assert failed.headers["retry-after"].isdigit()
    assert retried.status_code == 202
    assert "idempotency-replayed" not in retried.headers
    assert len(gw.bus.published) == 1


def test_redis_down_refuses_keyed_commands_and_every_rate_limited_route(gw: Gateway) -> None:
    gw.limiter.down = True

    answer = gw.client.post("/v1/tasks", json=submit_body(), headers=gw.auth())

    assert problem(answer, 503, "unavailable")["dependency"] == "redis"


# -- auth, scopes, rate limits ----------------------------------------------------------------


@pytest.mark.parametrize(("header", "detail"), [
    (None, "needs an API key"),
    ("Basic dXNlcjpwYXNz", "Authorization: Bearer <key>"),
    ("Bearer nonsense", "malformed"),
    ("Bearer omc_0123456789ab_" + "A" * 43, "not known"),
])
def test_a_missing_malformed_or_unknown_key_is_401(gw: Gateway, header: str | None,
                                                   detail: str) -> None:
    answer = gw.client.get("/v1/tasks", headers={"Authorization": header} if header else {})

    assert detail in problem(answer, 401, "unauthorized")["detail"]
    assert answer.headers["www-authenticate"].startswith("Bearer")


def test_a_wrong_secret_and_a_revoked_key_are_401(gw: Gateway) -> None:
    token = gw.tokens["acme"]
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    gw.table.revoke(gw.key_id("globex"))

    assert "not known" in problem(gw.client.get("/v1/tasks", headers={
        "Authorization": f"Bearer {wrong}"}), 401, "unauthorized")["detail"]
    assert "revoked" in problem(gw.client.get("/v1/tasks", headers=gw.auth("globex")), 401,
                                "unauthorized")["detail"]


def test_a_key_seen_before_keeps_working_while_mysql_is_down() -> None:
    for gw in build():  # its key store has ttl 0: every request looks the key up
        gw.client.post("/v1/tasks", json=submit_body(), headers=gw.auth())
        gw.table.down = True
        gw.read.mysql_down = True

        command = gw.client.post("/v1/tasks", json=submit_body(), headers=gw.auth())
        query = gw.client.get("/v1/tasks", headers=gw.auth())
        unseen = gw.client.get("/v1/tasks", headers=gw.auth("globex"))

        assert command.status_code == 202, command.text
        assert problem(query, 503, "unavailable")["dependency"] == "mysql"
        assert problem(unseen, 503, "unavailable")["dependency"] == "mysql"


def test_rate_limit_is_429_with_retry_after() -> None:
    for gw in build({"OMC_GATEWAY_RATE_LIMIT": "3", "OMC_GATEWAY_RATE_WINDOW": "60"}):
        gw.limiter.clock = lambda: 1_000_000_050.5  # 29.5 s before the window ends

        answers = [gw.client.get("/v1/tasks", headers=gw.auth()) for _ in range(4)]
        other_key = gw.client.get("/v1/tasks", headers=gw.auth("globex"))

        assert [a.status_code for a in answers[:3]] == [200, 200, 200]
        body = problem(answers[3], 429, "rate-limited")
        assert answers[3].headers["retry-after"] == "30"
        assert "more than 3 requests in 60 s" in body["detail"]
        assert other_key.status_code == 200


# -- the tenant and scope matrix, on every route ----------------------------------------------

# Per operation: (path, body, another tenant's path or None). Every endpoint must be here.
MATRIX: dict[str, tuple[str, Any, str | None]] = {
    "submitTask": ("/v1/tasks", submit_body(), None),
    "cancelTask": (f"/v1/tasks/{TASK}/cancel", {"reason": "r"}, None),
    "approveAction": (f"/v1/tasks/{TASK}/actions/{ACTION}/approve",
                      {"action_hash": ACTION_HASH}, None),
    "rejectAction": (f"/v1/tasks/{TASK}/actions/{ACTION}/reject",
                     {"action_hash": ACTION_HASH, "reason": "r"}, None),
    "registerAgent": ("/v1/agents", agent_body(), None),
    "setPolicy": (f"/v1/agents/{AGENT}/policy", {"policy": policy(2)}, None),
    "listTasks": ("/v1/tasks", None, None),
    "getTask": (f"/v1/tasks/{TASK}", None, f"/v1/tasks/{OTHER_TASK}"),
    "listTaskEvents": (f"/v1/tasks/{TASK}/events", None, f"/v1/tasks/{OTHER_TASK}/events"),
    "streamTaskEvents": (f"/v1/tasks/{TASK}/stream?from=beginning", None,
                         f"/v1/tasks/{OTHER_TASK}/stream"),
    "listAgents": ("/v1/agents", None, None),
    "getAgent": (f"/v1/agents/{AGENT}", None, None),
    "getPolicy": (f"/v1/agents/{AGENT}/policy", None, None),
    "listTransactions": ("/v1/transactions", None, None),
    "getTransaction": (f"/v1/transactions/{TX}", None, f"/v1/transactions/{OTHER_TX}"),
    "getReceipt": (f"/v1/transactions/{TX}/receipt", None,
                   f"/v1/transactions/{OTHER_TX}/receipt"),
    "getInclusionProof": (f"/v1/proofs/events/{EVENT}", None,
                          f"/v1/proofs/events/{OTHER_EVENT}"),
    "getConsistencyProof": (f"/v1/proofs/consistency?stream={STREAM}&from=1&to=2", None, None),
    "metrics": ("/metrics", None, None),
    "health": ("/healthz", None, None),
    "readiness": ("/readyz", None, None),
    "openapi": ("/openapi.json", None, None),
}


def _endpoints() -> list[Any]:
    return next(build()).app.state.endpoints


def test_the_matrix_covers_every_route() -> None:
    assert {e.operation_id for e in _endpoints()} == set(MATRIX)


@pytest.mark.parametrize("endpoint", _endpoints(), ids=lambda e: e.operation_id)
def test_every_route_checks_key_scope_and_tenant(gw: Gateway, endpoint: Any) -> None:
    path, body, foreign = MATRIX[endpoint.operation_id]

    def call(key: str | None, target: str = path) -> Any:
        headers = gw.auth(key) if key else {}
        return gw.client.request(endpoint.method, target, headers=headers,
                                 json=body if body is not None else None)

    if endpoint.scope is None:
        assert call(None).status_code == 200
        return
    problem(call(None), 401, "unauthorized")
    for scope in SCOPES:
        answer = call(scope)
        if scope == endpoint.scope:
            assert answer.status_code in (200, 202), answer.text
        else:
            assert "does not have the scope" in problem(answer, 403, "forbidden")["detail"]
    own = call("acme")
    theirs = call("globex")
    assert own.status_code in (200, 202), own.text
    if endpoint.method != "GET":  # a command is recorded with the caller's tenant, never other
        assert [r.meta.tenant for r in gw.bus.published][-2:] == ["acme", "globex"]
        return
    if foreign is not None:  # the other tenant's aggregate is 404 to acme, as a missing one
        problem(call("acme", foreign), 404, "not-found")
    if endpoint.operation_id == "metrics":
        return
    if endpoint.path.rsplit("/", 1)[-1] in ("tasks", "agents", "transactions"):  # lists
        assert own.json()["items"], "acme sees its own"
        assert theirs.status_code == 200
        assert all(item["tenant"] == "globex" for item in theirs.json()["items"])
    else:  # acme's aggregate, asked for by globex
        problem(theirs, 404, "not-found")


# -- queries ----------------------------------------------------------------------------------


def test_lists_page_with_cursors_and_refuse_a_bad_one(gw: Gateway) -> None:
    for i in range(5):
        gw.read.add_task("acme", {"task_id": str(uuid.UUID(int=i)), "status": "running"})

    first = gw.client.get("/v1/tasks?limit=2&status=running", headers=gw.auth()).json()
    second = gw.client.get(f"/v1/tasks?limit=2&status=running&cursor={first['next_cursor']}",
                           headers=gw.auth()).json()
    bad = gw.client.get("/v1/tasks?cursor=zzz", headers=gw.auth())

    assert len(first["items"]) == 2
    assert first["as_of"] == {"projection": "mysql", "offsets": {"omc.task.events.v1/0": 0},
                              "updated_at": None}
    assert second["items"] != first["items"]
    assert "cursor" in fields(problem(bad, 422, "invalid-parameters"))


@pytest.mark.parametrize(("query", "expected"), [
    ("limit=0", {"limit": "must be from 1 to 200, not 0"}),
    ("limit=abc", {"limit": "must be an integer in decimal digits"}),
    ("limit=1&limit=2", {"limit": "is given more than once"}),
    ("status=done", {"status": "must be one of accepted, submitted, running, "
                               "awaiting_approval, completed, failed, cancelled"}),
    ("agent_id=7", {"agent_id": "is not a UUID (8-4-4-4-12 hex digits)"}),
    ("colour=blue", {"colour": "is not a parameter of this route"}),
])
def test_bad_query_parameters_are_422(gw: Gateway, query: str, expected: dict) -> None:
    answer = gw.client.get(f"/v1/tasks?{query}", headers=gw.auth())

    assert fields(problem(answer, 422, "invalid-parameters")) == expected


def test_task_events_after_a_sequence_or_a_cursor(gw: Gateway) -> None:
    after = gw.client.get(f"/v1/tasks/{TASK}/events?after=1", headers=gw.auth())
    cursor = gw.client.get(f"/v1/tasks/{TASK}/events?cursor=2", headers=gw.auth())
    bad = gw.client.get(f"/v1/tasks/{TASK}/events?cursor=abc", headers=gw.auth())

    assert [e["sequence"] for e in after.json()["items"]] == [2, 3]
    assert [e["sequence"] for e in cursor.json()["items"]] == [3]
    assert "cursor" in fields(problem(bad, 422, "invalid-parameters"))


def test_transactions_by_any_hash_case(gw: Gateway) -> None:
    answer = gw.client.get(f"/v1/transactions/{TX.upper().replace('0X', '0x')}",
                           headers=gw.auth())

    assert answer.json()["item"]["request_id"] == "r1"


# -- live stream ------------------------------------------------------------------------------


def sse(text: str) -> list[dict[str, str]]:
    frames = []
    for block in text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines()
                     if line and not line.startswith((":", "retry")))
        if lines:
            frames.append(lines)
    return frames


def test_the_stream_sends_every_event_then_ends_after_the_terminal_one(gw: Gateway) -> None:
    answer = gw.client.get(f"/v1/tasks/{TASK}/stream?from=beginning", headers=gw.auth())

    assert answer.headers["content-type"].startswith("text/event-stream")
    assert answer.text.startswith("retry: 3000\n")
    frames = sse(answer.text)
    assert [f["id"] for f in frames] == ["1", "2", "3"]
    assert frames[-1]["event"] == "omc.task.TaskCompleted"
    assert json.loads(frames[0]["data"])["sequence"] == 1


def test_the_stream_resumes_after_last_event_id(gw: Gateway) -> None:
    answer = gw.client.get(f"/v1/tasks/{TASK}/stream",
                           headers={**gw.auth(), "Last-Event-ID": "2"})

    assert [f["id"] for f in sse(answer.text)] == ["3"]


def test_the_stream_from_now_of_an_ended_task_ends_at_once(gw: Gateway) -> None:
    answer = gw.client.get(f"/v1/tasks/{TASK}/stream", headers=gw.auth())

    assert sse(answer.text) == []


def test_the_stream_keeps_alive_and_follows_new_events(gw: Gateway) -> None:
    import threading
    import time

    def later() -> None:
        time.sleep(0.5)
        gw.read.add_event("globex", OTHER_TASK, event(2, "omc.task.TaskFailed"))

    threading.Thread(target=later).start()
    answer = gw.client.get(f"/v1/tasks/{OTHER_TASK}/stream", headers=gw.auth("globex"))

    assert ": keep-alive" in answer.text
    assert [f["id"] for f in sse(answer.text)] == ["2"]


def test_the_stream_works_while_mysql_is_down(gw: Gateway) -> None:
    gw.read.mysql_down = True

    answer = gw.client.get(f"/v1/tasks/{TASK}/stream?from=beginning", headers=gw.auth())

    assert len(sse(answer.text)) == 3


# -- routing, operations ----------------------------------------------------------------------


def test_unknown_routes_and_methods_are_problems(gw: Gateway) -> None:
    missing = gw.client.get("/v2/everything")
    slash = gw.client.get("/v1/tasks/", headers=gw.auth())
    wrong = gw.client.delete("/v1/tasks", headers=gw.auth())

    problem(missing, 404, "not-found")
    problem(slash, 404, "not-found")
    problem(wrong, 405, "method-not-allowed")
    assert set(wrong.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "POST"}


def test_health_and_readiness(gw: Gateway) -> None:
    assert gw.client.get("/healthz").json() == {"status": "ok"}
    ready = gw.client.get("/readyz").json()
    assert ready["status"] == "ready"
    assert set(ready["checks"]) == {"kafka", "mysql", "redis"}

    gw.read.mysql_down = True
    gw.bus.down = True
    body = problem(gw.client.get("/readyz"), 503, "unavailable")

    assert body["checks"]["mysql"]["status"] == "down"
    assert body["checks"]["kafka"]["status"] == "down"
    assert body["checks"]["redis"]["status"] == "up"


def test_metrics_count_requests_by_route_template(gw: Gateway) -> None:
    gw.client.get(f"/v1/tasks/{TASK}", headers=gw.auth())
    gw.client.get("/nowhere")

    text = gw.client.get("/metrics", headers=gw.auth("admin")).text

    assert ('omc_gateway_requests_total{method="GET",route="/v1/tasks/{task_id}",status="200"} '
            "1.0") in text
    assert 'omc_gateway_requests_total{method="GET",route="unmatched",status="404"}' in text
    assert ('omc_gateway_request_seconds_bucket{le="0.005",method="GET",'
            'route="/v1/tasks/{task_id}"}') in text


def test_request_ids_are_echoed_or_made(gw: Gateway) -> None:
    given = gw.client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    bad = gw.client.get("/healthz", headers={"X-Request-ID": "no spaces allowed"})

    assert given.headers["x-request-id"] == "abc-123"
    made = bad.headers["x-request-id"]
    assert len(made) == 24
    assert made != gw.client.get("/healthz").headers["x-request-id"]


def test_an_unexpected_error_is_a_500_problem_without_details(gw: Gateway) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    gw.read.get_task = broken  # type: ignore[method-assign]

    answer = gw.client.get(f"/v1/tasks/{TASK}", headers=gw.auth())

    body = problem(answer, 500, "internal")
    assert "secret" not in answer.text
    assert body["detail"] == "The gateway failed to answer; the failure is logged."


def test_an_empty_parameter_is_checked_not_dropped(gw: Gateway) -> None:
    query = gw.client.get("/v1/tasks?limit=", headers=gw.auth())
    header = gw.client.post("/v1/tasks", json=submit_body(),
                            headers={**gw.auth(), "Idempotency-Key": ""})

    assert fields(problem(query, 422, "invalid-parameters")) == {
        "limit": "must be an integer in decimal digits"}
    assert fields(problem(header, 422, "invalid-parameters")) == {
        "Idempotency-Key": "must not be empty"}


def test_blank_means_what_json_schema_calls_white_space(gw: Gateway) -> None:
    control = gw.client.post(f"/v1/tasks/{TASK}/cancel", json={"reason": "\u001f"},
                             headers=gw.auth())
    blank = gw.client.post(f"/v1/tasks/{TASK}/cancel", json={"reason": "\u3000\t"},
                           headers=gw.auth())

    assert control.status_code == 202, control.text
    assert fields(problem(blank, 422, "invalid-body")) == {"reason": "must not be only spaces"}


def test_every_command_is_sealed_exactly_as_chain_seal_command_seals(gw: Gateway) -> None:
    for endpoint in gw.app.state.endpoints:
        if endpoint.method != "GET":
            path, body, _ = MATRIX[endpoint.operation_id]
            answer = gw.client.request(endpoint.method, path, json=body, headers=gw.auth())
            assert answer.status_code == 202, answer.text

    assert len(gw.bus.published) == 6
    for record, body in zip(gw.bus.published, gw.bus.bodies, strict=True):
        assert seal_command(FACTORY.schemas, record) == record
        assert body == FACTORY.schemas.encode(record)  # one encoding, the same bytes
        assert verify([("body", body)]) == (1, [])
