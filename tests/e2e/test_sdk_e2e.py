"""The SDK against the real system: the gateway as a process of its own (`python -m
omc_gateway` on a free port), the projections the stack runs (proj-mysql, proj-redis), and
Kafka, MariaDB, Redis underneath. The key comes from `omc keys create`, for a tenant of this
run only, so nothing here sees or disturbs anyone else's data.

    submit (202, Location, Idempotency-Key replay) -> get (once projected) -> list -> events

The local stack is brought up when it is not (and never stopped); the gateway started here
is stopped at the end.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from omc_cli.contract import apply_topics
from omc_cli.migrations import migrate_all
from omc_config import Settings
from omc_sdk import (
    Client,
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    Page,
    Task,
    TransportError,
    Unauthorized,
)
from omc_stack import Stack

pytestmark = pytest.mark.integration

T = TypeVar("T")
OMC = Path(sys.executable).with_name("omc")
ALL_SCOPES = "commands:write,queries:read,audit:read,approver,admin"
STATUSES = {"accepted", "submitted", "running", "awaiting_approval", "completed", "failed",
            "cancelled"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def eventually(get: Callable[[], T], timeout: float = 60.0) -> T:
    """`get()` once it stops raising NotFound (a projection catching up), or its last error."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return get()
        except NotFound:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)


@pytest.fixture(scope="session")
def system(settings: Settings) -> Settings:
    """The stack with the log's topics, the schema and the projections running."""
    stack = Stack(settings, report=lambda line: print(f"[stack] {line}"))
    stack.up()
    apply_topics(settings)
    migrate_all(settings)
    stack.up(["proj-mysql", "proj-redis"])
    return settings


@pytest.fixture(scope="session")
def gateway(system: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a gateway process started for this session."""
    port = free_port()
    log = tmp_path_factory.mktemp("gateway") / "gateway.log"
    env = {**os.environ, "OMC_GATEWAY_PORT": str(port)}
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "omc_gateway"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        with Client(url, None, retries=0, timeout=2.0) as probe:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    pytest.fail(f"the gateway exited with {process.returncode}:\n"
                                f"{log.read_text()[-3000:]}")
                try:
                    if probe.readyz().ok:
                        break
                except TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"the gateway was not ready in 60 s:\n{log.read_text()[-3000:]}")
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def create_key(tenant: str, scopes: str) -> str:
    done = subprocess.run([str(OMC), "keys", "create", "--tenant", tenant, "--scopes", scopes,
                           "--name", "e2e test_sdk_e2e"], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def tenant() -> str:
    return f"e2e-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def api_key(gateway: str, tenant: str) -> str:
    return create_key(tenant, ALL_SCOPES)


@pytest.fixture
def client(gateway: str, api_key: str) -> Iterator[Client]:
    with Client(gateway, api_key, timeout=15.0) as client:
        yield client


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
