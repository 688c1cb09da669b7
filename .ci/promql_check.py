"""Run by .ci/observability-check in a virtualenv with promql-parser (the Rust parser that
Prometheus-compatible tools use) and PyYAML:

    python promql_check.py REPO

Every expression of deploy/observability/alerts.yml and of the Grafana dashboards parses as
PromQL, and every metric it selects (read from the syntax tree, not by pattern) is exported by
the project's code (a Counter/Gauge/Histogram/Summary declared with its name, or a custom
collector's *MetricFamily, `collected`) or is one of the Kafka Exporter's or Prometheus's own
(the same allowance as tests/unit/test_observability.py, whose pattern-based reader, and
collection of the collectors, this cross-checks).
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import promql_parser
import yaml

EXTERNAL = {"up", "kafka_consumergroup_lag", "kafka_topic_partition_current_offset"}
SUFFIXES = {"Counter": ("_total", "_created"), "Gauge": ("",),
            "Histogram": ("_bucket", "_sum", "_count", "_created"),
            "Summary": ("", "_sum", "_count", "_created")}
CHILDREN = ("lhs", "rhs", "expr", "args", "vector_selector", "param")


def exported(repo: Path) -> set[str]:
    names = set()
    declaration = re.compile(r"\b(Counter|Gauge|Histogram|Summary)\(\s*\"([a-z_:][a-z0-9_:]*)\"")
    for folder in ("libs", "services", "projections"):
        for path in (repo / folder).rglob("*.py"):
            text = path.read_text()
            found = declaration.findall(text)
            if "MetricFamily(" in text:
                found += collected(text)
            for kind, name in found:
                base = name.removesuffix("_total") if kind == "Counter" else name
                names |= {base + suffix for suffix in SUFFIXES[kind]}
    return names


def collected(source: str) -> list[tuple[str, str]]:
    """(kind, name) of a custom collector's families: `CounterMetricFamily("name", ...)`, or
    `CounterMetricFamily(f"prefix{key}", ...)` in a `for key, ... in TABLE.items()` loop over
    a module-level dict (or tuple) of literal keys."""
    tree = ast.parse(source)
    tables = {target.id: node.value for node in tree.body if isinstance(node, ast.Assign)
              for target in node.targets if isinstance(target, ast.Name)}
    found = []

    def kind_of(call: ast.AST) -> str | None:
        name = getattr(getattr(call, "func", None), "id", "")
        kind = name.removesuffix("MetricFamily")
        return kind if name.endswith("MetricFamily") and kind in SUFFIXES else None

    for call in ast.walk(tree):
        first = call.args[0] if isinstance(call, ast.Call) and call.args else None
        if kind_of(call) and isinstance(first, ast.Constant) and isinstance(first.value, str):
            found.append((kind_of(call), first.value))
    for loop in (n for n in ast.walk(tree) if isinstance(n, ast.For)):
        target = loop.target.elts[0] if isinstance(loop.target, ast.Tuple) else loop.target
        table = loop.iter.func.value if isinstance(loop.iter, ast.Call) and isinstance(
            loop.iter.func, ast.Attribute) else loop.iter
        literal = tables.get(getattr(table, "id", None))
        keys = literal.keys if isinstance(literal, ast.Dict) else getattr(literal, "elts", [])
        values = [k.value for k in keys if isinstance(k, ast.Constant)]
        for call in ast.walk(loop):
            first = call.args[0] if isinstance(call, ast.Call) and call.args else None
            if not (kind_of(call) and isinstance(first, ast.JoinedStr)):
                continue
            parts = first.values
            if all(isinstance(p, ast.Constant) or getattr(p.value, "id", None) == target.id
                   for p in parts):
                found += [(kind_of(call), "".join(
                    p.value if isinstance(p, ast.Constant) else value for p in parts))
                    for value in values]
    return found


def selected(node) -> set[str]:
    """The metric names of every vector selector under `node`."""
    names = set()
    if type(node).__name__ == "VectorSelector" and node.name:
        names.add(node.name)
    for attribute in CHILDREN:
        value = getattr(node, attribute, None)
        for child in value if isinstance(value, list) else [value]:
            if child is not None and type(child).__module__.startswith("promql"):
                names |= selected(child)
    return names


def main(repo: Path) -> int:
    folder = repo / "deploy/observability"
    rules = yaml.safe_load((folder / "alerts.yml").read_text())
    expressions = [(f"alert {r['alert']}", r["expr"]) for g in rules["groups"]
                   for r in g["rules"]]
    for dashboard in sorted((folder / "grafana").glob("*.json")):
        for panel in json.loads(dashboard.read_text())["panels"]:
            for target in panel.get("targets", []):
                expressions.append((f"{dashboard.name}: {panel['title']}",
                                    target["expr"].replace("$__rate_interval", "5m")))
    known, problems, used = exported(repo) | EXTERNAL, [], set()
    for where, expression in expressions:
        try:
            names = selected(promql_parser.parse(expression))
        except ValueError as error:
            problems.append(f"{where}: not PromQL: {error}")
            continue
        used |= names
        problems += [f"{where}: {name} is exported by nothing" for name in names - known]
    for problem in problems:
        print(f"observability-check: {problem}", file=sys.stderr)
    print(f"observability-check: {len(expressions)} expressions, {len(used)} metrics; "
          f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
