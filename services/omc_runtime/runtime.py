"""The agent runtime's process manager: commands in, task and agent events out.

    consumes   omc.commands.v1 (group omc.runtime; through the faust app in `app`), and
               folds omc.task.events.v1, omc.agent.events.v1, omc.tx.events.v1 (all
               partitions, from offset 0: the `views`)
    produces   omc.task.events.v1 (key task_id), omc.agent.events.v1 (key agent_id),
               omc.tx.events.v1 (TxRequested, key <chain>:<sender>), omc.commands.v1
               (ReserveBudget / ReleaseBudget, key agent_id)
    writer     one per task id and per agent id: the owner of the commands partition of
               that id; a per-id lock orders the commands, drives and timers of one process
    guarantee  at-least-once; every record's id is derived from its cause, and the domain
               drops what its state already holds, so redelivery changes nothing
    state      nothing that lives only in memory: the views are folds of the log

The LLM call and the chain read follow "record intent, act, record result": the intent
(InferenceRequested, ActionProposed) is on the log before the call, the result after it, and
a restart finds the intent without its result and acts again. Replay reads results; it never
calls the model or the chain.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from opentelemetry.trace import SpanKind

from omc_chain.actions import build_action
from omc_chain.errors import ActionInvalid, ChainUnavailable
from omc_chain.reads import ChainReader, ReadResult
from omc_domain import agent as agents
from omc_domain import task as tasks
from omc_domain.draft import DRAFT
from omc_events.envelope import ChainHead
from omc_events.record import Record
from omc_events.records import (
    Action,
    ActionKind,
    ActionProposed,
    ApproveAction,
    BudgetReleaseReason,
    CancelTask,
    CommandRejected,
    InferenceCompleted,
    InferenceFailed,
    InferenceRequested,
    PolicyEvaluated,
    RegisterAgent,
    RejectAction,
    RejectionCode,
    ReleaseBudget,
    ReserveBudget,
    SetPolicy,
    SubmitTask,
    TaskFailed,
    TaskFailureCode,
    ToolResultRecorded,
    TxRequested,
)
from omc_kafka.follow import TopicReader
from omc_llm import prompt as prompts
from omc_llm import runner
from omc_llm.attest import Attestor
from omc_llm.canonical import canonical_json
from omc_llm.model import InferenceError, InferenceInput, LanguageModel, ToolCallOut
from omc_llm.tools import TOOL_NAMES, InvalidToolCall, tool_schemas, validate_call
from omc_obs import tracing
from omc_obs.handling import handling
from omc_obs.logging import bind
from omc_runtime import metrics
from omc_runtime.views import Agents, Requests, Tasks
from omc_runtime.writer import ACTOR, Cause, Writer

log = logging.getLogger(__name__)

COMMANDS = "omc.commands.v1"
TASK_EVENTS = "omc.task.events.v1"
AGENT_EVENTS = "omc.agent.events.v1"
TX_EVENTS = "omc.tx.events.v1"
TEMPLATE = "task-planner@1"
TASK_COMMANDS = (SubmitTask, CancelTask, ApproveAction, RejectAction)
AGENT_COMMANDS = (RegisterAgent, SetPolicy, ReserveBudget, ReleaseBudget)
INTERNAL_COMMANDS = (ReserveBudget, ReleaseBudget)
STEPS_PER_WAKE = 64
MAX_RECORDED_CHARS = 262_144
"""Most characters of one model answer (text and tool calls) or one read result recorded.
Kafka refuses a message above about 1 MiB, and an answer that cannot be recorded would be
asked for again, and paid for again, on every wake: a bigger one is recorded as a failure."""
REQUEST_POSITION = 1000
"""Position (for its derived id) of a TxRequested among what its ReserveBudget caused, past
any agent event the same command causes."""


def _now() -> datetime:
    return datetime.now(UTC)


class Runtime:
    """Decides, acts and records for the tasks and agents this process owns."""

    def __init__(self, *, writer: Writer, model: LanguageModel, attestor: Attestor,
                 reader: ChainReader, limits: tasks.Limits, agents_view: Agents | None = None,
                 requests_view: Requests | None = None, tasks_view: Tasks | None = None,
                 owns: Callable[[int], bool] = lambda partition: True,
                 clock: Callable[[], datetime] = _now) -> None:
        self.writer = writer
        self.model = model
        self.attestor = attestor
        self.reader = reader
        self.limits = limits
        self.agents = agents_view or Agents()
        self.requests = requests_view or Requests()
        self.tasks = tasks_view or Tasks()
        self.owns = owns
        self.clock = clock
        self.agent_follower: TopicReader | None = None
        self.active = False
        """Set once the views are current: until then nothing is driven."""
        self._locks: dict[str, asyncio.Lock] = {}
        self._asked: set[tuple[str, str, int | None]] = set()
        self._driving: dict[str, asyncio.Task] = {}
        self._again: set[str] = set()

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    # -- commands ------------------------------------------------------------------------------

    async def on_command(self, command: Record, partition: int) -> None:
        """Answer one command from omc.commands.v1 (read from `partition`), in a span whose
        context what it causes carries, with its ids on every log line."""
        metrics.COMMANDS.labels(command.SCHEMA).inc()
        with handling(command, f"runtime {command.SCHEMA}"), \
                metrics.COMMAND_SECONDS.labels(command.SCHEMA).time():
            if isinstance(command, TASK_COMMANDS):
                await self._task_command(command, partition)
            elif isinstance(command, AGENT_COMMANDS):
                await self._agent_command(command)
            else:
                log.warning("ignoring %s: not a command the runtime answers", command.SCHEMA)

    async def _task_command(self, command: Any, partition: int) -> None:
        task_id = command.task_id
        async with self._lock(task_id):
            state = self.tasks.get(task_id)
            agent_id = (command.agent_id if isinstance(command, SubmitTask)
                        else state.submitted.agent_id if state and state.submitted else None)
            agent = await self._agent(agent_id) if agent_id else None
            records = tasks.decide(state, command, agent, self.clock())
            if records and state is not None and state.tenant != command.meta.tenant:
                await self._answer_outside(TASK_EVENTS, "task", task_id, command, records)
            elif records:
                await self._append_task(task_id, records, _cause(command), partition)
        self.wake(task_id)

    async def _answer_outside(self, topic: str, aggregate_type: str, aggregate_id: str,
                              command: Record, records: list[Record]) -> None:
        """Answer a command whose tenant does not own the aggregate it names: self-hashed
        records (sequence 0) under the caller's tenant, outside the owner's chain, so one
        tenant's attempt neither enters nor breaks another tenant's audit trail."""
        for position, record in enumerate(records):
            await self.writer.request(topic, record, _cause(command), position, aggregate_type,
                                      aggregate_id, key=aggregate_id)

    async def _agent(self, agent_id: str) -> agents.AgentState | None:
        """The agent, waiting for the agents view to catch up once if it is not there yet
        (it may have been registered a moment ago through another partition)."""
        found = self.agents.get(agent_id)
        if found is None and self.agent_follower is not None:
            await self.agent_follower.wait_current()
            found = self.agents.get(agent_id)
        return found

    async def _agent_command(self, command: Any) -> None:
        agent_id = command.agent_id
        cause = _cause(command)
        async with self._lock(f"agent:{agent_id}"):
            state = self.agents.get(agent_id)
            if isinstance(command, INTERNAL_COMMANDS) and command.meta.actor != ACTOR:
                records: list[Record] = [CommandRejected(
                    meta=DRAFT, rejected_command_id=command.meta.event_id,
                    rejected_command_type=command.meta.event_type, code=RejectionCode.FORBIDDEN,
                    reason=f"only the agent runtime may send {command.SCHEMA}")]
            else:
                records = agents.decide(state, command, command.meta.occurred_at)
            if state is not None and state.tenant != command.meta.tenant:
                await self._answer_outside(AGENT_EVENTS, "agent", agent_id, command, records)
                return
            requests = [r for r in records if isinstance(r, TxRequested)]
            events = [r for r in records if not isinstance(r, TxRequested)]
            for position, request in enumerate(requests):
                account = f"{request.chain_id}:{request.sender}"
                sealed = await self.writer.request(TX_EVENTS, request, cause,
                                                   REQUEST_POSITION + position, "account",
                                                   account, key=account)
                self.requests.apply(sealed)
            if events:
                head = self.agents.head(agent_id)
                for sealed in await self.writer.append(AGENT_EVENTS, events, head, cause,
                                                       "agent", agent_id):
                    self.agents.apply(sealed)
        if isinstance(command, INTERNAL_COMMANDS):
            self.wake(command.task_id)

    async def _append_task(self, task_id: str, records: list[Record] | tuple[Record, ...],
                           cause: Cause, partition: int = -1) -> None:
        state = self.tasks.get(task_id)
        head = ChainHead(state.sequence, state.hash) if state else ChainHead()
        for sealed in await self.writer.append(TASK_EVENTS, records, head, cause, "task",
                                               task_id):
            self.tasks.apply(sealed, partition)
            metrics.EVENTS.labels(sealed.SCHEMA).inc()
            if isinstance(sealed, PolicyEvaluated):
                metrics.VERDICTS.labels(str(sealed.verdict)).inc()

    # -- driving a task ------------------------------------------------------------------------

    def wake(self, task_id: str | None) -> None:
        """Let the task take its next steps, in the background, if this process owns it."""
        if not self.active or task_id is None or task_id not in self.tasks.states:
            return
        if not self.owns(self.tasks.homes.get(task_id, -1)):
            return
        running = self._driving.get(task_id)
        if running is not None and not running.done():
            self._again.add(task_id)
            return
        self._driving[task_id] = asyncio.get_running_loop().create_task(
            self._drive(task_id), context=contextvars.Context())  # not the waker's log fields

    def wake_all(self) -> None:
        """Wake every unfinished task this process owns, and every one holding a budget
        reservation whose transaction failed (on start, and by the timer)."""
        for task_id in list(self.tasks.open):
            self.wake(task_id)
        for task_id, actions in list(self.agents.reserving.items()):
            outcomes = (self.requests.outcomes.get(tasks.request_id_of(a)) for a in actions)
            if any(found is not None and not found.ok for found in outcomes):
                self.wake(task_id)

    async def _drive(self, task_id: str) -> None:
        state = self.tasks.get(task_id)  # its correlation id and trace are the command's
        try:
            with bind(task_id=task_id, correlation_id=state and state.correlation_id,
                      traceparent=state and state.traceparent):
                await self._drive_steps(task_id)
        finally:
            if self._driving.get(task_id) is asyncio.current_task():
                del self._driving[task_id]

    async def _drive_steps(self, task_id: str) -> None:
        try:
            while True:
                self._again.discard(task_id)
                async with self._lock(task_id):
                    await self._steps(task_id)
                if task_id not in self._again:
                    return
        except ChainUnavailable as error:
            log.warning("task %s waits for the chain: %s", task_id, error)
        except Exception:
            log.exception("task %s: step failed; it is retried on the next wake", task_id)

    async def _steps(self, task_id: str) -> None:
        for _ in range(STEPS_PER_WAKE):
            state = self.tasks.get(task_id)
            agent = self.agents.get(state.submitted.agent_id) if state.submitted else None
            world = tasks.World(self.requests.outcomes, self.agents.exceeded)
            step = tasks.next_step(state, agent, world, self.clock(), self.limits)
            if isinstance(step, tasks.Wait):
                return
            # a span per step, in the trace of the command that started the task, linked to
            # the event it answers (`_links`); what the step writes carries its context
            links = self._links(state, step) if tracing.enabled() else ()
            with tracing.continue_trace(f"runtime {type(step).__name__.lower()}",
                                        state.traceparent, kind=SpanKind.INTERNAL, links=links,
                                        **{"omc.task_id": task_id}):
                if not await self._step(state, agent, step):
                    return

    def _links(self, state: tasks.TaskState, step: Any) -> list[Any]:
        """Span links from `step` to the event it answers, written by another span than the
        task's command: the outcome of an action's transaction (the watcher's TxConfirmed,
        a TxFailed), else a person's decision on the action (ActionApproved/Rejected)."""
        if isinstance(step, tasks.Release):
            action_id = step.action_id
            decision = None
        else:
            current = next((a for a in state.actions if a.result is None), None)
            if current is None:
                return []
            action_id = current.action.action_id
            decision = current.decision
        settled = self.requests.settled_by.get(tasks.request_id_of(action_id))
        answered = settled or (decision.meta if decision is not None else None)
        link = tracing.link_to(answered) if answered is not None else None
        return [link] if link is not None else []

    async def _step(self, state: tasks.TaskState, agent, step: Any) -> bool:
        """Take one step; whether the task may take the next one at once."""
        task_id = state.task_id
        match step:
            case tasks.Emit(records=records):
                await self._append_task(task_id, records, _after(state))
            case tasks.Infer():
                await self._infer(state, agent, step)
            case tasks.Propose():
                await self._propose(state, step)
            case tasks.Read(action=action):
                await self._read(state, action)
            case tasks.Reserve():
                await self._ask_agent(state, step.action.action_id, ReserveBudget(
                    meta=DRAFT, agent_id=state.submitted.agent_id, task_id=task_id,
                    action_id=step.action.action_id, action=step.action, token=step.token,
                    amount_wei=str(step.amount_wei), policy_version=step.policy_version))
                return False
            case tasks.Release(action_id=action_id):
                await self._ask_agent(state, action_id, ReleaseBudget(
                    meta=DRAFT, agent_id=state.submitted.agent_id, task_id=task_id,
                    action_id=action_id, reason=BudgetReleaseReason.TX_FAILED))
                return False
            case _:
                return False
        return True

    async def _ask_agent(self, state: tasks.TaskState, action_id: str, command: Any) -> None:
        """Send an internal command to the agent's single writer, once per process (and per
        policy version: a reservation refused as stale is asked again once re-judged)."""
        asked = (command.SCHEMA, action_id, getattr(command, "policy_version", None))
        if asked in self._asked:
            return
        cause = _after(state)
        await self.writer.request(COMMANDS, command, cause, 0, "agent", command.agent_id,
                                  key=command.agent_id)
        self._asked.add(asked)

    # -- effects -------------------------------------------------------------------------------

    async def _infer(self, state: tasks.TaskState, agent, step: tasks.Infer) -> None:
        requested = step.requested
        if requested is None:
            rendered = prompts.render(TEMPLATE, state.submitted.instruction, _history(state))
            requested = InferenceRequested(
                meta=DRAFT, task_id=state.task_id, inference_id=step.inference_id,
                step=step.step, model=agent.model,
                parameters_json=agent.parameters_json or "{}",
                prompt_template=rendered.template, prompt_hash=rendered.prompt_hash,
                prompt=rendered.prompt_json, tools=TOOL_NAMES)
            await self._append_task(state.task_id, [requested], _after(state))
            state = self.tasks.get(state.task_id)
        request = InferenceInput(model=requested.model,
                                 parameters=json.loads(requested.parameters_json),
                                 messages=json.loads(requested.prompt),
                                 tools=tool_schemas(list(requested.tools)))
        try:
            with tracing.child(f"llm {requested.model}", SpanKind.CLIENT, **{
                    "gen_ai.system": self.model.name, "gen_ai.request.model": requested.model,
                    "omc.inference_id": requested.inference_id}) as span, \
                    metrics.INFERENCE.time():
                output = await self.model.complete(request)
                if span is not None:
                    span.set_attributes({
                        "gen_ai.response.model": output.model,
                        "gen_ai.usage.input_tokens": output.prompt_tokens,
                        "gen_ai.usage.output_tokens": output.completion_tokens,
                        "omc.llm.cost_usd": str(output.cost_usd),
                        "omc.llm.cache_hit": output.cache_hit})
            _check_recordable(output)
        except InferenceError as error:
            await self._append_task(state.task_id, [InferenceFailed(
                meta=DRAFT, task_id=state.task_id, inference_id=requested.inference_id,
                **runner.failed(error, request))], _after(state))
            return
        metrics.TOKENS.labels("prompt").inc(output.prompt_tokens)
        metrics.TOKENS.labels("completion").inc(output.completion_tokens)
        metrics.COST.inc(float(output.cost_usd))  # a metric, not money: the event has it exact
        signed = runner.attest(output, request, self.model.name, self.attestor,
                               requested.inference_id)
        await self._append_task(state.task_id, [InferenceCompleted(
            meta=DRAFT, task_id=state.task_id, **signed.fields())], _after(state))

    async def _propose(self, state: tasks.TaskState, step: tasks.Propose) -> None:
        call = step.inference.tool_calls[step.index]
        try:
            arguments = validate_call(call.name, call.arguments_json)
            action = runtime_action(step.action_id, state.submitted.chain_id, call.name,
                                    arguments, call.call_id)
        except (InvalidToolCall, ActionInvalid) as error:
            await self._append_task(state.task_id, [TaskFailed(
                meta=DRAFT, task_id=state.task_id, code=TaskFailureCode.INVALID_PLAN,
                reason=f"tool call {call.call_id} ({call.name}) is not a valid action: "
                       f"{error}")], _after(state))
            return
        await self._append_task(state.task_id, [ActionProposed(
            meta=DRAFT, task_id=state.task_id, inference_id=step.inference.inference_id,
            action=action)], _after(state))

    async def _read(self, state: tasks.TaskState, action: Action) -> None:
        result = await read(self.reader, action)
        if len(result.result_json) > MAX_RECORDED_CHARS:
            result = ReadResult(False, canonical_json({
                "error": f"the result is {len(result.result_json)} characters, more than the "
                         f"{MAX_RECORDED_CHARS} the runtime records"}), result.block_number)
        await self._append_task(state.task_id, [ToolResultRecorded(
            meta=DRAFT, task_id=state.task_id, action_id=action.action_id,
            tool_call_id=action.tool_call_id, ok=result.ok, result_json=result.result_json,
            block_number=result.block_number, tx_hash=None)], _after(state))


BALANCE_READ = "eth_getBalance(address)(uint256)"
"""function_signature of a get_balance action: an account read, not a contract call."""


def runtime_action(action_id: str, chain_id: int, tool: str, arguments: dict[str, Any],
                   call_id: str | None) -> Action:
    """The Action a validated tool call asks for (get_balance is an account read; the tool
    catalogue's `abi` is the action builder's `signature`)."""
    if tool == "get_balance":
        address = build_action(action_id, chain_id, "transfer_native",
                               {"to": arguments["address"], "value_wei": "0"}, call_id).to
        return Action(action_id=action_id, kind=ActionKind.CONTRACT_READ, chain_id=chain_id,
                      to=address, value_wei="0", data="0x", function_signature=BALANCE_READ,
                      arguments_json=canonical_json({"address": address}),
                      tool_call_id=call_id)
    if "abi" in arguments:
        arguments = {("signature" if name == "abi" else name): value
                     for name, value in arguments.items()}
    return build_action(action_id, chain_id, tool, arguments, call_id)


async def read(reader: ChainReader, action: Action) -> ReadResult:
    """Run a read action against the chain (ChainUnavailable when the node fails)."""
    if action.function_signature == BALANCE_READ:
        return await reader.get_balance(action.to)
    return await reader.read_action(action)


def _check_recordable(output: Any) -> None:
    """InferenceError (bad_response) when the answer is too big to be recorded."""
    size = len(output.response_text) + sum(len(c.call_id) + len(c.name) + len(c.arguments_json)
                                           for c in output.tool_calls)
    if size > MAX_RECORDED_CHARS:
        raise InferenceError(f"the model's answer is {size} characters, more than the "
                             f"{MAX_RECORDED_CHARS} the runtime records",
                             error_type="bad_response", retryable=False)


def _cause(command: Any) -> Cause:
    """What `command` causes comes from it, in the trace of the span handling it (tracing
    on), else of the command."""
    meta = command.meta
    return Cause(event_id=meta.event_id, tenant=meta.tenant,
                 correlation_id=meta.correlation_id,
                 traceparent=tracing.carried(meta.traceparent)[0])


def _after(state: tasks.TaskState) -> Cause:
    """The cause of what the runtime does next on its own: the task's last event (in the
    trace of the current step's span, else of the command that started the task)."""
    return Cause(event_id=state.last_event_id, tenant=state.tenant,
                 correlation_id=state.correlation_id,
                 traceparent=tracing.carried(state.traceparent)[0])


def _history(state: tasks.TaskState) -> list[dict[str, Any]]:
    """The conversation after the instruction, from the recorded events only."""
    history: list[dict[str, Any]] = []
    for inference in state.inferences:
        completed = inference.completed
        if completed is None:
            continue
        calls = [ToolCallOut(c.call_id, c.name, c.arguments_json) for c in completed.tool_calls]
        history.append(prompts.assistant_turn(completed.response, calls))
        for action in state.actions:
            if action.inference_id == completed.inference_id and action.result is not None:
                result = action.result
                history.append(prompts.tool_result(result.tool_call_id or "", result.ok,
                                                   result.result_json))
    return history
