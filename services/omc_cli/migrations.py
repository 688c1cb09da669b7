"""Every component's database migrations, applied in one go (`omc up`, `omc db migrate`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from omc_config import Settings
from omc_store import migrate
from omc_store.mysql import connect

# (component, package whose `sql/` directory holds its migrations), in apply order.
MIGRATION_SETS = (("proj_mysql", "omc_proj_mysql"), ("gateway", "omc_gateway"))


def all_migrations() -> list[migrate.Migration]:
    found = []
    for component, package in MIGRATION_SETS:
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            continue
        directory = Path(spec.origin).parent / "sql"
        if directory.is_dir():
            found += migrate.discover(component, directory)
    return found


def migrate_all(settings: Settings) -> list[str]:
    """Apply what is not applied yet; one line per migration applied (or 'up to date')."""
    connection = connect(settings)
    try:
        applied = migrate.apply(connection, all_migrations())
    finally:
        connection.close()
    return ([f"applied {m.component} V{m.version}__{m.name}" for m in applied]
            or ["database schema up to date"])
