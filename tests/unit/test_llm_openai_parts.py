"""The OpenAI adapter's pure parts: Retry-After, backoff, redaction, prices, cost, arguments."""

from __future__ import annotations

from decimal import Decimal

import pytest

from omc_errors import ConfigError
from omc_llm.model import InferenceInput, InferenceOutput, LanguageModel
from omc_llm.openai_adapter import (
    OpenAIModel,
    _canonical_arguments,
    _retry_after,
    _tool_calls,
    _with_cost,
    parse_prices,
    redact,
)


def test_retry_after_headers() -> None:
    assert _retry_after({"retry-after-ms": "250"}) == 0.25
    assert _retry_after({"retry-after": "7"}) == 7.0
    assert _retry_after({"retry-after": "1.5"}) == 1.5
    assert _retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert _retry_after({"retry-after": "soon"}) is None
    assert _retry_after({}) is None


def test_backoff_doubles_and_is_capped_and_the_server_wait_wins() -> None:
    model = OpenAIModel("http://127.0.0.1:9/v1", "k", backoff_base=0.5, backoff_max=3.0)
    assert [model._delay(n, None) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert model._delay(1, 2.5) == 2.5
    assert model._delay(1, 99.0) == 3.0
    assert model._delay(1, -1.0) == 0.0


def test_the_adapter_is_a_language_model_and_hides_its_key() -> None:
    model = OpenAIModel("https://api.example/v1", "sk-very-secret", "openai")
    assert isinstance(model, LanguageModel)
    assert model.name == "openai"
    assert "sk-very-secret" not in repr(model)
    with pytest.raises(ValueError, match="timeout"):
        OpenAIModel(timeout=0)


def test_redaction() -> None:
    text = "key sk-abc at https://u:p@host/v1 and redis://user:pw@h:1/0 ok"
    cleaned = redact(text, "sk-abc")
    assert "sk-abc" not in cleaned
    assert "u:p" not in cleaned
    assert "user:pw" not in cleaned
    assert cleaned.startswith("key [redacted] at [url] and redis://[redacted]@h:1/0")


def test_prices_from_settings_text() -> None:
    assert parse_prices('{"gpt-4o":["0.0025","0.01"]}') == {
        "gpt-4o": (Decimal("0.0025"), Decimal("0.01"))}
    assert parse_prices("") == {}
    for bad in ('{"m":[0.0025,0.01]}', '{"m":["1"]}', '{"m":["-1","1"]}', "[]", "nope"):
        with pytest.raises(ConfigError):
            parse_prices(bad)


def test_cost_is_exact_decimal_per_thousand_tokens() -> None:
    output = InferenceOutput(model="m", response_text="", prompt_tokens=1234,
                             completion_tokens=56)
    priced = _with_cost(output, 17, (Decimal("0.0025"), Decimal("0.01")))
    assert priced.cost_usd == Decimal("0.003645")
    assert priced.latency_ms == 17
    assert _with_cost(output, 0, (Decimal(0), Decimal(0))).cost_usd == 0


def test_arguments_are_canonicalized_only_when_plain_json() -> None:
    assert _canonical_arguments('{ "b": "1", "a": [true, null] }') == '{"a":[true,null],"b":"1"}'
    assert _canonical_arguments("") == "{}"
    assert _canonical_arguments('{"value": 1.5}') == '{"value": 1.5}'
    assert _canonical_arguments('{"value": 1e400}') == '{"value": 1e400}'
    assert _canonical_arguments("{not json") == "{not json"


def test_missing_call_ids_are_derived_from_the_request() -> None:
    request = InferenceInput(model="m", messages=[{"role": "user", "content": "hi"}])
    calls = _tool_calls([(None, "get_balance", "{}"), ("", "get_balance", "{}")], request)
    assert calls[0].call_id != calls[1].call_id
    assert calls == _tool_calls([(None, "get_balance", "{}"), ("", "get_balance", "{}")],
                                request)
