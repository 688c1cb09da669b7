"""The proof routes (scope audit:read), served from the proof index (omc_proj_proofs).

    GET /v1/proofs/events/{event_id}       the event's inclusion proof: stream, offset, leaf
                                           index, audit path, the checkpoint it verifies
                                           against (signed root, signer, signature) and its
                                           anchor transaction; 404 for another tenant's event
    GET /v1/proofs/consistency?stream=&from=&to=
                                           the RFC 9162 consistency proof between two
                                           checkpoints of a stream in which the caller's
                                           tenant has events (404 otherwise)

`ProofIndex` runs the projection's synchronous queries on the gateway's MySQL pool; without
one (a gateway built without the index) the routes answer 503.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any, Protocol

import anyio
from starlette.responses import Response

from omc_gateway.answers import ref
from omc_gateway.endpoint import Call, Endpoint, Param, Reply, json_response
from omc_gateway.errors import NotFound, Unavailable
from omc_gateway.fields import Integer, Pattern, Uuid
from omc_gateway.mysqlpool import MySQLPool


class ProofReader(Protocol):
    async def inclusion(self, tenant: str, event_id: str) -> dict[str, Any] | None: ...

    async def consistency(self, tenant: str, stream: str, first: int,
                          second: int) -> dict[str, Any] | None: ...

    async def as_of(self) -> dict[str, Any]: ...


class ProofIndex:
    """`omc_proj_proofs.queries` on a pooled connection, in a worker thread."""

    def __init__(self, queries: ModuleType, pool: MySQLPool) -> None:
        self.queries = queries
        self.pool = pool

    async def _run(self, function: Callable[..., Any], *args: Any) -> Any:
        return await anyio.to_thread.run_sync(
            self.pool.run, lambda connection: function(connection, *args))

    async def inclusion(self, tenant: str, event_id: str) -> dict[str, Any] | None:
        return await self._run(self.queries.inclusion, tenant, event_id)

    async def consistency(self, tenant: str, stream: str, first: int,
                          second: int) -> dict[str, Any] | None:
        return await self._run(self.queries.consistency, tenant, stream, first, second)

    async def as_of(self) -> dict[str, Any]:
        return await self._run(self.queries.as_of)


EVENT_ID = Param("event_id", "path", Uuid(), required=True, doc="the event's id (UUID)")
STREAM = Param("stream", "query", Pattern(r"[A-Za-z0-9._-]{1,249}:[0-9]{1,6}",
                                          "must be <topic>:<partition>"),
               required=True, doc="the stream, <topic>:<partition>")
FROM = Param("from", "query", Integer(1, 2**62), required=True,
             doc="tree size of the older checkpoint")
TO = Param("to", "query", Integer(1, 2**62), required=True,
           doc="tree size of the newer checkpoint")


class ProofRoutes:
    def __init__(self, index: ProofReader | None) -> None:
        self.index = index

    def endpoints(self) -> list[Endpoint]:
        common = {"scope": "audit:read", "tag": "audit"}
        return [
            Endpoint("GET", "/v1/proofs/events/{event_id}", "getInclusionProof",
                     "An event's inclusion proof against a signed (and anchored) checkpoint",
                     self.inclusion, params=(EVENT_ID,), problems=(404,),
                     replies=(Reply(200, "The proof, and the index's position (as_of).",
                                    _item("InclusionProof")),), **common),
            Endpoint("GET", "/v1/proofs/consistency", "getConsistencyProof",
                     "A consistency proof between two checkpoints of a stream",
                     self.consistency, params=(STREAM, FROM, TO), problems=(404,),
                     replies=(Reply(200, "The proof, and the index's position (as_of).",
                                    _item("ConsistencyProof")),), **common),
        ]

    def _index(self) -> ProofReader:
        if self.index is None:
            raise Unavailable("proofs", "This gateway has no proof index configured.")
        return self.index

    async def inclusion(self, call: Call) -> Response:
        index = self._index()
        event_id = call.params["event_id"]
        item = await index.inclusion(call.tenant, event_id)
        if item is None:
            raise NotFound(f"There is no event {event_id} in the proof index.")
        return json_response({"item": item, "as_of": await index.as_of()})

    async def consistency(self, call: Call) -> Response:
        index = self._index()
        p = call.params
        item = await index.consistency(call.tenant, p["stream"], p["from"], p["to"])
        if item is None:
            raise NotFound(f"{p['stream']} has no checkpoints of sizes {p['from']} and "
                           f"{p['to']} (from <= to) in the proof index.")
        return json_response({"item": item, "as_of": await index.as_of()})


class MemoryProofIndex:
    """A fake of the proof index with the same answers' shapes, for tests and the SDK."""

    def __init__(self) -> None:
        self.inclusions: dict[tuple[str, str], dict[str, Any]] = {}
        self.consistencies: dict[tuple[str, str, int, int], dict[str, Any]] = {}
        self.tenants: dict[str, set[str]] = {}  # stream -> tenants with events in it

    async def inclusion(self, tenant: str, event_id: str) -> dict[str, Any] | None:
        return self.inclusions.get((tenant, event_id))

    async def consistency(self, tenant: str, stream: str, first: int,
                          second: int) -> dict[str, Any] | None:
        if tenant not in self.tenants.get(stream, set()):
            return None
        return self.consistencies.get((tenant, stream, first, second)) or \
            self.consistencies.get(("*", stream, first, second))

    async def as_of(self) -> dict[str, Any]:
        return {"projection": "proj_proofs", "offsets": {}, "updated_at": None}


def _item(name: str) -> dict[str, Any]:
    return {"type": "object", "required": ["item", "as_of"],
            "properties": {"item": ref(name), "as_of": ref("AsOf")}}
