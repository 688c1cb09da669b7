"""The agent runtime in-process, without a broker: the real `Runtime`, domain, planner and
attestor, with in-memory stand-ins for the two adapters that do I/O.

    MemoryWriter   the real Writer (envelope, derived ids, sealing) over a MemoryProducer:
                   AsyncProducer's `send` keeping each record, round-tripped through its
                   Avro schema, per topic in write order; a record above Kafka's default
                   1 MiB is refused (DeliveryFailed) as the broker refuses it
    MemoryReader   ChainReader's reads the runtime uses (get_balance, read_action), answered
                   from dicts of balances and contract returns, results shaped as the real
                   reader shapes them
    RuntimeHarness wires them to a Runtime with LocalPlanner (or any LanguageModel) and an
                   Attestor with a random key, and plays the parts Kafka plays in production:
                   commands written to omc.commands.v1 (the user's and the runtime's own
                   ReserveBudget / ReleaseBudget) are delivered to `Runtime.on_command` in
                   order, one at a time, as the faust agent delivers them; every record
                   written to the agent, tx and task topics is folded into the views with a
                   wake, as the app's followers do.

    harness = RuntimeHarness()
    events = await harness.run("send 0.1 ether to 0x…", policy)   # the task's events
    harness.confirm(request_id) / harness.fail(request_id); await harness.settle()

`settle()` delivers and drives until nothing is left to deliver and no task is being driven
(every task waits or has ended). A step that raises inside a drive is logged by the runtime
and retried on the next wake; the harness turns such a log record into a test failure.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import secrets
import types
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from omc_chain import abi
from omc_chain.errors import AbiError
from omc_chain.reads import ReadResult
from omc_domain.task import Limits
from omc_events.avro import Schemas
from omc_events.chain import seal, seal_command
from omc_events.envelope import ZERO_HASH, ChainHead, derived_id
from omc_events.record import Record
from omc_events.records import (
    Action,
    ActionKind,
    EventMeta,
    Policy,
    RegisterAgent,
    SubmitTask,
    TxConfirmed,
    TxFailed,
    TxFailureCode,
    TxRequested,
)
from omc_kafka.producer import DeliveryFailed
from omc_llm.attest import Attestor
from omc_llm.model import LanguageModel
from omc_llm.planner import LocalPlanner
from omc_runtime.runtime import AGENT_EVENTS, COMMANDS, TASK_EVENTS, TX_EVENTS, Runtime
from omc_runtime.writer import Writer

START = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
CHAIN = 31337
TENANT = "acme"
USER = "key:tests"
SIGNER = "0x8626f6940E2eb28930eFb4CeF49B2d1F2C9C1199"
"""The agents' transaction account in these tests (an address only: no key anywhere)."""
MAX_ROUNDS = 10_000
MAX_MESSAGE_BYTES = 1_048_576
"""Kafka's default message.max.bytes (about 1 MiB): a bigger record is refused, as the
broker refuses it."""


class Clock:
    """A clock that moves only when told (the runtime's and the writer's time)."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclasses.dataclass(frozen=True, slots=True)
class Written:
    """One record as it would sit on a topic: its key and the record."""

    key: str
    record: Record


class MemoryProducer:
    """AsyncProducer's interface over per-topic lists: `send` keeps records (each checked
    against its Avro schema and Kafka's message size) instead of producing them."""

    def __init__(self, schemas: Schemas) -> None:
        self.codec = types.SimpleNamespace(schemas=schemas)  # what Writer reads of a codec
        self.topics: dict[str, list[Written]] = defaultdict(list)

    async def send(self, topic: str, records: Sequence[Record], key: str) -> None:
        self.keep(topic, records, key)

    def keep(self, topic: str, records: Sequence[Record], key: str) -> None:
        schemas = self.codec.schemas
        for record in records:
            body = schemas.encode(record)
            if len(body) > MAX_MESSAGE_BYTES:
                raise DeliveryFailed(f"{topic}: {record.SCHEMA} of {len(body)} bytes: "
                                     "Broker: Message size too large")
        for record in records:
            back = type(record).from_avro(schemas.decode(record.SCHEMA, schemas.encode(record)))
            assert back == record, f"{record.SCHEMA} does not survive its Avro schema"
            self.topics[topic].append(Written(key, record))


class MemoryWriter(Writer):
    """The real Writer (envelope, derived ids, sealing) over a MemoryProducer."""

    def __init__(self, clock: Clock, schemas: Schemas | None = None) -> None:
        super().__init__(MemoryProducer(schemas or Schemas()), clock)  # type: ignore[arg-type]
        self.schemas = self.producer.codec.schemas
        self.topics = self.producer.topics

    def put(self, topic: str, record: Record, key: str) -> None:
        """Write a record that is already sealed (a user's command, a tx manager's event)."""
        self.producer.keep(topic, [record], key)

    def records(self, topic: str) -> list[Record]:
        return [w.record for w in self.topics[topic]]


class MemoryReader:
    """ChainReader's get_balance and read_action, from dicts.

    `balances`: address (any case) -> wei. `returns`: (contract address (any case), canonical
    signature such as "symbol()") -> the decoded outputs (a list). A read of anything else
    answers as a real node does for an address without code: ok=False, no return data.
    """

    def __init__(self, balances: Mapping[str, int] | None = None,
                 returns: Mapping[tuple[str, str], list[Any]] | None = None,
                 block: int = 100) -> None:
        self.balances = {a.lower(): int(v) for a, v in (balances or {}).items()}
        self.returns = {(a.lower(), s): list(v) for (a, s), v in (returns or {}).items()}
        self.block = block
        self.reads: list[tuple[str, str]] = []
        """(what, address) of every read made, in order."""

    async def get_balance(self, address: str, block: int | None = None) -> ReadResult:
        holder = abi.address(address)
        self.reads.append(("get_balance", holder))
        return ReadResult(True, abi.canonical_json(
            {"address": holder, "balance_wei": str(self.balances.get(holder.lower(), 0))}),
            self.block if block is None else block)

    async def read_action(self, action: Action, block: int | None = None) -> ReadResult:
        if action.kind != ActionKind.CONTRACT_READ:
            raise AbiError(f"{action.kind} is not a read")
        fn = abi.parse_signature(action.function_signature or "")
        if not action.data.startswith(fn.selector):
            raise AbiError("the action's calldata does not match its function signature")
        to = abi.address(action.to)
        self.reads.append(("read_action", to))
        number = self.block if block is None else block
        outputs = self.returns.get((to.lower(), fn.canonical))
        if outputs is None:
            return ReadResult(False, abi.canonical_json({
                "address": to, "function": fn.canonical, "data": "0x",
                "error": "no return data: the address has no code or no such function"}),
                number)
        return ReadResult(True, abi.canonical_json(
            {"address": to, "function": fn.canonical, "outputs": outputs}), number)


class DriveFailed(AssertionError):
    """A step raised inside a drive (the runtime logged it and would retry it)."""


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(record)


class RuntimeHarness:
    """A Runtime with in-memory topics; see the module docstring."""

    def __init__(self, *, model: LanguageModel | None = None,
                 balances: Mapping[str, int] | None = None,
                 returns: Mapping[tuple[str, str], list[Any]] | None = None,
                 limits: Limits | None = None, clock: Clock | None = None,
                 strict: bool = True) -> None:
        self.clock = clock or Clock()
        self.writer = MemoryWriter(self.clock)
        self.reader = MemoryReader(balances, returns)
        self.attestor = Attestor(secrets.token_hex(32))
        self.runtime = Runtime(writer=self.writer, model=model or LocalPlanner(),  # type: ignore[arg-type]
                               attestor=self.attestor, reader=self.reader,  # type: ignore[arg-type]
                               limits=limits or Limits(), clock=self.clock)
        self.runtime.active = True
        self.strict = strict
        self.last_task: str | None = None
        """The task of the last `run()`."""
        self._delivered: dict[str, int] = defaultdict(int)
        self._ids = 0
        self._errors = _Errors()
        logging.getLogger("omc_runtime.runtime").addHandler(self._errors)

    def restart(self, model: LanguageModel | None = None) -> Runtime:
        """A new Runtime in place of the old one, as after a crash: its views rebuilt from
        every record on the agent, tx and task topics (offset 0), then woken as the app wakes
        it on start. Commands already delivered stay delivered (their offsets were
        committed); nothing that lived only in the old process's memory survives. `model`:
        the new process's model (default: the same one)."""
        old = self.runtime
        fresh = Runtime(writer=self.writer, model=model or old.model,  # type: ignore[arg-type]
                        attestor=self.attestor, reader=self.reader,  # type: ignore[arg-type]
                        limits=old.limits, clock=self.clock)
        for topic, view in ((AGENT_EVENTS, fresh.agents), (TX_EVENTS, fresh.requests),
                            (TASK_EVENTS, fresh.tasks)):
            for written in self.writer.topics[topic]:
                view.apply(written.record, 0)
        self.runtime = fresh
        fresh.active = True
        fresh.wake_all()
        return fresh

    def close(self) -> None:
        logging.getLogger("omc_runtime.runtime").removeHandler(self._errors)

    # -- ids and commands ----------------------------------------------------------------------

    def new_id(self, what: str = "id") -> str:
        """A fresh, deterministic UUID (the n-th one this harness made)."""
        self._ids += 1
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:omc-tests:{what}:{self._ids}"))

    def command(self, cls: type[Record], *, tenant: str = TENANT, actor: str = USER,
                **fields: Any) -> Record:
        """A sealed command as the gateway writes it (sequence 0, its own hash)."""
        event_id = self.new_id("command")
        aggregate_type = "task" if "task_id" in fields else "agent"
        aggregate_id = fields.get("task_id") if aggregate_type == "task" else fields["agent_id"]
        meta = EventMeta(event_id=event_id, event_type=cls.SCHEMA, schema_version=1,
                         aggregate_type=aggregate_type, aggregate_id=str(aggregate_id),
                         sequence=0, occurred_at=self.clock(), tenant=tenant, actor=actor,
                         correlation_id=event_id, causation_id=None, prev_hash=ZERO_HASH,
                         hash="")
        return seal_command(self.writer.schemas, cls(meta=meta, **fields))

    def send(self, command: Record) -> Record:
        """Put a command on omc.commands.v1 (delivered by the next `settle()`)."""
        key = command.meta.aggregate_id  # type: ignore[attr-defined]  # task or agent id
        self.writer.put(COMMANDS, command, key)
        return command

    def register(self, policy: Policy, *, tenant: str = TENANT, signer: str = SIGNER,
                 agent_id: str | None = None) -> str:
        agent_id = agent_id or self.new_id("agent")
        self.send(self.command(RegisterAgent, tenant=tenant, agent_id=agent_id, name="tester",
                               description="an agent under test", signer_address=signer,
                               model="omc-local-planner", parameters_json="{}",
                               policy=policy))
        return agent_id

    def submit(self, agent_id: str, instruction: str, *, chain_id: int = CHAIN,
               tenant: str = TENANT, task_id: str | None = None, **fields: Any) -> str:
        task_id = task_id or self.new_id("task")
        self.send(self.command(SubmitTask, tenant=tenant, task_id=task_id, agent_id=agent_id,
                               instruction=instruction, chain_id=chain_id, **fields))
        return task_id

    async def run(self, instruction: str, policy: Policy, *, chain_id: int = CHAIN,
                  **fields: Any) -> list[Record]:
        """Register an agent with `policy`, submit `instruction`, settle; the task's events."""
        agent_id = self.register(policy)
        task_id = self.submit(agent_id, instruction, chain_id=chain_id, **fields)
        await self.settle()
        self.last_task = task_id
        return self.task_events(task_id)

    # -- the world outside: transaction outcomes -------------------------------------------------

    def confirm(self, request_id: str, *, tx_hash: str | None = None,
                block_number: int = 101, traceparent: str | None = None) -> TxConfirmed:
        """What the chain watcher writes once the request's transaction is final (in the
        watcher's span `traceparent`, if given)."""
        tx_hash = tx_hash or "0x" + hashlib.sha256(request_id.encode()).hexdigest()
        return self._tx(TxConfirmed, request_id, tx_hash=tx_hash, block_number=block_number,
                        block_hash="0x" + "bb" * 32, confirmations=12, traceparent=traceparent)

    def fail(self, request_id: str, detail: str = "execution reverted",
             traceparent: str | None = None) -> TxFailed:
        return self._tx(TxFailed, request_id, tx_hash=None, nonce=None,
                        code=TxFailureCode.REVERTED, detail=detail, traceparent=traceparent)

    def _tx(self, cls: type[Record], request_id: str, traceparent: str | None = None,
            **fields: Any) -> Any:
        request = next(r for r in self.tx_requests() if r.request_id == request_id)
        account = f"{request.chain_id}:{request.sender}"
        event_id = derived_id(f"tx:{request_id}", 1)
        meta = EventMeta(event_id=event_id, event_type=cls.SCHEMA, schema_version=1,
                         aggregate_type="account", aggregate_id=account, sequence=0,
                         occurred_at=self.clock(), tenant=request.meta.tenant,
                         actor="svc:tx-manager", correlation_id=request.meta.correlation_id,
                         causation_id=request.meta.event_id, traceparent=traceparent,
                         prev_hash="", hash="")
        record, _ = seal(self.writer.schemas, cls(meta=meta, request_id=request_id, **fields),
                         ChainHead(1, ZERO_HASH))
        self.writer.put(TX_EVENTS, record, account)
        return record

    # -- delivery ------------------------------------------------------------------------------

    async def settle(self) -> None:
        """Deliver and drive until every task waits or has ended (see the module docstring)."""
        views = {AGENT_EVENTS: self.runtime.agents, TX_EVENTS: self.runtime.requests,
                 TASK_EVENTS: self.runtime.tasks}
        for _ in range(MAX_ROUNDS):
            moved = False
            for topic, view in views.items():
                for written in self._new(topic):
                    self.runtime.wake(view.apply(written.record, 0))
                    moved = True
            for written in self._new(COMMANDS, one=True):
                await self.runtime.on_command(written.record, 0)
                moved = True
            driving = [t for t in self.runtime._driving.values() if not t.done()]
            if driving:
                await asyncio.gather(*driving)
                moved = True
            self._check()
            if not moved:
                return
        raise AssertionError(f"the runtime did not settle within {MAX_ROUNDS} rounds")

    def _new(self, topic: str, one: bool = False) -> list[Written]:
        start = self._delivered[topic]
        written = self.writer.topics[topic]
        end = min(len(written), start + 1) if one else len(written)
        self._delivered[topic] = end
        return written[start:end]

    def _check(self) -> None:
        if self.strict and self._errors.seen:
            first = self._errors.seen[0]
            raise DriveFailed(f"a drive failed: {first.getMessage()}\n"
                              f"{logging.Formatter().formatException(first.exc_info)}"
                              if first.exc_info else first.getMessage())

    # -- reading the topics --------------------------------------------------------------------

    def task_events(self, task_id: str | None = None) -> list[Record]:
        task_id = task_id or self.last_task
        return [w.record for w in self.writer.topics[TASK_EVENTS] if w.key == task_id]

    def tx_requests(self) -> list[TxRequested]:
        return [r for r in self.writer.records(TX_EVENTS) if isinstance(r, TxRequested)]

    def agent_events(self, agent_id: str) -> list[Record]:
        return [w.record for w in self.writer.topics[AGENT_EVENTS] if w.key == agent_id]


# -- a policy to start from --------------------------------------------------------------------

TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
DAPP = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
BOB = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
CAROL = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
EVE = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
"""The attacker: in every test policy's deny list."""
MALLORY = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"
"""Another attacker: in no list at all (not allowed, not denied)."""
TRANSFER_SELECTOR = "0xa9059cbb"
ETHER = 10**18


def make_policy(**changes: Any) -> Policy:
    """A version-1 policy: native up to 1 ether to Bob or Carol on chain 31337, reads of TOKEN
    and DAPP, ERC-20 transfers of TOKEN (up to 1000 units) to them, Eve denied."""
    from omc_events.records import TokenLimit

    values: dict[str, Any] = {
        "version": 1, "allowed_chain_ids": (CHAIN,), "allowed_contracts": (TOKEN, DAPP),
        "allowed_selectors": (TRANSFER_SELECTOR,), "allowed_recipients": (BOB, CAROL),
        "deny_addresses": (EVE,), "max_value_wei": str(ETHER), "budget_wei": str(5 * ETHER),
        "budget_window_seconds": 3600, "max_fee_per_gas_wei": str(100 * 10**9),
        "approval_threshold_wei": str(ETHER), "max_inferences_per_task": 4,
        "token_limits": (TokenLimit(token=TOKEN, max_amount="1000", budget_amount="5000"),),
    }
    values.update(changes)
    return Policy(**values)
