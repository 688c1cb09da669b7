"""omc_obs.logging: one JSON object per line, levelled, with context, and no secret in it."""

from __future__ import annotations

import io
import json
import logging

import pytest
from mode.utils.logging import setup_logging
from opentelemetry.sdk.trace import TracerProvider

from omc_obs import logging as obs

TOKEN = "omc_0123456789ab_" + "S" * 43
PRIVATE_KEY = "0x" + "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"


@pytest.fixture
def lines(monkeypatch):
    """Configure logging into a buffer; yield a function returning the parsed lines."""
    monkeypatch.delenv("OMC_LOG_LEVEL", raising=False)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    buffer = io.StringIO()
    obs.configure("test-service", stream=buffer)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    root.handlers[:], _ = saved
    root.setLevel(saved[1])


def test_a_line_is_json_with_time_level_logger_service_and_message(lines) -> None:
    logging.getLogger("omc.thing").warning("disk %s%% full", 91)

    (line,) = lines()
    assert line["level"] == "warning"
    assert line["logger"] == "omc.thing"
    assert line["service"] == "test-service"
    assert line["message"] == "disk 91% full"
    assert line["time"].endswith("+00:00")


def test_the_level_filters_and_comes_from_omc_log_level(monkeypatch) -> None:
    buffer = io.StringIO()
    monkeypatch.setenv("OMC_LOG_LEVEL", "warning")
    obs.configure("x", stream=buffer)
    try:
        logging.getLogger("omc").info("hidden")
        logging.getLogger("omc").error("shown")
    finally:
        logging.getLogger().handlers[:] = []
        logging.getLogger().setLevel(logging.WARNING)

    assert [json.loads(x)["message"] for x in buffer.getvalue().splitlines()] == ["shown"]


def test_bound_fields_and_extra_ids_go_on_every_line_inside_the_block(lines) -> None:
    log = logging.getLogger("omc.runtime")
    with obs.bind(correlation_id="cmd-1", task_id="task-1"):
        log.info("one")
        with obs.bind(tx_hash="0xabc"):
            log.info("two", extra={"agent_id": "agent-7"})
    log.info("three")

    one, two, three = lines()
    assert (one["correlation_id"], one["task_id"]) == ("cmd-1", "task-1")
    assert (two["task_id"], two["tx_hash"], two["agent_id"]) == ("task-1", "0xabc", "agent-7")
    assert "task_id" not in three
    assert "correlation_id" not in three


def test_the_trace_id_is_the_current_spans_or_the_bound_traceparent(lines) -> None:
    tracer = TracerProvider().get_tracer("test")
    log = logging.getLogger("omc")
    with tracer.start_as_current_span("work") as span:
        log.info("in a span")
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with obs.bind(traceparent=traceparent):
        log.info("from the envelope")
    log.info("no trace")

    in_span, from_envelope, none = lines()
    assert in_span["trace_id"] == f"{span.get_span_context().trace_id:032x}"
    assert in_span["span_id"] == f"{span.get_span_context().span_id:016x}"
    assert from_envelope["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert "traceparent" not in from_envelope
    assert "trace_id" not in none


def test_an_exception_is_logged_with_its_traceback(lines) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("omc").exception("failed")

    (line,) = lines()
    assert line["level"] == "error"
    assert "ValueError: boom" in line["error"]


@pytest.mark.parametrize(("text", "secret"), [
    (f"authenticating {TOKEN}", "S" * 43),
    ("Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123", "abcdefghijklmnopqrstuvwxyz0123"),
    ("rpc https://user:hunter2-pass@rpc.example.com/v1 failed", "hunter2-pass"),
    ("redis://:redis-pass-1@cache:6379/0 down", "redis-pass-1"),
    ("config password=swordfish123 host=x", "swordfish123"),
    ('{"private_key": "deadbeefcafe"}', "deadbeefcafe"),
    ("api_key: sk-live-123456789", "sk-live-123456789"),
])
def test_known_secret_shapes_are_masked(lines, text, secret) -> None:
    logging.getLogger("omc").info("%s", text)

    (line,) = lines()
    assert secret not in json.dumps(line)
    assert obs.MASK in line["message"]


def test_the_api_key_id_is_kept_so_a_caller_can_still_be_named(lines) -> None:
    logging.getLogger("omc").info("key %s", TOKEN)

    assert lines()[0]["message"] == f"key omc_0123456789ab_{obs.MASK}"


def test_a_registered_secret_is_masked_with_or_without_its_0x(lines) -> None:
    obs.add_secret(PRIVATE_KEY)
    log = logging.getLogger("omc")
    log.info("loaded %s", PRIVATE_KEY)
    log.info("bare %s", PRIVATE_KEY[2:])
    log.info("fields", extra={"fields": {"key": PRIVATE_KEY}})

    text = "\n".join(json.dumps(line) for line in lines())
    assert PRIVATE_KEY[2:] not in text
    assert text.count(obs.MASK) == 3


def test_transaction_and_event_hashes_are_not_masked(lines) -> None:
    tx_hash = "0x" + "ab" * 32
    logging.getLogger("omc").info("broadcast %s", tx_hash)

    assert lines()[0]["message"] == f"broadcast {tx_hash}"


def test_faust_workers_logging_setup_keeps_the_json_handler(lines) -> None:
    handler = logging.getLogger().handlers[0]
    setup_logging(loglevel=logging.INFO, logging_config=obs.faust_logging_config(handler))
    logging.getLogger("faust.worker").info("started")

    assert logging.getLogger().handlers == [handler]
    assert lines()[-1]["logger"] == "faust.worker"
