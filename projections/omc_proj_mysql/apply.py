"""How each command and event changes the read model: one `apply` per record type.

Every function takes the batch's `View`, the record, and where it was read (`At`); it changes
rows in memory only. `HANDLERS` maps a record's full Avro name to its function and to the rows
it needs loaded first. A record type with no handler is counted and skipped by the projector,
so new events never break this projection.

Idempotence: each row remembers the last sequence of its aggregate's chain applied to it
(`last_sequence`); an event at or below it is a duplicate and changes nothing. Commands
(sequence 0) only create a row that does not exist yet (`accepted` task, `registering` agent)
or fill in a placeholder row made by an event that came first from another topic. Whatever the
interleaving of topics and partitions, the same log gives the same rows.

Statuses
    task         accepted (SubmitTask) → submitted (TaskSubmitted) → running (InferenceRequested,
                 InferenceCompleted, InferenceFailed, ActionProposed, PolicyEvaluated,
                 ActionApproved, ActionRejected, ToolResultRecorded) ⇄ awaiting_approval
                 (ApprovalRequested) → completed | failed | cancelled; a refused SubmitTask
                 (CommandRejected) → failed. A final status stays final. `failure` is
                 {code, reason} (TaskFailed), {code: "CANCELLED", reason, cancelled_by} or
                 {code: "REJECTED:<code>", reason}; `result` is TaskCompleted's {summary,
                 tx_hashes, inference_count, total_cost_usd}. Unchained messages on the task
                 topic (sequence 0) are not part of a task's trail and change nothing.
    agent        registering (RegisterAgent) → active (AgentRegistered) | rejected
    transaction  requested → signed → broadcast → included → confirmed, or reorged (pending
                 again) or failed (`failure_code` the TxFailureCode: CANCELLED for a request
                 whose cancel took its nonce). A confirmation wins: TxConfirmed after a
                 TxFailed (REPLACEMENT_CAP: the last transaction was mined after all) makes
                 it confirmed and clears the failure; a TxFailed after it changes nothing.
    budget       reserved → released, or exceeded (refused)
    anchor       signed (CheckpointSigned) → submitted → confirmed
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from omc_events import records as r
from omc_events.record import Record
from omc_proj_mysql.convert import payload_json, plain, to_json, utc
from omc_proj_mysql.store import Key, Row, View
from omc_proj_mysql.tables import (
    AGENTS,
    ANCHORS,
    BUDGETS,
    POLICIES,
    POLICY_HISTORY,
    RECEIPTS,
    TASK_EVENTS,
    TASKS,
    TRANSACTIONS,
    TX_HASHES,
    Table,
)


class At(NamedTuple):
    """Where a record was read."""

    topic: str
    partition: int
    offset: int


Apply = Callable[[View, Any, At], None]
Loads = Callable[[Any], Iterable[tuple[Table, Key]]]


@dataclass(frozen=True)
class Handler:
    apply: Apply
    loads: Loads


HANDLERS: dict[str, Handler] = {}


def handles(*types: type[Record], loads: Loads) -> Callable[[Apply], Apply]:
    def register(apply: Apply) -> Apply:
        for kind in types:
            HANDLERS[kind.SCHEMA] = Handler(apply, loads)
        return apply
    return register


def _task_key(e: Any) -> Iterable[tuple[Table, Key]]:
    return ((TASKS, (e.meta.tenant, e.task_id)),)


def _task_key_of_aggregate(e: Any) -> Iterable[tuple[Table, Key]]:
    return ((TASKS, (e.meta.tenant, e.meta.aggregate_id)),)


def _agent_key(e: Any) -> Iterable[tuple[Table, Key]]:
    return ((AGENTS, (e.meta.tenant, e.agent_id)),)


def _agent_and_policy_keys(e: Any) -> Iterable[tuple[Table, Key]]:
    key = (e.meta.tenant, e.agent_id)
    return ((AGENTS, key), (POLICIES, key))


def _budget_key(e: Any) -> Iterable[tuple[Table, Key]]:
    return ((BUDGETS, (e.meta.tenant, e.action_id)),)


def _tx_key(e: Any) -> Iterable[tuple[Table, Key]]:
    return ((TRANSACTIONS, (e.meta.tenant, e.request_id)),)


def _tx_and_receipt_keys(e: Any) -> Iterable[tuple[Table, Key]]:
    return ((TRANSACTIONS, (e.meta.tenant, e.request_id)), (RECEIPTS, (e.meta.tenant, e.tx_hash)))


def _anchor_key(e: Any) -> Iterable[tuple[Table, Key]]:
    return ((ANCHORS, (e.meta.tenant, e.stream_id, e.tree_size)),)


def _nothing(_: Any) -> Iterable[tuple[Table, Key]]:
    return ()


def _fresh(row: Row | None, sequence: int) -> bool:
    """Whether an event at `sequence` is new to `row` (not a duplicate already applied)."""
    return row is None or sequence > row["last_sequence"]


# -- commands ------------------------------------------------------------------------------


@handles(r.SubmitTask, loads=_task_key)
def on_submit_task(view: View, c: r.SubmitTask, at: At) -> None:
    """An accepted task: `accepted` until the runtime takes it up (TaskSubmitted)."""
    key = (c.meta.tenant, c.task_id)
    task = view.get(TASKS, key)
    when = utc(c.meta.occurred_at)
    if task is None:
        task = _new_task(c.meta.tenant, c.task_id, when, status="accepted")
    elif task["agent_id"] is not None:
        return  # the runtime's events already tell more than the command
    task.update(agent_id=c.agent_id, instruction=c.instruction, chain_id=c.chain_id,
                submitted_at=when)
    view.put(TASKS, task)


@handles(r.RegisterAgent, loads=_agent_key)
def on_register_agent(view: View, c: r.RegisterAgent, at: At) -> None:
    """An agent asked for: `registering` until AgentRegistered (or a refusal)."""
    key = (c.meta.tenant, c.agent_id)
    agent = view.get(AGENTS, key)
    when = utc(c.meta.occurred_at)
    if agent is None:
        agent = {"tenant": c.meta.tenant, "agent_id": c.agent_id, "status": "registering",
                 "policy_version": None, "updated_at": when, "last_sequence": 0}
    elif agent["name"] is not None:
        return
    agent.update(name=c.name, description=c.description, signer_address=c.signer_address,
                 model=c.model, parameters_json=c.parameters_json,
                 requested_policy=to_json(plain(c.policy)), registered_at=when)
    if agent["policy_version"] is None:
        agent["policy_version"] = c.policy.version
    view.put(AGENTS, agent)


@handles(r.CancelTask, r.ApproveAction, r.RejectAction, r.SetPolicy, loads=_nothing)
def on_other_command(view: View, c: Any, at: At) -> None:
    """Commands answered by events (TaskCancelled, ActionApproved, …): nothing until then."""


# -- task events ------------------------------------------------------------------------------


def _new_task(tenant: str, task_id: str, when, *, status: str) -> Row:
    return {"tenant": tenant, "task_id": task_id, "agent_id": None, "status": status,
            "instruction": None, "chain_id": None, "submitted_at": when, "updated_at": when,
            "last_sequence": 0, "last_event_type": None, "last_hash": None,
            "pending_action_id": None, "result": None, "failure": None, "tx_hashes": "[]"}


FINAL = frozenset({"completed", "failed", "cancelled"})
STATUS_AFTER = {
    r.TaskSubmitted.SCHEMA: "submitted",
    r.InferenceRequested.SCHEMA: "running",
    r.InferenceCompleted.SCHEMA: "running",
    r.InferenceFailed.SCHEMA: "running",
    r.ActionProposed.SCHEMA: "running",
    r.PolicyEvaluated.SCHEMA: "running",
    r.ApprovalRequested.SCHEMA: "awaiting_approval",
    r.ActionApproved.SCHEMA: "running",
    r.ActionRejected.SCHEMA: "running",
    r.ToolResultRecorded.SCHEMA: "running",
    r.TaskCompleted.SCHEMA: "completed",
    r.TaskFailed.SCHEMA: "failed",
    r.TaskCancelled.SCHEMA: "cancelled",
}


def _task_event(view: View, e: Any, at: At, task_id: str) -> Row | None:
    """Record the event in the task's trail and move its status on (a final status stays
    final); the task row for the handler to change further, or None (a duplicate, or an
    unchained message, which is not part of the trail)."""
    meta = e.meta
    if meta.sequence < 1:
        return None
    task = view.get(TASKS, (meta.tenant, task_id))
    when = utc(meta.occurred_at)
    if task is None:  # its SubmitTask is on another topic, not read yet (or not kept)
        task = _new_task(meta.tenant, task_id, when, status="accepted")
    elif not _fresh(task, meta.sequence):
        return None
    view.insert(TASK_EVENTS, {
        "tenant": meta.tenant, "task_id": task_id, "sequence": meta.sequence,
        "event_id": meta.event_id, "event_type": meta.event_type, "occurred_at": when,
        "actor": meta.actor, "correlation_id": meta.correlation_id,
        "causation_id": meta.causation_id, "prev_hash": meta.prev_hash, "hash": meta.hash,
        "topic": at.topic, "partition": at.partition, "offset": at.offset,
        "payload": payload_json(e),
    })
    task.update(updated_at=when, last_sequence=meta.sequence, last_event_type=meta.event_type,
                last_hash=meta.hash)
    view.put(TASKS, task)
    if task["status"] not in FINAL:
        task["status"] = STATUS_AFTER.get(meta.event_type, task["status"])
    if task["status"] != "awaiting_approval":
        task["pending_action_id"] = None
    return task


def _add_tx_hashes(task: Row, hashes: Iterable[str | None]) -> None:
    known = json.loads(task["tx_hashes"])
    added = [h for h in hashes if h and h not in known]
    if added:
        task["tx_hashes"] = to_json(known + added)


@handles(r.TaskSubmitted, loads=_task_key)
def on_task_submitted(view: View, e: r.TaskSubmitted, at: At) -> None:
    task = _task_event(view, e, at, e.task_id)
    if task is not None:
        task.update(agent_id=e.agent_id, instruction=e.instruction, chain_id=e.chain_id,
                    submitted_at=utc(e.meta.occurred_at))


@handles(r.InferenceRequested, r.InferenceCompleted, r.InferenceFailed, r.ActionProposed,
         r.PolicyEvaluated, r.ActionApproved, r.ActionRejected, loads=_task_key)
def on_task_progress(view: View, e: Any, at: At) -> None:
    _task_event(view, e, at, e.task_id)


@handles(r.ApprovalRequested, loads=_task_key)
def on_approval_requested(view: View, e: r.ApprovalRequested, at: At) -> None:
    task = _task_event(view, e, at, e.task_id)
    if task is not None and task["status"] == "awaiting_approval":
        task["pending_action_id"] = e.action_id


@handles(r.ToolResultRecorded, loads=_task_key)
def on_tool_result_recorded(view: View, e: r.ToolResultRecorded, at: At) -> None:
    task = _task_event(view, e, at, e.task_id)
    if task is not None:
        _add_tx_hashes(task, [e.tx_hash])


@handles(r.TaskCompleted, loads=_task_key)
def on_task_completed(view: View, e: r.TaskCompleted, at: At) -> None:
    task = _task_event(view, e, at, e.task_id)
    if task is not None and task["status"] == "completed" and task["result"] is None:
        task["result"] = to_json({"summary": e.summary, "tx_hashes": list(e.tx_hashes),
                                  "inference_count": e.inference_count,
                                  "total_cost_usd": e.total_cost_usd})
        _add_tx_hashes(task, e.tx_hashes)


@handles(r.TaskFailed, loads=_task_key)
def on_task_failed(view: View, e: r.TaskFailed, at: At) -> None:
    task = _task_event(view, e, at, e.task_id)
    if task is not None and task["status"] == "failed" and task["failure"] is None:
        task["failure"] = to_json({"code": str(e.code), "reason": e.reason})


@handles(r.TaskCancelled, loads=_task_key)
def on_task_cancelled(view: View, e: r.TaskCancelled, at: At) -> None:
    task = _task_event(view, e, at, e.task_id)
    if task is not None and task["status"] == "cancelled" and task["failure"] is None:
        task["failure"] = to_json({"code": "CANCELLED", "reason": e.reason,
                                   "cancelled_by": e.cancelled_by})


def _rejection_keys(e: r.CommandRejected) -> Iterable[tuple[Table, Key]]:
    table = TASKS if e.meta.aggregate_type == "task" else AGENTS
    return ((table, (e.meta.tenant, e.meta.aggregate_id)),)


@handles(r.CommandRejected, loads=_rejection_keys)
def on_command_rejected(view: View, e: r.CommandRejected, at: At) -> None:
    """A refusal: in the task's trail; a refused SubmitTask fails the task, a refused
    RegisterAgent marks the agent `rejected` (unless it is already registered)."""
    if e.meta.aggregate_type == "task":
        before = view.get(TASKS, (e.meta.tenant, e.meta.aggregate_id))
        task = _task_event(view, e, at, e.meta.aggregate_id)
        if task is not None and e.rejected_command_type == r.SubmitTask.SCHEMA and (
                before is None or before["status"] == "accepted"):
            task.update(status="failed", pending_action_id=None, failure=to_json(
                {"code": f"REJECTED:{e.code}", "reason": e.reason}))
        return
    key = (e.meta.tenant, e.meta.aggregate_id)
    agent = view.get(AGENTS, key)
    when = utc(e.meta.occurred_at)
    if agent is None:
        agent = {"tenant": e.meta.tenant, "agent_id": e.meta.aggregate_id, "name": None,
                 "description": None, "signer_address": None, "model": None,
                 "parameters_json": None, "status": "registering", "policy_version": None,
                 "requested_policy": None, "registered_at": when, "updated_at": when,
                 "last_sequence": 0}
    elif e.meta.sequence and not _fresh(agent, e.meta.sequence):
        return
    if e.rejected_command_type == r.RegisterAgent.SCHEMA and agent["status"] == "registering":
        agent["status"] = "rejected"
    if e.meta.sequence:
        agent.update(updated_at=when, last_sequence=e.meta.sequence)
    view.put(AGENTS, agent)


# -- agent events -----------------------------------------------------------------------------


def _set_policy(view: View, e: Any, policy: r.Policy) -> None:
    meta = e.meta
    when = utc(meta.occurred_at)
    text = to_json(plain(policy))
    current = view.get(POLICIES, (meta.tenant, e.agent_id))
    if _fresh(current, meta.sequence):
        view.put(POLICIES, {"tenant": meta.tenant, "agent_id": e.agent_id,
                            "version": policy.version, "policy": text, "set_at": when,
                            "event_id": meta.event_id, "last_sequence": meta.sequence})
    view.insert(POLICY_HISTORY, {"tenant": meta.tenant, "agent_id": e.agent_id,
                                 "version": policy.version, "policy": text, "set_at": when,
                                 "event_id": meta.event_id})


@handles(r.AgentRegistered, loads=_agent_and_policy_keys)
def on_agent_registered(view: View, e: r.AgentRegistered, at: At) -> None:
    meta = e.meta
    agent = view.get(AGENTS, (meta.tenant, e.agent_id))
    if not _fresh(agent, meta.sequence):
        return
    when = utc(meta.occurred_at)
    view.put(AGENTS, {
        "tenant": meta.tenant, "agent_id": e.agent_id, "name": e.name,
        "description": e.description, "signer_address": e.signer_address, "model": e.model,
        "parameters_json": e.parameters_json, "status": "active",
        "policy_version": e.policy.version, "requested_policy": None, "registered_at": when,
        "updated_at": when, "last_sequence": meta.sequence,
    })
    _set_policy(view, e, e.policy)


@handles(r.PolicySet, loads=_agent_and_policy_keys)
def on_policy_set(view: View, e: r.PolicySet, at: At) -> None:
    meta = e.meta
    key = (meta.tenant, e.agent_id)
    agent = view.get(AGENTS, key)
    if not _fresh(agent, meta.sequence):
        return
    when = utc(meta.occurred_at)
    if agent is None:  # its AgentRegistered is not in the log (retention)
        agent = {"tenant": meta.tenant, "agent_id": e.agent_id, "name": None,
                 "description": None, "signer_address": None, "model": None,
                 "parameters_json": None, "status": "active", "requested_policy": None,
                 "registered_at": when}
    agent.update(policy_version=e.policy.version, updated_at=when,
                 last_sequence=meta.sequence)
    view.put(AGENTS, agent)
    _set_policy(view, e, e.policy)


def _budget(view: View, e: Any, status: str) -> None:
    meta = e.meta
    row = view.get(BUDGETS, (meta.tenant, e.action_id))
    if not _fresh(row, meta.sequence):
        return
    when = utc(meta.occurred_at)
    view.put(BUDGETS, {
        "tenant": meta.tenant, "action_id": e.action_id, "agent_id": e.agent_id,
        "task_id": e.task_id, "status": status, "amount_wei": e.amount_wei,
        "window_start": utc(e.window_start), "window_end": utc(e.window_end),
        "reserved_total_wei": e.reserved_total_wei, "budget_wei": e.budget_wei,
        "policy_version": e.policy_version, "release_reason": None, "reserved_at": when,
        "updated_at": when, "last_sequence": meta.sequence,
    })


@handles(r.BudgetReserved, loads=_budget_key)
def on_budget_reserved(view: View, e: r.BudgetReserved, at: At) -> None:
    _budget(view, e, "reserved")


@handles(r.BudgetExceeded, loads=_budget_key)
def on_budget_exceeded(view: View, e: r.BudgetExceeded, at: At) -> None:
    _budget(view, e, "exceeded")


@handles(r.BudgetReleased, loads=_budget_key)
def on_budget_released(view: View, e: r.BudgetReleased, at: At) -> None:
    meta = e.meta
    row = view.get(BUDGETS, (meta.tenant, e.action_id))
    if not _fresh(row, meta.sequence):
        return
    when = utc(meta.occurred_at)
    if row is None:  # its reservation is not in the log (retention)
        row = {"tenant": meta.tenant, "action_id": e.action_id, "agent_id": e.agent_id,
               "task_id": e.task_id, "amount_wei": e.amount_wei, "window_start": None,
               "window_end": None, "reserved_total_wei": None, "budget_wei": None,
               "policy_version": None, "reserved_at": when}
    row.update(status="released", release_reason=str(e.reason), updated_at=when,
               last_sequence=meta.sequence)
    view.put(BUDGETS, row)


# -- transactions ---------------------------------------------------------------------------


def _new_tx(meta: r.EventMeta, request_id: str, chain_id: int, sender: str, when) -> Row:
    return {"tenant": meta.tenant, "request_id": request_id, "task_id": None,
            "action_id": None, "purpose": None, "chain_id": chain_id, "sender": sender,
            "to": None, "value_wei": None, "nonce": None, "tx_hash": None,
            "status": "requested", "block_number": None, "block_hash": None,
            "confirmations": None, "gas_used": None, "effective_gas_price_wei": None,
            "failure_code": None, "failure_detail": None, "requested_at": when,
            "updated_at": when, "last_sequence": 0, "account_sequence": 0,
            "receipts_sequence": 0}


def _account_of(meta: r.EventMeta) -> tuple[int, str]:
    """(chain id, sender) from the account aggregate id `<chain_id>:<sender>`."""
    chain, _, sender = meta.aggregate_id.partition(":")
    try:
        return int(chain), sender
    except ValueError:
        return 0, sender


def _tx_event(view: View, e: Any) -> Row | None:
    """The transaction row an event of the tx manager's ("account") or the chain watcher's
    ("receipts") chain changes, or None (a duplicate). Each chain is guarded by its own
    position; last_sequence, the upsert guard, is their sum (see V002)."""
    meta = e.meta
    tx = view.get(TRANSACTIONS, (meta.tenant, e.request_id))
    if tx is None:  # its TxRequested is not in the log (retention) or came late
        chain_id, sender = getattr(e, "chain_id", None), getattr(e, "sender", None)
        if chain_id is None or sender is None:
            chain_id, sender = _account_of(meta)
        tx = _new_tx(meta, e.request_id, chain_id, sender, utc(meta.occurred_at))
    position = "receipts_sequence" if meta.aggregate_type == "receipts" else "account_sequence"
    if meta.sequence <= tx[position]:
        return None
    tx[position] = meta.sequence
    tx.update(updated_at=utc(meta.occurred_at),
              last_sequence=tx["account_sequence"] + tx["receipts_sequence"])
    return tx


@handles(r.TxRequested, loads=_tx_key)
def on_tx_requested(view: View, e: r.TxRequested, at: At) -> None:
    meta = e.meta
    tx = view.get(TRANSACTIONS, (meta.tenant, e.request_id))
    if tx is None:
        tx = _new_tx(meta, e.request_id, e.chain_id, e.sender, utc(meta.occurred_at))
    elif tx["purpose"] is not None:
        return  # a duplicate request: the tx manager handles each request_id once
    tx.update(task_id=e.task_id, action_id=e.action_id, purpose=str(e.purpose),
              chain_id=e.chain_id, sender=e.sender, to=e.to, value_wei=e.value_wei)
    view.put(TRANSACTIONS, tx)


@handles(r.TxSigned, loads=_tx_key)
def on_tx_signed(view: View, e: r.TxSigned, at: At) -> None:
    tx = _tx_event(view, e)
    if tx is None:
        return
    tx.update(nonce=e.nonce, tx_hash=e.tx_hash, status="signed")
    view.put(TRANSACTIONS, tx)
    view.merge(TX_HASHES, {"tenant": e.meta.tenant, "tx_hash": e.tx_hash,
                           "request_id": e.request_id, "nonce": e.nonce,
                           "signed_sequence": e.meta.sequence, "replaced_by": None})


@handles(r.TxBroadcast, loads=_tx_key)
def on_tx_broadcast(view: View, e: r.TxBroadcast, at: At) -> None:
    tx = _tx_event(view, e)
    if tx is None:
        return
    if tx["status"] in ("requested", "signed", "broadcast", "reorged"):
        tx["status"] = "broadcast"
    view.put(TRANSACTIONS, tx)


@handles(r.TxReplaced, loads=_tx_key)
def on_tx_replaced(view: View, e: r.TxReplaced, at: At) -> None:
    tx = _tx_event(view, e)
    if tx is None:
        return
    tx.update(tx_hash=e.new_tx_hash, nonce=e.nonce)
    view.put(TRANSACTIONS, tx)
    view.merge(TX_HASHES, {"tenant": e.meta.tenant, "tx_hash": e.old_tx_hash,
                           "request_id": e.request_id, "nonce": e.nonce,
                           "signed_sequence": None, "replaced_by": e.new_tx_hash})
    view.merge(TX_HASHES, {"tenant": e.meta.tenant, "tx_hash": e.new_tx_hash,
                           "request_id": e.request_id, "nonce": e.nonce,
                           "signed_sequence": None, "replaced_by": None})


@handles(r.TxIncluded, loads=_tx_and_receipt_keys)
def on_tx_included(view: View, e: r.TxIncluded, at: At) -> None:
    tx = _tx_event(view, e)
    if tx is None:
        return
    tx.update(status="included", tx_hash=e.tx_hash, block_number=e.block_number,
              block_hash=e.block_hash, confirmations=1, gas_used=e.gas_used,
              effective_gas_price_wei=e.effective_gas_price_wei)
    view.put(TRANSACTIONS, tx)
    when = utc(e.meta.occurred_at)
    view.put(RECEIPTS, {
        "tenant": e.meta.tenant, "tx_hash": e.tx_hash, "request_id": e.request_id,
        "block_number": e.block_number, "block_hash": e.block_hash,
        "transaction_index": e.transaction_index, "gas_used": e.gas_used,
        "effective_gas_price_wei": e.effective_gas_price_wei, "status_ok": int(e.status_ok),
        "contract_address": e.contract_address, "confirmations": 1, "canonical": 1,
        "included_at": when, "updated_at": when, "last_sequence": e.meta.sequence,
    })
    view.merge(TX_HASHES, {"tenant": e.meta.tenant, "tx_hash": e.tx_hash,
                           "request_id": e.request_id, "nonce": tx["nonce"],
                           "signed_sequence": None, "replaced_by": None})


@handles(r.TxConfirmed, loads=_tx_and_receipt_keys)
def on_tx_confirmed(view: View, e: r.TxConfirmed, at: At) -> None:
    tx = _tx_event(view, e)
    if tx is None:
        return
    tx.update(status="confirmed", tx_hash=e.tx_hash, block_number=e.block_number,
              block_hash=e.block_hash, confirmations=e.confirmations,
              failure_code=None, failure_detail=None)  # the chain wins (REPLACEMENT_CAP)
    view.put(TRANSACTIONS, tx)
    receipt = view.get(RECEIPTS, (e.meta.tenant, e.tx_hash))
    if receipt is not None and _fresh(receipt, e.meta.sequence):
        receipt.update(confirmations=e.confirmations, block_number=e.block_number,
                       block_hash=e.block_hash, canonical=1,
                       updated_at=utc(e.meta.occurred_at), last_sequence=e.meta.sequence)
        view.put(RECEIPTS, receipt)


@handles(r.TxReorged, loads=_tx_and_receipt_keys)
def on_tx_reorged(view: View, e: r.TxReorged, at: At) -> None:
    tx = _tx_event(view, e)
    if tx is None:
        return
    tx.update(status="reorged", block_number=None, block_hash=None, confirmations=None,
              gas_used=None, effective_gas_price_wei=None)
    view.put(TRANSACTIONS, tx)
    receipt = view.get(RECEIPTS, (e.meta.tenant, e.tx_hash))
    if receipt is not None and _fresh(receipt, e.meta.sequence):
        receipt.update(canonical=0, confirmations=None, updated_at=utc(e.meta.occurred_at),
                       last_sequence=e.meta.sequence)
        view.put(RECEIPTS, receipt)


@handles(r.TxFailed, loads=_tx_key)
def on_tx_failed(view: View, e: r.TxFailed, at: At) -> None:
    tx = _tx_event(view, e)
    if tx is None:
        return
    if tx["status"] == "confirmed":  # a give-up written before the tx manager saw the
        view.put(TRANSACTIONS, tx)   # confirmation: the confirmation stands
        return
    tx.update(status="failed", failure_code=str(e.code), failure_detail=e.detail)
    if e.tx_hash is not None:
        tx["tx_hash"] = e.tx_hash
    if e.nonce is not None:
        tx["nonce"] = e.nonce
    view.put(TRANSACTIONS, tx)


# -- proofs --------------------------------------------------------------------------------


def _anchor(view: View, e: Any) -> Row | None:
    meta = e.meta
    row = view.get(ANCHORS, (meta.tenant, e.stream_id, e.tree_size))
    if row is None:
        row = {c: None for c in ANCHORS.columns}
        row.update(tenant=meta.tenant, stream_id=e.stream_id, tree_size=e.tree_size,
                   root=e.root, status="signed", last_sequence=0)
    elif not _fresh(row, meta.sequence):
        return None
    row.update(updated_at=utc(meta.occurred_at), last_sequence=meta.sequence)
    return row


@handles(r.CheckpointSigned, loads=_anchor_key)
def on_checkpoint_signed(view: View, e: r.CheckpointSigned, at: At) -> None:
    row = _anchor(view, e)
    if row is None:
        return
    row.update(root=e.root, first_offset=e.first_offset, last_offset=e.last_offset,
               previous_tree_size=e.previous_tree_size, previous_root=e.previous_root,
               digest=e.digest, signer=e.signer, signature=e.signature,
               signed_at=utc(e.meta.occurred_at))
    view.put(ANCHORS, row)


@handles(r.AnchorSubmitted, loads=_anchor_key)
def on_anchor_submitted(view: View, e: r.AnchorSubmitted, at: At) -> None:
    row = _anchor(view, e)
    if row is None:
        return
    if row["status"] != "confirmed":
        row["status"] = "submitted"
    row.update(chain_id=e.chain_id, request_id=e.request_id, anchor_address=e.anchor_address,
               submitted_at=utc(e.meta.occurred_at))
    if e.tx_hash is not None:
        row["tx_hash"] = e.tx_hash
    view.put(ANCHORS, row)


@handles(r.AnchorConfirmed, loads=_anchor_key)
def on_anchor_confirmed(view: View, e: r.AnchorConfirmed, at: At) -> None:
    row = _anchor(view, e)
    if row is None:
        return
    row.update(status="confirmed", chain_id=e.chain_id, request_id=e.request_id,
               tx_hash=e.tx_hash, block_number=e.block_number, block_hash=e.block_hash,
               confirmed_at=utc(e.meta.occurred_at))
    view.put(ANCHORS, row)
