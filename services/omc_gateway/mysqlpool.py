"""A lazy MySQL connection pool for the query side.

mysql.connector's own pool opens every connection when it is made, so a gateway started
while MySQL is down would not start; this one connects on demand, keeps at most `size`
connections, and retries a read once on a fresh connection when a kept one went stale (MySQL
restarted). Each use ends with a rollback, so the next read sees what was committed since.
Driver errors that mean "MySQL is not answering" become `errors.Unavailable`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

import mysql.connector
from mysql.connector import errorcode

from omc_gateway.errors import Unavailable

log = logging.getLogger("omc.gateway.mysql")

T = TypeVar("T")

_DOWN = {errorcode.CR_CONN_HOST_ERROR, errorcode.CR_SERVER_GONE_ERROR, errorcode.CR_SERVER_LOST,
         errorcode.CR_CONNECTION_ERROR, errorcode.CR_SERVER_LOST_EXTENDED,
         errorcode.ER_SERVER_SHUTDOWN, errorcode.ER_CON_COUNT_ERROR,
         errorcode.ER_TOO_MANY_USER_CONNECTIONS, errorcode.ER_LOCK_WAIT_TIMEOUT,
         errorcode.ER_QUERY_INTERRUPTED, 1927}  # 1927: MariaDB's "connection was killed"


def unavailable(error: mysql.connector.Error) -> Unavailable | None:
    """The `Unavailable` an error means, or None for an error in the query itself."""
    if error.errno == errorcode.ER_NO_SUCH_TABLE:
        log.error("a projection table is missing (run `omc db migrate`): %s", error.msg)
        return Unavailable("mysql", "The query side is not set up yet; retry later.")
    if (error.errno in _DOWN or isinstance(error, (mysql.connector.InterfaceError,
                                                    mysql.connector.OperationalError,
                                                    mysql.connector.PoolError))):
        return Unavailable("mysql", "MySQL, which answers queries, is not answering; "
                                    "retry later.")
    return None


class MySQLPool:
    """Run blocking work on a pooled connection: `pool.run(lambda connection: ...)`."""

    def __init__(self, connect: Callable[[], Any], *, size: int = 8,
                 wait: float = 10.0) -> None:
        self._connect = connect
        self._idle: deque[Any] = deque()
        self._slots = threading.BoundedSemaphore(size)
        self._wait = wait
        self._lock = threading.Lock()

    def run(self, work: Callable[[Any], T]) -> T:
        """Blocking: call it from a worker thread."""
        if not self._slots.acquire(timeout=self._wait):
            raise Unavailable("mysql", "Every MySQL connection is busy; retry later.",
                              retry_after=1)
        try:
            for attempt in range(2):
                connection, reused = self._take()
                try:
                    result = work(connection)
                    connection.rollback()
                except mysql.connector.Error as error:
                    self._discard(connection)
                    translated = unavailable(error)
                    if translated is None:
                        raise
                    if reused and attempt == 0 and error.errno != errorcode.ER_NO_SUCH_TABLE:
                        continue  # a kept connection went stale: try once more, afresh
                    raise translated from error
                except BaseException:
                    self._discard(connection)
                    raise
                with self._lock:
                    self._idle.append(connection)
                return result
            raise AssertionError("unreachable")
        finally:
            self._slots.release()

    def _take(self) -> tuple[Any, bool]:
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        try:
            return self._connect(), False
        except mysql.connector.Error as error:
            raise (unavailable(error) or Unavailable(
                "mysql", "MySQL refused the gateway's connection; retry later.")) from error

    def _discard(self, connection: Any) -> None:
        with contextlib.suppress(Exception):
            connection.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = list(self._idle), deque()
        for connection in idle:
            self._discard(connection)
