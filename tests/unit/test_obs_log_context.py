"""Log lines written while a message is handled carry its correlation, task and trace ids:
omc_obs.handling on its own, and the agent runtime's paths (a command, a step of a task)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest

from omc_chain.errors import ChainUnavailable
from omc_events.records import SubmitTask
from omc_obs.handling import bound_to, handling, task_of
from omc_obs.logging import JsonFormatter
from tests.support.runtime_harness import BOB, MemoryReader, RuntimeHarness, make_policy

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = f"00-{TRACE}-b7ad6b7169203331-01"


@pytest.fixture
def lines() -> Iterator[Callable[[], list[dict]]]:
    """Every line logged (any logger, debug and up), as the services' formatter writes it."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter("test"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(level)


def record(aggregate_type: str = "task", **fields) -> SimpleNamespace:
    meta = SimpleNamespace(event_id="e-1", event_type="omc.command.SubmitTask",
                           aggregate_type=aggregate_type, aggregate_id="t-1",
                           correlation_id="c-1", tenant="acme", traceparent=PARENT,
                           tracestate=None)
    return SimpleNamespace(meta=meta, **fields)


def test_a_record_names_its_task_by_field_or_by_aggregate() -> None:
    assert task_of(record()) == "t-1"
    assert task_of(record("agent", task_id="t-9")) == "t-9"
    assert task_of(record("account")) is None


def test_lines_inside_handling_carry_the_messages_ids_and_the_envelopes_trace(lines) -> None:
    log = logging.getLogger("omc.test")
    with handling(record(), "handle"):
        log.info("inside")
    log.info("after")

    inside, after = lines()
    assert (inside["correlation_id"], inside["task_id"], inside["event_id"]) == (
        "c-1", "t-1", "e-1")
    assert inside["trace_id"] == TRACE
    assert not {"correlation_id", "task_id", "trace_id"} & set(after)


def test_with_tracing_on_the_lines_carry_the_handling_spans_ids(lines, spans) -> None:
    with handling(record(), "handle"):
        logging.getLogger("omc.test").warning("inside")

    (line,), (span,) = lines(), spans.get_finished_spans()
    assert line["trace_id"] == TRACE
    assert line["span_id"] == f"{span.context.span_id:016x}"


def test_bound_to_alone_opens_no_span(lines, spans) -> None:
    with bound_to(record("agent", task_id="t-2")):
        logging.getLogger("omc.test").error("retrying")

    assert lines()[0]["task_id"] == "t-2"
    assert spans.get_finished_spans() == ()


class DownReader(MemoryReader):
    async def get_balance(self, address: str, block: int | None = None):
        raise ChainUnavailable("node at rpc.example is down")


def test_the_runtimes_lines_about_a_task_carry_its_ids(lines) -> None:
    harness = RuntimeHarness(strict=False)
    harness.runtime.reader = DownReader()
    try:
        agent_id = harness.register(make_policy())
        submit = harness.command(SubmitTask, task_id="task-logged", agent_id=agent_id,
                                 instruction=f"what is the balance of {BOB}", chain_id=31337)
        submit = harness.send(submit)
        asyncio.run(harness.settle())
    finally:
        harness.close()

    waiting = [line for line in lines() if "waits for the chain" in line["message"]]
    assert waiting, [line["message"] for line in lines()]
    for line in waiting:
        assert line["task_id"] == "task-logged"
        assert line["correlation_id"] == submit.meta.correlation_id
        assert line["logger"] == "omc_runtime.runtime"


def test_the_runtimes_line_about_a_command_carries_its_ids(lines) -> None:
    harness = RuntimeHarness(strict=False)
    try:
        agent_id = harness.register(make_policy())
        # a command the runtime does not answer: it says so, in the command's context
        stray = harness.command(SubmitTask, task_id="task-stray", agent_id=agent_id,
                                instruction="hello", chain_id=31337)
        asyncio.run(harness.runtime.on_command(SimpleNamespace(
            meta=stray.meta, SCHEMA="omc.command.Unknown", task_id="task-stray"), 0))
    finally:
        harness.close()

    (line,) = [line for line in lines() if line["message"].startswith("ignoring")]
    assert (line["task_id"], line["correlation_id"], line["event_id"]) == (
        "task-stray", stray.meta.correlation_id, stray.meta.event_id)


def test_the_gateways_line_for_a_command_names_its_correlation_and_trace(capsys) -> None:
    from tests.unit.test_gateway_app import build, submit_body

    access = logging.getLogger("omc.gateway.access")
    level = access.level
    access.setLevel(logging.INFO)
    served = build()
    gateway = next(served)
    try:
        answer = gateway.client.post("/v1/tasks", json=submit_body(),
                                     headers={**gateway.auth(), "traceparent": PARENT})
    finally:
        served.close()
        access.setLevel(level)

    assert answer.status_code == 202
    (line,) = [json.loads(text) for text in capsys.readouterr().err.splitlines()
               if '"omc.gateway.access"' in text and '"/v1/tasks"' in text]
    (command,) = gateway.bus.published
    assert line["correlation_id"] == command.meta.correlation_id
    assert line["trace_id"] == TRACE
