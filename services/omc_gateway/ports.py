"""The interfaces the app depends on. The composition root (`wiring`) passes real adapters
(Kafka, MySQL, Redis); unit tests pass the in-memory ones of `memory`, which implement the
same protocols and are held to the same contract tests.

Every method raises `errors.Unavailable` when its backing service does not answer, and only
the gateway's own errors otherwise. A resource with `open()`/`close()` coroutines is opened
in the app's lifespan and closed after it.

The query answers are the projections' own objects (`omc_proj_mysql.queries.Page`, `One`);
the app reads only the attributes below, so any object with them will do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from omc_gateway.commands import Principal, SealedCommand


class AsOfLike(Protocol):
    def to_json(self) -> dict[str, Any]: ...


class PageLike(Protocol):
    items: Sequence[Mapping[str, Any]]
    next_cursor: str | None
    as_of: AsOfLike


class OneLike(Protocol):
    item: Mapping[str, Any]
    as_of: AsOfLike


@dataclass(frozen=True)
class AsOf:
    """A projection's position (the shape of `omc_proj_mysql.queries.AsOf`)."""

    projection: str
    offsets: Mapping[str, int] = field(default_factory=dict)
    updated_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"projection": self.projection, "offsets": dict(self.offsets),
                "updated_at": self.updated_at}


@dataclass(frozen=True)
class Page:
    items: Sequence[Mapping[str, Any]]
    next_cursor: str | None
    as_of: AsOf


@dataclass(frozen=True)
class One:
    item: Mapping[str, Any]
    as_of: AsOf


@dataclass(frozen=True)
class StoredAnswer:
    """What an Idempotency-Key replays: the first answer's status, body and Location."""

    status: int
    body: Mapping[str, Any]
    location: str | None = None


class CommandBus(Protocol):
    async def publish(self, command: SealedCommand) -> None:
        """Return once Kafka acknowledged the command (acks=all); `Unavailable` if not."""

    async def ping(self) -> None:
        """Raise `Unavailable` unless the log answers a metadata request."""


class ReadModel(Protocol):
    """The projections, for one tenant at a time; a cursor the projection refuses raises
    `errors.InvalidParameters` naming `cursor`."""

    async def list_tasks(self, tenant: str, *, status: str | None, agent_id: str | None,
                         limit: int, cursor: str | None) -> PageLike: ...

    async def get_task(self, tenant: str, task_id: str) -> OneLike | None: ...

    async def task_events(self, tenant: str, task_id: str, *, after: int,
                          limit: int) -> PageLike | None: ...

    async def list_agents(self, tenant: str, *, limit: int,
                          cursor: str | None) -> PageLike: ...

    async def get_agent(self, tenant: str, agent_id: str) -> OneLike | None: ...

    async def get_policy(self, tenant: str, agent_id: str) -> OneLike | None: ...

    async def list_transactions(self, tenant: str, *, task_id: str | None,
                                status: str | None, limit: int,
                                cursor: str | None) -> PageLike: ...

    async def get_transaction(self, tenant: str, tx_hash: str) -> OneLike | None: ...

    async def get_receipt(self, tenant: str, tx_hash: str) -> OneLike | None: ...

    # -- the live view (Redis), which answers while MySQL is down ----------------------------

    async def task_status(self, tenant: str, task_id: str) -> Mapping[str, Any] | None: ...

    async def read_events(self, tenant: str, task_id: str, *, after: int, block_ms: int,
                          limit: int = 100) -> list[Mapping[str, Any]]: ...

    async def last_sequence(self, tenant: str, task_id: str) -> int | None: ...

    def is_terminal(self, event_type: str) -> bool: ...

    async def ping_mysql(self) -> None: ...


class KeyStore(Protocol):
    async def authenticate(self, token: str) -> Principal:
        """The principal of a presented key; `Unauthorized` for a malformed, unknown or
        revoked one; `Unavailable` when keys cannot be looked up."""


class RateLimiter(Protocol):
    async def hit(self, key_id: str) -> None:
        """Count one request of `key_id`; `RateLimited` (with Retry-After) over the limit."""

    async def ping(self) -> None: ...


class IdempotencyStore(Protocol):
    async def begin(self, key_id: str, idempotency_key: str,
                    fingerprint: str) -> StoredAnswer | None:
        """None: this request goes ahead (the key is now held as in progress). A stored
        answer: replay it. `IdempotencyConflict`: another body, or still in progress."""

    async def complete(self, key_id: str, idempotency_key: str, fingerprint: str,
                       answer: StoredAnswer) -> None:
        """Keep the answer for the key's time to live."""

    async def abandon(self, key_id: str, idempotency_key: str, fingerprint: str) -> None:
        """Release the key: nothing was done, so nothing is stored."""


@runtime_checkable
class Resource(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...
