"""`python -m omc_gateway`: the gateway on uvicorn (uvloop, httptools).

Reads its settings (`omc_gateway.settings`), builds the app (`omc_gateway.wiring`) and serves
on OMC_GATEWAY_HOST:OMC_GATEWAY_PORT (127.0.0.1:18080) until SIGTERM. It starts while Kafka,
MySQL or Redis are down (/readyz says which); exits 2 on a bad setting, 3 when it cannot
start serving (the port is taken, for instance).
"""

from __future__ import annotations

import logging
import sys

import uvicorn

from omc_errors import ConfigError
from omc_gateway.observe import CONTEXT
from omc_gateway.settings import GatewaySettings
from omc_gateway.wiring import build
from omc_obs import tracing
from omc_obs.logging import configure as configure_logging

log = logging.getLogger("omc.gateway")


def main() -> int:
    configure_logging("gateway", context=CONTEXT.get)
    tracing.configure("gateway")  # OTEL_* variables; off without an exporter
    try:
        settings = GatewaySettings.from_env()
    except ConfigError as error:
        log.error("%s", error)
        return 2
    server = uvicorn.Server(uvicorn.Config(
        build(settings), host=settings.host, port=settings.port, loop="uvloop",
        http="httptools", log_config=None, access_log=False, lifespan="on",
        timeout_graceful_shutdown=5, server_header=False,
    ))
    server.run()
    return 0 if server.started else 3


if __name__ == "__main__":
    sys.exit(main())
