"""OpenTelemetry traces: one tracer provider per process, and the W3C trace context carried
by the envelope (`EventMeta.traceparent`/`tracestate`, mirrored in the Kafka headers
`traceparent`/`tracestate` by omc_events.envelope) turned into span parents and back.

    configure(service, env=None) -> TracerProvider | None   once, in __main__: the standard
        OTEL_* variables: OTEL_SDK_DISABLED=true turns tracing off; OTEL_SERVICE_NAME (else
        `service`), OTEL_RESOURCE_ATTRIBUTES; OTEL_TRACES_EXPORTER otlp (the default when
        OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set), console or
        none; the OTLP exporter reads its own OTEL_EXPORTER_OTLP_* variables. Without an
        exporter configured nothing is traced (None): the code paths below cost nothing.
    use(provider | None)                 set (tests: an in-memory exporter) or clear the provider
    enabled() -> bool
    tracer(name) -> Tracer               a no-op tracer while tracing is off
    context_of(traceparent, tracestate=None) -> Context   the remote parent of a message
    current_traceparent() -> (traceparent | None, tracestate | None)   for an envelope
    continue_trace(name, traceparent, tracestate, kind=PRODUCER, **attributes)   context
        manager yielding the (traceparent, tracestate) to record in a new envelope: a span
        continuing the caller's trace (a new one without), or the caller's context unchanged
        while tracing is off
    span_for(meta, name, kind=CONSUMER, **attributes)   context manager: a span whose parent
        is the envelope's trace context (a new trace when it has none), with the event's id,
        type, aggregate and correlation id as attributes; a no-op while tracing is off

OTLP needs the `opentelemetry-exporter-otlp-proto-http` package, which is not a dependency
yet: without it `configure` says so in one log line and traces nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.trace import NoOpTracer, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger("omc.obs.tracing")
_PROPAGATOR = TraceContextTextMapPropagator()
_NOOP = NoOpTracer()
_provider: TracerProvider | None = None


def use(provider: TracerProvider | None) -> None:
    """Trace with `provider` from now on (None: stop tracing)."""
    global _provider
    _provider = provider


def enabled() -> bool:
    return _provider is not None


def tracer(name: str) -> trace.Tracer:
    return _provider.get_tracer(name) if _provider is not None else _NOOP


def configure(service: str, env: Mapping[str, str] | None = None) -> TracerProvider | None:
    """The process's tracer provider from the OTEL_* variables (None: tracing stays off)."""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        use(None)
        return None
    has_endpoint = any(env.get(name) for name in (
        "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
    chosen = (env.get("OTEL_TRACES_EXPORTER") or ("otlp" if has_endpoint else "none")).strip()
    exporters = []
    for name in filter(None, (part.strip().lower() for part in chosen.split(","))):
        if name == "console":
            exporters.append(ConsoleSpanExporter())
        elif name == "otlp":
            try:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                    OTLPSpanExporter,
                )
            except ImportError:
                log.warning("OTEL_TRACES_EXPORTER=otlp, but the package "
                            "opentelemetry-exporter-otlp-proto-http is not installed: "
                            "no traces are exported")
                continue
            exporters.append(OTLPSpanExporter())
        elif name != "none":
            log.warning("OTEL_TRACES_EXPORTER=%s is not otlp, console or none: ignored", name)
    if not exporters:
        use(None)
        return None
    attributes = {"service.name": env.get("OTEL_SERVICE_NAME") or service}
    provider = TracerProvider(resource=Resource.create(attributes))  # and OTEL_RESOURCE_ATTRIBUTES
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    use(provider)
    return provider


def context_of(traceparent: str | None, tracestate: str | None = None) -> otel_context.Context:
    """The context whose remote parent is this W3C trace context (empty when there is none)."""
    carrier = {"traceparent": traceparent} if traceparent else {}
    if traceparent and tracestate:
        carrier["tracestate"] = tracestate
    return _PROPAGATOR.extract(carrier)


def current_traceparent() -> tuple[str | None, str | None]:
    """The current span's W3C trace context, to record in an envelope."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent"), carrier.get("tracestate")


@contextlib.contextmanager
def span_for(meta: Any, name: str, kind: SpanKind = SpanKind.CONSUMER,
             **attributes: Any) -> Iterator[trace.Span | None]:
    """A span for handling the message whose envelope is `meta`, child of its trace context."""
    if _provider is None:
        yield None
        return
    parent = context_of(getattr(meta, "traceparent", None), getattr(meta, "tracestate", None))
    values = {"omc.event_id": meta.event_id, "omc.event_type": meta.event_type,
              "omc.aggregate_type": meta.aggregate_type, "omc.aggregate_id": meta.aggregate_id,
              "omc.correlation_id": meta.correlation_id, "omc.tenant": meta.tenant,
              **attributes}
    span_tracer = tracer("omc")
    with span_tracer.start_as_current_span(
            name, context=parent, kind=kind,
            attributes={k: v for k, v in values.items() if v is not None}) as span:
        yield span


@contextlib.contextmanager
def continue_trace(name: str, traceparent: str | None, tracestate: str | None = None, *,
                   kind: SpanKind = SpanKind.PRODUCER,
                   **attributes: Any) -> Iterator[tuple[str | None, str | None]]:
    """A span continuing the caller's trace; yields the trace context a message should carry."""
    if _provider is None:
        yield traceparent, tracestate
        return
    with tracer("omc").start_as_current_span(
            name, context=context_of(traceparent, tracestate), kind=kind,
            attributes={k: v for k, v in attributes.items() if v is not None}):
        yield current_traceparent()
