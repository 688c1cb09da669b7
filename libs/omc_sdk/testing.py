"""`FakeGateway`: the HTTP API of docs/api.md in memory, behind `httpx.MockTransport`.

A fake that implements the documented behaviour, for tests of code that talks to the
gateway (the SDK's own, the CLI's, anyone's) without the stack:

    fake = FakeGateway()
    key = fake.add_key(tenant="t1", scopes={"commands:write", "queries:read"})
    client = Client("http://gateway.test", key, transport=fake.transport(), sleep=fake.sleep)

What it does as the gateway does: Bearer keys with tenants and scopes (401/403), tenant
isolation (404), problem+json errors, JSON bodies with unknown fields refused (422 naming
them), `Idempotency-Key` replay and 409 on another body, 202 with `Location`, pages with
opaque cursors and `as_of`, SSE with `id`/`event`/`data`, keep-alive comments, `from` and
`Last-Event-ID`. What a test scripts: `fail_next` (429/503/500 with `Retry-After`),
`drop_next` (no answer: refused before the work, or lost after it), `add_event` (an event of
a task's trail), `schedule` (events that happen while a stream is open) and `break_stream`
(the next stream connection dies after n events). Every request is kept in `requests`;
`sleep` records waits instead of waiting.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

PROBLEM = "https://openmcp-chain.dev/problems/"
NAMESPACE = uuid.UUID("6f6d632d-6661-6b65-2d67-617465776179")
TERMINAL = {"omc.task.TaskCompleted": "completed", "omc.task.TaskFailed": "failed",
            "omc.task.TaskCancelled": "cancelled"}
NOW = "2025-01-01T00:00:00Z"

SLUGS = {400: "invalid-json", 401: "unauthorized", 403: "forbidden", 404: "not-found",
         409: "idempotency-conflict", 413: "body-too-large", 415: "unsupported-media-type",
         422: "invalid-body", 429: "rate-limited", 503: "unavailable"}
SUBMIT_FIELDS = {"agent_id", "instruction", "chain_id", "max_value_wei", "deadline", "metadata"}
AGENT_FIELDS = {"agent_id", "name", "description", "signer_address", "model", "parameters",
                "policy"}


class Problem(Exception):
    """An error answer, raised inside the fake and turned into problem+json."""

    def __init__(self, status: int, slug: str, title: str, detail: str = "",
                 errors: list[dict[str, str]] | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.slug, self.title, self.detail = status, slug, title, detail
        self.errors, self.headers = errors, dict(headers or {})

    def response(self, instance: str) -> httpx.Response:
        body: dict[str, Any] = {"type": PROBLEM + self.slug, "title": self.title,
                                "status": self.status, "detail": self.detail,
                                "instance": instance}
        if self.errors is not None:
            body["errors"] = self.errors
        return httpx.Response(self.status, headers={**self.headers,
                              "Content-Type": "application/problem+json"},
                              content=json.dumps(body).encode())


@dataclass
class Key:
    key_id: str
    tenant: str
    scopes: set[str]


@dataclass
class Fault:
    kind: str  # "status", "refused" (no connection), "lost" (done, answer lost)
    status: int = 0
    retry_after: str | None = None
    path: str | None = None
    detail: str = ""
    errors: list[dict[str, str]] | None = None


@dataclass
class StreamBreak:
    after: int


class _Stream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """Chunks, then either the end or a broken connection."""

    def __init__(self, chunks: list[bytes], error: Callable[[], Exception] | None) -> None:
        self.chunks, self.error = chunks, error

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        if self.error:
            raise self.error()

    async def __aiter__(self):
        for chunk in self.chunks:
            yield chunk
        if self.error:
            raise self.error()


@dataclass(repr=False)
class FakeGateway:
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    live: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    transactions: dict[str, dict[str, Any]] = field(default_factory=dict)
    receipts: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys: dict[str, Key] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    slept: list[float] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    stream_breaks: list[StreamBreak] = field(default_factory=list)
    ready: bool = True
    stream_retry_ms: int | None = None  # the `retry:` line a stream opens with, if any
    _idempotency: dict[tuple[str, str], tuple[str, httpx.Response]] = field(default_factory=dict)
    _order: int = 0

    def __repr__(self) -> str:
        return f"FakeGateway(tasks={len(self.tasks)}, requests={len(self.requests)})"

    # -- what a test sets up ------------------------------------------------------------------

    def add_key(self, tenant: str = "tenant-a", scopes: set[str] | None = None) -> str:
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)[:43]
        self.keys[f"omc_{key_id}_{secret}"] = Key(key_id, tenant, set(scopes or {
            "commands:write", "queries:read", "audit:read", "approver", "admin"}))
        return f"omc_{key_id}_{secret}"

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)

    async def asleep(self, seconds: float) -> None:
        self.slept.append(seconds)

    def fail_next(self, status: int, *, retry_after: str | None = None, times: int = 1,
                  path: str | None = None, detail: str = "",
                  errors: list[dict[str, str]] | None = None) -> None:
        """The next `times` requests (to `path`, or any) answer this problem."""
        self.faults += [Fault("status", status, retry_after, path, detail, errors)
                        for _ in range(times)]

    def drop_next(self, *, times: int = 1, lost: bool = False, path: str | None = None) -> None:
        """No answer: refused before the work, or (`lost`) the work done but the answer lost."""
        self.faults += [Fault("lost" if lost else "refused", path=path) for _ in range(times)]

    def break_stream(self, after: int) -> None:
        self.stream_breaks.append(StreamBreak(after))

    def add_task(self, tenant: str = "tenant-a", **fields: Any) -> dict[str, Any]:
        task_id = fields.pop("task_id", None) or str(uuid.uuid4())
        self._order += 1
        task = {"task_id": task_id, "tenant": tenant, "agent_id": "agent-1",
                "status": "accepted", "instruction": "do something", "chain_id": 31337,
                "submitted_at": NOW, "updated_at": NOW, "last_sequence": None,
                "last_event_type": None, "last_hash": None, "pending_action_id": None,
                "result": None, "failure": None, "tx_hashes": [], "_order": self._order,
                **fields}
        self.tasks[task_id] = task
        self.events.setdefault(task_id, [])
        return task

    def add_agent(self, tenant: str = "tenant-a", **fields: Any) -> dict[str, Any]:
        agent_id = fields.pop("agent_id", None) or str(uuid.uuid4())
        self._order += 1
        agent = {"agent_id": agent_id, "tenant": tenant, "name": "agent", "description": "",
                 "signer_address": "0x" + "11" * 20, "model": "gpt-test", "status": "active",
                 "policy_version": 1, "registered_at": NOW, "updated_at": NOW,
                 "_order": self._order, **fields}
        self.agents[agent_id] = agent
        self.policies.setdefault(agent_id, {"version": 1, "allowed_chain_ids": [31337],
                                            "max_value_wei": "0"})
        return agent

    def event(self, task_id: str, event_type: str, payload: Mapping[str, Any] | None = None
              ) -> dict[str, Any]:
        """An event of the task's trail (not yet applied; see `add_event`, `schedule`); a
        short type such as "TaskCompleted" means the task event "omc.task.TaskCompleted"."""
        event_type = event_type if "." in event_type else f"omc.task.{event_type}"
        trail = self.events[task_id] + self.live.get(task_id, [])
        sequence = len(trail) + 1
        prev = trail[-1]["hash"] if trail else "0" * 64
        digest = hashlib.sha256(f"{prev}/{event_type}/{sequence}".encode()).hexdigest()
        return {"event_id": str(uuid.uuid5(NAMESPACE, f"{task_id}/{sequence}")),
                "sequence": sequence, "event_type": event_type, "occurred_at": NOW,
                "actor": "system", "correlation_id": task_id, "causation_id": None,
                "prev_hash": prev, "hash": digest, "topic": "omc.task.events.v1",
                "partition": 0, "offset": sequence - 1, "payload": dict(payload or {})}

    def add_event(self, task_id: str, event_type: str,
                  payload: Mapping[str, Any] | None = None) -> dict[str, Any]:
        event = self.event(task_id, event_type, payload)
        self._apply(task_id, event)
        return event

    def schedule(self, task_id: str, *event_types: str) -> None:
        """Events that happen once a stream of the task is open (so `from=now` sees them)."""
        for event_type in event_types:
            self.live.setdefault(task_id, []).append(self.event(task_id, event_type))

    def _apply(self, task_id: str, event: dict[str, Any]) -> None:
        self.events[task_id].append(event)
        task = self.tasks[task_id]
        task.update(last_sequence=event["sequence"], last_event_type=event["event_type"],
                    last_hash=event["hash"], updated_at=NOW,
                    status=TERMINAL.get(event["event_type"], "running"))

    # -- the server ---------------------------------------------------------------------------

    ROUTES: tuple[tuple[str, str, str, str | None], ...] = (
        ("GET", r"/healthz", "healthz", None),
        ("GET", r"/readyz", "readyz", None),
        ("POST", r"/v1/tasks", "submit", "commands:write"),
        ("GET", r"/v1/tasks", "list_tasks", "queries:read"),
        ("GET", r"/v1/tasks/(?P<task_id>[^/]+)", "get_task", "queries:read"),
        ("POST", r"/v1/tasks/(?P<task_id>[^/]+)/cancel", "cancel", "commands:write"),
        ("POST", r"/v1/tasks/(?P<task_id>[^/]+)/actions/(?P<action_id>[^/]+)/approve",
         "approve", "approver"),
        ("POST", r"/v1/tasks/(?P<task_id>[^/]+)/actions/(?P<action_id>[^/]+)/reject",
         "reject", "approver"),
        ("GET", r"/v1/tasks/(?P<task_id>[^/]+)/events", "task_events", "queries:read"),
        ("GET", r"/v1/tasks/(?P<task_id>[^/]+)/stream", "stream", "queries:read"),
        ("POST", r"/v1/agents", "register", "admin"),
        ("GET", r"/v1/agents", "list_agents", "queries:read"),
        ("GET", r"/v1/agents/(?P<agent_id>[^/]+)", "get_agent", "queries:read"),
        ("GET", r"/v1/agents/(?P<agent_id>[^/]+)/policy", "get_policy", "queries:read"),
        ("PUT", r"/v1/agents/(?P<agent_id>[^/]+)/policy", "set_policy", "admin"),
        ("GET", r"/v1/transactions", "list_transactions", "queries:read"),
        ("GET", r"/v1/transactions/(?P<tx_hash>[^/]+)", "get_transaction", "queries:read"),
        ("GET", r"/v1/transactions/(?P<tx_hash>[^/]+)/receipt", "get_receipt", "queries:read"),
    )

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        fault = next((f for f in self.faults if f.path in (None, path)), None)
        if fault is not None:
            self.faults.remove(fault)
            if fault.kind == "refused":
                raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
            if fault.kind == "status":
                slug = SLUGS.get(fault.status, "internal")
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                return Problem(fault.status, slug, slug.replace("-", " ").capitalize(),
                               fault.detail, fault.errors, headers).response(path)
        try:
            response = self._route(request)
        except Problem as problem:
            response = problem.response(path)
        if fault is not None and fault.kind == "lost":
            raise httpx.ReadTimeout("timed out", request=request)
        return response

    def _route(self, request: httpx.Request) -> httpx.Response:
        allowed = []
        for method, pattern, name, scope in self.ROUTES:
            match = re.fullmatch(pattern, request.url.path)
            if not match:
                continue
            allowed.append(method)
            if method != request.method:
                continue
            key = self._auth(request, scope) if scope else None
            return getattr(self, f"_{name}")(request, key, **match.groupdict())
        if allowed:
            raise Problem(405, "method-not-allowed", "Method not allowed")
        raise Problem(404, "not-found", "Not found", f"no route {request.url.path}")

    def _auth(self, request: httpx.Request, scope: str) -> Key:
        header = request.headers.get("Authorization", "")
        key = self.keys.get(header.removeprefix("Bearer ")) if header.startswith("Bearer ") \
            else None
        if key is None:
            raise Problem(401, "unauthorized", "Unauthorized", "a valid API key is required",
                          headers={"WWW-Authenticate": "Bearer"})
        if scope not in key.scopes:
            raise Problem(403, "forbidden", "Forbidden", f"this key lacks the scope {scope}")
        return key

    # -- helpers ------------------------------------------------------------------------------

    @staticmethod
    def _body(request: httpx.Request, allowed: set[str], required: set[str]) -> dict[str, Any]:
        kind = request.headers.get("Content-Type", "")
        if not kind.startswith("application/json"):
            raise Problem(415, "unsupported-media-type", "Unsupported media type",
                          "send application/json")
        try:
            body = json.loads(request.content)
        except ValueError as error:
            raise Problem(400, "invalid-json", "Invalid JSON", str(error)) from error
        if not isinstance(body, dict):
            raise Problem(400, "invalid-json", "Invalid JSON", "the body must be an object")
        errors = [{"field": f, "problem": "is not a known field"} for f in sorted(body)
                  if f not in allowed]
        errors += [{"field": f, "problem": "is required"} for f in sorted(required)
                   if f not in body]
        if errors:
            raise Problem(422, "invalid-body", "Invalid body", "the body has problems", errors)
        return body

    def _command(self, request: httpx.Request, key: Key, command_type: str,
                 body: dict[str, Any], act: Callable[[str], str]) -> httpx.Response:
        idem = request.headers.get("Idempotency-Key")
        digest = hashlib.sha256(request.content).hexdigest()
        if idem is not None:
            seen = self._idempotency.get((key.key_id, idem))
            if seen is not None:
                if seen[0] != digest:
                    raise Problem(409, "idempotency-conflict", "Idempotency conflict",
                                  "this Idempotency-Key was used with another body")
                return httpx.Response(seen[1].status_code, headers=seen[1].headers,
                                      content=seen[1].content)
            command_id = str(uuid.uuid5(NAMESPACE, f"{key.key_id}/{idem}"))
        else:
            command_id = str(uuid.uuid4())
        aggregate_id = act(command_id)
        command_type = f"omc.command.{command_type}"  # the record's Avro name, as on the log
        self.commands.append({"command_id": command_id, "command_type": command_type,
                              "tenant": key.tenant, "actor": f"key:{key.key_id}", **body})
        kind = "agents" if command_type.endswith(("RegisterAgent", "SetPolicy")) else "tasks"
        location = f"/v1/{kind}/{aggregate_id}"
        response = httpx.Response(202, headers={"Location": location}, json={
            "command_id": command_id, "command_type": command_type,
            "aggregate_id": aggregate_id, "status": "accepted", "links": {"self": location}})
        if idem is not None:
            self._idempotency[(key.key_id, idem)] = (digest, response)
        return response

    def _own(self, table: dict[str, dict[str, Any]], key: Key, ident: str,
             what: str) -> dict[str, Any]:
        row = table.get(ident)
        if row is None or row.get("tenant") != key.tenant:
            raise Problem(404, "not-found", "Not found", f"no {what} {ident}")
        return row

    @staticmethod
    def _public(row: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in row.items() if not k.startswith("_")}

    def _as_of(self) -> dict[str, Any]:
        return {"projection": "mysql", "offsets": {"omc.task.events.v1/0": 41},
                "updated_at": NOW}

    def _item(self, row: Mapping[str, Any]) -> httpx.Response:
        return httpx.Response(200, json={"item": self._public(row), "as_of": self._as_of()})

    def _page(self, request: httpx.Request, rows: list[dict[str, Any]],
              maximum: int = 200) -> httpx.Response:
        params = request.url.params
        try:
            limit = int(params.get("limit", "50"))
            start = int(base64.urlsafe_b64decode(params["cursor"]).decode()) \
                if "cursor" in params else 0
        except ValueError as error:
            raise Problem(422, "invalid-parameters", "Invalid parameters", str(error),
                          [{"field": "limit/cursor", "problem": "is not valid"}]) from error
        if not 1 <= limit <= maximum:
            raise Problem(422, "invalid-parameters", "Invalid parameters",
                          f"limit is 1-{maximum}",
                          [{"field": "limit", "problem": f"is not in 1-{maximum}"}])
        chunk = rows[start:start + limit]
        more = start + limit < len(rows)
        cursor = base64.urlsafe_b64encode(str(start + limit).encode()).decode() if more else None
        return httpx.Response(200, json={"items": [self._public(r) for r in chunk],
                                         "next_cursor": cursor, "as_of": self._as_of()})

    # -- routes -------------------------------------------------------------------------------

    def _healthz(self, request: httpx.Request, key: None) -> httpx.Response:
        return httpx.Response(200, json={"status": "ok"})

    def _readyz(self, request: httpx.Request, key: None) -> httpx.Response:
        checks = {"kafka": "ok", "mysql": "ok" if self.ready else "down", "redis": "ok"}
        return httpx.Response(200 if self.ready else 503,
                              json={"status": "ok" if self.ready else "unavailable",
                                    "checks": checks})

    def _submit(self, request: httpx.Request, key: Key) -> httpx.Response:
        body = self._body(request, SUBMIT_FIELDS, {"agent_id", "instruction", "chain_id"})
        max_value = body.get("max_value_wei")
        if max_value is not None and not (isinstance(max_value, str) and max_value.isdigit()):
            raise Problem(422, "invalid-body", "Invalid body", "the body has problems", [
                {"field": "max_value_wei",
                 "problem": "is not a non-negative integer in decimal digits"}])

        def act(command_id: str) -> str:
            task_id = str(uuid.uuid5(NAMESPACE, f"{command_id}/0"))
            self.add_task(key.tenant, task_id=task_id, agent_id=body["agent_id"],
                          instruction=body["instruction"], chain_id=body["chain_id"])
            return task_id

        return self._command(request, key, "SubmitTask", body, act)

    def _cancel(self, request: httpx.Request, key: Key, task_id: str) -> httpx.Response:
        body = self._body(request, {"reason"}, {"reason"})
        self._own(self.tasks, key, task_id, "task")
        return self._command(request, key, "CancelTask", body, lambda _: task_id)

    def _approve(self, request: httpx.Request, key: Key, task_id: str,
                 action_id: str) -> httpx.Response:
        body = self._body(request, {"action_hash", "comment"}, {"action_hash"})
        self._own(self.tasks, key, task_id, "task")
        return self._command(request, key, "ApproveAction", body, lambda _: task_id)

    def _reject(self, request: httpx.Request, key: Key, task_id: str,
                action_id: str) -> httpx.Response:
        body = self._body(request, {"action_hash", "reason"}, {"action_hash", "reason"})
        self._own(self.tasks, key, task_id, "task")
        return self._command(request, key, "RejectAction", body, lambda _: task_id)

    def _register(self, request: httpx.Request, key: Key) -> httpx.Response:
        body = self._body(request, AGENT_FIELDS,
                          {"name", "description", "signer_address", "model", "policy"})

        def act(command_id: str) -> str:
            agent_id = body.get("agent_id") or str(uuid.uuid5(NAMESPACE, f"{command_id}/0"))
            self.add_agent(key.tenant, agent_id=agent_id, name=body["name"],
                           description=body["description"], model=body["model"],
                           signer_address=body["signer_address"],
                           policy_version=body["policy"].get("version", 1))
            self.policies[agent_id] = body["policy"]
            return agent_id

        return self._command(request, key, "RegisterAgent", body, act)

    def _set_policy(self, request: httpx.Request, key: Key, agent_id: str) -> httpx.Response:
        body = self._body(request, {"policy"}, {"policy"})
        agent = self._own(self.agents, key, agent_id, "agent")

        def act(_: str) -> str:
            self.policies[agent_id] = body["policy"]
            agent["policy_version"] = body["policy"].get("version", agent["policy_version"])
            return agent_id

        return self._command(request, key, "SetPolicy", body, act)

    def _list_tasks(self, request: httpx.Request, key: Key) -> httpx.Response:
        params = request.url.params
        rows = [t for t in self.tasks.values() if t["tenant"] == key.tenant
                and params.get("status") in (None, t["status"])
                and params.get("agent_id") in (None, t["agent_id"])]
        return self._page(request, sorted(rows, key=lambda t: -t["_order"]))

    def _get_task(self, request: httpx.Request, key: Key, task_id: str) -> httpx.Response:
        return self._item(self._own(self.tasks, key, task_id, "task"))

    def _task_events(self, request: httpx.Request, key: Key, task_id: str) -> httpx.Response:
        self._own(self.tasks, key, task_id, "task")
        after = int(request.url.params.get("after", "0"))
        return self._page(request, [e for e in self.events[task_id] if e["sequence"] > after],
                          maximum=500)

    def _stream(self, request: httpx.Request, key: Key, task_id: str) -> httpx.Response:
        self._own(self.tasks, key, task_id, "task")
        now = len(self.events[task_id])
        for event in self.live.pop(task_id, []):  # they happen now that someone listens
            self._apply(task_id, event)
        last = request.headers.get("Last-Event-ID")
        if last is not None:
            after = int(last)
        elif request.url.params.get("from") == "beginning":
            after = 0
        else:
            after = now
        opening = f"retry: {self.stream_retry_ms}\n" if self.stream_retry_ms else ""
        chunks = [f"{opening}: connected\n\n".encode()]
        for event in self.events[task_id]:
            if event["sequence"] > after:
                chunks.append(
                    f"id: {event['sequence']}\nevent: {event['event_type']}\n"
                    f"data: {json.dumps(event)}\n\n".encode())
                if event["event_type"] in TERMINAL:
                    break
        error = None
        if self.stream_breaks:  # n whole events, half of the next, then a reset connection
            cut = self.stream_breaks.pop(0).after
            chunks = [*chunks[:cut + 1], b'data: {"trunc']

            def error() -> Exception:
                return httpx.ReadError("connection reset by peer", request=request)
        return httpx.Response(200, headers={"Content-Type": "text/event-stream"},
                              stream=_Stream(chunks, error))

    def _list_agents(self, request: httpx.Request, key: Key) -> httpx.Response:
        rows = [a for a in self.agents.values() if a["tenant"] == key.tenant]
        return self._page(request, sorted(rows, key=lambda a: -a["_order"]))

    def _get_agent(self, request: httpx.Request, key: Key, agent_id: str) -> httpx.Response:
        return self._item(self._own(self.agents, key, agent_id, "agent"))

    def _get_policy(self, request: httpx.Request, key: Key, agent_id: str) -> httpx.Response:
        self._own(self.agents, key, agent_id, "agent")
        return self._item(self.policies[agent_id])

    def _list_transactions(self, request: httpx.Request, key: Key) -> httpx.Response:
        params = request.url.params
        rows = [t for t in self.transactions.values() if t["tenant"] == key.tenant
                and params.get("task_id") in (None, t["task_id"])
                and params.get("status") in (None, t["status"])]
        return self._page(request, rows)

    def _transaction(self, key: Key, tx_hash: str) -> dict[str, Any]:
        for tx in self.transactions.values():
            if tx_hash in tx["tx_hashes"] and tx["tenant"] == key.tenant:
                return tx
        raise Problem(404, "not-found", "Not found", f"no transaction {tx_hash}")

    def _get_transaction(self, request: httpx.Request, key: Key, tx_hash: str) -> httpx.Response:
        return self._item(self._transaction(key, tx_hash))

    def _get_receipt(self, request: httpx.Request, key: Key, tx_hash: str) -> httpx.Response:
        tx = self._transaction(key, tx_hash)
        if tx["tx_hash"] not in self.receipts:
            raise Problem(404, "not-found", "Not found", f"no receipt for {tx_hash} yet")
        return self._item(self.receipts[tx["tx_hash"]])

    def add_transaction(self, tenant: str = "tenant-a", **fields: Any) -> dict[str, Any]:
        tx_hash = fields.pop("tx_hash", None) or "0x" + secrets.token_hex(32)
        tx = {"request_id": str(uuid.uuid4()), "tenant": tenant, "task_id": None,
              "action_id": None, "chain_id": 31337, "sender": "0x" + "11" * 20,
              "to": "0x" + "22" * 20, "value_wei": "1", "nonce": 0, "tx_hash": tx_hash,
              "tx_hashes": [tx_hash], "status": "confirmed", "block_number": 7,
              "block_hash": "0x" + "33" * 32, "confirmations": 3, "gas_used": 21000,
              "effective_gas_price_wei": "1000000000", "updated_at": NOW, **fields}
        self.transactions[tx["request_id"]] = tx
        self.receipts[tx_hash] = {"tx_hash": tx_hash, "block_number": tx["block_number"],
                                  "block_hash": tx["block_hash"], "gas_used": tx["gas_used"],
                                  "effective_gas_price_wei": tx["effective_gas_price_wei"],
                                  "status_ok": True, "contract_address": None,
                                  "confirmations": tx["confirmations"]}
        return tx
