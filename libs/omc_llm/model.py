"""The one interface every language model adapter implements, and its values and error.

    class LanguageModel(Protocol):
        name: str                                       # provider name, e.g. openai, local-planner
        async def complete(request: InferenceInput) -> InferenceOutput

An adapter either returns an `InferenceOutput` or raises `InferenceError` after its own
retries. Errors:

    OmcError
    └── InferenceError      error_type: timeout | rate_limited | bad_response | http_<code> |
                            unreachable; retryable; attempts (calls made, from 1).
                            The message never holds a key or a URL with credentials.

Amounts: cost_usd is a Decimal (US dollars), tokens and latency are ints. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from omc_errors import OmcError
from omc_llm.canonical import canonical_json, decimal_text


@dataclass(frozen=True, slots=True)
class ToolCallOut:
    """A tool call as the model returned it; arguments_json is canonical JSON when it parsed."""

    call_id: str
    name: str
    arguments_json: str

    def to_dict(self) -> dict[str, str]:
        return {"arguments_json": self.arguments_json, "call_id": self.call_id, "name": self.name}


@dataclass(frozen=True, slots=True)
class InferenceInput:
    """What is sent: the model asked, sampling parameters, chat messages, tool schemas."""

    model: str
    parameters: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    tools: list[dict[str, Any]] = field(default_factory=list)

    @property
    def parameters_json(self) -> str:
        """The parameters as canonical JSON ({} when none), as recorded in events."""
        return canonical_json(self.parameters)

    @property
    def tool_names(self) -> tuple[str, ...]:
        """Names of the tools offered, in order."""
        return tuple(t["function"]["name"] for t in self.tools)


@dataclass(frozen=True, slots=True)
class InferenceOutput:
    """What came back: the model that answered, its text and tool calls, usage, cost, time."""

    model: str
    response_text: str
    tool_calls: tuple[ToolCallOut, ...] = ()
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    latency_ms: int = 0
    cache_hit: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (cost as a decimal string); `from_dict` reads it back."""
        return {"model": self.model, "response_text": self.response_text,
                "tool_calls": [c.to_dict() for c in self.tool_calls],
                "finish_reason": self.finish_reason, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "cost_usd": decimal_text(self.cost_usd), "latency_ms": self.latency_ms,
                "cache_hit": self.cache_hit}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InferenceOutput:
        return cls(model=d["model"], response_text=d["response_text"],
                   tool_calls=tuple(ToolCallOut(c["call_id"], c["name"], c["arguments_json"])
                                    for c in d["tool_calls"]),
                   finish_reason=d["finish_reason"], prompt_tokens=int(d["prompt_tokens"]),
                   completion_tokens=int(d["completion_tokens"]),
                   cost_usd=Decimal(d["cost_usd"]), latency_ms=int(d["latency_ms"]),
                   cache_hit=bool(d.get("cache_hit", False)))


@runtime_checkable
class LanguageModel(Protocol):
    """A chat model with tool calling. `name` is the provider's configured name."""

    name: str

    async def complete(self, request: InferenceInput) -> InferenceOutput:
        """The model's answer to `request`; InferenceError when it cannot be had."""
        ...


class InferenceError(OmcError):
    """The model could not be called, for good (after the adapter's retries)."""

    def __init__(self, message: str, *, error_type: str, retryable: bool,
                 attempts: int = 1) -> None:
        self.error_type = error_type
        self.retryable = retryable
        self.attempts = attempts
        super().__init__(message)
