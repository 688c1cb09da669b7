"""`python -m omc_proj_proofs [--migrate] [--until-caught-up]`: the proof index's projector.

Configured by the project's settings (OMC_KAFKA_BOOTSTRAP, OMC_SCHEMA_REGISTRY_URL,
OMC_MYSQL_*) and the notary's topics (OMC_NOTARY_TOPICS, OMC_NOTARY_PROOF_TOPIC).
Traces by the standard OTEL_* variables (omc_obs.tracing), off without an exporter.
Exit codes: 0 stopped or caught up; 2 invalid configuration.
"""

from __future__ import annotations

import argparse
import signal
import sys

from confluent_kafka.schema_registry import SchemaRegistryClient

from omc_errors import ConfigError
from omc_events.codec import Codec
from omc_notary.settings import NotarySettings
from omc_obs import tracing
from omc_obs.logging import configure as configure_logging
from omc_obs.metrics import serve_metrics
from omc_proj_proofs import migrations
from omc_proj_proofs.projector import ProofProjector
from omc_store.mysql import connect


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m omc_proj_proofs")
    parser.add_argument("--migrate", action="store_true")
    parser.add_argument("--until-caught-up", action="store_true")
    args = parser.parse_args()
    try:
        settings = NotarySettings.from_env()
    except ConfigError as error:
        print(f"omc-proj-proofs: {error}", file=sys.stderr)
        return 2
    configure_logging("proj-proofs")
    tracing.configure("proj-proofs")  # OTEL_* variables; off without an exporter
    base = settings.base
    if args.migrate:
        connection = connect(base)
        try:
            migrations.apply(connection)
        finally:
            connection.close()
    codec = Codec(SchemaRegistryClient({"url": base.schema_registry_url}))
    projector = ProofProjector(lambda: connect(base), base.kafka_bootstrap, codec.decode,
                               settings.topics, settings.proof_topic)
    if args.until_caught_up:
        projector.run_until_caught_up()
        projector.close()
        return 0
    serve_metrics("omc_proj_proofs_started", "1 once the proof index runs", lambda: 1,
                  settings.proofs_metrics_port, settings.metrics_host)
    stopping: list[bool] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.append(True))
    projector.run(lambda: bool(stopping))
    return 0


if __name__ == "__main__":
    sys.exit(main())
