"""The HTTP API (docs/api.md) as data: one function per route builds a `Call` (method, path,
query, body, headers) and names how its answer is read. Both clients, sync and async, send
these same calls; nothing here does I/O.

Commands always carry an `Idempotency-Key` (a fresh UUID4 unless the caller gives one), and
the key is part of the call, so every retry of it sends the same key and the gateway answers
the first result again instead of doing the work twice.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from omc_sdk.errors import InvalidArgument, ProtocolError
from omc_sdk.models import (
    Accepted,
    Agent,
    AsOf,
    Health,
    Item,
    Page,
    Policy,
    Receipt,
    Task,
    TaskEvent,
    Transaction,
)

R = TypeVar("R")
T = TypeVar("T", bound=Item)

MAX_LIMIT = 200
MAX_EVENTS_LIMIT = 500  # a task's trail comes in larger pages
MAX_IDEMPOTENCY_KEY = 200


@dataclass(frozen=True)
class Call(Generic[R]):
    """One request and how to read its answer. `answers`: statuses that are not errors."""

    method: str
    path: str
    parse: Callable[[httpx.Response], R]
    params: Mapping[str, Any] = field(default_factory=dict)
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    answers: frozenset[int] = frozenset({200})
    retry_statuses: bool = True
    authenticated: bool = True

    def describe(self) -> str:
        return f"{self.method} {self.path}"


def segment(value: Any) -> str:
    """An id as one path segment: nothing in it can climb out of the route."""
    text = str(value)
    if not text:
        raise InvalidArgument("an id cannot be empty")
    return quote(text, safe="")


def idempotency_headers(key: str | None) -> dict[str, str]:
    key = str(uuid.uuid4()) if key is None else key
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not (key.isascii() and key.isprintable()):
        raise InvalidArgument("an Idempotency-Key is 1-200 printable ASCII characters")
    return {"Idempotency-Key": key}


def wei(value: int | str | None, name: str) -> str | None:
    """An amount in wei as the API takes it: a decimal string (never a float)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"{name} is wei as an int or a decimal string, not {type(value).__name__}")
    return str(value)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError) as error:
        raise ProtocolError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code} with a body that is not JSON: {response.text[:120]!r}"
        ) from error


def _object(response: httpx.Response) -> Mapping[str, Any]:
    body = _json(response)
    if not isinstance(body, Mapping):
        raise ProtocolError(f"{response.request.url.path} answered {type(body).__name__}, "
                            "not a JSON object")
    return body


def item_of(cls: type[T]) -> Callable[[httpx.Response], T]:
    def parse(response: httpx.Response) -> T:
        body = _object(response)
        return cls.from_json(body.get("item", body))
    return parse


def page_of(cls: type[T]) -> Callable[[httpx.Response], Page[T]]:
    def parse(response: httpx.Response) -> Page[T]:
        body = _object(response)
        items = body.get("items")
        if not isinstance(items, list):
            raise ProtocolError(f"{response.request.url.path} answered a list without items[]")
        cursor = body.get("next_cursor")
        as_of = body.get("as_of")
        return Page(items=tuple(cls.from_json(i) for i in items),
                    next_cursor=str(cursor) if cursor else None,
                    as_of=AsOf.from_json(as_of) if isinstance(as_of, Mapping) else None)
    return parse


def accepted(response: httpx.Response) -> Accepted:
    body = dict(_object(response))
    links = body.get("links")
    location = response.headers.get("Location") or (
        links.get("self") if isinstance(links, Mapping) else None)
    body.setdefault("location", location)
    if not body.get("aggregate_id") and location:
        body["aggregate_id"] = location.rstrip("/").rsplit("/", 1)[-1]
    return Accepted.from_json(body)


def health(response: httpx.Response) -> Health:
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        body = {"detail": response.text[:200]}
    return Health(ok=response.status_code == 200, status_code=response.status_code,
                  body=body if isinstance(body, Mapping) else {"body": body})


def _query(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _limit(limit: int | None, maximum: int = MAX_LIMIT) -> int | None:
    if limit is not None and not 1 <= limit <= maximum:
        raise InvalidArgument(f"limit is 1-{maximum}, not {limit}")
    return limit


def _command(method: str, path: str, body: Mapping[str, Any],
             idempotency_key: str | None) -> Call[Accepted]:
    return Call(method, path, accepted, body={k: v for k, v in body.items() if v is not None},
                headers=idempotency_headers(idempotency_key),
                answers=frozenset({200, 201, 202}))


# -- commands ---------------------------------------------------------------------------------


def submit_task(agent_id: str, instruction: str, *, chain_id: int,
                max_value_wei: int | str | None = None, deadline: datetime | str | None = None,
                metadata: Mapping[str, Any] | None = None,
                idempotency_key: str | None = None) -> Call[Accepted]:
    if isinstance(deadline, datetime):
        if deadline.tzinfo is None:
            raise InvalidArgument("deadline needs a time zone (RFC 3339)")
        deadline = deadline.isoformat()
    return _command("POST", "/v1/tasks", {
        "agent_id": agent_id, "instruction": instruction, "chain_id": chain_id,
        "max_value_wei": wei(max_value_wei, "max_value_wei"), "deadline": deadline,
        "metadata": dict(metadata) if metadata is not None else None,
    }, idempotency_key)


def cancel_task(task_id: str, reason: str, *,
                idempotency_key: str | None = None) -> Call[Accepted]:
    return _command("POST", f"/v1/tasks/{segment(task_id)}/cancel", {"reason": reason},
                    idempotency_key)


def approve_action(task_id: str, action_id: str, action_hash: str, comment: str | None = None,
                   *, idempotency_key: str | None = None) -> Call[Accepted]:
    """`action_hash`: the ApprovalRequested's action_hash, the exact action approved."""
    return _command("POST", f"/v1/tasks/{segment(task_id)}/actions/{segment(action_id)}/approve",
                    {"action_hash": action_hash, "comment": comment}, idempotency_key)


def reject_action(task_id: str, action_id: str, action_hash: str, reason: str, *,
                  idempotency_key: str | None = None) -> Call[Accepted]:
    """`action_hash`: the ApprovalRequested's action_hash, the exact action rejected."""
    return _command("POST", f"/v1/tasks/{segment(task_id)}/actions/{segment(action_id)}/reject",
                    {"action_hash": action_hash, "reason": reason}, idempotency_key)


def _policy(policy: Policy | Mapping[str, Any]) -> dict[str, Any]:
    return policy.to_json() if isinstance(policy, Policy) else dict(policy)


def register_agent(*, name: str, signer_address: str, model: str,
                   policy: Policy | Mapping[str, Any], description: str,
                   agent_id: str | None = None, parameters: Mapping[str, Any] | None = None,
                   idempotency_key: str | None = None) -> Call[Accepted]:
    return _command("POST", "/v1/agents", {
        "agent_id": agent_id, "name": name, "description": description,
        "signer_address": signer_address, "model": model,
        "parameters": dict(parameters) if parameters is not None else None,
        "policy": _policy(policy),
    }, idempotency_key)


def set_policy(agent_id: str, policy: Policy | Mapping[str, Any], *,
               idempotency_key: str | None = None) -> Call[Accepted]:
    return _command("PUT", f"/v1/agents/{segment(agent_id)}/policy", {"policy": _policy(policy)},
                    idempotency_key)


# -- queries ----------------------------------------------------------------------------------


def list_tasks(*, status: str | None = None, agent_id: str | None = None,
               limit: int | None = None, cursor: str | None = None) -> Call[Page[Task]]:
    return Call("GET", "/v1/tasks", page_of(Task), params=_query(
        status=status, agent_id=agent_id, limit=_limit(limit), cursor=cursor))


def get_task(task_id: str) -> Call[Task]:
    return Call("GET", f"/v1/tasks/{segment(task_id)}", item_of(Task))


def task_events(task_id: str, *, after: int | None = None, limit: int | None = None,
                cursor: str | None = None) -> Call[Page[TaskEvent]]:
    return Call("GET", f"/v1/tasks/{segment(task_id)}/events", page_of(TaskEvent),
                params=_query(after=after, limit=_limit(limit, MAX_EVENTS_LIMIT), cursor=cursor))


def list_agents(*, limit: int | None = None, cursor: str | None = None) -> Call[Page[Agent]]:
    return Call("GET", "/v1/agents", page_of(Agent),
                params=_query(limit=_limit(limit), cursor=cursor))


def get_agent(agent_id: str) -> Call[Agent]:
    return Call("GET", f"/v1/agents/{segment(agent_id)}", item_of(Agent))


def get_policy(agent_id: str) -> Call[Policy]:
    return Call("GET", f"/v1/agents/{segment(agent_id)}/policy", item_of(Policy))


def list_transactions(*, task_id: str | None = None, status: str | None = None,
                      limit: int | None = None,
                      cursor: str | None = None) -> Call[Page[Transaction]]:
    return Call("GET", "/v1/transactions", page_of(Transaction), params=_query(
        task_id=task_id, status=status, limit=_limit(limit), cursor=cursor))


def get_transaction(tx_hash: str) -> Call[Transaction]:
    return Call("GET", f"/v1/transactions/{segment(tx_hash)}", item_of(Transaction))


def get_receipt(tx_hash: str) -> Call[Receipt]:
    return Call("GET", f"/v1/transactions/{segment(tx_hash)}/receipt", item_of(Receipt))


def healthz() -> Call[Health]:
    return Call("GET", "/healthz", health, authenticated=False)


def readyz() -> Call[Health]:
    """503 is an answer here (which checks fail), not an error, and is not retried."""
    return Call("GET", "/readyz", health, answers=frozenset({200, 503}), retry_statuses=False,
                authenticated=False)


def stream_request(task_id: str, *, from_beginning: bool,
                   last_event_id: str | None) -> tuple[str, dict[str, str], dict[str, str]]:
    """Path, query and headers of a task's live stream (resuming after `last_event_id`)."""
    headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    return (f"/v1/tasks/{segment(task_id)}/stream",
            {"from": "beginning" if from_beginning else "now"}, headers)


def stream_event(data: str) -> TaskEvent:
    try:
        return TaskEvent.from_json(json.loads(data))
    except ValueError as error:
        raise ProtocolError(f"a stream event whose data is not JSON: {data[:120]!r}") from error
