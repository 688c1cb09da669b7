"""`Client`: the synchronous client of the gateway's HTTP API (docs/api.md).

    with Client() as omc:                         # OMC_API_URL, OMC_API_KEY
        accepted = omc.submit_task("agent-1", "swap 1 ETH", chain_id=31337)
        for event in omc.follow_task(accepted.aggregate_id, from_beginning=True):
            print(event.sequence, event.event_type)

Each method is one route; commands answer `Accepted`, queries an item or a `Page`, and
`iter_*` walk every page. Errors are the tree in `omc_sdk.errors`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any, TypeVar

import httpx

from omc_sdk import routes
from omc_sdk._shell import STREAM_CALL, USER_AGENT, Base, Follow, next_events_page
from omc_sdk.errors import ProtocolError, TransportError, Unavailable
from omc_sdk.models import (
    Accepted,
    Agent,
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


class Client(Base):
    """A connection pool to one gateway with one API key; close it, or use it in `with`.

    `retries` is how many times a request is sent again after a 429/503 or (for idempotent
    requests and commands) a connection error or timeout, waiting with exponential backoff
    and jitter, at least as long as `Retry-After` says. `transport` replaces the network
    (`httpx.MockTransport` in tests); `sleep` and `rng` replace the waiting and the jitter.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        transport: httpx.BaseTransport | None = None,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        max_retry_after: float = 60.0,
        stream_read_timeout: float = 45.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(base_url, api_key, timeout=timeout, retries=retries, backoff=backoff,
                         max_backoff=max_backoff, max_retry_after=max_retry_after,
                         stream_read_timeout=stream_read_timeout, rng=rng)
        self._sleep = sleep
        self._http = httpx.Client(base_url=self.settings.base_url, transport=transport,
                                  timeout=self._timeout, headers={"User-Agent": USER_AGENT})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def send(self, call: routes.Call[R]) -> R:
        """Send one call, retrying as the policy allows; its parsed answer or an error."""
        headers = self._headers(dict(call.headers), authenticated=call.authenticated)
        attempt = 0
        while True:
            try:
                response = self._http.request(call.method, call.path, params=dict(call.params),
                                              json=call.body, headers=headers)
            except httpx.HTTPError as error:
                delay = self._no_answer(call, error, attempt)
            else:
                result, delay = self._answer(call, response, attempt)
                if delay is None:
                    return result
            self._sleep(delay)
            attempt += 1

    def _pages(self, make: Callable[[str | None], routes.Call[Page[T]]]) -> Iterator[T]:
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            page = self.send(make(cursor))
            yield from page.items
            if not page.next_cursor:
                return
            if page.next_cursor in seen:
                raise ProtocolError(f"the gateway gave cursor {page.next_cursor!r} twice")
            seen.add(page.next_cursor)
            cursor = page.next_cursor

    # -- commands (202 Accepted; each carries an Idempotency-Key) -----------------------------

    def submit_task(self, agent_id: str, instruction: str, *, chain_id: int,
                    max_value_wei: int | str | None = None,
                    deadline: datetime | str | None = None,
                    metadata: Mapping[str, Any] | None = None,
                    idempotency_key: str | None = None) -> Accepted:
        """SubmitTask; `accepted.aggregate_id` is the new task's id."""
        return self.send(routes.submit_task(
            agent_id, instruction, chain_id=chain_id, max_value_wei=max_value_wei,
            deadline=deadline, metadata=metadata, idempotency_key=idempotency_key))

    def cancel_task(self, task_id: str, reason: str, *,
                    idempotency_key: str | None = None) -> Accepted:
        """CancelTask."""
        return self.send(routes.cancel_task(task_id, reason, idempotency_key=idempotency_key))

    def approve_action(self, task_id: str, action_id: str, action_hash: str,
                       comment: str | None = None, *,
                       idempotency_key: str | None = None) -> Accepted:
        """ApproveAction (scope `approver`) of the exact action whose ApprovalRequested carries
        `action_hash`; another hash is refused by the runtime (CommandRejected INVALID_STATE)."""
        return self.send(routes.approve_action(task_id, action_id, action_hash, comment,
                                               idempotency_key=idempotency_key))

    def reject_action(self, task_id: str, action_id: str, action_hash: str, reason: str, *,
                      idempotency_key: str | None = None) -> Accepted:
        """RejectAction (scope `approver`) of the exact action whose ApprovalRequested carries
        `action_hash`."""
        return self.send(routes.reject_action(task_id, action_id, action_hash, reason,
                                              idempotency_key=idempotency_key))

    def register_agent(self, *, name: str, signer_address: str, model: str,
                       policy: Policy | Mapping[str, Any], description: str,
                       agent_id: str | None = None,
                       parameters: Mapping[str, Any] | None = None,
                       idempotency_key: str | None = None) -> Accepted:
        """RegisterAgent (scope `admin`); `accepted.aggregate_id` is the agent's id."""
        return self.send(routes.register_agent(
            name=name, signer_address=signer_address, model=model, policy=policy,
            description=description, agent_id=agent_id, parameters=parameters,
            idempotency_key=idempotency_key))

    def set_policy(self, agent_id: str, policy: Policy | Mapping[str, Any], *,
                   idempotency_key: str | None = None) -> Accepted:
        """SetPolicy (scope `admin`)."""
        return self.send(routes.set_policy(agent_id, policy, idempotency_key=idempotency_key))

    # -- queries ------------------------------------------------------------------------------

    def list_tasks(self, *, status: str | None = None, agent_id: str | None = None,
                   limit: int | None = None, cursor: str | None = None) -> Page[Task]:
        """One page of tasks, newest first."""
        return self.send(routes.list_tasks(status=status, agent_id=agent_id, limit=limit,
                                           cursor=cursor))

    def iter_tasks(self, *, status: str | None = None, agent_id: str | None = None,
                   page_size: int = 100) -> Iterator[Task]:
        """Every task, newest first, fetching pages as needed."""
        return self._pages(lambda cursor: routes.list_tasks(
            status=status, agent_id=agent_id, limit=page_size, cursor=cursor))

    def get_task(self, task_id: str) -> Task:
        return self.send(routes.get_task(task_id))

    def task_events(self, task_id: str, *, after: int | None = None, limit: int | None = None,
                    cursor: str | None = None) -> Page[TaskEvent]:
        """One page of the task's audit trail, in sequence order (after `after`)."""
        return self.send(routes.task_events(task_id, after=after, limit=limit, cursor=cursor))

    def iter_task_events(self, task_id: str, *, after: int | None = None,
                         page_size: int = 100) -> Iterator[TaskEvent]:
        """The task's whole audit trail (after `after`)."""
        cursor: str | None = None
        position: tuple[int | None, str | None] | None = (after, None)
        while position is not None:
            after, cursor = position
            page = self.send(routes.task_events(task_id, after=after, limit=page_size,
                                                cursor=cursor))
            yield from page.items
            position = next_events_page(page, page_size, after, cursor)

    def list_agents(self, *, limit: int | None = None,
                    cursor: str | None = None) -> Page[Agent]:
        return self.send(routes.list_agents(limit=limit, cursor=cursor))

    def iter_agents(self, *, page_size: int = 100) -> Iterator[Agent]:
        return self._pages(lambda cursor: routes.list_agents(limit=page_size, cursor=cursor))

    def get_agent(self, agent_id: str) -> Agent:
        return self.send(routes.get_agent(agent_id))

    def get_policy(self, agent_id: str) -> Policy:
        return self.send(routes.get_policy(agent_id))

    def list_transactions(self, *, task_id: str | None = None, status: str | None = None,
                          limit: int | None = None,
                          cursor: str | None = None) -> Page[Transaction]:
        return self.send(routes.list_transactions(task_id=task_id, status=status, limit=limit,
                                                  cursor=cursor))

    def iter_transactions(self, *, task_id: str | None = None, status: str | None = None,
                          page_size: int = 100) -> Iterator[Transaction]:
        return self._pages(lambda cursor: routes.list_transactions(
            task_id=task_id, status=status, limit=page_size, cursor=cursor))

    def get_transaction(self, tx_hash: str) -> Transaction:
        """One transaction, by any of its hashes (replacements included)."""
        return self.send(routes.get_transaction(tx_hash))

    def get_receipt(self, tx_hash: str) -> Receipt:
        return self.send(routes.get_receipt(tx_hash))

    def healthz(self) -> Health:
        return self.send(routes.healthz())

    def readyz(self) -> Health:
        """`ok` False (a 503) names the failing dependency in `checks`; not an error."""
        return self.send(routes.readyz())

    # -- the live stream ----------------------------------------------------------------------

    def follow_task(self, task_id: str, *, from_beginning: bool = False,
                    last_event_id: str | int | None = None,
                    appear_within: float = 0.0) -> Iterator[TaskEvent]:
        """The task's events as they happen, until a terminal one (which is yielded too).

        A dropped connection is resumed with `Last-Event-ID`, so no event is lost or repeated
        (before the first event there is no id: `from_beginning` then starts over, skipping
        nothing already yielded, and `now` means the new connection's now). After `retries`
        failures in a row `TransportError` is raised. A stream that ends without a terminal
        event is resumed too, unless the task has already ended. A task whose command was
        just accepted is projected shortly after: `appear_within` seconds of 404s are waited
        out before `NotFound` is raised.
        """
        follow = Follow(task_id, from_beginning, last_event_id, appear_within)
        while True:
            path, params, call_headers = follow.request()
            headers = self._headers(call_headers)
            try:
                with self._http.stream("GET", path, params=params, headers=headers,
                                       timeout=self._stream_timeout) as response:
                    if response.status_code != 200:
                        response.read()
                        if follow.not_yet(response.status_code):
                            self._sleep(follow.APPEAR_POLL)
                            continue
                        _, delay = self._answer(STREAM_CALL, response, follow.failures)
                        follow.failures += 1
                        self._sleep(delay)
                        continue
                    follow.check_stream(response)
                    for line in response.iter_lines():
                        event = follow.line(line)
                        if event is not None:
                            yield event
                            if event.is_terminal:
                                return
                cause = "it ended before the task did"
                if follow.events_on_connection == 0 and self._has_ended(task_id):
                    return
            except httpx.HTTPError as error:
                cause = str(error) or type(error).__name__
            self._sleep(follow.broken(self.retry, cause, self.settings.base_url))

    def _has_ended(self, task_id: str) -> bool:
        try:
            return self.get_task(task_id).is_terminal
        except (Unavailable, TransportError, ProtocolError):
            return False  # the stream may still work while MySQL is down: keep following
