"""The projections' query modules behind the `ReadModel` port.

`omc_proj_mysql.queries` is synchronous and takes a connection first: its functions run in a
worker thread on a pooled connection. `omc_proj_redis.queries` has a synchronous
`task_status` (run in a thread on a sync client) and asynchronous stream reads (on an async
client of their own, without a read timeout, since XREAD blocks). The modules are passed in
by the composition root, so this adapter can be tested against stand-ins.

Translated here: MySQL and Redis connection failures -> `Unavailable`; the projection's
`InvalidCursor` -> `InvalidParameters` naming `cursor`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, TypeVar

import anyio
import redis
import redis.asyncio

from omc_gateway.errors import FieldError, InvalidParameters, Unavailable
from omc_gateway.mysqlpool import MySQLPool

T = TypeVar("T")
REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def redis_unavailable(error: Exception) -> Unavailable:
    return Unavailable("redis", "Redis, which holds live task views, is not answering; "
                                "retry later.")


class ProjectionReadModel:
    def __init__(self, *, mysql_queries: ModuleType, redis_queries: ModuleType,
                 pool: MySQLPool, redis_client: redis.Redis,
                 live_client: redis.asyncio.Redis, redis_prefix: str | None = None) -> None:
        self.sql = mysql_queries
        self.live = redis_queries
        self.pool = pool
        self.redis = redis_client
        self.live_client = live_client
        self._invalid_cursor: type[Exception] = getattr(mysql_queries, "InvalidCursor",
                                                        LookupError)
        self._terminal = frozenset(getattr(redis_queries, "TERMINAL", ()))
        self._prefix = {} if redis_prefix is None else {"prefix": redis_prefix}

    async def open(self) -> None:
        """Nothing to open: connections are made on first use."""

    async def close(self) -> None:
        await anyio.to_thread.run_sync(self.pool.close)
        self.redis.close()
        await self.live_client.aclose()

    async def _query(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        def work(connection: Any) -> T:
            return function(connection, *args, **kwargs)

        try:
            return await anyio.to_thread.run_sync(self.pool.run, work)
        except self._invalid_cursor as error:
            raise InvalidParameters([FieldError(
                "cursor", "is not a cursor of this list (give the next_cursor of its "
                          "previous page)")]) from error

    # -- MySQL -----------------------------------------------------------------------------

    async def list_tasks(self, tenant: str, *, status: str | None, agent_id: str | None,
                         limit: int, cursor: str | None) -> Any:
        return await self._query(self.sql.list_tasks, tenant, status=status,
                                 agent_id=agent_id, limit=limit, cursor=cursor)

    async def get_task(self, tenant: str, task_id: str) -> Any:
        return await self._query(self.sql.get_task, tenant, task_id)

    async def task_events(self, tenant: str, task_id: str, *, after: int, limit: int) -> Any:
        return await self._query(self.sql.task_events, tenant, task_id, after=after,
                                 limit=limit)

    async def list_agents(self, tenant: str, *, limit: int, cursor: str | None) -> Any:
        return await self._query(self.sql.list_agents, tenant, limit=limit, cursor=cursor)

    async def get_agent(self, tenant: str, agent_id: str) -> Any:
        return await self._query(self.sql.get_agent, tenant, agent_id)

    async def get_policy(self, tenant: str, agent_id: str) -> Any:
        return await self._query(self.sql.get_policy, tenant, agent_id)

    async def list_transactions(self, tenant: str, *, task_id: str | None, status: str | None,
                                limit: int, cursor: str | None) -> Any:
        return await self._query(self.sql.list_transactions, tenant, task_id=task_id,
                                 status=status, limit=limit, cursor=cursor)

    async def get_transaction(self, tenant: str, tx_hash: str) -> Any:
        return await self._query(self.sql.get_transaction, tenant, tx_hash)

    async def get_receipt(self, tenant: str, tx_hash: str) -> Any:
        return await self._query(self.sql.get_receipt, tenant, tx_hash)

    async def ping_mysql(self) -> None:
        def ping(connection: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("SELECT 1")
            cursor.fetchall()

        await anyio.to_thread.run_sync(self.pool.run, ping)

    # -- Redis -----------------------------------------------------------------------------

    async def task_status(self, tenant: str, task_id: str) -> Mapping[str, Any] | None:
        try:
            return await anyio.to_thread.run_sync(
                lambda: self.live.task_status(self.redis, tenant, task_id, **self._prefix))
        except REDIS_DOWN as error:
            raise redis_unavailable(error) from error

    async def read_events(self, tenant: str, task_id: str, *, after: int, block_ms: int,
                          limit: int = 100) -> list[Mapping[str, Any]]:
        try:
            return await self.live.read_events(self.live_client, tenant, task_id, after=after,
                                               block_ms=block_ms, limit=limit, **self._prefix)
        except REDIS_DOWN as error:
            raise redis_unavailable(error) from error

    async def last_sequence(self, tenant: str, task_id: str) -> int | None:
        try:
            return await self.live.last_sequence(self.live_client, tenant, task_id,
                                                 **self._prefix)
        except REDIS_DOWN as error:
            raise redis_unavailable(error) from error

    def is_terminal(self, event_type: str) -> bool:
        return event_type in self._terminal
