"""The project's own services, run by `omc up` after the infrastructure is ready.

Each runs under `omc_stack.supervise`, which restarts it with backoff when it crashes; its
output goes to `.stack/<name>/<name>.log`. The stack passes each its port explicitly, so the
service and the stack cannot disagree about where it listens.
"""

from __future__ import annotations

import sys
from typing import Any

from omc_stack.components.base import Component, http_ok

LOCAL_CHAIN_ID = 31337
"""anvil's chain: the only one whose public development keys the stack ever installs."""


class Service(Component):
    """A Python service of this checkout, `python -m <module>`, probed over HTTP."""

    module: str
    port_setting: str  # the variable that chooses its port
    port_field: str  # the StackSettings field holding that port
    probe_path: str
    stop_grace = 20.0

    @property
    def port(self) -> int:
        return getattr(self.settings.stack, self.port_field)

    def ports(self) -> dict[str, int]:
        return {self.port_setting: self.port}

    def env(self) -> dict[str, str]:
        return {self.port_setting: str(self.port)}

    def command(self) -> list[str]:
        return [sys.executable, "-m", "omc_stack.supervise", "--name", self.name, "--",
                sys.executable, "-m", self.module]

    def probe(self) -> None:
        http_ok(f"http://127.0.0.1:{self.port}{self.probe_path}")

    def address(self) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": self.port,
                "url": f"http://127.0.0.1:{self.port}{self.probe_path}"}


class MySQLProjector(Service):
    """Projects the log into MySQL (`omc_proj_mysql`); the address is its metrics endpoint."""

    name = "proj-mysql"
    module = "omc_proj_mysql"
    port_setting, port_field = "OMC_PROJ_MYSQL_METRICS_PORT", "proj_mysql_metrics_port"
    probe_path = "/metrics"


class RedisProjector(Service):
    """Projects live task status and events into Redis (`omc_proj_redis`)."""

    name = "proj-redis"
    module = "omc_proj_redis"
    port_setting, port_field = "OMC_PROJ_REDIS_METRICS_PORT", "proj_redis_metrics_port"
    probe_path = "/metrics"


class AgentRuntime(Service):
    """The agent runtime (`omc_runtime`): a faust worker; the address is its metrics
    endpoint, which answers once the runtime's views have read the log to its end."""

    name = "runtime"
    module = "omc_runtime"
    port_setting, port_field = "OMC_RUNTIME_METRICS_PORT", "runtime_metrics_port"
    probe_path = "/metrics"


class TxManager(Service):
    """The transaction manager (`omc_txmanager`). On the local chain (31337 only) it signs
    with anvil's first development key, written to .stack/txmanager/keys before it starts;
    elsewhere keys come from its settings (docs/transactions.md)."""

    name = "txmanager"
    module = "omc_txmanager"
    port_setting, port_field = "OMC_TXMANAGER_METRICS_PORT", "txmanager_metrics_port"
    probe_path = "/metrics"

    def prepare(self) -> None:
        from omc_chain.signer import install_local_dev_key

        if self.settings.chain_id == LOCAL_CHAIN_ID:
            install_local_dev_key(self.settings.stack.dir, self.settings.chain_id)


class ChainWatcher(Service):
    """The chain watcher of the local chain (`omc_watcher`). anvil mines a block per
    transaction and none in between, so locally a transaction is final in its own block
    (OMC_WATCHER_CONFIRMATIONS=1); on a real chain use the depth its finality needs."""

    name = "watcher"
    module = "omc_watcher"
    port_setting, port_field = "OMC_WATCHER_METRICS_PORT", "watcher_metrics_port"
    probe_path = "/metrics"

    def env(self) -> dict[str, str]:
        local = {"OMC_WATCHER_CONFIRMATIONS": "1"} \
            if self.settings.chain_id == LOCAL_CHAIN_ID else {}
        return {**local, **super().env()}


class ProofIndex(Service):
    """The proof index (`omc_proj_proofs`): Merkle leaves, subtrees, checkpoints and anchors
    in MySQL, for the gateway's proof routes."""

    name = "proj-proofs"
    module = "omc_proj_proofs"
    port_setting, port_field = "OMC_PROJ_PROOFS_METRICS_PORT", "proj_proofs_metrics_port"
    probe_path = "/metrics"


class Notary(Service):
    """The notary (`omc_notary`): signed Merkle checkpoints of every event stream, anchored
    on chain through the tx manager. On the local chain it anchors from anvil's first
    development account into the demo AnchorRegistry (deployed here when missing), and
    checkpoints every 2 seconds so a demo task is anchored while you watch."""

    name = "notary"
    module = "omc_notary"
    port_setting, port_field = "OMC_NOTARY_METRICS_PORT", "notary_metrics_port"
    probe_path = "/metrics"

    def prepare(self) -> None:
        if self.settings.chain_id == LOCAL_CHAIN_ID:
            from web3 import Web3

            from omc_chain.deploy import deploy_demo

            web3 = Web3(Web3.HTTPProvider(self.settings.chain_rpc_url,
                                          request_kwargs={"timeout": 30}))
            deploy_demo(web3, self.settings.stack.dir / "chain" / "demo.json")

    def env(self) -> dict[str, str]:
        from omc_chain.deploy import local_deployer

        local = {"OMC_NOTARY_ANCHOR_SENDER": local_deployer(LOCAL_CHAIN_ID).address,
                 "OMC_NOTARY_EVERY_SECONDS": "2"} \
            if self.settings.chain_id == LOCAL_CHAIN_ID else {}
        return {**local, **super().env()}


class Gateway(Service):
    """The HTTP API (`omc_gateway`)."""

    name = "gateway"
    module = "omc_gateway"
    port_setting, port_field = "OMC_GATEWAY_PORT", "gateway_port"
    probe_path = "/healthz"

    def address(self) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": self.port, "url": f"http://127.0.0.1:{self.port}"}
