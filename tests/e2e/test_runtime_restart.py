"""kill -9 of the agent runtime in the middle of work: its supervisor restarts it, the new
process rebuilds its state from the log, and every task ends exactly as it would have, with
no event lost and none written twice.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from omc_config import Settings
from omc_sdk import Client
from tests.e2e.test_runtime_e2e import ended, names, register, the, trail, until

pytestmark = pytest.mark.integration

READ_TRAIL = ["TaskSubmitted", "InferenceRequested", "InferenceCompleted", "ActionProposed",
              "PolicyEvaluated", "ToolResultRecorded", "InferenceRequested",
              "InferenceCompleted", "TaskCompleted"]


def runtime_pid(system: Settings) -> int:
    """The pid of the runtime process itself (the child of its supervisor)."""
    supervisor = json.loads(Path(system.stack.dir, "runtime", "runtime.pid").read_text())["pid"]
    children = []
    for thread in Path(f"/proc/{supervisor}/task").iterdir():
        children += (thread / "children").read_text().split()
    assert len(children) == 1, f"supervisor {supervisor} has children {children}"
    return int(children[0])


def metrics_up(system: Settings) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(
                f"http://127.0.0.1:{system.stack.runtime_metrics_port}/metrics", timeout=2):
            return True
    except OSError:
        return False


def test_kill_9_mid_work_loses_nothing_and_doubles_nothing(client: Client, system: Settings):
    agent_id, _, recipient = register(client, system, approval_threshold_wei="100")
    gated = client.submit_task(agent_id, f"send 500 wei to {recipient}",
                               chain_id=system.chain_id).aggregate_id
    until(client, gated, {"awaiting_approval"})
    reads = [client.submit_task(agent_id, f"what is the balance of {recipient}",
                                chain_id=system.chain_id).aggregate_id for _ in range(12)]

    victim = runtime_pid(system)
    os.kill(victim, signal.SIGKILL)
    waiting = the(trail(client, gated), "ApprovalRequested")
    client.approve_action(gated, waiting["action_id"], waiting["action_hash"])

    deadline = time.monotonic() + 90
    while not metrics_up(system) or runtime_pid(system) == victim:
        assert time.monotonic() < deadline, "the runtime was not restarted"
        time.sleep(0.5)
    for task_id in reads:
        task = ended(client, task_id)
        assert task.status == "completed", (task_id, task.failure)
        assert names(trail(client, task_id)) == READ_TRAIL
    deadline = time.monotonic() + 90
    while not client.list_transactions(task_id=gated).items:
        assert time.monotonic() < deadline, "the approved transfer was not requested"
        time.sleep(0.25)
    events = trail(client, gated)
    assert names(events).count("ActionApproved") == 1
    assert len(client.list_transactions(task_id=gated).items) == 1
