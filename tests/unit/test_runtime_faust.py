"""The runtime's faust agent on omc.commands.v1, without a broker (faust's `test_context`):
an encoded command reaches `Runtime.on_command`; bytes that do not decode are dead-lettered
and the agent goes on with the next message."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from omc_events.avro import Schemas
from omc_events.catalogue import Catalogue
from omc_events.codec import Codec, CodecError
from omc_events.records import CommandRejected, SubmitTask, TaskSubmitted
from omc_runtime.app import BATCH_WAIT, command_agent
from omc_runtime.runtime import COMMANDS
from tests.support.runtime_harness import BOB, RuntimeHarness, make_policy

SCHEMAS = Schemas()
CATALOGUE = Catalogue.load()


@pytest.fixture(scope="module")
def codec() -> Codec:
    registry = SchemaRegistryClient.new_client({"url": "mock://runtime-faust-tests"})
    for subject, name in CATALOGUE.subjects():
        registry.register_schema(subject, Schema(SCHEMAS.set.standalone_json(name), "AVRO"))
    return Codec(registry, schemas=SCHEMAS, catalogue=CATALOGUE)


class FakeDeadLetters:
    """DeadLetters' interface (send(message, error)), keeping what it was given."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int, int, bytes, BaseException]] = []

    def send(self, message: Any, error: BaseException, attempts: int = 1) -> None:
        self.sent.append((message.topic(), message.partition(), message.offset(),
                          message.value(), error))


async def until(condition: Any, what: str) -> None:
    """Wait for the agent to get there (it takes the stream in batches of up to BATCH_WAIT
    seconds); the bound only turns a hang into a failure, it is not what is tested."""
    for _ in range(int(60 / BATCH_WAIT)):
        if condition():
            return
        await asyncio.sleep(BATCH_WAIT)
    raise AssertionError(f"the agent never got there: {what}")


def make_agent(codec: Codec, harness: RuntimeHarness, dead: FakeDeadLetters,
               ready: asyncio.Event) -> Any:
    # the broker is never contacted: test_context feeds the agent directly
    app = faust.App("omc.runtime.test", broker="kafka://127.0.0.1:9", value_serializer="raw",
                    key_serializer="raw", web_enabled=False, store="memory://")
    topic = app.topic(COMMANDS, key_type=bytes, value_type=bytes)
    return app.agent(topic)(command_agent(codec, harness.runtime, dead, ready))


def test_an_encoded_submit_task_reaches_the_runtime(codec: Codec) -> None:
    async def scenario() -> tuple[RuntimeHarness, str]:
        harness = RuntimeHarness(balances={BOB: 3})
        agent_id = harness.register(make_policy())
        await harness.settle()
        ready = asyncio.Event()
        ready.set()
        agent = make_agent(codec, harness, FakeDeadLetters(), ready)
        submit = harness.command(SubmitTask, task_id=harness.new_id("task"), agent_id=agent_id,
                                 instruction=f"balance of {BOB}", chain_id=31337)
        async with agent.test_context() as context:
            await context.put(key=submit.task_id.encode(), value=codec.encode(COMMANDS, submit))
            await until(lambda: harness.task_events(submit.task_id), "the SubmitTask answered")
        await harness.settle()
        return harness, submit.task_id

    harness, task_id = asyncio.run(scenario())

    events = harness.task_events(task_id)
    assert isinstance(events[0], TaskSubmitted)
    assert events[0].meta.causation_id is not None
    assert type(events[-1]).__name__ == "TaskCompleted"  # and the runtime drove it to its end


def test_garbage_is_dead_lettered_and_the_agent_goes_on(codec: Codec) -> None:
    async def scenario() -> tuple[RuntimeHarness, FakeDeadLetters, str]:
        harness = RuntimeHarness()
        dead = FakeDeadLetters()
        ready = asyncio.Event()
        ready.set()
        agent = make_agent(codec, harness, dead, ready)
        submit = harness.command(SubmitTask, task_id=harness.new_id("task"),
                                 agent_id=harness.new_id("agent"), instruction="hi",
                                 chain_id=31337)
        async with agent.test_context() as context:
            key = submit.task_id.encode()  # one key: handled in order, garbage first
            await context.put(key=key, value=b"\x00not avro at all")
            await context.put(key=key, value=b"{}")
            await context.put(key=key, value=codec.encode(COMMANDS, submit))
            await until(lambda: harness.task_events(submit.task_id), "the SubmitTask answered")
        return harness, dead, submit.task_id

    harness, dead, task_id = asyncio.run(scenario())

    assert [value for _, _, _, value, _ in dead.sent] == [b"\x00not avro at all", b"{}"]
    assert all(isinstance(error, CodecError) for *_, error in dead.sent)
    assert all(topic == COMMANDS for topic, *_ in dead.sent)
    (rejected,) = harness.task_events(task_id)  # the message after the garbage was answered
    assert isinstance(rejected, CommandRejected)


def test_nothing_is_handled_before_the_views_are_ready(codec: Codec) -> None:
    async def scenario() -> list[Any]:
        harness = RuntimeHarness()
        ready = asyncio.Event()
        agent = make_agent(codec, harness, FakeDeadLetters(), ready)
        submit = harness.command(SubmitTask, task_id=harness.new_id("task"),
                                 agent_id=harness.new_id("agent"), instruction="hi",
                                 chain_id=31337)
        async with agent.test_context() as context:
            put = asyncio.ensure_future(context.put(key=b"k",
                                                    value=codec.encode(COMMANDS, submit)))
            for _ in range(20):
                await asyncio.sleep(0)
            before = list(harness.writer.records("omc.task.events.v1"))
            ready.set()
            await put
            await until(lambda: harness.writer.records("omc.task.events.v1"),
                        "the SubmitTask answered once ready")
        return [before, harness.writer.records("omc.task.events.v1")]

    before, after = asyncio.run(scenario())

    assert before == []
    assert len(after) == 1
