"""`python -m omc_notary [--checkpoint-now]`: run the notary until SIGTERM/SIGINT; or, with
--checkpoint-now, read the event topics to their end, checkpoint (and anchor) every stream
with new events at once, and exit.

Configured by environment only (see `omc_notary.settings`); a bad variable stops it at once
with every problem named. Infrastructure errors (Kafka, registry) end it non-zero, for its
supervisor to restart it: the state is rebuilt from the log.
"""

from __future__ import annotations

import signal
import sys

from prometheus_client import REGISTRY

from omc_errors import ConfigError
from omc_notary.app import build
from omc_notary.settings import NotarySettings
from omc_obs import tracing
from omc_obs.logging import configure as configure_logging
from omc_obs.metrics import serve_metrics


def main() -> int:
    once = "--checkpoint-now" in sys.argv[1:]
    try:
        settings = NotarySettings.from_env()
    except ConfigError as error:
        print(f"omc-notary: {error}", file=sys.stderr)
        return 2
    configure_logging("notary")
    tracing.configure("notary")  # OTEL_* variables; off without an exporter
    process = build(settings)
    if once:
        process.start()
        try:
            written = process.checkpoint_now()
        finally:
            process.close()
        print(f"omc-notary: {written} proof record(s) written")
        return 0
    stopping: list[bool] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.append(True))
    def started() -> None:
        if settings.metrics_port:
            REGISTRY.register(process.metrics.registry)
        serve_metrics("omc_notary_records_written", "Checkpoints, anchor requests and "
                      "anchors written", lambda: process.written, settings.metrics_port,
                      settings.metrics_host)

    process.run(lambda: bool(stopping), started=started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
