"""One batch's rows: loaded once, changed in memory by the `apply` functions, written once.

`View` is the in-memory side (no I/O, so `apply` is unit-tested without a database);
`load`, `write`, `lock_offsets` and `save_offsets` are the SQL side, run by the projector
inside the batch's one transaction.

Rows are written as multi-row `INSERT … ON DUPLICATE KEY UPDATE` statements (see `tables`)
whose values are escaped here, the way the driver's pure-Python converter does it, which is
faster than the driver's `executemany` for wide batches.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from omc_proj_mysql.tables import OFFSETS, ROWS, Mode, Table

Key = tuple[Any, ...]
Row = dict[str, Any]

MAX_STATEMENT = 4 * 1024 * 1024
"""Bytes per INSERT statement (MariaDB's default max_allowed_packet is 16 MiB)."""


class View:
    """The rows one batch reads and changes.

    `need` declares rows to load before applying; `get` returns a row to change (a copy of
    what is stored, or of what this batch already put) or None; `put` replaces a folded row,
    `insert` adds an append-only row (the first one stays), `merge` fills a row's blanks.
    """

    def __init__(self) -> None:
        self.needed: dict[Table, set[Key]] = defaultdict(set)
        self.loaded: dict[Table, dict[Key, Row]] = defaultdict(dict)
        self.pending: dict[Table, dict[Key, Row]] = defaultdict(dict)

    def need(self, table: Table, key: Key) -> None:
        if key not in self.pending[table]:
            self.needed[table].add(key)

    def get(self, table: Table, key: Key) -> Row | None:
        row = self.pending[table].get(key)
        if row is not None:
            return row
        stored = self.loaded[table].get(key)
        return dict(stored) if stored is not None else None

    def put(self, table: Table, row: Row) -> None:
        self.pending[table][table.key_of(row)] = row

    def insert(self, table: Table, row: Row) -> None:
        self.pending[table].setdefault(table.key_of(row), row)

    def merge(self, table: Table, row: Row) -> None:
        key = table.key_of(row)
        before = self.pending[table].get(key)
        if before is None:
            self.pending[table][key] = row
        else:
            for column, value in row.items():
                if value is not None:
                    before[column] = value

    def changed(self) -> int:
        return sum(len(rows) for rows in self.pending.values())


# -- SQL ----------------------------------------------------------------------------------------


def _escaped(value: str) -> str:
    """A string literal's body under MySQL's default escaping: backslash and quote escaped,
    NUL and Ctrl-Z too (as the driver does); newlines may stay raw. Most values (ids, hashes)
    hold none of them and are returned as they are."""
    if "'" in value or "\\" in value:
        value = value.replace("\\", "\\\\").replace("'", "\\'")
    if "\x00" in value or "\x1a" in value:
        value = value.replace("\x00", "\\0").replace("\x1a", "\\Z")
    return value


def _doubled(value: str) -> str:
    """A string literal's body under NO_BACKSLASH_ESCAPES: quotes doubled, nothing else."""
    return value.replace("'", "''")


class Literals:
    """SQL literals for the session's escaping rules (NO_BACKSLASH_ESCAPES or not)."""

    def __init__(self, no_backslash_escapes: bool = False) -> None:
        self.escape = _doubled if no_backslash_escapes else _escaped

    @classmethod
    def of(cls, cursor) -> Literals:
        cursor.execute("SELECT @@SESSION.sql_mode")
        (mode,) = cursor.fetchone()
        mode = mode.decode() if isinstance(mode, bytes | bytearray) else str(mode or "")
        return cls("NO_BACKSLASH_ESCAPES" in mode.upper())

    def __call__(self, value: Any) -> str:
        kind = type(value)
        if kind is str:
            return "'" + self.escape(value) + "'"
        if value is None:
            return "NULL"
        if kind is int:
            return str(value)
        if kind is bool:
            return "1" if value else "0"
        if kind is datetime:
            return "'" + value.isoformat(" ", "microseconds") + "'"
        if isinstance(value, int | Decimal):
            return str(int(value)) if isinstance(value, int) else str(value)
        if isinstance(value, date):
            return "'" + value.isoformat() + "'"
        if isinstance(value, str):
            return self(str(value))
        if isinstance(value, bytes | bytearray):
            return "X'" + bytes(value).hex() + "'"
        raise TypeError(f"no SQL literal for {kind.__name__}")

    def row(self, table: Table, row: Row) -> str:
        """`(v1,v2,…)` of `row` in the table's column order (the common types inline)."""
        escape, out = self.escape, []
        for value in map(row.__getitem__, table.columns):
            kind = type(value)
            if kind is str:
                out.append("'" + escape(value) + "'")
            elif value is None:
                out.append("NULL")
            elif kind is int:
                out.append(str(value))
            elif kind is datetime:
                out.append("'" + value.isoformat(" ", "microseconds") + "'")
            else:
                out.append(self(value))
        return "(" + ",".join(out) + ")"


def lock_offsets(cursor, projection: str,
                 partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
    """This projection's stored positions of `partitions`, locked until the transaction ends
    (only those: instances of one group, on other partitions, do not wait for each other)."""
    wanted = sorted(set(partitions))
    if not wanted:
        return {}
    pairs = ", ".join(["(%s, %s)"] * len(wanted))
    sql = ("SELECT topic, `partition`, next_offset FROM projection_offsets"  # noqa: S608
           f" WHERE projection = %s AND (topic, `partition`) IN ({pairs}) FOR UPDATE")
    cursor.execute(sql, (projection, *[v for pair in wanted for v in pair]))
    return {(_text(topic), int(partition)): int(offset)
            for topic, partition, offset in cursor.fetchall()}


def save_offsets(cursor, literal: Literals, projection: str,
                 offsets: dict[tuple[str, int], int], now: datetime) -> None:
    rows = [{"projection": projection, "topic": topic, "partition": partition,
             "next_offset": offset, "updated_at": now}
            for (topic, partition), offset in sorted(offsets.items())]
    _insert(cursor, literal, OFFSETS, rows)


def load(cursor, literal: Literals, view: View) -> None:
    """Read every row the batch declared it needs (one query per table and key prefix)."""
    for table, keys in view.needed.items():
        keys = keys - view.loaded[table].keys()
        if not keys:
            continue
        groups: dict[Key, list[Any]] = defaultdict(list)
        for key in keys:
            groups[key[:-1]].append(key[-1])
        columns = ", ".join(f"`{c}`" for c in table.columns)
        prefix, last = table.key[:-1], table.key[-1]
        for head, tails in groups.items():
            where = " AND ".join(f"`{c}` = {literal(v)}" for c, v in zip(prefix, head,
                                                                         strict=True))
            for start in range(0, len(tails), 1000):
                members = ",".join(literal(v) for v in tails[start:start + 1000])
                cursor.execute(f"SELECT {columns} FROM `{table.name}` WHERE {where}"  # noqa: S608
                               f" AND `{last}` IN ({members})")  # values escaped by `literal`
                for values in cursor.fetchall():
                    row = dict(zip(table.columns, map(_plain, values), strict=True))
                    view.loaded[table][table.key_of(row)] = row
        view.needed[table] = set()


def write(cursor, literal: Literals, view: View) -> int:
    """Write every changed row; returns how many."""
    return write_pending(cursor, literal, view.pending)


def write_pending(cursor, literal: Literals, pending: dict[Table, dict[Key, Row]]) -> int:
    written = 0
    for table in ROWS:
        rows = pending.get(table)
        if rows:  # in key order: InnoDB fills its pages in order instead of splitting them
            _insert(cursor, literal, table, (rows[key] for key in sorted(rows)))
            written += len(rows)
    return written


def _insert(cursor, literal: Literals, table: Table, rows: Iterable[Row]) -> None:
    for statement in statements(literal, table, rows):
        cursor.execute(statement)


def statements(literal: Literals, table: Table, rows: Iterable[Row]) -> Iterator[str]:
    """Multi-row upserts of `rows` into `table`, each at most about MAX_STATEMENT bytes."""
    head = table.insert_prefix
    tail = " ON DUPLICATE KEY UPDATE " + table.on_duplicate
    values: list[str] = []
    size = 0
    for row in rows:
        text = literal.row(table, row)
        values.append(text)
        size += len(text) + 1
        if size >= MAX_STATEMENT:
            yield head + ",".join(values) + tail
            values, size = [], 0
    if values:
        yield head + ",".join(values) + tail


def _plain(value: Any) -> Any:
    if isinstance(value, bytearray | bytes):
        return value.decode()
    return value


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)


__all__ = ["Literals", "Mode", "View", "load", "lock_offsets", "save_offsets", "write"]
