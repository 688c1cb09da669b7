"""`python -m omc_notary`: run the notary until SIGTERM/SIGINT.

Configured by environment only (see `omc_notary.settings`); a bad variable stops it at once
with every problem named. Infrastructure errors (Kafka, registry) end it non-zero, for its
supervisor to restart it: the state is rebuilt from the log.
"""

from __future__ import annotations

import signal
import sys

from omc_errors import ConfigError
from omc_notary.app import build
from omc_notary.settings import NotarySettings
from omc_obs.logging import configure as configure_logging


def main() -> int:
    try:
        settings = NotarySettings.from_env()
    except ConfigError as error:
        print(f"omc-notary: {error}", file=sys.stderr)
        return 2
    configure_logging("notary")
    stopping = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.append(True))
    build(settings).run(lambda: bool(stopping))
    return 0


if __name__ == "__main__":
    sys.exit(main())
