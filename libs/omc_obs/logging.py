"""JSON log lines for every service: one object per line on stderr, levelled, with context.

    configure(service, *, level=None, stream=None, secrets=(), context=None) -> Handler
                                     once, in __main__; `context()` (say, the gateway's
                                     per-request fields) is merged into every line
    faust_logging_config(handler) -> dict   for faust.Worker(logging_config=...), so faust
                                     keeps this JSON handler instead of its coloured one
    bind(**fields)                   context manager: `fields` go on every line written inside
                                     it (correlation_id, task_id, agent_id, tx_hash, ...)
    add_secret(value)                redact this exact value from every later line

A line holds `time` (UTC, ISO 8601, ms), `level`, `logger`, `service`, `message`, the bound
fields, the fields a call passes as `extra={"fields": {...}}` or as `extra={"task_id": ...}`
for the names in CONTEXT_FIELDS, `trace_id`/`span_id` of the current OpenTelemetry span when
there is one (else a bound `traceparent`'s), and `error` (the traceback) for exceptions.

The level is `level`, else OMC_LOG_LEVEL (debug, info, warning, error; info by default).

Nothing secret leaves: every rendered line is passed through `redact`, which masks API key
tokens (omc_<key id>_<secret> keeps its key id), `Bearer` credentials, passwords in URLs
(scheme://user:password@host), values after key=, secret=, password=, private_key= and the
like, and every value given to `secrets`/`add_secret` (say, a signing key read at start).
Redaction is a safety net; code must still never log a secret on purpose.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

CONTEXT_FIELDS = ("correlation_id", "causation_id", "task_id", "agent_id", "command_id",
                  "event_id", "tx_hash", "trace_id", "span_id")
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR, "critical": logging.CRITICAL}
MASK = "***"

_BOUND: ContextVar[dict[str, Any] | None] = ContextVar("omc_obs_log_fields", default=None)
_SECRETS: set[str] = set()
_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(omc_[0-9a-f]{12}_)[A-Za-z0-9_-]{43}"), r"\1" + MASK),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + MASK),
    (re.compile(r"([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@"), r"\1" + MASK + "@"),
    (re.compile(r"(?i)\b((?:private[_-]?key|secret|password|passwd|passphrase|api[_-]?key|"
                r"access[_-]?token|mnemonic)(?:\\?[\"'])?\s*[:=]\s*(?:\\?[\"'])?)"
                r"[^\s\"'\\,;&}]+"),
     r"\1" + MASK),
)
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")


def redact(text: str) -> str:
    """`text` with every secret this module knows of masked."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def add_secret(value: str) -> None:
    """Mask this exact value (and its 0x-less form, for hex keys) from now on."""
    value = value.strip()
    if len(value) >= 8:
        _SECRETS.add(value)
        if value.lower().startswith("0x") and len(value) > 10:
            _SECRETS.add(value[2:])


@contextlib.contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Put `fields` on every line logged inside the block (nested blocks add to them)."""
    token = _BOUND.set({**(_BOUND.get() or {}), **{k: v for k, v in fields.items()
                                                   if v is not None}})
    try:
        yield
    finally:
        _BOUND.reset(token)


def _trace_ids(bound: dict[str, Any]) -> dict[str, str]:
    try:
        from opentelemetry import trace
    except ImportError:  # pragma: no cover - opentelemetry-sdk is a dependency
        trace = None
    if trace is not None:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}
    match = _TRACEPARENT.fullmatch(str(bound.get("traceparent", "")))
    if match:
        return {"trace_id": match.group(1), "span_id": match.group(2)}
    return {}


class JsonFormatter(logging.Formatter):
    """A record as one redacted JSON object."""

    def __init__(self, service: str,
                 context: Callable[[], Mapping[str, Any] | None] | None = None) -> None:
        super().__init__()
        self.service = service
        self.context = context

    def format(self, record: logging.LogRecord) -> str:
        bound = _BOUND.get() or {}
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "service": self.service,
            "message": record.getMessage(),
        }
        if self.context is not None:
            line.update(self.context() or {})
        line.update({k: v for k, v in bound.items() if k != "traceparent"})
        line.update(_trace_ids(bound))
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return redact(_ENCODER.encode(line))


def level_from_env(default: int = logging.INFO) -> int:
    name = (os.environ.get("OMC_LOG_LEVEL") or "").strip().lower()
    return LEVELS.get(name, default)


def configure(service: str, *, level: int | None = None, stream: TextIO | None = None,
              secrets: Iterable[str] = (),
              context: Callable[[], Mapping[str, Any] | None] | None = None) -> logging.Handler:
    """Route every logger (uvicorn's, faust's, the libraries') to one JSON handler."""
    for secret in secrets:
        add_secret(secret)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(service, context))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level if level is not None else level_from_env())
    for name in ("uvicorn", "uvicorn.error", "faust", "mode", "aiokafka", "web3", "httpx"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # uvicorn's access lines are off: the gateway writes its own (omc_gateway.observe)
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
    return handler


def faust_logging_config(handler: logging.Handler) -> dict[str, Any]:
    """A logging config for faust/mode's Worker (which applies one with dictConfig at start)
    whose root logger keeps `handler` and the level `configure` set."""
    return {"version": 1, "disable_existing_loggers": False,
            "handlers": {"omc": {"()": lambda: handler}},
            "root": {"level": logging.getLogger().level, "handlers": ["omc"]}}
