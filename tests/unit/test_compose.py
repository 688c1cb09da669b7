"""docker-compose.yml offers the same components, ports and variables as the local stack."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest
import yaml

from omc_config import Settings
from omc_config.settings import REPO_ROOT
from omc_stack.components import COMPONENTS

COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
DEFAULTS = Settings.from_env({})


def _published(service: str) -> list[tuple[str, str]]:
    """(variable, default) of each host port published on loopback."""
    found = []
    for mapping in SERVICES[service]["ports"]:
        match = re.fullmatch(r"127\.0\.0\.1:\$\{(OMC_\w+):-(\d+)\}:.+", mapping)
        assert match, f"{service} publishes {mapping!r}, not on loopback through an OMC_ variable"
        found.append((match.group(1), match.group(2)))
    return found


def test_compose_names_every_component_of_the_local_stack() -> None:
    assert set(SERVICES) == {component.name for component in COMPONENTS}


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda c: c.name)
def test_each_component_is_published_on_the_local_stacks_variable_and_default(component) -> None:
    published = _published(component.name)
    client_ports = {
        name: str(port)
        for name, port in component(DEFAULTS, installer=None).ports().items()
        if name != "OMC_KAFKA_CONTROLLER_PORT"  # the controller stays inside the container
    }

    assert dict(published) == client_ports


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_each_service_has_a_health_check(service: str) -> None:
    assert SERVICES[service]["healthcheck"]["test"]


def test_mariadb_uses_the_projects_database_and_user_variables() -> None:
    environment = SERVICES["mariadb"]["environment"]

    assert environment["MARIADB_DATABASE"] == f"${{OMC_MYSQL_DATABASE:-{DEFAULTS.mysql.database}}}"
    assert environment["MARIADB_USER"] == f"${{OMC_MYSQL_USER:-{DEFAULTS.mysql.user}}}"
    assert environment["MARIADB_PASSWORD"] == f"${{OMC_MYSQL_PASSWORD:-{DEFAULTS.mysql.password}}}"


def test_kafka_never_auto_creates_topics() -> None:
    assert SERVICES["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_anvil_runs_the_version_the_local_stack_pins() -> None:
    pinned = json.loads((REPO_ROOT / "deploy/anvil/package.json").read_text())
    version = pinned["dependencies"]["@foundry-rs/anvil"]

    assert f"@foundry-rs/anvil@{version}" in " ".join(SERVICES["anvil"]["command"])
    chain_id = SERVICES["anvil"]["environment"]["OMC_CHAIN_ID"]
    assert chain_id == f"${{OMC_CHAIN_ID:-{DEFAULTS.chain_id}}}"


def test_kafka_image_is_the_release_the_local_stack_pins() -> None:
    pom = ET.parse(REPO_ROOT / "deploy/kafka/pom.xml").getroot()  # noqa: S314 - our own file
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    (kafka,) = [d for d in pom.iterfind(".//m:dependency", ns)
                if d.findtext("m:artifactId", namespaces=ns) == "kafka_2.13"]

    version = kafka.findtext("m:version", namespaces=ns)
    assert SERVICES["kafka"]["image"] == f"apache/kafka:{version}"


def test_registry_waits_for_kafka_and_reaches_it_on_the_internal_listener() -> None:
    registry = SERVICES["registry"]
    listeners = SERVICES["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]

    assert registry["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert f"INTERNAL://{registry['environment']['OMC_KAFKA_BOOTSTRAP']}" in listeners
    assert "python -m omc_registry" in " ".join(registry["command"])
