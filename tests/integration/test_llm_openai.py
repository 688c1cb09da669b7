"""OpenAIModel against a real OpenAI-compatible HTTP endpoint started here (Starlette on uvicorn).

The endpoint implements POST /v1/chat/completions, plain and SSE-streamed, with tool calls; the
model name picks its behaviour: text, tool, flaky (429 with Retry-After, then success),
broken (500 forever), leaky (a 500 whose message echoes the key and a URL with credentials),
empty (no choices), slow (answers after the client's timeout).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from omc_llm.model import InferenceError, InferenceInput
from omc_llm.openai_adapter import OpenAIModel
from omc_llm.tools import tool_schemas, validate_call

SECRET = "sk-test-" + uuid.uuid4().hex
ADDRESS = "0x" + "ab" * 20
ARGUMENTS = f'{{ "address" : "{ADDRESS}" }}'
MESSAGES = [{"role": "system", "content": "rules"}, {"role": "user", "content": "hi"}]


class Endpoint:
    """The app and what it has seen."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.seen: list[dict] = []
        self.app = Starlette(routes=[Route("/v1/chat/completions", self.chat,
                                           methods=["POST"])])

    async def chat(self, request: Request):
        body = await request.json()
        model = body["model"]
        kind = model.split(":")[0]
        self.calls[model] += 1
        self.seen.append({"body": body, "authorization": request.headers.get("authorization")})
        if kind == "flaky" and self.calls[model] == 1:
            return JSONResponse({"error": {"message": "slow down", "type": "rate_limit"}},
                                status_code=429, headers={"retry-after": "7"})
        if kind == "broken":
            return JSONResponse({"error": {"message": "upstream exploded"}}, status_code=500)
        if kind == "leaky":
            message = (f"bad key {request.headers.get('authorization')} at "
                       f"https://admin:hunter2@internal.example/v1")
            return JSONResponse({"error": {"message": message}}, status_code=503)
        if kind == "denied":
            return JSONResponse({"error": {"message": "no such model"}}, status_code=404)
        if kind == "empty":
            return JSONResponse({"id": "x", "object": "chat.completion", "created": 0,
                                 "model": model, "choices": []})
        if kind == "slow":
            await asyncio.sleep(1)
        tool = kind in ("tool", "flaky")
        if body.get("stream"):
            return StreamingResponse(self.stream(model, tool), media_type="text/event-stream")
        message = {"role": "assistant", "content": None if tool else "hello there"}
        if tool:
            message["tool_calls"] = [{"id": "call_abc", "type": "function",
                                      "function": {"name": "get_balance",
                                                   "arguments": ARGUMENTS}}]
        return JSONResponse({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 0,
            "model": model + "-2026",
            "choices": [{"index": 0, "message": message,
                         "finish_reason": "tool_calls" if tool else "stop"}],
            "usage": {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500}})

    async def stream(self, model: str, tool: bool):
        def chunk(delta: dict, finish: str | None = None, usage: dict | None = None) -> str:
            choices = [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}]
            data = {"id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 0,
                    "model": model + "-2026", "choices": choices}
            if usage:
                data["usage"] = usage
            return f"data: {json.dumps(data)}\n\n"

        yield chunk({"role": "assistant", "content": ""})
        if tool:
            yield chunk({"tool_calls": [{"index": 0, "id": "call_s1", "type": "function",
                                         "function": {"name": "get_", "arguments": ""}}]})
            yield chunk({"tool_calls": [{"index": 0, "function": {"name": "balance"}}]})
            for piece in (ARGUMENTS[:7], ARGUMENTS[7:30], ARGUMENTS[30:]):
                yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
            yield chunk({"tool_calls": [{"index": 1, "id": "call_s2", "type": "function",
                                         "function": {"name": "erc20_balance",
                                                      "arguments": "{\"token\":"}}]})
            yield chunk({"tool_calls": [{"index": 1, "function": {
                "arguments": f"\"{ADDRESS}\",\"holder\":\"{ADDRESS}\"}}"}}]})
            yield chunk({}, "tool_calls")
        else:
            for piece in ("hel", "lo ", "there"):
                yield chunk({"content": piece})
            yield chunk({}, "stop")
        yield chunk({}, usage={"prompt_tokens": 1200, "completion_tokens": 300,
                               "total_tokens": 1500})
        yield "data: [DONE]\n\n"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[tuple[Endpoint, str]]:
    """The endpoint served on a free loopback port for this module's tests."""
    endpoint = Endpoint()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(endpoint.app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the test endpoint did not start"
        time.sleep(0.02)
    yield endpoint, f"http://127.0.0.1:{port}/v1"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


PRICES = {"text": (Decimal("0.0025"), Decimal("0.01")), "tool": (Decimal("0.005"), Decimal(0))}


def run(base_url: str, model: str, *, stream: bool = False, waits: list | None = None,
        **options) -> object:
    async def sleep(seconds: float) -> None:
        (waits if waits is not None else []).append(seconds)

    async def go():
        adapter = OpenAIModel(base_url=base_url, api_key=SECRET, provider_name="selfhosted",
                              prices=PRICES, timeout=options.pop("timeout", 5.0),
                              max_retries=options.pop("max_retries", 2), stream=stream,
                              sleep=sleep, **options)
        try:
            return await adapter.complete(InferenceInput(
                model=model, parameters={"temperature": 0}, messages=MESSAGES,
                tools=tool_schemas()))
        finally:
            await adapter.aclose()

    return asyncio.run(go())


@pytest.mark.parametrize("stream", [False, True])
def test_text_answer_with_usage_and_cost(endpoint, stream: bool) -> None:
    server, base_url = endpoint
    output = run(base_url, "text", stream=stream)
    assert output.response_text == "hello there"
    assert output.tool_calls == ()
    assert output.finish_reason == "stop"
    assert output.model == "text-2026"
    assert (output.prompt_tokens, output.completion_tokens) == (1200, 300)
    assert output.cost_usd == Decimal("0.006")  # 1.2 * 0.0025 + 0.3 * 0.01, priced by "text"
    assert output.latency_ms >= 0
    sent = server.seen[-1]
    assert sent["authorization"] == f"Bearer {SECRET}"
    assert sent["body"]["temperature"] == 0
    assert sent["body"]["messages"] == MESSAGES
    assert next(t["function"]["name"] for t in sent["body"]["tools"]) == "get_balance"
    assert bool(sent["body"].get("stream")) is stream


def test_tool_calls_come_back_with_canonical_arguments(endpoint) -> None:
    _, base_url = endpoint
    output = run(base_url, "tool")
    (call,) = output.tool_calls
    assert call.call_id == "call_abc"
    assert call.name == "get_balance"
    assert call.arguments_json == f'{{"address":"{ADDRESS}"}}'
    assert validate_call(call.name, call.arguments_json)["address"].lower() == ADDRESS
    assert output.finish_reason == "tool_calls"
    assert output.response_text == ""
    assert output.cost_usd == Decimal("0.006")


def test_streamed_tool_call_fragments_are_put_together(endpoint) -> None:
    _, base_url = endpoint
    output = run(base_url, "tool", stream=True)
    assert [(c.call_id, c.name) for c in output.tool_calls] == [
        ("call_s1", "get_balance"), ("call_s2", "erc20_balance")]
    assert output.tool_calls[0].arguments_json == f'{{"address":"{ADDRESS}"}}'
    assert json.loads(output.tool_calls[1].arguments_json) == {"token": ADDRESS,
                                                               "holder": ADDRESS}
    assert output.finish_reason == "tool_calls"
    assert (output.prompt_tokens, output.completion_tokens) == (1200, 300)


@pytest.mark.parametrize("stream", [False, True])
def test_a_429_is_retried_after_the_time_the_server_asks(endpoint, stream: bool) -> None:
    server, base_url = endpoint
    model = f"flaky:{uuid.uuid4().hex}"
    waits: list[float] = []
    output = run(base_url, model, stream=stream, waits=waits)
    assert server.calls[model] == 2
    assert waits == [7.0]
    assert output.tool_calls[0].name == "get_balance"


def test_a_500_forever_gives_up_after_the_retries_with_backoff(endpoint) -> None:
    server, base_url = endpoint
    model = f"broken:{uuid.uuid4().hex}"
    waits: list[float] = []
    with pytest.raises(InferenceError) as caught:
        run(base_url, model, waits=waits, max_retries=3, backoff_base=0.5)
    error = caught.value
    assert (error.error_type, error.retryable, error.attempts) == ("http_500", True, 4)
    assert server.calls[model] == 4
    assert waits == [0.5, 1.0, 2.0]
    assert "upstream exploded" in str(error)
    assert "selfhosted" in str(error)


def test_errors_never_carry_the_key_or_a_url(endpoint) -> None:
    _, base_url = endpoint
    with pytest.raises(InferenceError) as caught:
        run(base_url, f"leaky:{uuid.uuid4().hex}", max_retries=0)
    text = str(caught.value)
    assert caught.value.error_type == "http_503"
    assert SECRET not in text
    assert "hunter2" not in text
    assert "127.0.0.1" not in text
    assert "[redacted]" in text


def test_a_client_error_is_not_retried(endpoint) -> None:
    server, base_url = endpoint
    model = f"denied:{uuid.uuid4().hex}"
    with pytest.raises(InferenceError) as caught:
        run(base_url, model)
    assert (caught.value.error_type, caught.value.retryable, caught.value.attempts) == (
        "http_404", False, 1)
    assert server.calls[model] == 1


def test_an_answer_without_choices_is_a_bad_response(endpoint) -> None:
    _, base_url = endpoint
    with pytest.raises(InferenceError) as caught:
        run(base_url, f"empty:{uuid.uuid4().hex}")
    assert (caught.value.error_type, caught.value.retryable) == ("bad_response", False)


def test_a_slow_endpoint_times_out(endpoint) -> None:
    _, base_url = endpoint
    with pytest.raises(InferenceError) as caught:
        run(base_url, f"slow:{uuid.uuid4().hex}", timeout=0.3, max_retries=1)
    assert (caught.value.error_type, caught.value.retryable, caught.value.attempts) == (
        "timeout", True, 2)


def test_an_unreachable_endpoint() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with pytest.raises(InferenceError) as caught:
        run(f"http://user:pw@127.0.0.1:{port}/v1", "text", max_retries=1)
    assert (caught.value.error_type, caught.value.retryable, caught.value.attempts) == (
        "unreachable", True, 2)
    assert "pw" not in str(caught.value)
    assert str(port) not in str(caught.value)


def test_a_signed_record_of_an_endpoint_answer_verifies(endpoint) -> None:
    from datetime import UTC, datetime

    from omc_events.records import EventMeta, InferenceCompleted
    from omc_llm.attest import Attestor, verify_inference
    from omc_llm.runner import infer

    _, base_url = endpoint

    async def go():
        adapter = OpenAIModel(base_url, SECRET, "selfhosted", PRICES, 5.0, 0, stream=True)
        try:
            return await infer(adapter, InferenceInput(model="tool", messages=MESSAGES,
                                                       tools=tool_schemas()),
                               Attestor("0x" + "6a" * 32), "7d1c0b4e-7c55-5a53-9a43-2e9f0d3b1c01")
        finally:
            await adapter.aclose()

    record = asyncio.run(go())
    meta = EventMeta(event_id="7d1c0b4e-7c55-5a53-9a43-2e9f0d3b1c02",
                     event_type="omc.task.InferenceCompleted", schema_version=1,
                     aggregate_type="task", aggregate_id="t", sequence=3,
                     occurred_at=datetime(2026, 11, 25, tzinfo=UTC), tenant="t",
                     actor="svc:agent-runtime", correlation_id="c", prev_hash="0" * 64,
                     hash="0" * 64)
    event = InferenceCompleted(meta=meta, task_id="t", **record.fields())
    event.to_avro()
    assert (event.provider, event.model, event.cost_usd) == ("selfhosted", "tool-2026", "0.006")
    assert [c.name for c in event.tool_calls] == ["get_balance", "erc20_balance"]
    assert verify_inference(event)
