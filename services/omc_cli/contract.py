"""`omc topics …` and `omc schemas …`: the event contract's commands."""

from __future__ import annotations

import sys

import click
from confluent_kafka.admin import AdminClient

from omc_cli.friendly import friendly
from omc_config import Settings
from omc_events import codegen, eventdoc
from omc_events.catalogue import Catalogue
from omc_events.contract_check import check_history, check_registry
from omc_events.schemas import SCHEMAS_DIR, SchemaSet
from omc_kafka import topics as topic_admin


@click.group()
def topics() -> None:
    """The topics of the log (schemas/topics.yaml)."""


def apply_topics(settings: Settings) -> topic_admin.TopicsReport:
    """Make the cluster's topics match the catalogue (see `omc_kafka.topics.apply`)."""
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    return topic_admin.apply(admin, Catalogue.load(), settings.kafka_replication_factor)


@topics.command("apply")
@friendly
def topics_apply() -> None:
    """Create missing topics, align their configs, report partition drift (exit 2)."""
    report = apply_topics(Settings.from_env())
    for line in report.lines():
        click.echo(line)
    if report.drift:
        sys.exit(2)


@topics.command("list")
@friendly
def topics_list() -> None:
    """The catalogue: each topic, its key, partitions and records."""
    for topic in Catalogue.load():
        click.echo(f"{topic.name}  key={topic.key!r}  partitions={topic.partitions}")
        for record in topic.records:
            click.echo(f"    {record}")


@click.group()
def schemas() -> None:
    """The Avro schemas (schemas/avro) and what is generated from them."""


@schemas.command("check")
@click.option("--registry", "use_registry", is_flag=True,
              help="Also check against every version the schema registry holds.")
@friendly
def schemas_check(use_registry: bool) -> None:
    """Every schema parses and is backward compatible with every released version."""
    schema_set = SchemaSet.load()
    problems = check_history(schema_set)
    if use_registry:
        problems += check_registry(schema_set, Catalogue.load(), Settings.from_env())
    if codegen.TARGET.read_text() != codegen.render(schema_set):
        problems.append("libs/omc_events/records.py is out of date: run `omc schemas generate`")
    docs = SCHEMAS_DIR.parent / "docs" / "events.md"
    if docs.read_text() != eventdoc.render(SCHEMAS_DIR / "avro", SCHEMAS_DIR / "topics.yaml"):
        problems.append("docs/events.md is out of date: run `omc schemas generate`")
    for problem in problems:
        click.secho(problem, fg="red", err=True)
    if problems:
        sys.exit(1)
    click.echo(f"{len(list(schema_set))} schemas parse and are backward compatible")


@schemas.command("generate")
@friendly
def schemas_generate() -> None:
    """Rewrite records.py and docs/events.md from the schemas."""
    codegen.main([])
    eventdoc.main([])
