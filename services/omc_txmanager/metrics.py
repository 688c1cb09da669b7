"""The tx manager's Prometheus metrics, in a registry of its own (one per manager, so tests
can run several in one process; `python -m omc_txmanager` serves it when
OMC_TXMANAGER_METRICS_PORT is set)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.signed = Counter("omc_txmanager_signed", "Transactions signed and recorded "
                              "(TxSigned), by kind: new, replacement, resigned.", ["kind"],
                              registry=r)
        self.broadcasts = Counter("omc_txmanager_broadcasts", "Broadcasts a node accepted "
                                  "(TxBroadcast), by endpoint name and whether it already "
                                  "had the transaction.", ["endpoint", "already_known"],
                                  registry=r)
        self.replaced = Counter("omc_txmanager_replaced", "Transactions replaced "
                                "(TxReplaced), by reason.", ["reason"], registry=r)
        self.failed = Counter("omc_txmanager_failed", "Requests ended by the tx manager "
                              "(TxFailed), by code.", ["code"], registry=r)
        self.chain_unavailable = Counter("omc_txmanager_chain_unavailable", "Steps cut "
                                         "short because no RPC endpoint answered.",
                                         registry=r)
        self.rpc_failovers = Gauge("omc_txmanager_rpc_failovers", "Times the RPC client "
                                   "moved to the next endpoint since start.", registry=r)
        self.pending = Gauge("omc_txmanager_pending_requests", "Requests of owned accounts "
                             "not signed yet.", registry=r)
        self.unsettled = Gauge("omc_txmanager_unsettled_transactions", "Requests of owned "
                               "accounts signed but not included yet.", registry=r)
        self.requests = Gauge("omc_txmanager_requests", "Requests of owned accounts, by "
                              "state: requested, signed, included, confirmed, failed.",
                              ["state"], registry=r)
