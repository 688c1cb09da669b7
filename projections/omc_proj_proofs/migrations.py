"""The proof index's versioned migrations (`sql/`), tracked as component "proj_proofs"."""

from __future__ import annotations

from pathlib import Path

from omc_store import migrate

COMPONENT = "proj_proofs"
DIRECTORY = Path(__file__).resolve().parent / "sql"


def apply(connection) -> list[migrate.Migration]:
    return migrate.apply(connection, migrate.discover(COMPONENT, DIRECTORY))
