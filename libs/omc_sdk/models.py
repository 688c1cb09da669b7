"""The shapes the gateway answers with (docs/api.md, "Items"), as frozen dataclasses.

Each item is built with `Item.from_json(mapping)`: fields the contract names become
attributes, fields it does not name are ignored (a newer gateway may add some) and every
item keeps the mapping it came from in `.raw` (not part of equality), so nothing is lost
when printing JSON for scripts. Only the identifying fields are required; a missing one is
a `ProtocolError`. Amounts in wei stay decimal strings, as on the wire: never floats.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Self, TypeVar

from omc_sdk.errors import ProtocolError

TERMINAL_EVENTS = frozenset({"omc.task.TaskCompleted", "omc.task.TaskFailed",
                             "omc.task.TaskCancelled"})
"""Full Avro names, as events carry them (`event_type`)."""
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})

T = TypeVar("T", bound="Item")


def _tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, list | tuple) else ()


def _mapping(value: Any) -> Mapping[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _as(convert: Callable[[Any], Any]) -> dict[str, Any]:
    return {"convert": convert}


def _raw() -> Any:
    return field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Item:
    """Base of every answer shape: `from_json` builds one, tolerant of extra fields."""

    required: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_json(cls, data: Any) -> Self:
        if not isinstance(data, Mapping):
            raise ProtocolError(f"expected a JSON object for {cls.__name__}, got {data!r:.80}")
        missing = [name for name in cls.required if data.get(name) is None]
        if missing:
            raise ProtocolError(f"{cls.__name__} without {', '.join(missing)}: {dict(data)!r:.200}")
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name == "raw" or f.name not in data:
                continue
            convert = f.metadata.get("convert")
            values[f.name] = convert(data[f.name]) if convert else data[f.name]
        if any(f.name == "raw" for f in dataclasses.fields(cls)):
            values["raw"] = dict(data)
        return cls(**values)


@dataclass(frozen=True)
class AsOf(Item):
    """How fresh a query's answer is: the projection's next offset per partition."""

    projection: str | None = None
    offsets: Mapping[str, int] = field(default_factory=dict, metadata=_as(_mapping))
    updated_at: str | None = None


@dataclass(frozen=True)
class Task(Item):
    """One task, as the task projection sees it."""

    required: ClassVar[tuple[str, ...]] = ("task_id", "status")
    task_id: str = ""
    status: str = ""
    tenant: str | None = None
    agent_id: str | None = None
    instruction: str | None = None
    chain_id: int | None = None
    submitted_at: str | None = None
    updated_at: str | None = None
    last_sequence: int | None = None
    last_event_type: str | None = None
    last_hash: str | None = None
    pending_action_id: str | None = None
    result: Any = None
    failure: Any = None
    tx_hashes: tuple[str, ...] = field(default=(), metadata=_as(_tuple))
    raw: Mapping[str, Any] = _raw()

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


@dataclass(frozen=True)
class TaskEvent(Item):
    """One event of a task's audit trail (and of its live stream)."""

    required: ClassVar[tuple[str, ...]] = ("sequence", "event_type")
    sequence: int = 0
    event_type: str = ""
    event_id: str | None = None
    occurred_at: str | None = None
    actor: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    prev_hash: str | None = None
    hash: str | None = None
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    payload: Mapping[str, Any] = field(default_factory=dict, metadata=_as(_mapping))
    raw: Mapping[str, Any] = _raw()

    @property
    def is_terminal(self) -> bool:
        return self.event_type in TERMINAL_EVENTS


@dataclass(frozen=True)
class Agent(Item):
    """One registered agent."""

    required: ClassVar[tuple[str, ...]] = ("agent_id",)
    agent_id: str = ""
    tenant: str | None = None
    name: str | None = None
    description: str | None = None
    signer_address: str | None = None
    model: str | None = None
    status: str | None = None
    policy_version: int | None = None
    registered_at: str | None = None
    updated_at: str | None = None
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class TokenLimit(Item):
    """One ERC-20 token's limits in a policy, exactly `omc.agent.TokenLimit`: amounts are the
    token's base units as decimal strings."""

    token: str | None = None
    max_amount: str | None = None
    budget_amount: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"token": self.token, "max_amount": self.max_amount,
                "budget_amount": self.budget_amount}


def _token_limits(value: Any) -> tuple[TokenLimit, ...]:
    return tuple(TokenLimit.from_json(item) for item in _tuple(value))


@dataclass(frozen=True)
class Policy(Item):
    """An agent's policy, exactly `omc.agent.Policy`; amounts are wei as decimal strings."""

    version: int | None = None
    allowed_chain_ids: tuple[int, ...] = field(default=(), metadata=_as(_tuple))
    allowed_contracts: tuple[str, ...] = field(default=(), metadata=_as(_tuple))
    allowed_selectors: tuple[str, ...] = field(default=(), metadata=_as(_tuple))
    deny_addresses: tuple[str, ...] = field(default=(), metadata=_as(_tuple))
    allowed_recipients: tuple[str, ...] = field(default=(), metadata=_as(_tuple))
    max_value_wei: str | None = None
    budget_wei: str | None = None
    budget_window_seconds: int | None = None
    max_fee_per_gas_wei: str | None = None
    approval_threshold_wei: str | None = None
    max_inferences_per_task: int | None = None
    token_limits: tuple[TokenLimit, ...] = field(default=(), metadata=_as(_token_limits))
    raw: Mapping[str, Any] = _raw()

    def to_json(self) -> dict[str, Any]:
        """The policy as the API takes it (the fields it came with, else the known ones)."""
        if self.raw:
            return dict(self.raw)
        return {f.name: [x.to_json() if isinstance(x, TokenLimit) else x for x in v]
                if isinstance(v, tuple) else v
                for f in dataclasses.fields(self) if f.name != "raw"
                for v in [getattr(self, f.name)]}


@dataclass(frozen=True)
class Transaction(Item):
    """One transaction request and what became of it on chain."""

    required: ClassVar[tuple[str, ...]] = ("request_id",)
    request_id: str = ""
    tenant: str | None = None
    task_id: str | None = None
    action_id: str | None = None
    chain_id: int | None = None
    sender: str | None = None
    to: str | None = None
    value_wei: str | None = None
    nonce: int | None = None
    tx_hash: str | None = None
    tx_hashes: tuple[str, ...] = field(default=(), metadata=_as(_tuple))
    status: str | None = None
    block_number: int | None = None
    block_hash: str | None = None
    confirmations: int | None = None
    gas_used: int | None = None
    effective_gas_price_wei: str | None = None
    updated_at: str | None = None
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class Receipt(Item):
    """A transaction's receipt."""

    required: ClassVar[tuple[str, ...]] = ("tx_hash",)
    tx_hash: str = ""
    block_number: int | None = None
    block_hash: str | None = None
    gas_used: int | None = None
    effective_gas_price_wei: str | None = None
    status_ok: bool | None = None
    contract_address: str | None = None
    confirmations: int | None = None
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class Accepted(Item):
    """A command's 202 answer: it is on the log; `location` is the aggregate it acts on."""

    required: ClassVar[tuple[str, ...]] = ("command_id",)
    command_id: str = ""
    aggregate_id: str | None = None
    location: str | None = None
    command_type: str | None = None
    status: str = "accepted"
    links: Mapping[str, str] = field(default_factory=dict, metadata=_as(_mapping))
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list; pass `next_cursor` back for the next one (None: this was the last)."""

    items: tuple[T, ...]
    next_cursor: str | None
    as_of: AsOf | None = None

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


@dataclass(frozen=True)
class Health:
    """What /healthz or /readyz said: `ok` is a 200; `checks` names each dependency's state."""

    ok: bool
    status_code: int
    body: Mapping[str, Any] = field(default_factory=dict)

    @property
    def checks(self) -> Mapping[str, Any]:
        checks = self.body.get("checks")
        return dict(checks) if isinstance(checks, Mapping) else {}
