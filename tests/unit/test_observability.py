"""deploy/observability: every metric the alerts and the dashboard use is one a service exports
(or the Kafka Exporter's), every alert has a runbook that exists, every scrape job is a service
with a metrics endpoint."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest
import yaml

from omc_config.settings import REPO_ROOT

OBSERVABILITY = REPO_ROOT / "deploy/observability"
ALERTS = yaml.safe_load((OBSERVABILITY / "alerts.yml").read_text())
RULES = [rule for group in ALERTS["groups"] for rule in group["rules"]]
DASHBOARD = json.loads((OBSERVABILITY / "grafana/pipeline.json").read_text())
# Metrics of other exporters that the rules may use, and who exports them.
EXTERNAL = {
    "up": "Prometheus itself",
    "kafka_consumergroup_lag": "Strimzi's Kafka Exporter (Kafka.spec.kafkaExporter)",
    "kafka_topic_partition_current_offset": "Strimzi's Kafka Exporter",
}
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "rate", "irate", "increase", "delta", "deriv",
    "histogram_quantile", "label_replace", "min_over_time", "max_over_time", "avg_over_time",
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "bool", "offset", "abs", "clamp_min", "clamp_max", "absent", "topk", "time", "vector",
}
KINDS = {"Counter": ("_total", "_created"), "Gauge": ("",), "Histogram": (
    "_bucket", "_sum", "_count", "_created"), "Summary": ("", "_sum", "_count", "_created")}


def exported() -> dict[str, str]:
    """Every series name the project's code exports, with the file declaring it."""
    names: dict[str, str] = {}
    declaration = re.compile(r"\b(Counter|Gauge|Histogram|Summary)\(\s*\"([a-z_:][a-z0-9_:]*)\"")
    for folder in ("libs", "services", "projections"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            for kind, name in declaration.findall(path.read_text()):
                base = name.removesuffix("_total") if kind == "Counter" else name
                for suffix in KINDS[kind]:
                    names[base + suffix] = str(path.relative_to(REPO_ROOT))
    names.update(collected())
    return names


def collected() -> dict[str, str]:
    """The series of the custom collectors (families made at scrape time), read by
    collecting them: the chain watcher's counters."""
    from omc_watcher.metrics import WatcherCollector
    from omc_watcher.watcher import Counters

    watcher = WatcherCollector(SimpleNamespace(counters=Counters()))  # type: ignore[arg-type]
    return {sample.name: "services/omc_watcher/metrics.py"
            for family in watcher.collect() for sample in family.samples}


def metrics_in(expr: str) -> set[str]:
    """The metric names a PromQL expression reads."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)          # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)                      # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)                     # ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", expr)
    names = set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", expr))
    return {n for n in names if n not in PROMQL_WORDS and not re.fullmatch(r"\d.*|e\d+", n)
            and not n.startswith("__")}


def dashboard_exprs() -> list[str]:
    return [target["expr"] for panel in DASHBOARD["panels"] for target in panel.get("targets", [])]


def test_the_expression_parser_finds_metrics_and_nothing_else() -> None:
    expr = ('histogram_quantile(0.99, sum by (le, route) (rate(a_b_bucket{route!="/x {y}"}[5m])))'
            ' / on (job) group_left (c) max_over_time(c_d[1h]) > 1e3')

    assert metrics_in(expr) == {"a_b_bucket", "c_d"}


def test_the_code_exports_the_metrics_the_services_are_known_for() -> None:
    names = exported()

    assert "omc_gateway_requests_total" in names
    assert "omc_runtime_inference_seconds_bucket" in names
    assert "omc_projector_lag_seconds" in names
    assert "omc_projector_events_applied_total" in names  # declared without _total
    assert "omc_watcher_gas_used_total" in names  # a custom collector's


@pytest.mark.parametrize("source", ["alerts", "dashboard"])
def test_every_metric_used_is_exported_by_a_service_or_a_known_exporter(source) -> None:
    exprs = [rule["expr"] for rule in RULES] if source == "alerts" else dashboard_exprs()
    used = set().union(*(metrics_in(expr) for expr in exprs))
    unknown = used - set(exported()) - set(EXTERNAL)

    assert len(used) >= 10
    assert not unknown, f"{source} use metrics nothing exports: {sorted(unknown)}"


def test_the_alerts_cover_lag_dead_letters_stuck_transactions_anchors_and_errors() -> None:
    names = {rule["alert"] for rule in RULES}

    assert {"OmcConsumerLagHigh", "OmcDeadLettersGrowing", "OmcTransactionsStuck",
            "OmcAnchorDelayed", "OmcGatewayErrorRate"} <= names


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule["alert"])
def test_each_alert_has_a_severity_a_summary_and_a_runbook_that_exists(rule) -> None:
    guide = (REPO_ROOT / "docs/operations.md").read_text()
    anchors = {_slug(line.lstrip("#")) for line in guide.splitlines() if line.startswith("#")}
    path, _, anchor = rule["annotations"]["runbook"].partition("#")

    assert rule["labels"]["severity"] in ("warning", "critical")
    assert rule["annotations"]["summary"]
    assert path == "docs/operations.md"
    assert anchor in anchors


def test_the_static_scrape_config_has_a_job_per_service_with_metrics() -> None:
    config = yaml.safe_load((OBSERVABILITY / "prometheus.yml").read_text())
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]
    targets = {job["job_name"]: job["static_configs"][0]["targets"][0]
               for job in config["scrape_configs"]}

    assert config["rule_files"] == ["alerts.yml"]
    for service in ("gateway", "runtime", "proj-mysql", "proj-redis"):
        host, port = targets[service].split(":")
        assert host == service
        assert f"127.0.0.1:{port}/" in " ".join(compose[service]["healthcheck"]["test"])


def test_the_kubernetes_scrape_config_keeps_the_annotated_pods_of_the_project() -> None:
    config = yaml.safe_load((OBSERVABILITY / "prometheus-kubernetes.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "openmcp-chain"]
    keeps = {tuple(r["source_labels"]): r["regex"] for r in job["relabel_configs"]
             if r.get("action") == "keep"}

    assert keeps[("__meta_kubernetes_pod_label_app_kubernetes_io_name",)] == "openmcp-chain"
    assert keeps[("__meta_kubernetes_pod_annotation_prometheus_io_scrape",)] == "true"


def test_the_dashboard_shows_every_metric_of_the_notary() -> None:
    from omc_notary.metrics import NotaryMetrics

    families = {m.name for m in NotaryMetrics().registry.collect()}
    used = set().union(*(metrics_in(expr) for expr in dashboard_exprs()))
    shown = {name for name in families
             if used & {name, f"{name}_total", f"{name}_bucket", f"{name}_count"}}

    assert len(families) == 6
    assert shown == families, f"not on the dashboard: {sorted(families - shown)}"


def test_every_scrape_job_of_a_service_is_watched_by_the_service_down_alert() -> None:
    config = yaml.safe_load((OBSERVABILITY / "prometheus.yml").read_text())
    (down,) = [rule for rule in RULES if rule["alert"] == "OmcServiceDown"]
    watched = set(re.search(r'job=~"([^"]+)"', down["expr"]).group(1).split("|"))
    jobs = {job["job_name"] for job in config["scrape_configs"]} - {"kafka-exporter"}

    assert jobs <= watched, f"not watched: {sorted(jobs - watched)}"
