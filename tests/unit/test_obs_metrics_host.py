"""Every service's metrics (or HTTP) endpoint listens on an interface its settings name:
127.0.0.1 by default (a laptop exposes nothing), any other when told (0.0.0.0 in compose and
Kubernetes, so Prometheus can scrape it)."""

from __future__ import annotations

import pytest

from omc_gateway.settings import GatewaySettings
from omc_notary.settings import NotarySettings
from omc_proj_mysql.__main__ import Options as ProjMySQLOptions
from omc_proj_redis.__main__ import ProjectorSettings as ProjRedisSettings
from omc_registry.settings import RegistrySettings
from omc_runtime.settings import RuntimeSettings
from omc_txmanager.settings import TxManagerSettings
from omc_watcher.settings import WatcherSettings

ANY = "0.0.0.0"  # noqa: S104 (what the containers listen on, by design)

SETTINGS = {  # service: (settings class, variable, attribute)
    "gateway": (GatewaySettings, "OMC_GATEWAY_HOST", "host"),
    "registry": (RegistrySettings, "OMC_REGISTRY_HOST", "host"),
    "runtime": (RuntimeSettings, "OMC_RUNTIME_METRICS_HOST", "metrics_host"),
    "txmanager": (TxManagerSettings, "OMC_TXMANAGER_METRICS_HOST", "metrics_host"),
    "watcher": (WatcherSettings, "OMC_WATCHER_METRICS_HOST", "metrics_host"),
    "notary, proj-proofs": (NotarySettings, "OMC_NOTARY_METRICS_HOST", "metrics_host"),
    "proj-mysql": (ProjMySQLOptions, "OMC_PROJ_MYSQL_METRICS_HOST", "metrics_host"),
    "proj-redis": (ProjRedisSettings, "OMC_PROJ_REDIS_METRICS_HOST", "metrics_host"),
}


@pytest.mark.parametrize("service", sorted(SETTINGS))
def test_the_endpoint_listens_on_loopback_unless_told_otherwise(service) -> None:
    cls, variable, attribute = SETTINGS[service]

    assert getattr(cls.from_env({}), attribute) == "127.0.0.1"
    assert getattr(cls.from_env({variable: ANY}), attribute) == ANY


COMPOSE_HOSTS = {"gateway": "OMC_GATEWAY_HOST", "registry": "OMC_REGISTRY_HOST",
                 "runtime": "OMC_RUNTIME_METRICS_HOST", "txmanager": "OMC_TXMANAGER_METRICS_HOST",
                 "watcher": "OMC_WATCHER_METRICS_HOST", "notary": "OMC_NOTARY_METRICS_HOST",
                 "proj-proofs": "OMC_NOTARY_METRICS_HOST",
                 "proj-mysql": "OMC_PROJ_MYSQL_METRICS_HOST",
                 "proj-redis": "OMC_PROJ_REDIS_METRICS_HOST"}


@pytest.mark.parametrize("service", sorted(COMPOSE_HOSTS))
def test_compose_and_kubernetes_open_every_endpoint_to_the_network(service) -> None:
    import yaml

    from omc_config.settings import REPO_ROOT

    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    environment = compose["services"][service]["environment"]
    assert environment[COMPOSE_HOSTS[service]] == ANY
    kustomization = yaml.safe_load((REPO_ROOT / "k8s/base/kustomization.yaml").read_text())
    (config,) = [c for c in kustomization["configMapGenerator"] if c["name"] == "omc-config"]
    assert f"{COMPOSE_HOSTS[service]}={ANY}" in config["literals"]
    assert f"{COMPOSE_HOSTS[service]}={ANY}" in (REPO_ROOT / "Dockerfile").read_text()
