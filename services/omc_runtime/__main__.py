"""`python -m omc_runtime`: run the agent runtime's faust worker until stopped.

Configured by environment only (see `omc_runtime.settings`); a bad variable stops it at once
with every problem named.
"""

from __future__ import annotations

import logging
import sys

import faust

from omc_errors import ConfigError
from omc_obs import tracing
from omc_obs.logging import configure as configure_logging
from omc_obs.logging import faust_logging_config
from omc_runtime.app import create_app
from omc_runtime.settings import RuntimeSettings


def main() -> int:
    try:
        settings = RuntimeSettings.from_env()
    except ConfigError as error:
        print(f"omc-runtime: {error}", file=sys.stderr)
        return 2
    handler = configure_logging("runtime")
    tracing.configure("runtime")  # OTEL_* variables; off without an exporter
    app = create_app(settings)
    worker = faust.Worker(app, loglevel=logging.getLogger().level, quiet=True,
                          logging_config=faust_logging_config(handler))
    worker.execute_from_commandline()
    return 0


if __name__ == "__main__":
    sys.exit(main())
