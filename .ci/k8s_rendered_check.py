"""Rules on a rendered overlay (kustomize build output), run by .ci/k8s-check.

    python k8s_rendered_check.py OVERLAY RENDERED.yaml

Every Deployment of the project runs no more replicas than the partitions its consumer group
reads (the catalogue's largest consumed topic; 1 for the watcher, the notary, the proof
index and the registry), nor
may an autoscaler grow one beyond that; every image has a tag; every KafkaTopic's
min.insync.replicas is at most its replicas, and the Kafka cluster has at least as many broker
nodes as any topic has replicas.
"""

from __future__ import annotations

import sys

import yaml

from omc_events.catalogue import Catalogue

CONSUMER = {"runtime": "agent-runtime", "txmanager": "tx-manager", "proj-mysql": "proj-mysql",
            "proj-redis": "proj-redis"}
SINGLE = {"watcher", "notary", "proj-proofs", "registry"}  # one per chain, no group, one


def problems(documents: list[dict]) -> list[str]:
    catalogue = Catalogue.load()
    found = []
    brokers = sum(d["spec"]["replicas"] for d in documents if d["kind"] == "KafkaNodePool"
                  and "broker" in d["spec"]["roles"])
    for d in documents:
        name = d["metadata"]["name"]
        if d["kind"] == "Deployment" and d["metadata"]["labels"].get(
                "app.kubernetes.io/name") == "openmcp-chain":
            replicas = d["spec"].get("replicas", 1)
            consumed = [t.partitions for t in catalogue if CONSUMER.get(name) in t.consumers]
            bound = 1 if name in SINGLE else max(consumed) if consumed else None
            if bound is not None and replicas > bound:
                found.append(f"Deployment {name}: {replicas} replicas, {bound} partitions")
            for container in d["spec"]["template"]["spec"]["containers"]:
                if ":" not in container["image"].rsplit("/", 1)[-1] and "@" not in container[
                        "image"]:
                    found.append(f"Deployment {name}: image {container['image']} has no tag")
        if d["kind"] == "HorizontalPodAutoscaler":
            target = d["spec"]["scaleTargetRef"]["name"]
            consumed = [t.partitions for t in catalogue if CONSUMER.get(target) in t.consumers]
            bound = 1 if target in SINGLE else max(consumed) if consumed else None
            if bound is not None and d["spec"]["maxReplicas"] > bound:
                found.append(f"HorizontalPodAutoscaler {name}: up to {d['spec']['maxReplicas']}"
                             f" replicas of {target}, {bound} partitions")
        if d["kind"] == "KafkaTopic":
            spec = d["spec"]
            if int(spec["config"]["min.insync.replicas"]) > spec["replicas"]:
                found.append(f"KafkaTopic {name}: min.insync.replicas above its replicas")
            if spec["replicas"] > brokers:
                found.append(f"KafkaTopic {name}: {spec['replicas']} replicas, {brokers} brokers")
    return found


def main(overlay: str, path: str) -> int:
    with open(path) as handle:
        documents = [d for d in yaml.safe_load_all(handle) if d]
    found = problems(documents)
    for problem in found:
        print(f"k8s-check: {overlay}: {problem}", file=sys.stderr)
    print(f"k8s-check: {overlay}: rules: {len(found)} problem(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
