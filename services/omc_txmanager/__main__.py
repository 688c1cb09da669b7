"""`python -m omc_txmanager`: run the transaction manager until SIGTERM/SIGINT.

Configured by environment only (omc_txmanager.settings, keys in omc_chain.signer). Exit
codes: 0 stopped on a signal; 2 bad configuration or keys; 3 the chain's id differs from
OMC_CHAIN_ID; 1 anything else (Kafka, the registry): the supervisor restarts it and the
restart rebuilds from the log.
"""

from __future__ import annotations

import logging
import signal
import sys

from omc_chain.errors import ChainError
from omc_chain.signer import SignerError, Signers
from omc_errors import ConfigError
from omc_obs import tracing
from omc_obs.logging import configure as configure_logging
from omc_txmanager.app import build
from omc_txmanager.rpc import Rpc
from omc_txmanager.settings import TxManagerSettings

log = logging.getLogger("omc_txmanager")


def main() -> int:
    configure_logging("txmanager")
    tracing.configure("txmanager")  # OTEL_* variables; off without an exporter
    for chatty in ("httpx", "httpx2", "httpcore"):  # one line per JSON-RPC call otherwise
        logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        settings = TxManagerSettings.from_env()
        signers = Signers.from_env(stack_dir=settings.base.stack.dir)
    except (ConfigError, SignerError) as error:
        print(f"omc-txmanager: {error}", file=sys.stderr)
        return 2
    rpc = Rpc(list(settings.endpoints), timeout=settings.rpc_timeout,
              retries=settings.rpc_retries)
    try:
        chain_id = rpc.chain_id()
    except ChainError as error:
        print(f"omc-txmanager: {error}", file=sys.stderr)
        return 1
    if chain_id != settings.base.chain_id:
        print(f"omc-txmanager: the RPC endpoints serve chain {chain_id}, OMC_CHAIN_ID is "
              f"{settings.base.chain_id}", file=sys.stderr)
        return 3
    manager = build(settings, signers=signers, chain_id=chain_id, rpc=rpc)
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr=settings.metrics_host,
                          registry=manager.metrics.registry)
    stopping = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.append(True))
    log.info("tx manager for chain %d: %d key(s) %s, endpoints %s, topic %s, group %s",
             chain_id, len(signers), sorted(signers), [e.name for e in settings.endpoints],
             settings.topic, settings.group)
    if not signers:
        log.warning("no signing key is loaded: requests will wait (see docs/transactions.md, "
                    "Keys)")
    manager.run(lambda: bool(stopping))
    return 0


if __name__ == "__main__":
    sys.exit(main())
