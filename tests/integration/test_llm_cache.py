"""The exact-match inference cache on the real Redis, through CachedModel."""

from __future__ import annotations

import asyncio
import dataclasses
from decimal import Decimal

import redis.asyncio
from redis.backoff import NoBackoff
from redis.retry import Retry

from omc_llm.cache import DEFAULT_PREFIX, CachedModel, cache_key, key_of
from omc_llm.model import InferenceInput, InferenceOutput, LanguageModel
from omc_llm.planner import MODEL, LocalPlanner
from omc_llm.prompt import render
from omc_llm.tools import tool_schemas

ADDRESS = "0x" + "ab" * 20


class CountingModel:
    """The local planner with a price, counting the calls that reach it."""

    name = "counting"

    def __init__(self) -> None:
        self.calls = 0

    async def complete(self, request: InferenceInput) -> InferenceOutput:
        self.calls += 1
        output = LocalPlanner().answer(request)
        return dataclasses.replace(output, prompt_tokens=120, completion_tokens=30,
                                   cost_usd=Decimal("0.00042"), latency_ms=250)


def request_for(instruction: str, parameters: dict | None = None,
                tools: list[str] | None = None) -> InferenceInput:
    return render("task-planner@1", instruction).to_input(MODEL, parameters or {},
                                                          tool_schemas(tools))


def test_a_second_identical_request_is_a_hit(redis_keys, settings) -> None:
    sync_client, prefix = redis_keys
    inner = CountingModel()

    async def go():
        client = redis.asyncio.Redis.from_url(settings.redis_url)
        try:
            model = CachedModel(inner, client, ttl_seconds=60, prefix=prefix + "llm:cache:")
            assert isinstance(model, LanguageModel)
            assert model.name == "counting"
            request = request_for(f"send 1 ether to {ADDRESS}", {"temperature": 0})
            first = await model.complete(request)
            second = await model.complete(request)
            other = await model.complete(request_for(f"send 2 ether to {ADDRESS}",
                                                     {"temperature": 0}))
            return request, first, second, other
        finally:
            await client.aclose()

    request, first, second, other = asyncio.run(go())
    assert inner.calls == 2
    assert first.cache_hit is False
    assert (first.prompt_tokens, first.cost_usd) == (120, Decimal("0.00042"))
    assert second.cache_hit is True
    assert (second.prompt_tokens, second.completion_tokens, second.cost_usd) == (0, 0, 0)
    assert (second.model, second.response_text, second.tool_calls, second.finish_reason) == (
        first.model, first.response_text, first.tool_calls, first.finish_reason)
    assert other.tool_calls != first.tool_calls
    key = key_of(request, prefix + "llm:cache:")
    assert key.startswith(prefix + "llm:cache:")
    assert len(key.removeprefix(prefix + "llm:cache:")) == 64
    assert 0 < sync_client.ttl(key) <= 60
    assert len(list(sync_client.scan_iter(f"{prefix}*"))) == 2


def test_model_parameters_prompt_and_tools_are_all_in_the_key() -> None:
    base = request_for(f"what is the balance of {ADDRESS}")
    keys = {
        key_of(base),
        key_of(dataclasses.replace(base, model="gpt-4o")),
        key_of(request_for(f"what is the balance of {ADDRESS}", {"temperature": 0})),
        key_of(request_for(f"what is the balance of {ADDRESS} ")),
        key_of(request_for(f"what is the balance of {ADDRESS}", tools=["get_balance"])),
    }
    assert len(keys) == 5
    assert key_of(base).startswith(DEFAULT_PREFIX)
    assert key_of(request_for(f"what is the balance of {ADDRESS}")) == key_of(base)
    assert cache_key("m", "{}", "0x" + "00" * 32).startswith("omc:v1:llm:cache:")


def test_a_redis_outage_does_not_fail_the_inference() -> None:
    inner = CountingModel()

    async def go():
        client = redis.asyncio.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5,
                                      retry=Retry(NoBackoff(), 0))
        try:
            model = CachedModel(inner, client, ttl_seconds=60)
            return await model.complete(request_for(f"send 1 ether to {ADDRESS}"))
        finally:
            await client.aclose()

    output = asyncio.run(go())
    assert inner.calls == 1
    assert output.cache_hit is False
    assert output.tool_calls[0].name == "transfer_native"
