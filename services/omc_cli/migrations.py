"""Every component's database migrations, applied in one go (`omc up`, `omc db migrate`)."""

from __future__ import annotations

from pathlib import Path

import mysql.connector

from omc_config import Settings
from omc_errors import OmcError
from omc_proj_mysql import migrations as mysql_migrations
from omc_proj_proofs import migrations as proofs_migrations
from omc_store import migrate
from omc_store.mysql import connect

GATEWAY_SQL = Path(__file__).resolve().parents[1] / "omc_gateway" / "sql"


def components() -> list[tuple[str, Path]]:
    """(component, migrations directory) of everything that keeps tables in MySQL."""
    return [(mysql_migrations.COMPONENT, mysql_migrations.DIRECTORY), ("gateway", GATEWAY_SQL),
            (proofs_migrations.COMPONENT, proofs_migrations.DIRECTORY)]


def migrate_all(settings: Settings) -> list[str]:
    """Create the database if needed and apply every pending migration; one line per
    component saying what was applied (or that it was up to date)."""
    name = settings.mysql.database
    lines = []
    try:
        admin = connect(settings, "")
        try:
            admin.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{name}`")
        finally:
            admin.close()
        connection = connect(settings)
        try:
            for component, directory in components():
                applied = migrate.apply(connection, migrate.discover(component, directory))
                lines += [f"{component}: applied version {m.version} ({m.name})"
                          for m in applied] or [f"{component}: up to date"]
        finally:
            connection.close()
    except mysql.connector.Error as error:
        raise OmcError(f"MySQL at {settings.mysql.host}:{settings.mysql.port} ({name}): "
                       f"{error}") from error
    return lines
