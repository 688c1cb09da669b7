"""The agent runtime end to end: instructions submitted over HTTP go through Kafka to the
runtime the stack runs (offline planner, policy engine, chain reads on anvil), and come back
as hash-chained events read over HTTP from the MySQL projection, and from the log itself.

    submit -> TaskSubmitted -> InferenceRequested/Completed (signed) -> ActionProposed ->
    PolicyEvaluated -> (read result | approval | budget + TxRequested | denial) -> outcome
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3

from omc_config import Settings
from omc_llm.attest import verify_inference
from omc_sdk import Client, Task, TaskEvent
from tests.support.system import eventually, read_record

pytestmark = pytest.mark.integration

ENDED = {"completed", "failed", "cancelled", "rejected"}
DEV_SIGNER = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
"""anvil's first development account: the key `omc up` gives the tx manager locally."""


def policy(chain_id: int, recipient: str, **changes: Any) -> dict[str, Any]:
    values = {"version": 1, "allowed_chain_ids": [chain_id], "allowed_contracts": [],
              "allowed_selectors": [], "allowed_recipients": [recipient], "deny_addresses": [],
              "max_value_wei": str(10**18), "budget_wei": str(10**19),
              "budget_window_seconds": 3600, "max_fee_per_gas_wei": str(100 * 10**9),
              "approval_threshold_wei": str(10**17), "max_inferences_per_task": 4}
    values.update(changes)
    return values


def register(client: Client, system: Settings, *, signer: str | None = None,
             **changes: Any) -> tuple[str, str, str]:
    """A new agent (id, signer address, allowed recipient) with the policy `changes`; its
    signer is a fresh address (no key anywhere) unless given."""
    signer, recipient = signer or Account.create().address, Account.create().address
    agent_id = str(uuid.uuid4())
    client.register_agent(agent_id=agent_id, name="e2e agent", description="runtime e2e",
                          signer_address=signer, model="omc-local-planner",
                          policy=policy(system.chain_id, recipient, **changes))
    eventually(lambda: client.get_agent(agent_id))
    return agent_id, signer, recipient


def ended(client: Client, task_id: str, timeout: float = 90.0) -> Task:
    return until(client, task_id, ENDED, timeout)


def until(client: Client, task_id: str, statuses: set[str], timeout: float = 90.0) -> Task:
    deadline = time.monotonic() + timeout
    while True:
        task = eventually(lambda: client.get_task(task_id), timeout=timeout)
        if task.status in statuses:
            return task
        assert time.monotonic() < deadline, f"task {task_id} still {task.status!r}"
        time.sleep(0.2)


def trail(client: Client, task_id: str) -> list[TaskEvent]:
    events = list(client.iter_task_events(task_id))
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    for before, after in itertools.pairwise(events):
        assert after.prev_hash == before.hash  # one unbroken chain
    assert len({e.event_id for e in events}) == len(events)
    return events


def names(events: list[TaskEvent]) -> list[str]:
    return [e.event_type.rsplit(".", 1)[-1] for e in events]


def the(events: list[TaskEvent], name: str) -> dict[str, Any]:
    found = [e.payload for e in events if e.event_type.endswith(f".{name}")]
    assert len(found) == 1, (name, names(events))
    return found[0]


@pytest.fixture
def chain(system: Settings) -> Web3:
    return Web3(Web3.HTTPProvider(system.chain_rpc_url, request_kwargs={"timeout": 10}))


def test_a_balance_read_completes_with_the_chains_answer_and_signed_inferences(
        client: Client, system: Settings, chain: Web3):
    agent_id, _, recipient = register(client, system)
    chain.provider.make_request("anvil_setBalance", [recipient, hex(123_456_789)])
    accepted = client.submit_task(agent_id, f"what is the balance of {recipient}",
                                  chain_id=system.chain_id)

    task = ended(client, accepted.aggregate_id)
    assert task.status == "completed", task.failure
    events = trail(client, task.task_id)
    assert names(events) == [
        "TaskSubmitted", "InferenceRequested", "InferenceCompleted", "ActionProposed",
        "PolicyEvaluated", "ToolResultRecorded", "InferenceRequested", "InferenceCompleted",
        "TaskCompleted"]
    assert the(events, "PolicyEvaluated")["verdict"] == "ALLOW"
    result = json.loads(the(events, "ToolResultRecorded")["result_json"])
    assert result["balance_wei"] == "123456789"
    assert "123456789" in the(events, "TaskCompleted")["summary"]
    for event in events:
        if event.event_type.endswith("InferenceCompleted"):
            stored = read_record(system, event.topic, event.partition, event.offset)
            assert stored.model == "omc-local-planner"
            assert verify_inference(stored)  # signed by the runtime's attestation key
        if event.event_type.endswith("InferenceRequested"):
            assert event.payload["prompt_template"] == "task-planner@1"


def test_a_transfer_within_policy_reserves_budget_and_requests_the_transaction(
        client: Client, system: Settings):
    agent_id, signer, recipient = register(client, system)
    accepted = client.submit_task(agent_id, f"send 1000 wei to {recipient}",
                                  chain_id=system.chain_id)

    def requested():
        page = client.list_transactions(task_id=accepted.aggregate_id)
        if not page.items:
            raise LookupError("not yet")
        return page.items

    deadline = time.monotonic() + 90
    while True:
        try:
            transactions = requested()
            break
        except LookupError:
            assert time.monotonic() < deadline, "no TxRequested was projected"
            time.sleep(0.25)
    assert len(transactions) == 1
    tx = transactions[0]
    assert (tx.sender, tx.to, tx.value_wei, tx.chain_id) == (
        signer, recipient, "1000", system.chain_id)
    events = trail(client, accepted.aggregate_id)
    assert the(events, "PolicyEvaluated")["verdict"] == "ALLOW"
    assert tx.action_id == the(events, "ActionProposed")["action"]["action_id"]


def test_a_transfer_over_the_cap_is_denied_rule_by_rule_and_nothing_is_requested(
        client: Client, system: Settings):
    agent_id, _, recipient = register(client, system, max_value_wei="1000000")
    accepted = client.submit_task(agent_id, f"send 1 ether to {recipient}",
                                  chain_id=system.chain_id)

    task = ended(client, accepted.aggregate_id)
    assert task.status == "failed"
    events = trail(client, task.task_id)
    evaluated = the(events, "PolicyEvaluated")
    assert evaluated["verdict"] == "DENY"
    failed_rules = [r["rule"] for r in evaluated["rules"] if not r["passed"]]
    assert failed_rules == ["max_value"]
    assert the(events, "TaskFailed")["code"] == "POLICY_DENIED"
    assert not client.list_transactions(task_id=task.task_id).items


def test_an_action_above_the_threshold_waits_for_an_approval_naming_its_exact_hash(
        client: Client, system: Settings):
    agent_id, _, recipient = register(client, system, approval_threshold_wei="100")
    accepted = client.submit_task(agent_id, f"send 500 wei to {recipient}",
                                  chain_id=system.chain_id)
    task_id = accepted.aggregate_id
    until(client, task_id, {"awaiting_approval"})
    waiting = the(trail(client, task_id), "ApprovalRequested")
    assert json.loads(waiting["preview_json"])["value_wei"] == "500"

    client.approve_action(task_id, waiting["action_id"], "0x" + "ab" * 32)
    deadline = time.monotonic() + 60
    while "CommandRejected" not in names(trail(client, task_id)):
        assert time.monotonic() < deadline, "the wrong hash was not refused"
        time.sleep(0.25)
    assert not client.list_transactions(task_id=task_id).items

    client.approve_action(task_id, waiting["action_id"], waiting["action_hash"],
                          comment="e2e: looks right")
    deadline = time.monotonic() + 60
    while not client.list_transactions(task_id=task_id).items:
        assert time.monotonic() < deadline, "the approved action was not requested"
        time.sleep(0.25)
    events = trail(client, task_id)
    assert the(events, "ActionApproved")["action_hash"] == waiting["action_hash"]
    rejected = the(events, "CommandRejected")
    assert (rejected["code"], rejected["rejected_command_type"]) == (
        "INVALID_STATE", "omc.command.ApproveAction")


def test_a_waiting_task_can_be_cancelled_once(client: Client, system: Settings):
    agent_id, _, recipient = register(client, system, approval_threshold_wei="0")
    accepted = client.submit_task(agent_id, f"send 5 wei to {recipient}",
                                  chain_id=system.chain_id)
    until(client, accepted.aggregate_id, {"awaiting_approval"})
    client.cancel_task(accepted.aggregate_id, "e2e: changed my mind")

    task = ended(client, accepted.aggregate_id)
    assert task.status == "cancelled"
    assert names(trail(client, task.task_id)).count("TaskCancelled") == 1


def test_a_transfer_goes_from_instruction_to_a_confirmed_receipt_through_every_service(
        client: Client, system: Settings, chain: Web3):
    """The runtime, the tx manager (signing with the local stack's development key) and the
    chain watcher together: the task completes with the hash of a transaction whose
    receipt on anvil is what the log and the projection say."""
    agent_id, _, recipient = register(client, system, signer=DEV_SIGNER)
    before = chain.eth.get_balance(recipient)
    accepted = client.submit_task(agent_id, f"send 4321 wei to {recipient}",
                                  chain_id=system.chain_id)

    task = ended(client, accepted.aggregate_id)
    assert task.status == "completed", task.failure
    completed = the(trail(client, task.task_id), "TaskCompleted")
    (tx_hash,) = completed["tx_hashes"]
    receipt = chain.eth.get_transaction_receipt(tx_hash)
    assert receipt["status"] == 1
    assert chain.eth.get_balance(recipient) - before == 4321
    result = json.loads(the(trail(client, task.task_id), "ToolResultRecorded")["result_json"])
    assert result["tx_hash"] == tx_hash
    deadline = time.monotonic() + 60
    while True:
        (tx,) = client.list_transactions(task_id=task.task_id).items
        if tx.status == "confirmed":
            break
        assert time.monotonic() < deadline, f"the projection still says {tx.status}"
        time.sleep(0.25)
    assert (tx.tx_hash, tx.block_number) == (tx_hash, receipt["blockNumber"])
    assert tx.sender == DEV_SIGNER
