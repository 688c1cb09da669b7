"""The read model's versioned migrations (`sql/`), tracked as component "proj_mysql"."""

from __future__ import annotations

from pathlib import Path

from omc_store import migrate

COMPONENT = "proj_mysql"
DIRECTORY = Path(__file__).resolve().parent / "sql"


def migrations() -> list[migrate.Migration]:
    return migrate.discover(COMPONENT, DIRECTORY)


def apply(connection) -> list[migrate.Migration]:
    """Create or update the read model's tables in the connection's database."""
    return migrate.apply(connection, migrations())
