"""The live stream of a task's events (Server-Sent Events), from the Redis projection, so it
works while MySQL is down.

    id: <sequence>
    event: <event_type>
    data: <the task event, JSON>

Where it starts: after `Last-Event-ID` when the client resumes; else from the first event
(`?from=beginning`) or from now (`?from=now`, the default). A comment every keep-alive
interval holds the connection open; the stream ends after a terminal event (at once, for
`from=now` on a task that has already ended) or when Redis stops answering.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.responses import Response, StreamingResponse

from omc_gateway.endpoint import Call, Endpoint, Param, Reply
from omc_gateway.errors import NotFound, Unavailable
from omc_gateway.fields import Choice, Integer, Uuid
from omc_gateway.ports import ReadModel

log = logging.getLogger("omc.gateway.live")

BATCH = 100


def frame(event: Mapping[str, Any]) -> bytes:
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"), default=str)
    return f"id: {event['sequence']}\nevent: {event['event_type']}\ndata: {data}\n\n".encode()


class LiveRoutes:
    def __init__(self, read_model: ReadModel, *, keepalive: float) -> None:
        self.read = read_model
        self.keepalive = keepalive

    def endpoints(self) -> list[Endpoint]:
        return [Endpoint(
            "GET", "/v1/tasks/{task_id}/stream", "streamTaskEvents",
            "A task's events as they happen (Server-Sent Events)", self.stream,
            scope="queries:read", tag="queries",
            params=(Param("task_id", "path", Uuid(), required=True, doc="the task's id"),
                    Param("from", "query", Choice("beginning", "now"), default="now",
                          doc="start with the task's first event, or with the next one"),
                    Param("Last-Event-ID", "header", Integer(0, 2**62),
                          doc="resume after this sequence (sent by EventSource itself)")),
            replies=(Reply(200, "text/event-stream: id = sequence, event = event type, "
                                "data = the task event as JSON", {"type": "string"},
                           media_type="text/event-stream"),),
            problems=(404,))]

    async def stream(self, call: Call) -> Response:
        tenant, task_id = call.tenant, call.params["task_id"]
        if await self.read.task_status(tenant, task_id) is None:
            raise NotFound(f"There is no task {task_id}.")
        resume = call.params["Last-Event-ID"]
        ended = False
        if resume is not None:
            after = resume
        elif call.params["from"] == "beginning":
            after = 0
        else:
            after = await self.read.last_sequence(tenant, task_id) or 0
            if after > 0:
                last = await self.read.read_events(tenant, task_id, after=after - 1, block_ms=1,
                                                   limit=1)
                ended = bool(last) and self.read.is_terminal(str(last[0]["event_type"]))
        return StreamingResponse(
            self._events(tenant, task_id, after, ended), media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def _events(self, tenant: str, task_id: str, after: int,
                      ended: bool) -> AsyncIterator[bytes]:
        yield b"retry: 3000\n: stream of task events\n\n"
        block_ms = max(1, int(self.keepalive * 1000))
        while not ended:
            try:
                batch = await self.read.read_events(tenant, task_id, after=after,
                                                    block_ms=block_ms, limit=BATCH)
            except Unavailable:
                log.warning("Redis stopped answering; ending the stream of task %s", task_id)
                return
            if not batch:
                yield b": keep-alive\n\n"
                continue
            for event in batch:
                after = max(after, int(event["sequence"]))
                yield frame(event)
                if self.read.is_terminal(str(event["event_type"])):
                    ended = True
                    break
