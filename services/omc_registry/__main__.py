"""`python -m omc_registry`: the registry's composition root, served by uvicorn.

Reads its settings (see `omc_registry.settings`; options here override the environment),
builds the Kafka-backed store and the app, and serves until SIGTERM. Exits 2 on a bad
setting and 3 (uvicorn's start-up failure) when it cannot start: Kafka unreachable in time, a
bad registry topic, a preload the registered schemas refuse; its log says which.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import uvicorn

from omc_errors import ConfigError
from omc_obs.logging import configure as configure_logging
from omc_registry.app import create_app
from omc_registry.log import KafkaLog
from omc_registry.settings import RegistrySettings
from omc_registry.store import SchemaStore

log = logging.getLogger("omc.registry")


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m omc_registry", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", help="interface to listen on (OMC_REGISTRY_HOST, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (OMC_REGISTRY_PORT, 18081)")
    parser.add_argument("--kafka-bootstrap", help="Kafka bootstrap servers (OMC_KAFKA_BOOTSTRAP)")
    parser.add_argument("--topic", help="the registry's compacted topic (OMC_REGISTRY_TOPIC, "
                                        "_omc_schemas)")
    parser.add_argument("--kafka-wait", type=float,
                        help="seconds to wait for Kafka at start (OMC_REGISTRY_KAFKA_WAIT, 180)")
    parser.add_argument("--schemas-dir", help="the schemas/ folder to preload "
                                              "(OMC_REGISTRY_SCHEMAS_DIR)")
    parser.add_argument("--no-preload", dest="preload", action="store_const", const="false",
                        help="register nothing at start (OMC_REGISTRY_PRELOAD=false)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _arguments(argv)
    configure_logging("registry")
    try:
        settings = RegistrySettings.from_env(**vars(arguments))
    except ConfigError as error:
        log.error("%s", error)
        return 2
    store = SchemaStore(KafkaLog(settings.kafka_bootstrap, settings.topic,
                                 wait_timeout=settings.kafka_wait),
                        default_level=settings.default_level)
    server = uvicorn.Server(uvicorn.Config(
        create_app(settings, store), host=settings.host, port=settings.port, log_config=None,
        lifespan="on", timeout_graceful_shutdown=5,
    ))
    server.run()
    return 0 if server.started else 3


if __name__ == "__main__":
    sys.exit(main())
