"""omc_obs.tracing: OTEL_* configuration, and W3C trace context between envelopes and spans."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from opentelemetry.trace import SpanKind

from omc_obs import tracing

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def meta(traceparent: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(event_id="e-1", event_type="omc.task.TaskSubmitted",
                           aggregate_type="task", aggregate_id="t-1", correlation_id="c-1",
                           tenant="acme", traceparent=traceparent, tracestate=None)


@pytest.mark.parametrize("env", [
    {},
    {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"},
    {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "console"},
])
def test_without_an_exporter_tracing_stays_off(env) -> None:
    assert tracing.configure("gateway", env) is None
    assert not tracing.enabled()
    with tracing.span_for(meta(PARENT), "project") as span:
        assert span is None


def test_the_console_exporter_traces_under_the_service_name() -> None:
    try:
        provider = tracing.configure("gateway", {"OTEL_TRACES_EXPORTER": "console",
                                                 "OTEL_SERVICE_NAME": "omc-gateway-eu"})
        assert tracing.enabled()
        assert provider.resource.attributes["service.name"] == "omc-gateway-eu"
    finally:
        tracing.use(None)


def test_otlp_is_the_default_with_an_endpoint_and_reads_the_standard_variables() -> None:
    """(The exporter keeps its endpoint in a private attribute: read here, as nothing public
    names it.)"""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    try:
        provider = tracing.configure("runtime", {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/",
            "OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=acme,authorization=Basic%20abc",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test,service.name=ignored"})
        (processor,) = provider._active_span_processor._span_processors
        exporter = processor._batch_processor._exporter
        assert isinstance(exporter, OTLPSpanExporter)
        assert exporter._endpoint == "http://collector:4318/v1/traces"
        # the headers arrive at a real receiver: tests/integration/test_traces.py
        assert provider.resource.attributes["deployment.environment"] == "test"
        assert provider.resource.attributes["service.name"] == "runtime"
    finally:
        tracing.use(None)


def test_a_traces_endpoint_is_used_as_given() -> None:
    exporter = tracing.otlp_exporter({
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://otel.example:4318/custom",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://other:4318"})
    assert exporter._endpoint == "https://otel.example:4318/custom"


def test_a_span_for_a_message_is_the_child_of_its_envelopes_context(spans) -> None:
    with tracing.span_for(meta(PARENT), "project omc.task.TaskSubmitted", extra=1):
        pass

    (span,) = spans.get_finished_spans()
    assert f"{span.context.trace_id:032x}" == PARENT.split("-")[1]
    assert span.parent.span_id == int(PARENT.split("-")[2], 16)
    assert span.parent.is_remote
    assert span.kind == SpanKind.CONSUMER
    assert span.attributes["omc.event_id"] == "e-1"
    assert span.attributes["extra"] == 1


def test_a_message_without_context_starts_a_trace(spans) -> None:
    with tracing.span_for(meta(None), "project"):
        pass

    (span,) = spans.get_finished_spans()
    assert span.parent is None


def test_continue_trace_yields_its_own_spans_context_for_the_next_envelope(spans) -> None:
    with tracing.continue_trace("publish", PARENT, "vendor=1", **{"omc.command_id": "x"}) as (
            traceparent, tracestate):
        pass

    (span,) = spans.get_finished_spans()
    assert traceparent.split("-")[1:3] == [f"{span.context.trace_id:032x}",
                                           f"{span.context.span_id:016x}"]
    assert tracestate == "vendor=1"
    assert span.parent.span_id == int(PARENT.split("-")[2], 16)
    assert span.kind == SpanKind.PRODUCER


def test_continue_trace_passes_the_callers_context_through_while_tracing_is_off() -> None:
    with tracing.continue_trace("publish", PARENT, None) as context:
        assert context == (PARENT, None)
    with tracing.continue_trace("publish", None) as context:
        assert context == (None, None)


def test_a_malformed_traceparent_gives_no_parent(spans) -> None:
    with tracing.span_for(meta("00-zz-yy-01"), "project"):
        pass

    assert spans.get_finished_spans()[0].parent is None


def test_carried_is_the_current_spans_context_inside_a_span_else_the_causes(spans) -> None:
    assert tracing.carried(PARENT, "v=1") == (PARENT, "v=1")  # no current span
    with tracing.span_for(meta(PARENT), "handle") as span:
        traceparent, _ = tracing.carried(PARENT)
    assert traceparent.split("-")[2] == f"{span.context.span_id:016x}"
    assert traceparent.split("-")[1] == PARENT.split("-")[1]


def test_carried_passes_the_cause_through_while_tracing_is_off() -> None:
    assert tracing.carried(PARENT) == (PARENT, None)
    assert tracing.traceparent_of(None) == (None, None)


def test_started_spans_are_not_current_and_take_the_parent_given(spans) -> None:
    request = tracing.start("request", traceparent=PARENT, kind=SpanKind.CONSUMER)
    assert tracing.carried(None) == (None, None)  # not made current
    sign = tracing.start("sign", parent=request)
    with tracing.within(request):
        with tracing.child("inner", SpanKind.CLIENT, size=3) as inner:
            pass
        assert tracing.carried(None)[0] == tracing.traceparent_of(request)[0]
    sign.end()
    request.end()

    assert inner.parent.span_id == request.context.span_id
    assert sign.parent.span_id == request.context.span_id
    assert request.parent.span_id == int(PARENT.split("-")[2], 16)
    assert {s.context.trace_id for s in spans.get_finished_spans()} == {
        int(PARENT.split("-")[1], 16)}
    assert inner.kind == SpanKind.CLIENT
    assert inner.attributes["size"] == 3


def test_start_child_and_within_cost_nothing_while_tracing_is_off() -> None:
    assert tracing.start("x", traceparent=PARENT) is None
    with tracing.within(None) as current, tracing.child("y") as child:
        assert (current, child) == (None, None)


def test_a_link_names_the_span_an_envelope_carries_with_its_event(spans) -> None:
    link = tracing.link_to(meta(PARENT))
    with tracing.continue_trace("step", None, kind=SpanKind.INTERNAL, links=[link]):
        pass
    started = tracing.start("later", links=[link])
    started.end()

    assert f"{link.context.trace_id:032x}" == PARENT.split("-")[1]
    assert f"{link.context.span_id:016x}" == PARENT.split("-")[2]
    assert link.context.is_remote
    assert dict(link.attributes) == {"omc.event_id": "e-1",
                                     "omc.event_type": "omc.task.TaskSubmitted"}
    step, later = spans.get_finished_spans()
    assert step.parent is None  # a link is not a parent
    assert [s.links[0].context.span_id for s in (step, later)] == [
        int(PARENT.split("-")[2], 16)] * 2


def test_no_link_without_a_valid_trace_context() -> None:
    assert tracing.link_to(meta(None)) is None
    assert tracing.link_to(meta("00-zz-yy-01")) is None
    assert tracing.link_to(meta(f"00-{'0' * 32}-{'0' * 16}-01")) is None
