"""The local MariaDB is real: DDL and DML in transactions, as the project's user."""

from __future__ import annotations


def _count(connection) -> int:
    cursor = connection.cursor()
    cursor.execute("SELECT COUNT(*) FROM tasks")
    (count,) = cursor.fetchone()
    connection.commit()  # end the read snapshot
    return count


def test_a_rolled_back_transaction_leaves_nothing_and_a_committed_one_is_seen(
    mysql_connect,
) -> None:
    writer, reader = mysql_connect(), mysql_connect()
    writer.cursor().execute(
        "CREATE TABLE tasks (task_id CHAR(36) PRIMARY KEY, status VARCHAR(32) NOT NULL,"
        " version BIGINT NOT NULL) ENGINE=InnoDB"
    )

    writer.start_transaction()
    writer.cursor().execute("INSERT INTO tasks VALUES ('a', 'submitted', 1)")
    assert _count(reader) == 0
    writer.rollback()
    assert _count(reader) == 0

    writer.start_transaction()
    writer.cursor().executemany("INSERT INTO tasks VALUES (%s, %s, %s)",
                                [("a", "submitted", 1), ("b", "submitted", 1)])
    writer.commit()
    assert _count(reader) == 2


def test_version_guarded_upsert_ignores_an_older_version(mysql_connect) -> None:
    connection = mysql_connect()
    cursor = connection.cursor()
    cursor.execute("CREATE TABLE tasks (task_id CHAR(36) PRIMARY KEY, status VARCHAR(32),"
                   " version BIGINT NOT NULL)")
    upsert = (
        "INSERT INTO tasks (task_id, status, version) VALUES (%s, %s, %s) "
        "ON DUPLICATE KEY UPDATE "
        "status = IF(VALUES(version) > version, VALUES(status), status), "
        "version = GREATEST(version, VALUES(version))"
    )

    cursor.execute(upsert, ("t", "running", 2))
    cursor.execute(upsert, ("t", "submitted", 1))  # a redelivered older event
    connection.commit()
    cursor.execute("SELECT status, version FROM tasks WHERE task_id = 't'")

    assert cursor.fetchone() == ("running", 2)
