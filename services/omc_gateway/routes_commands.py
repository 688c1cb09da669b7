"""The command routes: validate, seal, produce to omc.commands.v1, answer 202 once Kafka
acknowledged the command.

With an `Idempotency-Key`, the key (per API key) is held while the command is produced; the
answer is stored only after Kafka acknowledged the command, and replayed for the same body;
another body under the same key is a 409. Without Kafka, nothing is stored and the answer is
503, so the client can retry with the same key.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

from starlette.responses import Response

from omc_events.avro import RecordInvalid
from omc_gateway import bodies
from omc_gateway.answers import ref
from omc_gateway.commands import (
    CommandFactory,
    Origin,
    SealedCommand,
    command_id,
    trace_context,
)
from omc_gateway.endpoint import Call, Endpoint, Param, Reply, json_response
from omc_gateway.errors import FieldError, InvalidBody, Unavailable
from omc_gateway.fields import Text, Uuid, canonical_json
from omc_gateway.observe import Metrics, annotate
from omc_gateway.ports import CommandBus, IdempotencyStore, StoredAnswer
from omc_obs import tracing

log = logging.getLogger("omc.gateway.commands")

IDEMPOTENCY_KEY = Param(
    "Idempotency-Key", "header",
    Text(max_length=200, words=False, pattern=r"^[\x20-\x7e]+$",
         pattern_problem="must be 1-200 printable ASCII characters"),
    doc="Makes a retry safe: the same key (per API key) with the same body answers the same; "
        "with another body, 409. Kept 24 h.")
TASK_ID = Param("task_id", "path", Uuid(), required=True, doc="the task's id (UUID)")
ACTION_ID = Param("action_id", "path", Uuid(), required=True, doc="the action's id (UUID)")
AGENT_ID = Param("agent_id", "path", Uuid(), required=True, doc="the agent's id (UUID)")

ACCEPTED = Reply(202, "Accepted: the command is on the log (acknowledged by Kafka). "
                      "Idempotency-Replayed: true when this is the stored answer of an earlier "
                      "request with the same Idempotency-Key.",
                 ref("CommandAccepted"), headers=("Location", "Idempotency-Replayed"))


class CommandRoutes:
    def __init__(self, bus: CommandBus, idempotency: IdempotencyStore, factory: CommandFactory,
                 metrics: Metrics) -> None:
        self.bus = bus
        self.idempotency = idempotency
        self.factory = factory
        self.metrics = metrics

    def endpoints(self) -> list[Endpoint]:
        common = {"tag": "commands", "replies": (ACCEPTED,), "problems": (409, 503)}
        return [
            Endpoint("POST", "/v1/tasks", "submitTask", "Submit a task to an agent",
                     self.submit_task, scope="commands:write", params=(IDEMPOTENCY_KEY,),
                     body=bodies.SUBMIT_TASK, **common),
            Endpoint("POST", "/v1/tasks/{task_id}/cancel", "cancelTask", "Cancel a task",
                     self.cancel_task, scope="commands:write",
                     params=(TASK_ID, IDEMPOTENCY_KEY), body=bodies.CANCEL_TASK, **common),
            Endpoint("POST", "/v1/tasks/{task_id}/actions/{action_id}/approve",
                     "approveAction", "Approve an action waiting for approval",
                     self.approve_action, scope="approver",
                     params=(TASK_ID, ACTION_ID, IDEMPOTENCY_KEY), body=bodies.APPROVE_ACTION,
                     **common),
            Endpoint("POST", "/v1/tasks/{task_id}/actions/{action_id}/reject",
                     "rejectAction", "Reject an action waiting for approval",
                     self.reject_action, scope="approver",
                     params=(TASK_ID, ACTION_ID, IDEMPOTENCY_KEY), body=bodies.REJECT_ACTION,
                     **common),
            Endpoint("POST", "/v1/agents", "registerAgent", "Register an agent",
                     self.register_agent, scope="admin", params=(IDEMPOTENCY_KEY,),
                     body=bodies.REGISTER_AGENT, **common),
            Endpoint("PUT", "/v1/agents/{agent_id}/policy", "setPolicy",
                     "Replace an agent's policy", self.set_policy, scope="admin",
                     params=(AGENT_ID, IDEMPOTENCY_KEY), body=bodies.SET_POLICY, **common),
        ]

    # -- handlers ----------------------------------------------------------------------------

    async def submit_task(self, call: Call) -> Response:
        return await self._accept(call, lambda origin: self.factory.submit_task(
            origin, call.body), "tasks")

    async def cancel_task(self, call: Call) -> Response:
        task_id = call.params["task_id"]
        return await self._accept(call, lambda origin: self.factory.cancel_task(
            origin, task_id, call.body), "tasks")

    async def approve_action(self, call: Call) -> Response:
        task_id, action_id = call.params["task_id"], call.params["action_id"]
        return await self._accept(call, lambda origin: self.factory.approve_action(
            origin, task_id, action_id, call.body), "tasks")

    async def reject_action(self, call: Call) -> Response:
        task_id, action_id = call.params["task_id"], call.params["action_id"]
        return await self._accept(call, lambda origin: self.factory.reject_action(
            origin, task_id, action_id, call.body), "tasks")

    async def register_agent(self, call: Call) -> Response:
        assert call.body is not None
        if call.body["policy"]["version"] != 1:
            raise InvalidBody([FieldError("policy.version", "must be 1 for a new agent")])
        return await self._accept(call, lambda origin: self.factory.register_agent(
            origin, call.body), "agents")

    async def set_policy(self, call: Call) -> Response:
        assert call.body is not None
        if call.body["policy"]["version"] < 2:
            raise InvalidBody([FieldError(
                "policy.version", "must be the agent's current policy version + 1, so at "
                                  "least 2 (a new agent's policy is version 1)")])
        agent_id = call.params["agent_id"]
        return await self._accept(call, lambda origin: self.factory.set_policy(
            origin, agent_id, call.body), "agents")

    # -- the common path ---------------------------------------------------------------------

    async def _accept(self, call: Call, build: Callable[[Origin], SealedCommand],
                      collection: str) -> Response:
        principal = call.principal
        assert principal is not None
        key = call.params["Idempotency-Key"]
        cid = command_id(principal.key_id, key)
        annotate(correlation_id=cid)
        fingerprint = ""
        if key is not None:
            request = call.request
            fingerprint = hashlib.sha256(
                f"{request.method} {request.url.path}\n{canonical_json(call.raw_body)}"
                .encode()).hexdigest()
            stored = await self.idempotency.begin(principal.key_id, key, fingerprint)
            if stored is not None:
                self.metrics.command(str(stored.body.get("command_type")), "replayed")
                return _answer(stored, replayed=True)
        try:
            with tracing.continue_trace(
                    f"publish {collection} command", *trace_context(
                        call.request.headers.get("traceparent"),
                        call.request.headers.get("tracestate")),
                    **{"omc.command_id": cid, "omc.tenant": principal.tenant}) as context:
                if context[0]:  # the access line (written after the span) names the trace
                    annotate(trace_id=context[0].split("-")[1])
                try:
                    command = build(Origin(principal, cid, *context))
                except RecordInvalid as error:
                    raise InvalidBody([FieldError(error.field, error.problem)]) from error
                record = command.record
                try:
                    await self.bus.publish(command)
                except Unavailable:
                    self.metrics.command(record.SCHEMA, "unavailable")
                    raise
        except BaseException:
            if key is not None:
                await self._release(principal.key_id, key, fingerprint)
            raise
        meta = record.meta  # type: ignore[attr-defined]
        location = f"/v1/{collection}/{meta.aggregate_id}"
        answer = StoredAnswer(202, {
            "command_id": cid, "command_type": record.SCHEMA,
            "aggregate_id": meta.aggregate_id, "status": "accepted",
            "links": {"self": location}}, location)
        self.metrics.command(record.SCHEMA, "accepted")
        if key is not None:
            try:
                await self.idempotency.complete(principal.key_id, key, fingerprint, answer)
            except Unavailable:
                log.warning("the command is on the log but its Idempotency-Key answer could "
                            "not be stored; a retry is dropped downstream by its command id")
        return _answer(answer)

    async def _release(self, key_id: str, key: str, fingerprint: str) -> None:
        try:
            await self.idempotency.abandon(key_id, key, fingerprint)
        except Unavailable:
            log.warning("an Idempotency-Key could not be released; it frees itself when its "
                        "hold expires")


def _answer(answer: StoredAnswer, *, replayed: bool = False) -> Response:
    headers = {"Location": answer.location} if answer.location else {}
    if replayed:
        headers["Idempotency-Replayed"] = "true"
    return json_response(dict(answer.body), answer.status, headers)
