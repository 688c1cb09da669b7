"""The projector's Prometheus metrics, in a registry of its own (one per projector, so tests
and replays can run several in one process; `python -m omc_proj_mysql` serves it)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.applied = Counter("omc_projector_events_applied", "Records applied to the read "
                               "model (duplicates included), by type.",
                               ["projection", "event_type"], registry=r)
        self.unknown = Counter("omc_projector_unknown_events", "Decoded records of a type "
                               "this projection does not handle, skipped.",
                               ["projection", "event_type"], registry=r)
        self.dead_letters = Counter("omc_projector_dead_letters", "Messages that did not "
                                    "decode, sent to the dead-letter topic and skipped.",
                                    ["projection", "topic"], registry=r)
        self.batches = Histogram("omc_projector_batch_seconds", "Time to apply one batch "
                                 "(one MySQL transaction).", ["projection"], registry=r)
        self.retries = Counter("omc_projector_retries", "Infrastructure errors retried "
                               "(Kafka, MySQL, the schema registry).", ["projection", "kind"],
                               registry=r)
        self.lag_messages = Gauge("omc_projector_lag_messages", "High watermark minus the "
                                  "next offset to apply, per partition.",
                                  ["projection", "topic", "partition"], registry=r)
        self.lag_seconds = Gauge("omc_projector_lag_seconds", "Age of the last applied "
                                 "event (its occurred_at) while messages wait; 0 when "
                                 "caught up.", ["projection"], registry=r)
