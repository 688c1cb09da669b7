"""The chain watcher's Prometheus metrics (omc_watcher_<thing>_total), read from its
counters at scrape time, and the /metrics server `omc up` probes once the watcher has read
the log and checked the node (OMC_WATCHER_METRICS_PORT; 0: off)."""

from __future__ import annotations

from prometheus_client import REGISTRY, start_http_server
from prometheus_client.core import CounterMetricFamily

from omc_watcher.watcher import Watcher

COUNTED = {
    "blocks": "Blocks observed on the canonical chain",
    "reorgs": "Reorganisations detected",
    "logs": "Contract events reported (removals included)",
    "receipts_events": "TxIncluded, TxConfirmed, TxReorged and TxFailed events written",
    "steps": "Steps taken (a look at the chain)",
    "gas_used": "Gas used by the transactions confirmed (TxConfirmed)",
    "fees_wei": "Fees paid in wei (gas used times effective gas price) by the transactions "
                "confirmed; a metric, not money: the events hold the exact amounts",
}


class WatcherCollector:
    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher

    def collect(self):
        counters = self.watcher.counters
        for name, help_text in COUNTED.items():
            family = CounterMetricFamily(f"omc_watcher_{name}", help_text)
            family.add_metric([], getattr(counters, name))
            yield family


def serve_metrics(watcher: Watcher, port: int, host: str = "127.0.0.1") -> None:
    """Expose the watcher's counters on http://host:port/metrics (nothing when port is 0)."""
    if port:
        REGISTRY.register(WatcherCollector(watcher))
        start_http_server(port, addr=host)
