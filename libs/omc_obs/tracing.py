"""OpenTelemetry traces: one tracer provider per process, and the W3C trace context carried
by the envelope (`EventMeta.traceparent`/`tracestate`, mirrored in the Kafka headers
`traceparent`/`tracestate` by omc_events.envelope) turned into span parents and back.

    configure(service, env=None) -> TracerProvider | None   once, in __main__: the standard
        OTEL_* variables: OTEL_SDK_DISABLED=true turns tracing off; OTEL_SERVICE_NAME (else
        `service`), OTEL_RESOURCE_ATTRIBUTES; OTEL_TRACES_EXPORTER otlp (the default when
        OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set), console or
        none; OTLP is HTTP/protobuf to OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (as given), else
        OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces (else http://localhost:4318/v1/traces), with
        OTEL_EXPORTER_OTLP_[TRACES_]HEADERS; timeouts, certificates and compression as the
        exporter reads them. Without an exporter configured nothing is traced (None): the
        code paths below cost one check.
    use(provider | None)                 set (tests: an in-memory exporter) or clear the provider
    enabled() -> bool
    tracer(name) -> Tracer               a no-op tracer while tracing is off
    context_of(traceparent, tracestate=None) -> Context   the remote parent of a message
    current_traceparent() -> (traceparent | None, tracestate | None)   for an envelope
    carried(traceparent, tracestate=None) -> (traceparent, tracestate)   what an output
        should carry: the current span's context inside a span, else the cause's unchanged
    continue_trace(name, traceparent, tracestate, kind=PRODUCER, links=(), **attributes)
        context manager yielding the (traceparent, tracestate) to record in a new envelope: a
        span continuing the caller's trace (a new one without), or the caller's context
        unchanged while tracing is off
    link_to(meta) -> Link | None         a span link to the span an envelope's trace context
        names (`meta.traceparent`/`tracestate`), with its omc.event_id and omc.event_type:
        for a step that answers a message from another span than its parent (None: no context)
    span_for(meta, name, kind=CONSUMER, **attributes)   context manager: a span whose parent
        is the envelope's trace context (a new trace when it has none), with the event's id,
        type, aggregate and correlation id as attributes; a no-op while tracing is off
    child(name, kind=INTERNAL, **attributes)   context manager: a span child of the current
        one (yields None while tracing is off)
    start(name, *, parent=None, traceparent=None, tracestate=None, kind=INTERNAL, links=(),
          **attrs) -> Span | None   a span NOT made current (the caller ends it): child of
        `parent` (a span), else of the trace context given, else of the current one; None
        while off
    within(span | None)                  context manager: `span` is current inside (not ended)
    traceparent_of(span | None) -> (traceparent | None, tracestate | None)
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import unquote

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.trace import Link, NoOpTracer, SpanKind
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
            exporters.append(otlp_exporter(env))
        elif name != "none":
            log.warning("OTEL_TRACES_EXPORTER=%s is not otlp, console or none: ignored", name)
    if not exporters:
        use(None)
        return None
    attributes: dict[str, Any] = dict(_pairs(env.get("OTEL_RESOURCE_ATTRIBUTES", "")))
    attributes["service.name"] = env.get("OTEL_SERVICE_NAME") or service
    provider = TracerProvider(resource=Resource.create(attributes))
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    use(provider)
    return provider


def otlp_exporter(env: Mapping[str, str]) -> Any:
    """The OTLP/HTTP (protobuf) span exporter the OTEL_EXPORTER_OTLP_* variables describe."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    protocol = (env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf").strip().lower()
    if protocol != "http/protobuf":
        log.warning("OTEL_EXPORTER_OTLP_PROTOCOL=%s: only http/protobuf is installed; "
                    "sending http/protobuf", protocol)
    endpoint = (env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or "").strip()
    if not endpoint:
        base = (env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "http://localhost:4318").strip()
        endpoint = base.rstrip("/") + "/v1/traces"
    headers = dict(_pairs(env.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
                          or env.get("OTEL_EXPORTER_OTLP_HEADERS") or ""))
    return OTLPSpanExporter(endpoint=endpoint, headers=headers or None)


def _pairs(text: str) -> Iterator[tuple[str, str]]:
    """`k1=v1,k2=v2` (values URL-encoded), as the OTEL_* list variables are written."""
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if sep and name.strip():
            yield unquote(name.strip()), unquote(value.strip())


def context_of(traceparent: str | None, tracestate: str | None = None) -> otel_context.Context:
    """The context whose remote parent is this W3C trace context (empty when there is none)."""
    carrier = {"traceparent": traceparent} if traceparent else {}
    if traceparent and tracestate:
        carrier["tracestate"] = tracestate
    return _PROPAGATOR.extract(carrier)


def link_to(meta: Any) -> Link | None:
    """A link to the span whose W3C context the envelope `meta` carries (None without one)."""
    traceparent = getattr(meta, "traceparent", None)
    if not traceparent:
        return None
    remote = trace.get_current_span(
        context_of(traceparent, getattr(meta, "tracestate", None))).get_span_context()
    if not remote.is_valid:
        return None
    attributes = {"omc.event_id": getattr(meta, "event_id", None),
                  "omc.event_type": getattr(meta, "event_type", None)}
    return Link(remote, {k: v for k, v in attributes.items() if v is not None})


def current_traceparent() -> tuple[str | None, str | None]:
    """The current span's W3C trace context, to record in an envelope."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent"), carrier.get("tracestate")


def carried(traceparent: str | None,
            tracestate: str | None = None) -> tuple[str | None, str | None]:
    """The trace context an output should carry: the current span's inside one (tracing on),
    else the cause's unchanged."""
    if _provider is not None and trace.get_current_span().get_span_context().is_valid:
        return current_traceparent()
    return traceparent, tracestate


def traceparent_of(span: trace.Span | None) -> tuple[str | None, str | None]:
    """`span`'s W3C trace context (None, None for no span)."""
    if span is None or not span.get_span_context().is_valid:
        return None, None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get("traceparent"), carrier.get("tracestate")


def start(name: str, *, parent: trace.Span | None = None, traceparent: str | None = None,
          tracestate: str | None = None, kind: SpanKind = SpanKind.INTERNAL,
          links: Sequence[Link] = (), **attributes: Any) -> trace.Span | None:
    """A span not made current (the caller ends it); None while tracing is off."""
    if _provider is None:
        return None
    if parent is not None:
        context = trace.set_span_in_context(parent)
    elif traceparent:
        context = context_of(traceparent, tracestate)
    else:
        context = None
    return tracer("omc").start_span(
        name, context=context, kind=kind, links=links or None,
        attributes={k: v for k, v in attributes.items() if v is not None})


@contextlib.contextmanager
def within(span: trace.Span | None) -> Iterator[trace.Span | None]:
    """`span` is the current span inside the block (it is not ended at its end)."""
    if span is None:
        yield None
        return
    with trace.use_span(span, end_on_exit=False):
        yield span


@contextlib.contextmanager
def child(name: str, kind: SpanKind = SpanKind.INTERNAL,
          **attributes: Any) -> Iterator[trace.Span | None]:
    """A span child of the current one; None while tracing is off."""
    if _provider is None:
        yield None
        return
    with tracer("omc").start_as_current_span(
            name, kind=kind,
            attributes={k: v for k, v in attributes.items() if v is not None}) as span:
        yield span


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
                   kind: SpanKind = SpanKind.PRODUCER, links: Sequence[Link] = (),
                   **attributes: Any) -> Iterator[tuple[str | None, str | None]]:
    """A span continuing the caller's trace (linked to `links`); yields the trace context a
    message should carry."""
    if _provider is None:
        yield traceparent, tracestate
        return
    with tracer("omc").start_as_current_span(
            name, context=context_of(traceparent, tracestate), kind=kind, links=links or None,
            attributes={k: v for k, v in attributes.items() if v is not None}):
        yield current_traceparent()
