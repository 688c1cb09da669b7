"""MySQL (MariaDB locally) connections from settings, with the options our drivers need."""

from __future__ import annotations

from typing import Any

import mysql.connector
from mysql.connector.pooling import MySQLConnectionPool

from omc_config import Settings


def options(settings: Settings, database: str | None = None) -> dict[str, Any]:
    """Connection options: the pure-Python driver (its C extension needs a newer OpenSSL
    than Debian 12 has), no TLS on the local stack, UTC, autocommit off."""
    mysql_settings = settings.mysql
    return {
        "host": mysql_settings.host, "port": mysql_settings.port, "user": mysql_settings.user,
        "password": mysql_settings.password,
        "database": database if database is not None else mysql_settings.database,
        "use_pure": True, "ssl_disabled": True, "time_zone": "+00:00", "autocommit": False,
        "charset": "utf8mb4", "collation": "utf8mb4_unicode_ci",
    }


def connect(settings: Settings, database: str | None = None):
    """One connection to the project's database (or `database`)."""
    return mysql.connector.connect(**options(settings, database))


def pool(settings: Settings, name: str, size: int = 8,
         database: str | None = None) -> MySQLConnectionPool:
    """A connection pool for a service (the gateway's query side, for instance)."""
    return MySQLConnectionPool(pool_name=name, pool_size=size, **options(settings, database))
