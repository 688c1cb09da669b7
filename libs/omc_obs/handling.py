"""The context of handling one message: its log fields and its span, set together.

    handling(record, name, kind=CONSUMER, **attributes)   context manager yielding the span
        (None while tracing is off): every log line written inside carries the record's
        correlation_id, task_id (`task_of`), event_id and trace_id (the span's, else the
        envelope's traceparent's); the span is `tracing.span_for(record.meta, name, kind)`,
        so outputs made inside carry its context through `tracing.carried`
    bound_to(record)   context manager: the log fields of `handling` alone (no span), for
        the lines a shell writes about a message outside its handler (retries, dead letters)
    task_of(record) -> str | None   the task a record is about: its `task_id` field, else
        its aggregate id when the aggregate is a task

Processors wrap each message they handle in `handling`; steps they take on their own (a
timer, a wake) use `omc_obs.logging.bind` and `tracing.continue_trace`/`tracing.start`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from opentelemetry.trace import Span, SpanKind

from omc_obs import tracing
from omc_obs.logging import bind


def task_of(record: Any) -> str | None:
    """The task `record` is about (None when it is about no task)."""
    task_id = getattr(record, "task_id", None)
    if task_id:
        return str(task_id)
    meta = getattr(record, "meta", None)
    if meta is not None and meta.aggregate_type == "task":
        return meta.aggregate_id
    return None


def bound_to(record: Any) -> contextlib.AbstractContextManager[None]:
    """Every log line inside carries `record`'s correlation, task, event and trace ids."""
    meta = record.meta
    return bind(correlation_id=meta.correlation_id, task_id=task_of(record),
                event_id=meta.event_id, traceparent=meta.traceparent)


@contextlib.contextmanager
def handling(record: Any, name: str, kind: SpanKind = SpanKind.CONSUMER,
             **attributes: Any) -> Iterator[Span | None]:
    """Log fields and a span for handling `record` (an event or command with its envelope)."""
    with bound_to(record), tracing.span_for(record.meta, name, kind, **attributes) as span:
        yield span
