"""k8s/: the base and overlays hold what the cluster needs, and the topics are the catalogue's.

These read the YAML files as committed; .ci/k8s-check renders the overlays with kustomize and
validates the result with kubeconform (and checks the same replica bounds on the output).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from omc_cli.k8s import render_topics
from omc_cli.service import MODULES
from omc_config.settings import REPO_ROOT
from omc_events.catalogue import Catalogue

K8S = REPO_ROOT / "k8s"
CATALOGUE = Catalogue.load()
# The catalogue's names of the consumers (schemas/topics.yaml) of each Deployment.
CONSUMER = {"runtime": "agent-runtime", "txmanager": "tx-manager", "proj-mysql": "proj-mysql",
            "proj-redis": "proj-redis"}
# One writer per chain; the notary reads without a consumer group; one registry process.
SINGLE = {"watcher", "notary", "proj-proofs", "registry"}


def _documents(folder: Path) -> list[dict]:
    documents = []
    for path in sorted(folder.rglob("*.yaml")):
        if path.name != "kustomization.yaml":
            documents += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return documents


BASE = _documents(K8S / "base")
DEPLOYMENTS = {d["metadata"]["name"]: d for d in BASE if d["kind"] == "Deployment"}
OVERLAYS = sorted(p.parent.name for p in (K8S / "overlays").glob("*/kustomization.yaml"))


def _kustomization(where: Path) -> dict:
    return yaml.safe_load((where / "kustomization.yaml").read_text())


def partition_bound(deployment: str) -> int | None:
    """Most replicas that can all hold partitions: the largest topic its group consumes."""
    if deployment in SINGLE:
        return 1
    if deployment not in CONSUMER:
        return None
    sizes = [t.partitions for t in CATALOGUE if CONSUMER[deployment] in t.consumers]
    return max(sizes)


def test_the_committed_topics_are_the_ones_the_catalogue_generates() -> None:
    committed = (K8S / "base/kafka/topics.yaml").read_text()

    assert committed == render_topics(CATALOGUE), (
        "regenerate: .venv/bin/omc k8s topics > k8s/base/kafka/topics.yaml")


def test_every_catalogue_topic_is_a_kafka_topic_of_the_cluster_with_its_settings() -> None:
    topics = {d["spec"]["topicName"]: d for d in BASE if d["kind"] == "KafkaTopic"}
    (kafka,) = [d for d in BASE if d["kind"] == "Kafka"]

    assert set(topics) == set(CATALOGUE.topics)
    for topic in CATALOGUE:
        spec = topics[topic.name]["spec"]
        assert topics[topic.name]["metadata"]["labels"]["strimzi.io/cluster"] == (
            kafka["metadata"]["name"])
        assert spec["partitions"] == topic.partitions
        assert spec["config"] == topic.configs(spec["replicas"])
        assert all(isinstance(value, str) for value in spec["config"].values())


def test_the_kafka_cluster_is_kraft_with_node_pools_and_no_auto_created_topics() -> None:
    (kafka,) = [d for d in BASE if d["kind"] == "Kafka"]
    pools = [d for d in BASE if d["kind"] == "KafkaNodePool"]

    assert kafka["apiVersion"] == "kafka.strimzi.io/v1beta2"
    assert kafka["metadata"]["annotations"]["strimzi.io/kraft"] == "enabled"
    assert kafka["spec"]["kafka"]["config"]["auto.create.topics.enable"] is False
    assert "topicOperator" in kafka["spec"]["entityOperator"]
    assert {p["metadata"]["labels"]["strimzi.io/cluster"] for p in pools} == {"omc"}
    assert {"controller", "broker"} <= {r for p in pools for r in p["spec"]["roles"]}
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    config = _kustomization(K8S / "base")["configMapGenerator"][0]["literals"]
    assert f"OMC_KAFKA_BOOTSTRAP=omc-kafka-bootstrap:{listener['port']}" in config


def test_every_long_running_service_of_the_image_has_a_deployment() -> None:
    assert set(DEPLOYMENTS) == set(MODULES)


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_each_deployment_runs_the_image_by_name_non_root_with_probes_and_resources(name):
    spec = DEPLOYMENTS[name]["spec"]["template"]["spec"]
    (container,) = spec["containers"]

    assert container["image"] == "openmcp-chain"
    assert container["args"][0] == name
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]["memory"]
    assert container["livenessProbe"]
    assert {"configMapRef": {"name": "omc-config"}} in container["envFrom"]


@pytest.mark.parametrize("name", sorted(set(DEPLOYMENTS) - {"watcher", "notary",
                                                              "proj-proofs"}))
def test_each_deployment_is_ready_only_when_its_endpoint_answers(name) -> None:
    (container,) = DEPLOYMENTS[name]["spec"]["template"]["spec"]["containers"]
    probe = container["readinessProbe"]
    path = probe.get("httpGet", {}).get("path") or " ".join(probe["exec"]["command"])

    assert re.search(r"/(readyz|metrics|subjects)\b", path)
    if name == "gateway":
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert probe["httpGet"]["path"] == "/readyz"


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_each_deployment_has_a_disruption_budget(name) -> None:
    selectors = [d["spec"]["selector"]["matchLabels"] for d in BASE
                 if d["kind"] == "PodDisruptionBudget"]

    assert DEPLOYMENTS[name]["spec"]["selector"]["matchLabels"] in selectors


@pytest.mark.parametrize("overlay", ["base", *OVERLAYS])
def test_no_deployment_has_more_replicas_than_partitions_it_consumes(overlay) -> None:
    replicas = {name: d["spec"]["replicas"] for name, d in DEPLOYMENTS.items()}
    if overlay != "base":
        kustomization = _kustomization(K8S / "overlays" / overlay)
        replicas |= {r["name"]: r["count"] for r in kustomization.get("replicas", [])}

    for name, count in replicas.items():
        bound = partition_bound(name)
        assert bound is None or 1 <= count <= bound, f"{overlay}: {name} x{count} > {bound}"


def test_no_secret_value_is_committed_only_references() -> None:
    every = [d for path in K8S.rglob("*.yaml") for d in yaml.safe_load_all(path.read_text())
             if d]
    referenced = {ref["name"] for d in every for ref in _find(d, "secretKeyRef")} | {
        ref["secretName"] for d in every for ref in _find(d, "secret")}
    guide = (REPO_ROOT / "docs/operations.md").read_text()

    assert not [d for d in every if d.get("kind") == "Secret"]
    assert not any("secretGenerator" in d for d in every)
    assert referenced >= {"omc-mysql", "omc-txmanager-keystore", "omc-runtime-attestor",
                          "omc-notary-key"}
    assert all(f"create secret generic {name}" in guide for name in referenced), (
        "docs/operations.md must say how each referenced secret is created")


def test_every_omc_variable_the_manifests_set_is_one_the_code_reads() -> None:
    known = set()
    for folder in ("libs", "services", "projections"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            known |= set(re.findall(r"OMC_[A-Z0-9_]*[A-Z0-9]", path.read_text()))
    used = set()
    for path in K8S.rglob("*.yaml"):
        used |= set(re.findall(r"\b(OMC_[A-Z0-9_]*[A-Z0-9])=", path.read_text()))
        used |= set(re.findall(r"name: (OMC_[A-Z0-9_]*[A-Z0-9])\b", path.read_text()))

    assert "OMC_KAFKA_BOOTSTRAP" in used
    assert not used - known, f"unknown variables: {sorted(used - known)}"


def test_a_default_deny_policy_and_an_allow_for_the_gateway_exist() -> None:
    policies = {d["metadata"]["name"]: d for d in BASE if d["kind"] == "NetworkPolicy"}

    assert policies["default-deny-ingress"]["spec"] == {"podSelector": {},
                                                         "policyTypes": ["Ingress"]}
    assert policies["gateway-ingress"]["spec"]["ingress"][0]["ports"][0]["port"] == 18080


def test_the_migrations_job_runs_the_images_migrate_job() -> None:
    (job,) = [d for d in BASE if d["kind"] == "Job"]
    (container,) = job["spec"]["template"]["spec"]["containers"]

    assert container["args"] == ["migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("OnFailure", "Never")


def _find(node, key: str):
    """Every value under `key` anywhere in a parsed YAML document."""
    if isinstance(node, dict):
        for name, value in node.items():
            if name == key and isinstance(value, dict):
                yield value
            yield from _find(value, key)
    elif isinstance(node, list):
        for item in node:
            yield from _find(item, key)
