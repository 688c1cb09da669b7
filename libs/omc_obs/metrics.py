"""A service's /metrics endpoint, started once the service is ready (what `omc up` probes).

    serve_metrics(name, help, read, port, host)   a counter read at scrape time, plus the
                                                  client's process metrics; port 0: off
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import REGISTRY, start_http_server
from prometheus_client.core import CounterMetricFamily


class _ReadCounter:
    def __init__(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        self.name, self.help_text, self.read = name, help_text, read

    def collect(self):
        family = CounterMetricFamily(self.name, self.help_text)
        family.add_metric([], self.read())
        yield family


def serve_metrics(name: str, help_text: str, read: Callable[[], float], port: int,
                  host: str = "127.0.0.1") -> None:
    """Serve `name` (a counter whose value `read()` gives) on http://host:port/metrics."""
    if port:
        REGISTRY.register(_ReadCounter(name, help_text, read))
        start_http_server(port, addr=host)
