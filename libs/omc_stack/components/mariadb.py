"""MariaDB from Debian's `mariadb-server`, with a private data directory under the stack.

root is reachable only through the private Unix socket (no password, loopback install);
the project's user, whose name and password come from settings, owns every database whose
name starts with the project database's name (so tests can make `omc_test_…` databases).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from functools import cached_property
from pathlib import Path
from typing import Any

import mysql.connector

from omc_stack.components.base import Component, NotReady

MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes; keep a margin


class MariaDB(Component):
    name = "mariadb"
    stop_grace = 30.0

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @cached_property
    def socket_path(self) -> Path:
        """Inside the stack directory, unless that path is too long for a Unix socket."""
        path = self.dir / "mariadb.sock"
        if len(str(path)) <= MAX_SOCKET_PATH:
            return path
        digest = hashlib.sha256(str(self.dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"omc-mariadb-{digest}.sock"

    def ports(self) -> dict[str, int]:
        return {"OMC_MYSQL_PORT": self.settings.stack.mysql_port}

    @cached_property
    def server(self) -> str:
        return self.installer.binary("mariadbd", "mariadb-server")

    def install(self) -> None:
        _ = self.server
        self.installer.binary("mariadb-install-db", "mariadb-server")

    def _as_root(self) -> list[str]:
        return ["--user=root"] if os.geteuid() == 0 else []

    def prepare(self) -> None:
        if (self.data_dir / "mysql").is_dir():
            return
        self.installer.run(
            [self.installer.binary("mariadb-install-db", "mariadb-server"), "--no-defaults",
             f"--datadir={self.data_dir}", "--auth-root-authentication-method=normal",
             "--skip-test-db", *self._as_root()],
            env=dict(os.environ), what="initialising the MariaDB data directory",
        )

    def command(self) -> list[str]:
        return [
            self.server, "--no-defaults", f"--datadir={self.data_dir}",
            f"--socket={self.socket_path}", f"--port={self.settings.stack.mysql_port}",
            "--bind-address=127.0.0.1", "--skip-name-resolve",
            f"--pid-file={self.dir / 'mariadbd.pid'}",
            "--innodb-buffer-pool-size=128M", "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci", "--max-connections=500",
            *self._as_root(),
        ]

    def _root(self):
        return mysql.connector.connect(unix_socket=str(self.socket_path), user="root",
                                       use_pure=True, connection_timeout=2)

    def probe(self) -> None:
        try:
            connection = self._root()
        except mysql.connector.Error as error:
            raise NotReady(str(error)) from error
        try:
            cursor = connection.cursor()
            cursor.execute("SELECT 1")
            cursor.fetchall()
        finally:
            connection.close()

    def after_ready(self) -> None:
        mysql_settings = self.settings.mysql
        database = mysql_settings.database
        connection = self._root()
        try:
            cursor = connection.cursor()
            cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{database}`")
            for host in ("127.0.0.1", "localhost"):
                account = f"'{mysql_settings.user}'@'{host}'"
                cursor.execute(f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY %s",
                               (mysql_settings.password,))
                cursor.execute(f"ALTER USER {account} IDENTIFIED BY %s",
                               (mysql_settings.password,))
                cursor.execute(f"GRANT ALL PRIVILEGES ON `{database}%`.* TO {account}")
            connection.commit()
        finally:
            connection.close()

    def address(self) -> dict[str, Any]:
        mysql_settings = self.settings.mysql
        return {
            "host": "127.0.0.1",
            "port": self.settings.stack.mysql_port,
            "database": mysql_settings.database,
            "user": mysql_settings.user,
            "socket": str(self.socket_path),
            "url": f"mysql://{mysql_settings.user}@127.0.0.1:{self.settings.stack.mysql_port}"
                   f"/{mysql_settings.database}",
        }
