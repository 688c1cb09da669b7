"""Versioned SQL migrations: `V<number>__<what>.sql` files, applied once each, in order.

Each component keeps its migrations in its own `sql/` directory and is tracked separately in
`schema_migrations` (component, version, checksum). An applied file that was edited since
is refused: migrations are append-only, like the log.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from omc_errors import OmcError

FILE = re.compile(r"V(\d+)__([a-z0-9_]+)\.sql")


class MigrationError(OmcError):
    """A migration is malformed, edited after being applied, or failed."""


@dataclass(frozen=True)
class Migration:
    component: str
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(component: str, directory: Path) -> list[Migration]:
    """The migrations in `directory`, by version; refuses stray or duplicate names."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = FILE.fullmatch(path.name)
        if not match:
            raise MigrationError(f"{path}: name it V<number>__<what>.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"{path}: version {version} is used twice in {directory}")
        found[version] = Migration(component, version, match.group(2), path.read_text())
    return [found[v] for v in sorted(found)]


def apply(connection, migrations: list[Migration]) -> list[Migration]:
    """Apply the migrations not applied yet; returns them. DDL is not transactional in
    MySQL, so each file should be idempotent (CREATE TABLE IF NOT EXISTS …)."""
    cursor = connection.cursor()
    cursor.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " component VARCHAR(64) NOT NULL, version INT NOT NULL, name VARCHAR(200) NOT NULL,"
        " checksum CHAR(64) NOT NULL,"
        " applied_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),"
        " PRIMARY KEY (component, version)) ENGINE=InnoDB"
    )
    cursor.execute("SELECT component, version, checksum FROM schema_migrations")
    applied = {(c, v): checksum for c, v, checksum in cursor.fetchall()}
    done = []
    for migration in migrations:
        key = (migration.component, migration.version)
        if key in applied:
            if applied[key] != migration.checksum:
                raise MigrationError(
                    f"{migration.component} V{migration.version}__{migration.name}.sql was "
                    "changed after it was applied; add a new migration instead")
            continue
        try:
            for statement in _statements(migration.sql):
                cursor.execute(statement)
            cursor.execute(
                "INSERT INTO schema_migrations (component, version, name, checksum)"
                " VALUES (%s, %s, %s, %s)",
                (migration.component, migration.version, migration.name, migration.checksum))
            connection.commit()
        except Exception as error:
            connection.rollback()
            raise MigrationError(f"{migration.component} V{migration.version}__"
                                 f"{migration.name}.sql failed: {error}") from error
        done.append(migration)
    return done


def _statements(sql: str) -> list[str]:
    """Split on semicolons at line ends (the files hold plain DDL/DML, no procedures)."""
    body = "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in re.split(r";\s*(?:\n|$)", body) if s.strip()]
