"""`python -m omc_runtime`: run the agent runtime's faust worker until stopped.

Configured by environment only (see `omc_runtime.settings`); a bad variable stops it at once
with every problem named.
"""

from __future__ import annotations

import logging
import sys

import faust

from omc_errors import ConfigError
from omc_runtime.app import create_app
from omc_runtime.settings import RuntimeSettings


def main() -> int:
    try:
        settings = RuntimeSettings.from_env()
    except ConfigError as error:
        print(f"omc-runtime: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO)
    app = create_app(settings)
    worker = faust.Worker(app, loglevel="info", quiet=True)
    worker.execute_from_commandline()
    return 0


if __name__ == "__main__":
    sys.exit(main())
