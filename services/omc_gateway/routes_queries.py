"""The query routes: the MySQL projection, filtered by the key's tenant.

Another tenant's aggregate answers 404, exactly as one that does not exist. Lists answer
`{"items", "next_cursor", "as_of"}`, single items `{"item", "as_of"}`.
"""

from __future__ import annotations

from starlette.responses import Response

from omc_gateway.answers import TASK_STATUSES, TX_STATUSES, one, page
from omc_gateway.endpoint import Call, Endpoint, Param, Reply, json_response
from omc_gateway.errors import NotFound
from omc_gateway.fields import Choice, HexDigest, Integer, Text, Uuid
from omc_gateway.ports import OneLike, PageLike, ReadModel

LIMIT = Param("limit", "query", Integer(1, 200), default=50, doc="items per page (1-200)")
CURSOR = Param("cursor", "query", Text(max_length=1000, words=False),
               doc="next_cursor of the previous page")
TASK_ID = Param("task_id", "path", Uuid(), required=True, doc="the task's id (UUID)")
AGENT_ID = Param("agent_id", "path", Uuid(), required=True, doc="the agent's id (UUID)")
TX_HASH = Param("tx_hash", "path", HexDigest(), required=True,
                doc="a transaction hash (0x and 64 hex digits), replacements included")


def _page(result: PageLike) -> Response:
    return json_response({"items": list(result.items), "next_cursor": result.next_cursor,
                          "as_of": result.as_of.to_json()})


def _one(result: OneLike | None, what: str) -> Response:
    if result is None:
        raise NotFound(f"There is no {what}.")
    return json_response({"item": result.item, "as_of": result.as_of.to_json()})


class QueryRoutes:
    def __init__(self, read_model: ReadModel) -> None:
        self.read = read_model

    def endpoints(self) -> list[Endpoint]:
        def reply(schema: dict) -> tuple[Reply, ...]:
            return (Reply(200, "The answer, and the projection's position (as_of).", schema),)

        common = {"scope": "queries:read", "tag": "queries"}
        return [
            Endpoint("GET", "/v1/tasks", "listTasks", "List tasks, newest first",
                     self.list_tasks, params=(
                         Param("status", "query", Choice(*TASK_STATUSES), doc="only this status"),
                         Param("agent_id", "query", Uuid(), doc="only this agent's tasks"),
                         LIMIT, CURSOR),
                     replies=reply(page("Task")), **common),
            Endpoint("GET", "/v1/tasks/{task_id}", "getTask", "One task", self.get_task,
                     params=(TASK_ID,), replies=reply(one("Task")), problems=(404,), **common),
            Endpoint("GET", "/v1/tasks/{task_id}/events", "listTaskEvents",
                     "A task's audit trail: every event, with hashes and log positions",
                     self.task_events, params=(
                         TASK_ID,
                         Param("after", "query", Integer(0, 2**62), default=0,
                               doc="only events after this sequence"),
                         Param("limit", "query", Integer(1, 500), default=500,
                               doc="events per page (1-500)"),
                         Param("cursor", "query", Integer(0, 2**62),
                               doc="next_cursor of the previous page (a sequence; it takes "
                                   "the place of `after`)")),
                     replies=reply(page("TaskEvent")), problems=(404,), **common),
            Endpoint("GET", "/v1/agents", "listAgents", "List agents", self.list_agents,
                     params=(LIMIT, CURSOR), replies=reply(page("Agent")), **common),
            Endpoint("GET", "/v1/agents/{agent_id}", "getAgent", "One agent", self.get_agent,
                     params=(AGENT_ID,), replies=reply(one("Agent")), problems=(404,),
                     **common),
            Endpoint("GET", "/v1/agents/{agent_id}/policy", "getPolicy",
                     "An agent's current policy", self.get_policy, params=(AGENT_ID,),
                     replies=reply(one("PolicyItem")), problems=(404,), **common),
            Endpoint("GET", "/v1/transactions", "listTransactions", "List transactions",
                     self.list_transactions, params=(
                         Param("task_id", "query", Uuid(), doc="only this task's transactions"),
                         Param("status", "query", Choice(*TX_STATUSES), doc="only this status"),
                         LIMIT, CURSOR),
                     replies=reply(page("Transaction")), **common),
            Endpoint("GET", "/v1/transactions/{tx_hash}", "getTransaction",
                     "One transaction, by any of its hashes", self.get_transaction,
                     params=(TX_HASH,), replies=reply(one("Transaction")), problems=(404,),
                     **common),
            Endpoint("GET", "/v1/transactions/{tx_hash}/receipt", "getReceipt",
                     "A transaction's receipt", self.get_receipt, params=(TX_HASH,),
                     replies=reply(one("Receipt")), problems=(404,), **common),
        ]

    async def list_tasks(self, call: Call) -> Response:
        p = call.params
        return _page(await self.read.list_tasks(call.tenant, status=p["status"],
                                                agent_id=p["agent_id"], limit=p["limit"],
                                                cursor=p["cursor"]))

    async def get_task(self, call: Call) -> Response:
        task_id = call.params["task_id"]
        return _one(await self.read.get_task(call.tenant, task_id), f"task {task_id}")

    async def task_events(self, call: Call) -> Response:
        task_id = call.params["task_id"]
        cursor = call.params["cursor"]
        after = cursor if cursor is not None else call.params["after"]
        result = await self.read.task_events(call.tenant, task_id, after=after,
                                             limit=call.params["limit"])
        if result is None:
            raise NotFound(f"There is no task {task_id}.")
        return _page(result)

    async def list_agents(self, call: Call) -> Response:
        return _page(await self.read.list_agents(call.tenant, limit=call.params["limit"],
                                                 cursor=call.params["cursor"]))

    async def get_agent(self, call: Call) -> Response:
        agent_id = call.params["agent_id"]
        return _one(await self.read.get_agent(call.tenant, agent_id), f"agent {agent_id}")

    async def get_policy(self, call: Call) -> Response:
        agent_id = call.params["agent_id"]
        return _one(await self.read.get_policy(call.tenant, agent_id), f"agent {agent_id}")

    async def list_transactions(self, call: Call) -> Response:
        p = call.params
        return _page(await self.read.list_transactions(
            call.tenant, task_id=p["task_id"], status=p["status"], limit=p["limit"],
            cursor=p["cursor"]))

    async def get_transaction(self, call: Call) -> Response:
        tx_hash = call.params["tx_hash"]
        return _one(await self.read.get_transaction(call.tenant, tx_hash),
                    f"transaction {tx_hash}")

    async def get_receipt(self, call: Call) -> Response:
        tx_hash = call.params["tx_hash"]
        return _one(await self.read.get_receipt(call.tenant, tx_hash),
                    f"receipt for transaction {tx_hash}")
