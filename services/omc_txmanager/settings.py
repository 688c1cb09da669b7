"""What the tx manager is configured with: the project's settings plus its own.

    OMC_TXMANAGER_RPC_URLS             comma-separated JSON-RPC URLs, tried in order with
                                       failover (default: OMC_CHAIN_RPC_URL). Events and logs
                                       name an endpoint by host[:port], never by URL.
    OMC_TXMANAGER_TOPIC                the tx topic (omc.tx.events.v1)
    OMC_TXMANAGER_DEADLETTER_TOPIC     where poison messages go (omc.deadletter.v1)
    OMC_TXMANAGER_GROUP                consumer group (omc.txmanager)
    OMC_TXMANAGER_STUCK_BLOCKS         blocks without inclusion before a replacement (3)
    OMC_TXMANAGER_MAX_REPLACEMENTS     replacements per request before REPLACEMENT_CAP (5)
    OMC_TXMANAGER_GAS_MARGIN_PERCENT   added to eth_estimateGas (20)
    OMC_TXMANAGER_TICK_MS              how often the head is polled for stuck txs (1000)
    OMC_TXMANAGER_BATCH                most messages per consumed batch (500)
    OMC_TXMANAGER_RPC_TIMEOUT          seconds per JSON-RPC call (10)
    OMC_TXMANAGER_RPC_RETRIES          rounds over every endpoint before giving up (3)
    OMC_TXMANAGER_SESSION_TIMEOUT_MS   how long a vanished instance keeps its partitions
                                       before the group hands them on (10000; >= 6000)
    OMC_TXMANAGER_INSTANCE_ID          static group membership (e.g. the pod name): a
                                       restarted instance gets its partitions back at once
                                       (empty: dynamic membership)
    OMC_TXMANAGER_METRICS_PORT         Prometheus /metrics (0: off, default)
    OMC_TXMANAGER_METRICS_HOST         interface of /metrics (127.0.0.1; 0.0.0.0 in a pod)
    keys: OMC_TXMANAGER_KEYSTORE_DIR, OMC_TXMANAGER_KEYSTORE_PASSWORD_FILE,
          OMC_TXMANAGER_KEY_FILES (see omc_chain.signer); none set: the local stack's
          <stack dir>/txmanager/keys/*.key

Every invalid value is reported at once, with the project's, as a `ConfigError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from omc_config import Settings
from omc_config.options import EnvOptions
from omc_txmanager.rpc import Endpoint, endpoints_from


@dataclass(frozen=True)
class TxManagerSettings:
    base: Settings
    endpoints: tuple[Endpoint, ...]
    topic: str
    deadletter_topic: str
    group: str
    stuck_blocks: int
    max_replacements: int
    gas_margin_percent: int
    tick_ms: int
    batch: int
    rpc_timeout: int
    rpc_retries: int
    metrics_port: int
    metrics_host: str
    session_timeout_ms: int
    instance_id: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TxManagerSettings:
        options = EnvOptions(env)
        urls = options.text("OMC_TXMANAGER_RPC_URLS", options.base.chain_rpc_url)
        endpoints = tuple(endpoints_from(urls))
        for endpoint in endpoints:
            if not endpoint.url.startswith(("http://", "https://")):
                options.problem(f"OMC_TXMANAGER_RPC_URLS: endpoint {endpoint.name} is not an "
                                "http(s) URL")
        if not endpoints:
            options.problem("OMC_TXMANAGER_RPC_URLS names no endpoint")
        settings = cls(
            base=options.base, endpoints=endpoints,
            topic=options.topic("OMC_TXMANAGER_TOPIC", "omc.tx.events.v1"),
            deadletter_topic=options.topic("OMC_TXMANAGER_DEADLETTER_TOPIC",
                                           "omc.deadletter.v1"),
            group=options.text("OMC_TXMANAGER_GROUP", "omc.txmanager"),
            stuck_blocks=options.number("OMC_TXMANAGER_STUCK_BLOCKS", 3, 1, 10_000),
            max_replacements=options.number("OMC_TXMANAGER_MAX_REPLACEMENTS", 5, 0, 100),
            gas_margin_percent=options.number("OMC_TXMANAGER_GAS_MARGIN_PERCENT", 20, 0, 1000),
            tick_ms=options.number("OMC_TXMANAGER_TICK_MS", 1000, 10, 600_000),
            batch=options.number("OMC_TXMANAGER_BATCH", 500, 1, 100_000),
            rpc_timeout=options.number("OMC_TXMANAGER_RPC_TIMEOUT", 10, 1, 600),
            rpc_retries=options.number("OMC_TXMANAGER_RPC_RETRIES", 3, 0, 100),
            metrics_port=options.number("OMC_TXMANAGER_METRICS_PORT", 0, 0, 65535),
            metrics_host=options.text("OMC_TXMANAGER_METRICS_HOST", "127.0.0.1"),
            session_timeout_ms=options.number("OMC_TXMANAGER_SESSION_TIMEOUT_MS", 10_000,
                                              6000, 3_600_000),
            instance_id=options.text("OMC_TXMANAGER_INSTANCE_ID", "") or None,
        )
        options.check()
        return settings
