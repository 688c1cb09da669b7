"""The demo `omc up` ends with: a real round trip through the running system.

An API key for the tenant `demo` (kept in .stack/demo/api-key, mode 600, never printed),
an agent registered and an instruction submitted over HTTP through the SDK; the gateway
writes the commands to Kafka, the agent runtime plans with the offline planner, the policy
engine judges the action, the chain is read, and the outcome and the task's hash-chained
audit trail are read back over HTTP from the MySQL projection. Nothing here is simulated.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

from omc_audit.onchain import ChainRoots
from omc_audit.report import render_html, task_report
from omc_audit.verify import export_task, verify_bundle, verify_log
from omc_cli import audit
from omc_config import Settings
from omc_gateway import apikeys
from omc_sdk import Client
from omc_sdk.errors import NotFound
from omc_sdk.models import Task
from omc_store.mysql import connect

TENANT = "demo"
SCOPES = ("commands:write", "queries:read", "audit:read", "approver", "admin")
AGENT_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "urn:openmcp-chain:demo-agent"))
# anvil's first development account: public knowledge, for the local chain only.
DEV_SIGNER = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
RECIPIENT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def key_file(settings: Settings) -> Path:
    return settings.stack.dir / "demo" / "api-key"


def demo_key(settings: Settings) -> str:
    """The demo tenant's key, created once and kept on disk for the user's own requests."""
    path = key_file(settings)
    connection = connect(settings)
    try:
        if path.exists():
            token = path.read_text().strip()
            parsed = apikeys.parse_token(token)
            known = parsed and apikeys.find_key(connection, parsed[0])
            if known and not known.revoked_at:
                return token
        token, _ = apikeys.create_key(connection, TENANT, SCOPES, "omc up demo")
    finally:
        connection.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(token + "\n")
    return token


def run(settings: Settings, echo: Callable[[str], None], timeout: float = 60.0) -> None:
    """Register the demo agent (idempotent), submit a task, wait for its outcome, and show
    its audit trail, all over HTTP."""
    url = f"http://127.0.0.1:{settings.stack.gateway_port}"
    with Client(url, demo_key(settings)) as client:
        client.register_agent(
            agent_id=AGENT_ID, name="demo agent", description="registered by `omc up`",
            signer_address=DEV_SIGNER, model="omc-local-planner",
            policy={"version": 1, "allowed_chain_ids": [settings.chain_id],
                    "allowed_contracts": [], "allowed_selectors": [], "deny_addresses": [],
                    "allowed_recipients": [RECIPIENT], "max_value_wei": str(10**17),
                    "budget_wei": str(10**18), "budget_window_seconds": 86400,
                    "max_fee_per_gas_wei": str(100 * 10**9),
                    "approval_threshold_wei": str(5 * 10**16), "max_inferences_per_task": 4},
            idempotency_key="omc-up-demo-agent",
        )
        for instruction in (f"what is the balance of {RECIPIENT}",
                            f"send 0.01 ETH to {RECIPIENT}"):
            task_id = _round_trip(client, settings, instruction, echo, timeout)
    _audit(settings, task_id, echo, timeout)
    echo(f"Your key for tenant {TENANT!r} is in {key_file(settings)}: "
         f"OMC_API_KEY=$(cat {key_file(settings)}) .venv/bin/omc tasks list")


ENDED = frozenset({"completed", "failed", "cancelled", "rejected"})


def _round_trip(client: Client, settings: Settings, instruction: str,
                echo: Callable[[str], None], timeout: float) -> str:
    """Submit `instruction`, wait for its outcome, show it with its hash-chained trail and,
    for a transfer, the transaction as the chain watcher confirmed it."""
    accepted = client.submit_task(AGENT_ID, instruction, chain_id=settings.chain_id)
    echo(f"POST /v1/tasks {instruction!r} -> 202 (command {accepted.command_id})")
    task = _outcome(client, accepted.aggregate_id, timeout)
    echo(f"GET /v1/tasks/{task.task_id} -> {task.status!r}: "
         f"{' / '.join(_summary(task).splitlines())}")
    for event in client.iter_task_events(task.task_id):
        echo(f"  {event.sequence:>2} {event.event_type:<32} hash {event.hash[:16]}...")
    for tx in client.list_transactions(task_id=task.task_id).items:
        echo(f"  transaction {tx.tx_hash}: {tx.status}, nonce {tx.nonce}, block "
             f"{tx.block_number}, {tx.value_wei} wei from {tx.sender} to {tx.to}")
    return task.task_id


def _audit(settings: Settings, task_id: str, echo: Callable[[str], None],
           timeout: float) -> None:
    """`omc audit verify --task` and `omc audit report --format html` on the task, once the
    notary has checkpointed its events and the anchor of that checkpoint is confirmed."""
    trusted = audit.trusted_notaries(settings, ())
    registry = audit.anchor_registry(settings, None)
    deadline = time.monotonic() + timeout
    while True:
        bundle = export_task(settings, task_id, registry=registry)
        evidence = bundle.evidence
        if (len(evidence.proofs) >= len(evidence.events) and evidence.receipts) \
                or time.monotonic() > deadline:
            break
        time.sleep(1)
    report = verify_log(settings, task_id=task_id, trusted=trusted, registry=registry)
    echo(f"$ omc audit verify --task {task_id}")
    echo(f"  {'verified' if report.ok else 'VERIFICATION FAILED'}: {report.events} events "
         f"(hashes, chains, sequences), {report.inferences} inference signatures, "
         f"{report.checkpoints} signed checkpoints, {report.anchors_on_chain} anchored "
         f"root(s) matched on chain")
    for finding in report.findings:
        echo(f"  {finding.code} at {finding.where}: {finding.detail}")
    checked = verify_bundle(bundle, chain=ChainRoots(settings.chain_rpc_url), trusted=trusted,
                            registry=registry)
    page = key_file(settings).parent / f"audit-{task_id}.html"
    page.write_text(render_html(task_report(bundle, checked)), encoding="utf-8")
    echo(f"$ omc audit report {task_id} --format html -o {page}")
    echo(f"  {page}: one self-contained page, "
         f"{'verified' if checked.ok else 'VERIFICATION FAILED'}")


def _outcome(client: Client, task_id: str, timeout: float) -> Task:
    """The task once it has ended (as projected), or RuntimeError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            task = client.get_task(task_id)
            if task.status in ENDED:
                return task
        except NotFound:
            task = None
        if time.monotonic() > deadline:
            status = task.status if task else "not projected yet"
            raise RuntimeError(f"task {task_id} did not end within {timeout:g} s "
                               f"(status: {status}); see .stack/runtime/runtime.log")
        time.sleep(0.2)


def _summary(task: Task) -> str:
    found = task.result if task.status == "completed" else task.failure
    if isinstance(found, dict):
        return str(found.get("summary") or found.get("reason") or found)
    return str(found)
