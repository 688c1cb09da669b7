"""The notary's Prometheus metrics, in a registry of its own (one per process object, so tests
can run several; `python -m omc_notary` serves it with the process metrics when
OMC_NOTARY_METRICS_PORT is set).

    omc_notary_checkpoints_signed_total{topic, partition}   CheckpointSigned written
    omc_notary_events_covered_total{topic, partition}       events those checkpoints added
    omc_notary_checkpoint_delay_seconds                      newest covered event's
                                                             occurred_at -> the signature
    omc_notary_anchor_delay_seconds                          checkpoint signed ->
                                                             AnchorConfirmed (the watcher's
                                                             TxConfirmed time)
    omc_notary_anchors_total{outcome}                        submitted, retried, failed,
                                                             timed_out, confirmed, abandoned,
                                                             superseded (omc_notary.notary)
    omc_notary_lag_events                                    messages of the event topics
                                                             not read yet (sampled)

`observe(notary, outputs)` updates them from what a step is about to write; only live work
is counted (a restart's rebuild from the log writes nothing, and counts nothing).
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from omc_events.records import AnchorConfirmed, CheckpointSigned
from omc_notary.notary import Notary, Output

_DELAYS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)


class NotaryMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.checkpoints = Counter("omc_notary_checkpoints_signed", "Checkpoints signed "
                                   "(CheckpointSigned written), by topic and partition.",
                                   ["topic", "partition"], registry=r)
        self.events_covered = Counter("omc_notary_events_covered", "Events the signed "
                                      "checkpoints added to their trees, by topic and "
                                      "partition.", ["topic", "partition"], registry=r)
        self.checkpoint_delay = Histogram("omc_notary_checkpoint_delay_seconds", "From the "
                                          "newest covered event's occurred_at to the "
                                          "checkpoint's signature.", buckets=_DELAYS,
                                          registry=r)
        self.anchor_delay = Histogram("omc_notary_anchor_delay_seconds", "From a checkpoint's"
                                      " signature to its AnchorConfirmed (the TxConfirmed's "
                                      "time).", buckets=_DELAYS, registry=r)
        self.anchors = Counter("omc_notary_anchors", "Anchors by outcome: submitted, retried "
                               "(a new attempt of the same checkpoint), failed (TxFailed), "
                               "timed_out (no outcome in time), confirmed, abandoned (out of "
                               "attempts), superseded (a later checkpoint is anchored).",
                               ["outcome"], registry=r)
        self.lag = Gauge("omc_notary_lag_events", "Messages of the event topics the notary "
                         "has not read yet (sampled every few seconds).", registry=r)
        self._outcomes: dict[str, int] = {}

    def observe(self, notary: Notary, outputs: Iterable[Output]) -> None:
        for output in outputs:
            record = output.record
            if isinstance(record, CheckpointSigned):
                topic, _, partition = record.stream_id.rpartition(":")
                self.checkpoints.labels(topic, partition).inc()
                self.events_covered.labels(topic, partition).inc(
                    record.tree_size - record.previous_tree_size)
                stream = notary.streams.get(record.stream_id)
                if stream is not None and stream.newest_at is not None:
                    self.checkpoint_delay.observe(max(0.0, (
                        record.meta.occurred_at - stream.newest_at).total_seconds()))
            elif isinstance(record, AnchorConfirmed):
                signed = notary.signed_at(record.stream_id, record.tree_size)
                if signed is not None:
                    self.anchor_delay.observe(max(0.0, (
                        record.meta.occurred_at - signed).total_seconds()))
        for outcome, count in notary.anchor_outcomes.items():
            seen = self._outcomes.get(outcome, 0)
            if count > seen:
                self.anchors.labels(outcome).inc(count - seen)
                self._outcomes[outcome] = count


__all__ = ["NotaryMetrics"]
