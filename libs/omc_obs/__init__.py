"""Observability shared by every service.

    omc_obs.logging    JSON log lines (levelled, redacted), `bind(**fields)` for context
    omc_obs.tracing    OpenTelemetry from the OTEL_* variables; W3C context <-> envelopes
    omc_obs.handling   `handling(record, span_name)`: a message's log fields and span at once
    omc_obs.metrics    `serve_metrics(...)`: a small /metrics endpoint
"""
