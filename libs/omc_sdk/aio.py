"""`AsyncClient`: `Client`'s twin for asyncio. Same routes (omc_sdk.routes), same retry
policy, same errors, same stream resumption; every method is awaited, and `iter_*` and
`follow_task` are async iterators.

    async with AsyncClient() as omc:
        accepted = await omc.submit_task("agent-1", "swap 1 ETH", chain_id=31337)
        async for event in omc.follow_task(accepted.aggregate_id, from_beginning=True):
            ...
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
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


class AsyncClient(Base):
    """See `omc_sdk.Client`; `sleep` is awaited (default `asyncio.sleep`)."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        max_retry_after: float = 60.0,
        stream_read_timeout: float = 45.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(base_url, api_key, timeout=timeout, retries=retries, backoff=backoff,
                         max_backoff=max_backoff, max_retry_after=max_retry_after,
                         stream_read_timeout=stream_read_timeout, rng=rng)
        self._sleep = sleep
        self._http = httpx.AsyncClient(base_url=self.settings.base_url, transport=transport,
                                       timeout=self._timeout, headers={"User-Agent": USER_AGENT})

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def send(self, call: routes.Call[R]) -> R:
        headers = self._headers(dict(call.headers), authenticated=call.authenticated)
        attempt = 0
        while True:
            try:
                response = await self._http.request(call.method, call.path,
                                                    params=dict(call.params), json=call.body,
                                                    headers=headers)
            except httpx.HTTPError as error:
                delay = self._no_answer(call, error, attempt)
            else:
                result, delay = self._answer(call, response, attempt)
                if delay is None:
                    return result
            await self._sleep(delay)
            attempt += 1

    async def _pages(self, make: Callable[[str | None], routes.Call[Page[T]]]) -> AsyncIterator[T]:
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            page = await self.send(make(cursor))
            for item in page.items:
                yield item
            if not page.next_cursor:
                return
            if page.next_cursor in seen:
                raise ProtocolError(f"the gateway gave cursor {page.next_cursor!r} twice")
            seen.add(page.next_cursor)
            cursor = page.next_cursor

    # -- commands -----------------------------------------------------------------------------

    async def submit_task(self, agent_id: str, instruction: str, *, chain_id: int,
                          max_value_wei: int | str | None = None,
                          deadline: datetime | str | None = None,
                          metadata: Mapping[str, Any] | None = None,
                          idempotency_key: str | None = None) -> Accepted:
        return await self.send(routes.submit_task(
            agent_id, instruction, chain_id=chain_id, max_value_wei=max_value_wei,
            deadline=deadline, metadata=metadata, idempotency_key=idempotency_key))

    async def cancel_task(self, task_id: str, reason: str, *,
                          idempotency_key: str | None = None) -> Accepted:
        return await self.send(routes.cancel_task(task_id, reason,
                                                  idempotency_key=idempotency_key))

    async def approve_action(self, task_id: str, action_id: str, action_hash: str,
                             comment: str | None = None, *,
                             idempotency_key: str | None = None) -> Accepted:
        """ApproveAction (scope `approver`) of the exact action whose ApprovalRequested carries
        `action_hash`; another hash is refused by the runtime (CommandRejected INVALID_STATE)."""
        return await self.send(routes.approve_action(task_id, action_id, action_hash, comment,
                                                     idempotency_key=idempotency_key))

    async def reject_action(self, task_id: str, action_id: str, action_hash: str, reason: str, *,
                            idempotency_key: str | None = None) -> Accepted:
        """RejectAction (scope `approver`) of the exact action whose ApprovalRequested carries
        `action_hash`."""
        return await self.send(routes.reject_action(task_id, action_id, action_hash, reason,
                                                    idempotency_key=idempotency_key))

    async def register_agent(self, *, name: str, signer_address: str, model: str,
                             policy: Policy | Mapping[str, Any], description: str,
                             agent_id: str | None = None,
                             parameters: Mapping[str, Any] | None = None,
                             idempotency_key: str | None = None) -> Accepted:
        return await self.send(routes.register_agent(
            name=name, signer_address=signer_address, model=model, policy=policy,
            description=description, agent_id=agent_id, parameters=parameters,
            idempotency_key=idempotency_key))

    async def set_policy(self, agent_id: str, policy: Policy | Mapping[str, Any], *,
                         idempotency_key: str | None = None) -> Accepted:
        return await self.send(routes.set_policy(agent_id, policy,
                                                 idempotency_key=idempotency_key))

    # -- queries ------------------------------------------------------------------------------

    async def list_tasks(self, *, status: str | None = None, agent_id: str | None = None,
                         limit: int | None = None, cursor: str | None = None) -> Page[Task]:
        return await self.send(routes.list_tasks(status=status, agent_id=agent_id, limit=limit,
                                                 cursor=cursor))

    def iter_tasks(self, *, status: str | None = None, agent_id: str | None = None,
                   page_size: int = 100) -> AsyncIterator[Task]:
        return self._pages(lambda cursor: routes.list_tasks(
            status=status, agent_id=agent_id, limit=page_size, cursor=cursor))

    async def get_task(self, task_id: str) -> Task:
        return await self.send(routes.get_task(task_id))

    async def task_events(self, task_id: str, *, after: int | None = None,
                          limit: int | None = None,
                          cursor: str | None = None) -> Page[TaskEvent]:
        return await self.send(routes.task_events(task_id, after=after, limit=limit,
                                                  cursor=cursor))

    async def iter_task_events(self, task_id: str, *, after: int | None = None,
                               page_size: int = 100) -> AsyncIterator[TaskEvent]:
        cursor: str | None = None
        position: tuple[int | None, str | None] | None = (after, None)
        while position is not None:
            after, cursor = position
            page = await self.send(routes.task_events(task_id, after=after, limit=page_size,
                                                      cursor=cursor))
            for event in page.items:
                yield event
            position = next_events_page(page, page_size, after, cursor)

    async def list_agents(self, *, limit: int | None = None,
                          cursor: str | None = None) -> Page[Agent]:
        return await self.send(routes.list_agents(limit=limit, cursor=cursor))

    def iter_agents(self, *, page_size: int = 100) -> AsyncIterator[Agent]:
        return self._pages(lambda cursor: routes.list_agents(limit=page_size, cursor=cursor))

    async def get_agent(self, agent_id: str) -> Agent:
        return await self.send(routes.get_agent(agent_id))

    async def get_policy(self, agent_id: str) -> Policy:
        return await self.send(routes.get_policy(agent_id))

    async def list_transactions(self, *, task_id: str | None = None, status: str | None = None,
                                limit: int | None = None,
                                cursor: str | None = None) -> Page[Transaction]:
        return await self.send(routes.list_transactions(task_id=task_id, status=status,
                                                        limit=limit, cursor=cursor))

    def iter_transactions(self, *, task_id: str | None = None, status: str | None = None,
                          page_size: int = 100) -> AsyncIterator[Transaction]:
        return self._pages(lambda cursor: routes.list_transactions(
            task_id=task_id, status=status, limit=page_size, cursor=cursor))

    async def get_transaction(self, tx_hash: str) -> Transaction:
        return await self.send(routes.get_transaction(tx_hash))

    async def get_receipt(self, tx_hash: str) -> Receipt:
        return await self.send(routes.get_receipt(tx_hash))

    async def healthz(self) -> Health:
        return await self.send(routes.healthz())

    async def readyz(self) -> Health:
        return await self.send(routes.readyz())

    # -- the live stream ----------------------------------------------------------------------

    async def follow_task(self, task_id: str, *, from_beginning: bool = False,
                          last_event_id: str | int | None = None,
                          appear_within: float = 0.0) -> AsyncIterator[TaskEvent]:
        """See `Client.follow_task`."""
        follow = Follow(task_id, from_beginning, last_event_id, appear_within)
        while True:
            path, params, call_headers = follow.request()
            headers = self._headers(call_headers)
            try:
                async with self._http.stream("GET", path, params=params, headers=headers,
                                             timeout=self._stream_timeout) as response:
                    if response.status_code != 200:
                        await response.aread()
                        if follow.not_yet(response.status_code):
                            await self._sleep(follow.APPEAR_POLL)
                            continue
                        _, delay = self._answer(STREAM_CALL, response, follow.failures)
                        follow.failures += 1
                        await self._sleep(delay)
                        continue
                    follow.check_stream(response)
                    async for line in response.aiter_lines():
                        event = follow.line(line)
                        if event is not None:
                            yield event
                            if event.is_terminal:
                                return
                cause = "it ended before the task did"
                if follow.events_on_connection == 0 and await self._has_ended(task_id):
                    return
            except httpx.HTTPError as error:
                cause = str(error) or type(error).__name__
            await self._sleep(follow.broken(self.retry, cause, self.settings.base_url))

    async def _has_ended(self, task_id: str) -> bool:
        try:
            return (await self.get_task(task_id)).is_terminal
        except (Unavailable, TransportError, ProtocolError):
            return False
