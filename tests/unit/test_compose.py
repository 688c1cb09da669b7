"""docker-compose.yml offers the same components, ports and variables as the local stack, and
runs every service of the project from the image, configured by OMC_* variables only."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest
import yaml

from omc_cli.service import JOBS, MODULES
from omc_config import Settings
from omc_config.settings import REPO_ROOT
from omc_stack.components import COMPONENTS
from omc_stack.components import SERVICES as STACK_SERVICES

COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
DEFAULTS = Settings.from_env({})
JOB_NAMES = {"topics", "migrate", "dev-key"}
PROJECT = {name: spec for name, spec in SERVICES.items() if spec.get("command", [""])[0]
           in {*MODULES, *JOBS, "dev-key"} and "build" in spec}
LONG_RUNNING = {name: spec for name, spec in PROJECT.items()
                if name not in JOB_NAMES | {"registry"}}
OMC_NAME = re.compile(r"OMC_[A-Z0-9_]*[A-Z0-9]")


def _known_variables() -> set[str]:
    """Every OMC_* name the project's code reads (its settings name each one literally)."""
    names: set[str] = set()
    for folder in ("libs", "services", "projections"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            names |= set(OMC_NAME.findall(path.read_text()))
    return names


def _variables_used() -> set[str]:
    """Every OMC_* variable compose sets in a container or reads from the host."""
    text = (REPO_ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{(OMC_\w+)(?::-[^}]*)?\}", text))
    for spec in SERVICES.values():
        used |= {name for name in spec.get("environment") or {} if name.startswith("OMC_")}
    return used


def _published(service: str) -> list[tuple[str, str]]:
    """(variable, default) of each host port published on loopback."""
    found = []
    for mapping in SERVICES[service]["ports"]:
        match = re.fullmatch(r"127\.0\.0\.1:\$\{(OMC_\w+):-(\d+)\}:.+", mapping)
        assert match, f"{service} publishes {mapping!r}, not on loopback through an OMC_ variable"
        found.append((match.group(1), match.group(2)))
    return found


def test_compose_names_every_component_and_service_of_the_local_stack() -> None:
    stack = {component.name for component in (*COMPONENTS, *STACK_SERVICES)}

    assert stack <= set(SERVICES)
    assert set(SERVICES) - stack - JOB_NAMES <= {"txmanager", "watcher", "notary", "proj-proofs"}


def test_every_service_the_entrypoint_knows_runs_in_compose_from_the_image() -> None:
    runs = {spec["command"][0]: name for name, spec in PROJECT.items()}

    assert set(MODULES) <= set(runs), f"no compose service runs {set(MODULES) - set(runs)}"
    assert {"topics", "migrate", "dev-key"} <= set(runs)
    for name in PROJECT:
        assert SERVICES[name]["build"]["dockerfile"] == "Dockerfile"
        assert SERVICES[name]["image"] == PROJECT["gateway"]["image"]


def test_every_omc_variable_compose_uses_is_one_the_settings_know() -> None:
    unknown = _variables_used() - _known_variables()

    assert _variables_used() >= {"OMC_KAFKA_BOOTSTRAP", "OMC_MYSQL_HOST", "OMC_REDIS_URL"}
    assert not unknown, f"compose sets variables no code reads: {sorted(unknown)}"


@pytest.mark.parametrize("service", sorted(LONG_RUNNING))
def test_each_project_service_reaches_the_infrastructure_inside_the_network(service) -> None:
    environment = SERVICES[service]["environment"]

    assert environment["OMC_KAFKA_BOOTSTRAP"] == "kafka:29092"
    assert environment["OMC_SCHEMA_REGISTRY_URL"].startswith("http://registry:")
    assert environment["OMC_MYSQL_HOST"] == "mariadb"
    assert environment["OMC_REDIS_URL"].startswith("redis://redis:")
    assert environment["OMC_CHAIN_RPC_URL"].startswith("http://anvil:")


@pytest.mark.parametrize("service", sorted(LONG_RUNNING))
def test_each_project_service_waits_for_topics_migrations_and_the_registry(service) -> None:
    depends = SERVICES[service]["depends_on"]

    assert depends["topics"]["condition"] == "service_completed_successfully"
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert depends["registry"]["condition"] == "service_healthy"
    assert SERVICES[service]["restart"] == "unless-stopped"


@pytest.mark.parametrize("service", sorted(LONG_RUNNING))
def test_each_published_service_port_is_the_one_it_listens_on(service) -> None:
    spec = SERVICES[service]
    for variable, default in _published(service) if "ports" in spec else ():
        inside = spec["ports"][0].rsplit(":", 1)[1]
        assert spec["environment"][variable] == inside == default
        assert f"127.0.0.1:{inside}/" in " ".join(spec["healthcheck"]["test"])


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda c: c.name)
def test_each_component_is_published_on_the_local_stacks_variable_and_default(component) -> None:
    published = _published(component.name)
    client_ports = {
        name: str(port)
        for name, port in component(DEFAULTS, installer=None).ports().items()
        if name != "OMC_KAFKA_CONTROLLER_PORT"  # the controller stays inside the container
    }

    assert dict(published) == client_ports


@pytest.mark.parametrize("service", sorted(set(SERVICES) - JOB_NAMES))
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
    assert registry["command"] == ["registry"]
    assert MODULES["registry"] == "omc_registry"


def test_the_projects_services_find_the_registry_where_it_listens() -> None:
    port = SERVICES["registry"]["environment"]["OMC_REGISTRY_PORT"]

    assert SERVICES["gateway"]["environment"]["OMC_SCHEMA_REGISTRY_URL"] == (
        f"http://registry:{port}")
