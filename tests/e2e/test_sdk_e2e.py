"""The SDK against the real system: the gateway as a process of its own (`python -m
omc_gateway` on a free port), the projections the stack runs (proj-mysql, proj-redis), and
Kafka, MariaDB, Redis underneath. The key comes from `omc keys create`, for a tenant of this
run only, so nothing here sees or disturbs anyone else's data.

    submit (202, Location, Idempotency-Key replay) -> get (once projected) -> list -> events

The local stack is brought up when it is not (and never stopped); the gateway started here
is stopped at the end.
"""

from __future__ import annotations

import uuid

import pytest

from omc_config import Settings
from omc_sdk import (
    Client,
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    Page,
    Task,
    Unauthorized,
)
from tests.support.system import create_key, eventually

pytestmark = pytest.mark.integration

STATUSES = {"accepted", "submitted", "running", "awaiting_approval", "completed", "failed",
            "cancelled"}


def test_health_and_readiness(client: Client):
    assert client.healthz().body == {"status": "ok"}
    ready = client.readyz()
    assert ready.ok
    assert ready.checks


def test_submit_get_list_events(client: Client, system: Settings, tenant: str):
    agent_id = str(uuid.uuid4())
    instruction = f"e2e: pay 0 wei to nobody ({uuid.uuid4().hex[:8]})"
    key = f"e2e-{uuid.uuid4()}"
    accepted = client.submit_task(agent_id, instruction, chain_id=system.chain_id,
                                  max_value_wei=0, idempotency_key=key)
    assert accepted.command_type == "omc.command.SubmitTask"
    assert accepted.status == "accepted"
    task_id = accepted.aggregate_id
    assert uuid.UUID(task_id)
    assert accepted.location.endswith(f"/v1/tasks/{task_id}")
    again = client.submit_task(agent_id, instruction, chain_id=system.chain_id,
                               max_value_wei=0, idempotency_key=key)
    assert (again.command_id, again.aggregate_id) == (accepted.command_id, task_id)

    task = eventually(lambda: client.get_task(task_id))
    assert isinstance(task, Task)
    assert (task.task_id, task.tenant, task.agent_id) == (task_id, tenant, agent_id)
    assert (task.instruction, task.chain_id) == (instruction, system.chain_id)
    assert task.status in STATUSES

    page = client.list_tasks(agent_id=agent_id, limit=10)
    assert [t.task_id for t in page] == [task_id]
    assert page.as_of is not None
    assert page.as_of.projection
    mine = [t.task_id for t in client.iter_tasks(page_size=1)]
    assert task_id in mine
    assert len(mine) == len(set(mine))  # pages do not overlap

    events = client.task_events(task_id)
    assert isinstance(events, Page)
    assert events.as_of is not None
    sequences = [e.sequence for e in events]
    assert sequences == sorted(sequences)
    assert [e.sequence for e in client.iter_task_events(task_id, page_size=1)] == sequences


def test_the_gateways_problems_arrive_typed(client: Client, gateway: str, system: Settings,
                                           tenant: str):
    with pytest.raises(NotFound):
        client.get_task(str(uuid.uuid4()))
    with pytest.raises(InvalidRequest) as caught:
        client.submit_task(str(uuid.uuid4()), "x", chain_id=system.chain_id,
                           max_value_wei="12x")
    assert caught.value.status == 422
    assert [e.field for e in caught.value.errors] == ["max_value_wei"]
    key = f"e2e-{uuid.uuid4()}"
    client.submit_task(str(uuid.uuid4()), "one body", chain_id=system.chain_id,
                       idempotency_key=key)
    with pytest.raises(Conflict):
        client.submit_task(str(uuid.uuid4()), "another body", chain_id=system.chain_id,
                           idempotency_key=key)
    with Client(gateway, "omc_000000000000_" + "x" * 43) as stranger, \
            pytest.raises(Unauthorized):
        stranger.list_tasks()
    with Client(gateway, create_key(tenant, "queries:read")) as reader, \
            pytest.raises(Forbidden):
        reader.cancel_task(str(uuid.uuid4()), "no scope for this")


POLICY = {"version": 1, "allowed_chain_ids": [31337], "allowed_contracts": [],
          "allowed_selectors": [], "deny_addresses": [], "allowed_recipients": [],
          "max_value_wei": "1000", "budget_wei": "5000", "budget_window_seconds": 3600,
          "max_fee_per_gas_wei": "100000000000", "approval_threshold_wei": "500",
          "max_inferences_per_task": 4}


def test_register_an_agent_then_read_it(client: Client, tenant: str):
    accepted = client.register_agent(name="e2e trader", description="registered by the e2e",
                                     signer_address="0x" + "ab" * 20, model="e2e-model",
                                     policy=POLICY)
    agent_id = accepted.aggregate_id
    assert accepted.command_type == "omc.command.RegisterAgent"
    agent = eventually(lambda: client.get_agent(agent_id))
    assert (agent.agent_id, agent.tenant, agent.name, agent.model) == (
        agent_id, tenant, "e2e trader", "e2e-model")
    assert agent_id in [a.agent_id for a in client.iter_agents(page_size=1)]
    policy = eventually(lambda: client.get_policy(agent_id), timeout=15)
    assert policy.max_value_wei == "1000"
