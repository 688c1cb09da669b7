"""`omc db …` and `omc replay …`: the MySQL database and the rebuild of projections.

    omc db migrate                  apply every component's migrations (the MySQL read model's,
                                    and the gateway's when services/omc_gateway/sql exists)
    omc replay mysql [--until T]    rebuild the MySQL read model from offset 0, compare it with
                                    the live tables and swap it in; with --until (an RFC 3339
                                    time or topic/partition@offset), build the state as of then
                                    into omc_asof_<time> and print its name
"""

from __future__ import annotations

import sys

import click

from omc_cli.friendly import friendly
from omc_cli.migrations import migrate_all
from omc_config import Settings
from omc_errors import OmcError

EXIT_DIFFERENT = 3


@click.group()
def db() -> None:
    """The MySQL database (OMC_MYSQL_*): migrations."""


@db.command("migrate")
@friendly
def db_migrate() -> None:
    """Create the database if needed and apply every component's pending migrations."""
    for line in migrate_all(Settings.from_env()):
        click.echo(line)


@click.group()
def replay() -> None:
    """Rebuild a projection from the log (offset 0), using only Kafka, the registry and MySQL."""


@replay.command("mysql")
@click.option("--until", help="Build the state as of an RFC 3339 time or a message "
                              "(topic/partition@offset) into omc_asof_<time>, kept.")
@click.option("--no-swap", is_flag=True, help="Rebuild and compare only; drop the rebuild.")
@click.option("--keep-old", is_flag=True, help="Keep the replaced tables in <db>_old_<time>.")
@click.option("--batch", default=5000, show_default=True, help="Messages per transaction.")
@friendly
def replay_mysql(until: str | None, no_swap: bool, keep_old: bool, batch: int) -> None:
    """Rebuild the MySQL read model into shadow tables from offset 0 to the high watermarks,
    compare every table with the live one (digest and CHECKSUM TABLE), and swap them in with
    one atomic RENAME TABLE (safe while the projector runs: its offsets move with the tables).
    Exit 3 when the rebuild differs from the live tables (it is swapped in all the same).
    Reads the projector's topics (OMC_PROJ_MYSQL_TOPICS) into OMC_MYSQL_DATABASE."""
    from omc_proj_mysql.__main__ import Options
    from omc_proj_mysql.replay import replay as run_replay

    options = Options.from_env()  # the projector's topics (OMC_PROJ_MYSQL_TOPICS) and database
    report = run_replay(options.base, topics=options.topics, until=until, swap=not no_swap,
                        keep_old=keep_old, batch_size=batch,
                        progress=lambda line: click.echo(line, err=True))
    for line in report.lines():
        click.echo(line)
    if until is not None:
        click.echo(report.database)
    elif not no_swap and not report.swapped:
        raise OmcError("the rebuild was not swapped in")
    if until is None and report.differences:
        sys.exit(EXIT_DIFFERENT)


COMMANDS = [db, replay]
