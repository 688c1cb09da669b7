"""The runtime's in-memory views, each a fold of one topic (rebuilt from offset 0 on start).

    Agents     omc.agent.events.v1  agent states (policy, budget reservations), and the
                                    actions whose budget was refused
    Requests   omc.tx.events.v1     transaction requests by id, their final outcomes, and
                                    the trace context each outcome event carries
    Tasks      omc.task.events.v1   task states, and the partition that owns each task

Folds are idempotent: the runtime applies its own writes at once and reads them back later,
and the domain's `evolve` ignores what it has already folded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from omc_domain import agent as agents
from omc_domain import task as tasks
from omc_events.envelope import ChainHead
from omc_events.record import Record
from omc_events.records import (
    BudgetExceeded,
    BudgetReleased,
    BudgetReserved,
    TxConfirmed,
    TxFailed,
    TxRequested,
)

BUDGET_EVENTS = (BudgetReserved, BudgetExceeded, BudgetReleased)


@dataclass
class Agents:
    states: dict[str, agents.AgentState] = field(default_factory=dict)
    heads: dict[str, ChainHead] = field(default_factory=dict)
    exceeded: set[str] = field(default_factory=set)
    reserving: dict[str, set[str]] = field(default_factory=dict)
    """Task id -> action ids with a reservation not released yet."""

    def apply(self, record: Record, partition: int = -1) -> str | None:
        """Fold `record`; the id of the task it concerns, if any."""
        meta = record.meta  # type: ignore[attr-defined]
        agent_id = meta.aggregate_id
        head = self.heads.get(agent_id, ChainHead())
        if meta.sequence <= head.sequence:
            return None
        self.heads[agent_id] = ChainHead(meta.sequence, meta.hash)
        state = agents.evolve(self.states.get(agent_id), record)
        if state is not None:
            self.states[agent_id] = state
        if isinstance(record, BudgetExceeded):
            self.exceeded.add(record.action_id)
        elif isinstance(record, BudgetReserved):
            self.reserving.setdefault(record.task_id, set()).add(record.action_id)
        elif isinstance(record, BudgetReleased):
            held = self.reserving.get(record.task_id, set())
            held.discard(record.action_id)
            if not held:
                self.reserving.pop(record.task_id, None)
        return record.task_id if isinstance(record, BUDGET_EVENTS) else None

    def get(self, agent_id: str) -> agents.AgentState | None:
        return self.states.get(agent_id)

    def head(self, agent_id: str) -> ChainHead:
        """Where the agent's chain stands (CommandRejected events count too)."""
        return self.heads.get(agent_id, ChainHead())


class Traced(NamedTuple):
    """Where an event's trace context points (for a span link: `omc_obs.tracing.link_to`)."""

    event_id: str
    event_type: str
    traceparent: str
    tracestate: str | None


@dataclass
class Requests:
    tasks: dict[str, str] = field(default_factory=dict)
    outcomes: dict[str, tasks.TxOutcome] = field(default_factory=dict)
    settled_by: dict[str, Traced] = field(default_factory=dict)
    """Request id -> the trace context of its outcome event (TxConfirmed, TxFailed), when
    it carries one: the span of the watcher or tx manager that settled it."""

    def apply(self, record: Record, partition: int = -1) -> str | None:
        """Fold `record`; the id of the task whose request it settles, if any."""
        if isinstance(record, TxRequested):
            if record.task_id is not None:
                self.tasks[record.request_id] = record.task_id
            return None
        if isinstance(record, TxConfirmed):
            self.outcomes[record.request_id] = tasks.TxOutcome(
                ok=True, tx_hash=record.tx_hash, block_number=record.block_number,
                detail=f"confirmed with {record.confirmations} confirmations")
        elif isinstance(record, TxFailed):
            self.outcomes[record.request_id] = tasks.TxOutcome(
                ok=False, tx_hash=record.tx_hash, block_number=None,
                detail=f"{record.code}: {record.detail}")
        else:
            return None
        meta = record.meta
        if meta.traceparent:
            self.settled_by[record.request_id] = Traced(meta.event_id, meta.event_type,
                                                        meta.traceparent, meta.tracestate)
        return self.tasks.get(record.request_id)


@dataclass
class Tasks:
    states: dict[str, tasks.TaskState] = field(default_factory=dict)
    homes: dict[str, int] = field(default_factory=dict)
    open: set[str] = field(default_factory=set)
    """Tasks that have not ended."""

    def apply(self, record: Record, partition: int = -1) -> str | None:
        """Fold `record` (read from `partition`); the task's id."""
        task_id = record.meta.aggregate_id  # type: ignore[attr-defined]
        state = tasks.evolve(self.states.get(task_id), record)
        if state is not None:
            self.states[task_id] = state
            if partition >= 0:
                self.homes.setdefault(task_id, partition)
            if state.terminal:
                self.open.discard(task_id)
            else:
                self.open.add(task_id)
        return task_id

    def get(self, task_id: str) -> tasks.TaskState | None:
        return self.states.get(task_id)
