"""OpenAI, or any OpenAI-compatible endpoint (vLLM, llama.cpp server, Ollama), as a LanguageModel.

    OpenAIModel(base_url=None, api_key=None, provider_name="openai", prices=None, timeout=60.0,
                max_retries=3, *, stream=False, backoff_base=0.5, backoff_max=20.0,
                stream_usage=True)
    parse_prices('{"gpt-4o": ["0.0025", "0.01"]}') -> {"gpt-4o": (Decimal, Decimal)}

One `complete` = one chat completion with tool calling, plain or streamed (streamed deltas,
tool call fragments included, are accumulated into one output; usage is asked for with
stream_options.include_usage unless stream_usage=False, for endpoints that refuse it).
Each attempt is bounded by `timeout` seconds (the whole attempt, streaming included).
Retried with exponential backoff (backoff_base · 2^(n-1), capped at backoff_max, no jitter)
on 408/409/429/5xx, timeouts and connection failures, honouring Retry-After / retry-after-ms
(capped at backoff_max); other failures are not retried. The openai client's own retries are
off so that attempts are counted here.

Cost = prompt_tokens/1000 · input price + completion_tokens/1000 · output price, from
`prices[model] = (input_per_1k, output_per_1k)` (Decimal US dollars), looked up by the model
the endpoint reported, then by the model asked; a model without a price costs 0 (self-hosted),
and so does a streamed answer from an endpoint that sends no usage (tokens are then 0 too).
Tool call arguments are re-serialized as canonical JSON when they parse (kept as sent when they
do not: `tools.validate_call` refuses them later with a precise message).

Errors are `InferenceError` with error_type timeout | rate_limited | http_<code> |
unreachable | bad_response; messages name the provider and model, never the URL or the key.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import openai
from openai import AsyncOpenAI

from omc_errors import ConfigError
from omc_llm.canonical import canonical_json, sha256_hex
from omc_llm.model import InferenceError, InferenceInput, InferenceOutput, ToolCallOut

RETRYABLE_STATUS = frozenset({408, 409, 429})
RESERVED_PARAMETERS = frozenset({"model", "messages", "tools", "stream", "stream_options",
                                 "timeout", "extra_headers", "extra_query", "extra_body"})
_USERINFO = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")
_URL = re.compile(r"https?://\S+")
_PRICE = re.compile(r"(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
Prices = Mapping[str, tuple[Decimal, Decimal]]


class _Retry(Exception):
    """One failed attempt: the InferenceError it would be, and how long the server asked to wait."""

    def __init__(self, error: InferenceError, wait: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.wait = wait


class OpenAIModel:
    """Chat completions with tool calling through the openai package."""

    def __init__(self, base_url: str | None = None, api_key: str | None = None,
                 provider_name: str = "openai", prices: Prices | None = None,
                 timeout: float = 60.0, max_retries: int = 3, *, stream: bool = False,
                 backoff_base: float = 0.5, backoff_max: float = 20.0,
                 stream_usage: bool = True,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if timeout <= 0 or max_retries < 0 or backoff_base < 0 or backoff_max < 0:
            raise ValueError("timeout must be positive; retries and backoff not negative")
        self.name = provider_name
        self._secret = api_key or ""
        self._prices = dict(prices or {})
        self._timeout = timeout
        self._max_retries = max_retries
        self._stream = stream
        self._stream_options = {"stream_options": {"include_usage": True}} if stream_usage else {}
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._sleep = sleep
        self._client = AsyncOpenAI(api_key=api_key or "no-key", base_url=base_url,
                                   timeout=timeout, max_retries=0)

    def __repr__(self) -> str:
        return f"OpenAIModel(provider_name={self.name!r})"

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.close()

    async def complete(self, request: InferenceInput) -> InferenceOutput:
        attempts = 0
        while True:
            attempts += 1
            started = time.monotonic()
            try:
                async with asyncio.timeout(self._timeout):
                    if self._stream:
                        output = await self._streamed(request)
                    else:
                        output = await self._plain(request)
            except TimeoutError:
                failure = _Retry(self._error("timeout", f"no answer within {self._timeout} s",
                                             True, request), None)
            except openai.APIError as error:
                failure = self._translate(error, request)
            except _Retry as retry:
                failure = retry
            else:
                latency = int((time.monotonic() - started) * 1000)
                return _with_cost(output, latency, self._price(output.model, request.model))
            failure.error.attempts = attempts
            if not failure.error.retryable or attempts > self._max_retries:
                raise failure.error
            await self._sleep(self._delay(attempts, failure.wait))

    def _delay(self, attempt: int, wait: float | None) -> float:
        if wait is not None:
            return min(max(wait, 0.0), self._backoff_max)
        return min(self._backoff_base * 2 ** (attempt - 1), self._backoff_max)

    def _price(self, reported: str, asked: str) -> tuple[Decimal, Decimal]:
        return self._prices.get(reported) or self._prices.get(asked) or (Decimal(0), Decimal(0))

    def _arguments(self, request: InferenceInput) -> dict[str, Any]:
        arguments: dict[str, Any] = {k: v for k, v in request.parameters.items()
                                     if k not in RESERVED_PARAMETERS}
        arguments.update(model=request.model, messages=request.messages)
        if request.tools:
            arguments["tools"] = request.tools
        return arguments

    async def _plain(self, request: InferenceInput) -> InferenceOutput:
        response = await self._client.chat.completions.create(**self._arguments(request))
        if not getattr(response, "choices", None):
            raise _Retry(self._error("bad_response", "the answer has no choices", False,
                                     request), None)
        choice = response.choices[0]
        message = choice.message
        calls = [(c.id, c.function.name, c.function.arguments)
                 for c in (message.tool_calls or []) if getattr(c, "function", None)]
        usage = response.usage
        return InferenceOutput(
            model=response.model or request.model, response_text=message.content or "",
            tool_calls=_tool_calls(calls, request), finish_reason=choice.finish_reason or "stop",
            prompt_tokens=(usage.prompt_tokens or 0) if usage else 0,
            completion_tokens=(usage.completion_tokens or 0) if usage else 0)

    async def _streamed(self, request: InferenceInput) -> InferenceOutput:
        stream = await self._client.chat.completions.create(
            **self._arguments(request), stream=True, **self._stream_options)
        model, finish, text = "", None, []
        fragments: dict[int, list[Any]] = {}
        prompt_tokens = completion_tokens = 0
        async for chunk in stream:
            model = chunk.model or model
            if chunk.usage is not None:
                prompt_tokens = chunk.usage.prompt_tokens or 0
                completion_tokens = chunk.usage.completion_tokens or 0
            for choice in chunk.choices or []:
                if choice.index != 0:
                    continue
                delta = choice.delta
                if delta is not None and delta.content:
                    text.append(delta.content)
                for part in (delta.tool_calls or []) if delta is not None else []:
                    slot = fragments.setdefault(part.index, [None, "", []])
                    if part.id:
                        slot[0] = part.id
                    if part.function is not None:
                        if part.function.name:
                            slot[1] += part.function.name
                        if part.function.arguments:
                            slot[2].append(part.function.arguments)
                finish = choice.finish_reason or finish
        if finish is None and not text and not fragments:
            raise _Retry(self._error("bad_response", "the stream ended without an answer",
                                     False, request), None)
        calls = [(slot[0], slot[1], "".join(slot[2])) for _, slot in sorted(fragments.items())]
        return InferenceOutput(model=model or request.model, response_text="".join(text),
                               tool_calls=_tool_calls(calls, request),
                               finish_reason=finish or "stop", prompt_tokens=prompt_tokens,
                               completion_tokens=completion_tokens)

    def _translate(self, error: openai.APIError, request: InferenceInput) -> _Retry:
        if isinstance(error, openai.APITimeoutError):
            return _Retry(self._error("timeout", "the request timed out", True, request), None)
        if isinstance(error, openai.APIConnectionError):
            return _Retry(self._error("unreachable", "the endpoint could not be reached", True,
                                      request), None)
        if isinstance(error, openai.APIStatusError):
            status = error.status_code
            kind = "rate_limited" if status == 429 else f"http_{status}"
            retryable = status in RETRYABLE_STATUS or status >= 500
            detail = f"HTTP {status}" + _server_message(error.body, self._secret)
            return _Retry(self._error(kind, detail, retryable, request),
                          _retry_after(error.response.headers) if retryable else None)
        return _Retry(self._error("bad_response", f"the answer could not be read "
                                                  f"({type(error).__name__})", False, request),
                      None)

    def _error(self, kind: str, detail: str, retryable: bool,
               request: InferenceInput) -> InferenceError:
        message = f"{self.name} model {request.model}: {detail}"
        return InferenceError(redact(message, self._secret), error_type=kind,
                              retryable=retryable)


def parse_prices(text: str) -> dict[str, tuple[Decimal, Decimal]]:
    """A price table from settings text: a JSON object model -> [input_per_1k, output_per_1k],
    prices as decimal strings in US dollars (numbers are refused: money is never a float)."""
    try:
        table = json.loads(text or "{}", parse_float=_refuse, parse_int=_refuse)
    except ValueError:
        raise ConfigError(["LLM prices: not a JSON object of model -> [\"input_per_1k\", "
                           "\"output_per_1k\"] with prices as decimal strings"]) from None
    if not isinstance(table, dict):
        raise ConfigError(["LLM prices: not a JSON object"])
    prices, problems = {}, []
    for model, pair in table.items():
        if (not isinstance(pair, list) or len(pair) != 2
                or not all(isinstance(p, str) and _PRICE.fullmatch(p) for p in pair)):
            problems.append(f"LLM prices: {model}: give [\"input_per_1k\", \"output_per_1k\"] "
                            f"as non-negative decimal strings")
            continue
        prices[model] = (Decimal(pair[0]), Decimal(pair[1]))
    if problems:
        raise ConfigError(problems)
    return prices


def _tool_calls(calls: list[tuple[str | None, str, str]],
                request: InferenceInput) -> tuple[ToolCallOut, ...]:
    out = []
    for position, (call_id, name, arguments) in enumerate(calls):
        arguments = _canonical_arguments(arguments)
        if not call_id:
            call_id = "call_" + sha256_hex(canonical_json(
                {"messages": request.messages, "position": position}))[2:26]
        out.append(ToolCallOut(call_id=call_id, name=name or "", arguments_json=arguments))
    return tuple(out)


def _refuse(text: str) -> Any:
    raise ValueError(text)


def _canonical_arguments(text: str) -> str:
    """Canonical JSON of the model's arguments; the text as sent if it is not plain JSON."""
    try:
        return canonical_json(json.loads(text or "{}", parse_float=_refuse,
                                         parse_constant=_refuse))
    except (ValueError, RecursionError):
        return text


def _with_cost(output: InferenceOutput, latency_ms: int,
               price: tuple[Decimal, Decimal]) -> InferenceOutput:
    cost = (Decimal(output.prompt_tokens) * price[0]
            + Decimal(output.completion_tokens) * price[1]) / 1000
    return InferenceOutput(model=output.model, response_text=output.response_text,
                           tool_calls=output.tool_calls, finish_reason=output.finish_reason,
                           prompt_tokens=output.prompt_tokens,
                           completion_tokens=output.completion_tokens,
                           cost_usd=cost.normalize() if cost else Decimal(0),
                           latency_ms=latency_ms)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asked to wait (retry-after-ms, retry-after seconds or HTTP date)."""
    try:
        if (ms := headers.get("retry-after-ms")) is not None:
            return float(ms) / 1000
        value = headers.get("retry-after")
        if value is None:
            return None
        if value.strip().replace(".", "", 1).isdigit():
            return float(value)
        when = email.utils.parsedate_to_datetime(value)
        return max((when - datetime.now(UTC)).total_seconds(), 0.0)
    except (ValueError, TypeError):
        return None


def _server_message(body: object, secret: str) -> str:
    message = None
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
    if not isinstance(message, str) or not message:
        return ""
    return ": " + redact(message, secret)[:200]


def redact(text: str, secret: str = "") -> str:
    """`text` without the secret, credentials in URLs, or URLs at all."""
    if secret:
        text = text.replace(secret, "[redacted]")
    text = _USERINFO.sub(r"\1[redacted]@", text)
    return _URL.sub("[url]", text)
