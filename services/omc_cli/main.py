"""`omc`, the project's command line: the composition root for everything run by hand.

    omc up                      bring up the local stack and show it working
    omc down                    stop everything `omc up` started
    omc stack up|down [COMPONENT ...]
    omc stack status [--json] [COMPONENT ...]   exit 3 when a component is not ready
    omc stack logs COMPONENT [-n N] [-f]
    omc test [PYTEST ARGS ...]  bring the system up, run the test suite against it (parallel)
    omc topics apply|list       the topic catalogue (schemas/topics.yaml) on the cluster
    omc schemas check|generate  the Avro contract: compatibility, generated code and docs
    omc chain build|deploy-demo  the contracts: compile (pinned solc), deploy to the local chain

Every `OmcError` is printed as a one-paragraph message on stderr with exit code 1.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

import click

from omc_cli import demo
from omc_cli.contract import apply_topics, schemas, topics
from omc_cli.friendly import friendly
from omc_cli.migrations import migrate_all
from omc_config import Settings
from omc_config.settings import REPO_ROOT
from omc_errors import OmcError
from omc_stack import ComponentStatus, Stack
from omc_stack.components import SERVICES

EXIT_NOT_READY = 3
PYTEST_NO_TESTS = 5


def _stack() -> Stack:
    return Stack(Settings.from_env(), report=lambda line: click.echo(f"  {line}", err=True))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """OpenMCP-Chain: LLM agents acting on blockchains, event-sourced on Kafka."""


# Command groups living in their own modules; each module exports COMMANDS.
COMMAND_MODULES = ("omc_cli.db", "omc_cli.keys", "omc_cli.client", "omc_cli.chain",
                   "omc_cli.k8s", "omc_cli.audit")

cli.add_command(topics)
cli.add_command(schemas)
for _name in COMMAND_MODULES:
    if importlib.util.find_spec(_name) is not None:  # absent until its feature lands
        for _command in importlib.import_module(_name).COMMANDS:
            cli.add_command(_command)


# -- the main job -----------------------------------------------------------------------------


@cli.command()
@friendly
def up() -> None:
    """Bring up the whole system: the stack, the log's topics, the database schema, and
    every service (supervised); print where everything listens."""
    started = time.monotonic()
    stack = _system(click.echo)
    click.echo(f"\nUp in {time.monotonic() - started:.1f}s.\n")
    _print_table(stack.status())
    click.echo("\nA round trip through the running system:")
    demo.run(stack.settings, lambda line: click.echo(f"  {line}"))
    click.echo("\nStop it with `.venv/bin/omc down`; see it with `.venv/bin/omc stack status`.")


@cli.command()
@friendly
def down() -> None:
    """Stop everything `omc up` started (services first)."""
    _stack().down()


# -- stack ------------------------------------------------------------------------------------


@cli.group()
def stack() -> None:
    """Control the local stack (Kafka, schema registry, MariaDB, Redis, anvil) under .stack/."""


@stack.command("up")
@click.argument("components", nargs=-1)
@friendly
def stack_up(components: Sequence[str]) -> None:
    """Start COMPONENTS (default: all) and wait until each answers; fine to run twice."""
    _print_table(_stack().up(components))


@stack.command("down")
@click.argument("components", nargs=-1)
@friendly
def stack_down(components: Sequence[str]) -> None:
    """Stop COMPONENTS (default: all) that this stack started."""
    _stack().down(components)


@stack.command("status")
@click.argument("components", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="One JSON object, keyed by component.")
@friendly
def stack_status(components: Sequence[str], as_json: bool) -> None:
    """Whether each component runs and answers, and where. Exit 3 if any is not ready."""
    statuses = _stack().status(components)
    if as_json:
        click.echo(json.dumps({s.name: s.as_dict() for s in statuses}, indent=2))
    else:
        _print_table(statuses)
    if not all(s.ready for s in statuses):
        sys.exit(EXIT_NOT_READY)


@stack.command("logs")
@click.argument("component")
@click.option("-n", "--lines", default=50, show_default=True, help="How many lines to show.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until Ctrl-C.")
@friendly
def stack_logs(component: str, lines: int, follow: bool) -> None:
    """Print the end of COMPONENT's log."""
    (selected,) = _stack().select([component])
    path = selected.log_path
    if not path.exists():
        raise OmcError(f"{component} has no log yet at {path}; has it been started?")
    with path.open(errors="replace") as log:
        for line in log.readlines()[-lines:]:
            click.echo(line, nl=False)
        while follow:
            line = log.readline()
            if line:
                click.echo(line, nl=False)
            else:
                time.sleep(0.2)


# -- tests ------------------------------------------------------------------------------------


@cli.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
@friendly
def test(pytest_args: Sequence[str]) -> None:
    """Bring the whole system up (as `omc up`, without the demo), then run pytest (extra
    arguments go to pytest). Test files run in parallel worker processes (pytest-xdist,
    one file per worker at a time: OMC_TEST_WORKERS, default 4) unless the arguments choose
    (`-n`, `-p no:xdist`)."""
    _system(lambda line: click.echo(line, err=True))
    workers = os.environ.get("OMC_TEST_WORKERS", "4").strip() or "4"
    chosen = any(a == "-n" or a.startswith(("-n", "--numprocesses")) or a == "no:xdist"
                 for a in pytest_args)
    parallel = [] if chosen or workers in ("0", "1") else ["-n", workers, "--dist", "loadfile"]
    command = [sys.executable, "-m", "pytest", *parallel, *pytest_args]
    click.echo(f"$ {' '.join(command)}", err=True)
    code = subprocess.call(command, cwd=REPO_ROOT)
    if code == PYTEST_NO_TESTS:
        click.secho("error: pytest collected no tests; that is a failure, not a pass.",
                    fg="red", err=True)
    sys.exit(code)


def _system(echo: Callable[[str], None]) -> Stack:
    """The stack up, the log's topics declared, the migrations applied, the services
    started (supervised); what `omc up` and `omc test` share."""
    echo("Bringing up the local stack under .stack/ ...")
    stack = _stack()
    stack.up()
    echo("Declaring the log's topics (schemas/topics.yaml) ...")
    for line in apply_topics(stack.settings).lines():
        echo(f"  {line}")
    echo("Applying database migrations ...")
    for line in migrate_all(stack.settings):
        echo(f"  {line}")
    echo("Starting the services ...")
    stack.up([service.name for service in SERVICES])
    return stack


# -- output -----------------------------------------------------------------------------------


def _print_table(statuses: Sequence[ComponentStatus]) -> None:
    click.echo(f"{'component':<10} {'running':<8} {'ready':<6} {'pid':<8} address")
    for s in statuses:
        where = " ".join(
            f"{key}={value}" for key, value in s.address.items() if key in ("bootstrap", "url")
        ) or f"{s.address.get('host')}:{s.address.get('port')}"
        click.echo(
            f"{s.name:<10} {_yes(s.running):<8} {_yes(s.ready):<6} {s.pid or '-':<8} {where}"
        )
        if s.detail:
            click.echo(f"{'':<10} {s.detail}")


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"
