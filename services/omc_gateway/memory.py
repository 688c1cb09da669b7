"""In-memory implementations of the ports, for tests and trying the API without the stack.

They behave as the real adapters do, down to the errors (a `down` flag makes each answer
`Unavailable` as when its service is stopped); the adapter contract tests run against both.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from omc_events.record import Record
from omc_gateway.apikeys import ApiKey, check_scopes, check_tenant, digest, new_token
from omc_gateway.commands import SealedCommand
from omc_gateway.errors import (
    FieldError,
    IdempotencyConflict,
    InvalidParameters,
    RateLimited,
    Unavailable,
)
from omc_gateway.ports import AsOf, One, Page, StoredAnswer

TERMINAL = frozenset({"omc.task.TaskCompleted", "omc.task.TaskFailed", "omc.task.TaskCancelled"})


def _down(dependency: str) -> Unavailable:
    return Unavailable(dependency, f"{dependency} is not answering; retry later.")


class MemoryCommandBus:
    """`published`: the records, in order; `bodies`: their Avro bodies as they were sent."""

    def __init__(self) -> None:
        self.published: list[Record] = []
        self.bodies: list[bytes] = []
        self.down = False

    async def publish(self, command: SealedCommand) -> None:
        if self.down:
            raise _down("kafka")
        self.published.append(command.record)
        self.bodies.append(command.body)

    async def ping(self) -> None:
        if self.down:
            raise _down("kafka")


class MemoryKeyTable:
    """The `api_keys` table in memory: a lookup function for `apikeys.CachedKeyStore`."""

    def __init__(self) -> None:
        self.rows: dict[str, ApiKey] = {}
        self.down = False

    def create(self, tenant: str, scopes: Any) -> str:
        token, key_id, secret = new_token()
        self.rows[key_id] = ApiKey(key_id, digest(secret), check_tenant(tenant),
                                   check_scopes(scopes), created_at=datetime.now(UTC))
        return token

    def revoke(self, key_id: str) -> None:
        row = self.rows[key_id]
        self.rows[key_id] = ApiKey(row.key_id, row.secret_sha256, row.tenant, row.scopes,
                                   row.name, row.created_at, datetime.now(UTC))

    def lookup(self, key_id: str) -> ApiKey | None:
        if self.down:
            raise _down("mysql")
        return self.rows.get(key_id)


class MemoryRateLimiter:
    def __init__(self, *, limit: int, window: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self.counts: dict[tuple[str, int], int] = {}
        self.down = False

    async def hit(self, key_id: str) -> None:
        if self.down:
            raise _down("redis")
        now = self.clock()
        number = int(now // self.window)
        count = self.counts[(key_id, number)] = self.counts.get((key_id, number), 0) + 1
        if count > self.limit:
            raise RateLimited(self.limit, self.window,
                              max(1, math.ceil((number + 1) * self.window - now)))

    async def ping(self) -> None:
        if self.down:
            raise _down("redis")


class MemoryIdempotency:
    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], dict[str, Any]] = {}
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise _down("redis")

    async def begin(self, key_id: str, idempotency_key: str,
                    fingerprint: str) -> StoredAnswer | None:
        self._check()
        found = self.entries.get((key_id, idempotency_key))
        if found is None:
            self.entries[(key_id, idempotency_key)] = {"state": "pending",
                                                       "fingerprint": fingerprint}
            return None
        if found["fingerprint"] != fingerprint:
            raise IdempotencyConflict("This Idempotency-Key was already used with another "
                                      "request body; use a new key for a new request.")
        if found["state"] == "pending":
            raise IdempotencyConflict("A request with this Idempotency-Key is still in "
                                      "progress; retry shortly.", headers={"Retry-After": "1"})
        return found["answer"]

    async def complete(self, key_id: str, idempotency_key: str, fingerprint: str,
                       answer: StoredAnswer) -> None:
        self._check()
        self.entries[(key_id, idempotency_key)] = {"state": "done", "fingerprint": fingerprint,
                                                   "answer": answer}

    async def abandon(self, key_id: str, idempotency_key: str, fingerprint: str) -> None:
        self._check()
        found = self.entries.get((key_id, idempotency_key))
        if found and found["state"] == "pending" and found["fingerprint"] == fingerprint:
            del self.entries[(key_id, idempotency_key)]


@dataclass
class _Tenant:
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    transactions: dict[str, dict[str, Any]] = field(default_factory=dict)
    receipts: dict[str, dict[str, Any]] = field(default_factory=dict)


class MemoryReadModel:
    """Both projections in memory. Cursors are positions in a list; `mysql_down` and
    `redis_down` make each side unavailable."""

    def __init__(self) -> None:
        self.tenants: dict[str, _Tenant] = {}
        self.mysql_down = False
        self.redis_down = False
        self.as_of = AsOf("mysql", {"omc.task.events.v1/0": 0}, None)

    def _tenant(self, tenant: str) -> _Tenant:
        return self.tenants.setdefault(tenant, _Tenant())

    # -- filling it -----------------------------------------------------------------------

    def add_task(self, tenant: str, task: Mapping[str, Any]) -> None:
        self._tenant(tenant).tasks[task["task_id"]] = {"tenant": tenant, **task}
        self._tenant(tenant).events.setdefault(task["task_id"], [])

    def add_event(self, tenant: str, task_id: str, event: Mapping[str, Any]) -> None:
        self._tenant(tenant).events.setdefault(task_id, []).append(dict(event))

    def add_agent(self, tenant: str, agent: Mapping[str, Any],
                  policy: Mapping[str, Any]) -> None:
        self._tenant(tenant).agents[agent["agent_id"]] = {"tenant": tenant, **agent}
        self._tenant(tenant).policies[agent["agent_id"]] = dict(policy)

    def add_transaction(self, tenant: str, tx: Mapping[str, Any],
                        receipt: Mapping[str, Any] | None = None) -> None:
        for tx_hash in tx.get("tx_hashes") or [tx["tx_hash"]]:
            self._tenant(tenant).transactions[tx_hash] = {"tenant": tenant, **tx}
            if receipt is not None:
                self._tenant(tenant).receipts[tx_hash] = dict(receipt)

    # -- MySQL side -----------------------------------------------------------------------

    def _sql(self) -> None:
        if self.mysql_down:
            raise _down("mysql")

    def _page(self, items: list[dict[str, Any]], limit: int, cursor: str | None) -> Page:
        start = 0
        if cursor is not None:
            if not cursor.startswith("p") or not cursor[1:].isdigit():
                raise InvalidParameters([FieldError(
                    "cursor", "is not a cursor of this list (give the next_cursor of its "
                              "previous page)")])
            start = int(cursor[1:])
        chunk = items[start:start + limit]
        more = start + limit < len(items)
        return Page(chunk, f"p{start + limit}" if more else None, self.as_of)

    async def list_tasks(self, tenant: str, *, status: str | None, agent_id: str | None,
                         limit: int, cursor: str | None) -> Page:
        self._sql()
        tasks = [t for t in reversed(self._tenant(tenant).tasks.values())
                 if (status is None or t.get("status") == status)
                 and (agent_id is None or t.get("agent_id") == agent_id)]
        return self._page(tasks, limit, cursor)

    async def get_task(self, tenant: str, task_id: str) -> One | None:
        self._sql()
        task = self._tenant(tenant).tasks.get(task_id)
        return One(task, self.as_of) if task else None

    async def task_events(self, tenant: str, task_id: str, *, after: int,
                          limit: int) -> Page | None:
        self._sql()
        if task_id not in self._tenant(tenant).tasks:
            return None
        events = [e for e in self._tenant(tenant).events[task_id] if e["sequence"] > after]
        return Page(events[:limit], None, self.as_of)

    async def list_agents(self, tenant: str, *, limit: int, cursor: str | None) -> Page:
        self._sql()
        return self._page(list(self._tenant(tenant).agents.values()), limit, cursor)

    async def get_agent(self, tenant: str, agent_id: str) -> One | None:
        self._sql()
        agent = self._tenant(tenant).agents.get(agent_id)
        return One(agent, self.as_of) if agent else None

    async def get_policy(self, tenant: str, agent_id: str) -> One | None:
        self._sql()
        policy = self._tenant(tenant).policies.get(agent_id)
        return One(policy, self.as_of) if policy else None

    async def list_transactions(self, tenant: str, *, task_id: str | None, status: str | None,
                                limit: int, cursor: str | None) -> Page:
        self._sql()
        unique = {id(tx): tx for tx in self._tenant(tenant).transactions.values()}
        txs = [tx for tx in unique.values()
               if (task_id is None or tx.get("task_id") == task_id)
               and (status is None or tx.get("status") == status)]
        return self._page(txs, limit, cursor)

    async def get_transaction(self, tenant: str, tx_hash: str) -> One | None:
        self._sql()
        tx = self._tenant(tenant).transactions.get(tx_hash)
        return One(tx, self.as_of) if tx else None

    async def get_receipt(self, tenant: str, tx_hash: str) -> One | None:
        self._sql()
        receipt = self._tenant(tenant).receipts.get(tx_hash)
        return One(receipt, self.as_of) if receipt else None

    async def ping_mysql(self) -> None:
        self._sql()

    # -- Redis side -----------------------------------------------------------------------

    def _live(self) -> None:
        if self.redis_down:
            raise _down("redis")

    async def task_status(self, tenant: str, task_id: str) -> Mapping[str, Any] | None:
        self._live()
        task = self._tenant(tenant).tasks.get(task_id)
        return {"status": task.get("status")} if task else None

    async def read_events(self, tenant: str, task_id: str, *, after: int, block_ms: int,
                          limit: int = 100) -> list[Mapping[str, Any]]:
        deadline = time.monotonic() + block_ms / 1000
        while True:
            self._live()
            events = [e for e in self._tenant(tenant).events.get(task_id, [])
                      if e["sequence"] > after]
            if events or time.monotonic() >= deadline:
                return events[:limit]
            await asyncio.sleep(0.01)

    async def last_sequence(self, tenant: str, task_id: str) -> int | None:
        self._live()
        events = self._tenant(tenant).events.get(task_id)
        return events[-1]["sequence"] if events else None

    def is_terminal(self, event_type: str) -> bool:
        return event_type in TERMINAL
