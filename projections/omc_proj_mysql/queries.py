"""The read side of the MySQL projection: the only way the gateway reads it.

Every function is synchronous, takes a DB-API connection (mysql.connector) first and the
caller's tenant second, and returns JSON-ready items with exactly the fields of docs/api.md
("Items"). Rows of another tenant are never returned: every statement filters on the tenant,
which leads every key. Each answer carries `as_of`, the projection's position (next offset per
partition) read in the same transaction as the rows, so under REPEATABLE READ both come from
one snapshot. The caller ends the transaction (the gateway's pool rolls back after each use).

Lists are newest first with keyset pagination: `next_cursor` is opaque (base64url of the last
item's sort key) and is refused with `InvalidCursor` when it was not made by the same list.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from omc_errors import OmcError
from omc_proj_mysql.convert import rfc3339

PROJECTION = "mysql"
MAX_LIMIT = 1000

__all__ = ["AsOf", "InvalidCursor", "One", "Page", "as_of", "get_agent", "get_policy",
           "get_receipt", "get_task", "get_transaction", "list_agents", "list_tasks",
           "list_transactions", "task_events"]


class InvalidCursor(OmcError):
    """A cursor that this list did not hand out (or that was altered)."""


@dataclass(frozen=True)
class AsOf:
    """Where the projection stood when it answered: the next offset to apply per partition
    (`"<topic>/<partition>"`), and when it last moved."""

    projection: str
    offsets: dict[str, int]
    updated_at: datetime | None

    def to_json(self) -> dict:
        return {"projection": self.projection, "offsets": dict(self.offsets),
                "updated_at": rfc3339(self.updated_at)}


@dataclass(frozen=True)
class Page:
    items: list[dict]
    next_cursor: str | None
    as_of: AsOf


@dataclass(frozen=True)
class One:
    item: dict
    as_of: AsOf


# -- position -----------------------------------------------------------------------------------


def as_of(conn, projection: str = PROJECTION) -> AsOf:
    """The projection's position."""
    rows = _all(conn, "SELECT topic, `partition`, next_offset, updated_at FROM "
                      "projection_offsets WHERE projection = %s ORDER BY topic, `partition`",
                (projection,))
    offsets = {f"{topic}/{partition}": int(offset) for topic, partition, offset, _ in rows}
    updated = max((row[3] for row in rows), default=None)
    return AsOf(projection, offsets, updated)


# -- tasks ------------------------------------------------------------------------------------

_TASK_COLUMNS = ("task_id", "tenant", "agent_id", "status", "instruction", "chain_id",
                 "submitted_at", "updated_at", "last_sequence", "last_event_type", "last_hash",
                 "pending_action_id", "result", "failure", "tx_hashes")


def list_tasks(conn, tenant: str, *, status: str | None = None, agent_id: str | None = None,
               limit: int = 50, cursor: str | None = None) -> Page:
    """The tenant's tasks, newest submitted first, optionally of one status or agent."""
    _check_limit(limit)
    where, params = ["tenant = %s"], [tenant]
    if status is not None:
        where.append("status = %s")
        params.append(status)
    if agent_id is not None:
        where.append("agent_id = %s")
        params.append(agent_id)
    position = as_of(conn)
    rows = _page_rows(conn, "tasks", _TASK_COLUMNS, where, params, "submitted_at", "task_id",
                      "tasks", cursor, limit)
    items = _task_items(conn, tenant, rows[:limit])
    return Page(items, _next(rows, limit, "tasks", "submitted_at", "task_id"), position)


def get_task(conn, tenant: str, task_id: str) -> One | None:
    position = as_of(conn)
    rows = _dicts(conn, f"SELECT {_cols(_TASK_COLUMNS)} FROM tasks "  # noqa: S608
                        "WHERE tenant = %s AND task_id = %s", (tenant, task_id), _TASK_COLUMNS)
    if not rows:
        return None
    return One(_task_items(conn, tenant, rows)[0], position)


def _task_items(conn, tenant: str, rows: list[dict]) -> list[dict]:
    sent = _task_tx_hashes(conn, tenant, [row["task_id"] for row in rows])
    items = []
    for row in rows:
        hashes = list(sent.get(row["task_id"], []))
        hashes += [h for h in json.loads(row["tx_hashes"]) if h not in hashes]
        items.append({
            "task_id": row["task_id"], "tenant": row["tenant"], "agent_id": row["agent_id"],
            "status": row["status"], "instruction": row["instruction"],
            "chain_id": row["chain_id"], "submitted_at": rfc3339(row["submitted_at"]),
            "updated_at": rfc3339(row["updated_at"]), "last_sequence": row["last_sequence"],
            "last_event_type": row["last_event_type"], "last_hash": row["last_hash"],
            "pending_action_id": row["pending_action_id"],
            "result": _json(row["result"]), "failure": _json(row["failure"]),
            "tx_hashes": hashes,
        })
    return items


def _task_tx_hashes(conn, tenant: str, task_ids: Sequence[str]) -> dict[str, list[str]]:
    """Every hash the tasks' transactions were signed under, in the order they were made."""
    if not task_ids:
        return {}
    marks = ", ".join(["%s"] * len(task_ids))
    sql = ("SELECT t.task_id, h.tx_hash FROM transactions t JOIN tx_hashes h"  # noqa: S608
           " ON h.tenant = t.tenant AND h.request_id = t.request_id"
           f" WHERE t.tenant = %s AND t.task_id IN ({marks})"
           " ORDER BY t.requested_at, t.request_id, h.signed_sequence IS NULL,"
           " h.signed_sequence, h.tx_hash")
    rows = _all(conn, sql, (tenant, *task_ids))
    found: dict[str, list[str]] = {}
    for task_id, tx_hash in rows:
        found.setdefault(task_id, []).append(tx_hash)
    return found


_EVENT_COLUMNS = ("event_id", "sequence", "event_type", "occurred_at", "actor",
                  "correlation_id", "causation_id", "prev_hash", "hash", "topic", "partition",
                  "offset", "payload")


def task_events(conn, tenant: str, task_id: str, *, after: int = 0,
                limit: int = 500) -> Page | None:
    """The task's trail in sequence order, after sequence `after`; None when the tenant has
    no such task. `next_cursor` is the last sequence given (pass it as `after`) while more
    follow."""
    _check_limit(limit)
    position = as_of(conn)
    if not _all(conn, "SELECT 1 FROM tasks WHERE tenant = %s AND task_id = %s",
                (tenant, task_id)):
        return None
    rows = _dicts(conn, f"SELECT {_cols(_EVENT_COLUMNS)} FROM task_events "  # noqa: S608
                        "WHERE tenant = %s AND task_id = %s AND sequence > %s "
                        "ORDER BY sequence, event_id LIMIT %s",
                  (tenant, task_id, int(after), limit + 1), _EVENT_COLUMNS)
    items = [{**row, "occurred_at": rfc3339(row["occurred_at"]),
              "payload": json.loads(row["payload"])} for row in rows[:limit]]
    more = len(rows) > limit
    return Page(items, str(items[-1]["sequence"]) if more else None, position)


# -- agents ------------------------------------------------------------------------------------

_AGENT_COLUMNS = ("agent_id", "tenant", "name", "description", "signer_address", "model",
                  "status", "policy_version", "registered_at", "updated_at")


def list_agents(conn, tenant: str, *, limit: int = 50, cursor: str | None = None) -> Page:
    """The tenant's agents, newest registered first."""
    _check_limit(limit)
    position = as_of(conn)
    rows = _page_rows(conn, "agents", _AGENT_COLUMNS, ["tenant = %s"], [tenant],
                      "registered_at", "agent_id", "agents", cursor, limit)
    return Page([_agent_item(row) for row in rows[:limit]],
                _next(rows, limit, "agents", "registered_at", "agent_id"), position)


def get_agent(conn, tenant: str, agent_id: str) -> One | None:
    position = as_of(conn)
    rows = _dicts(conn, f"SELECT {_cols(_AGENT_COLUMNS)} FROM agents "  # noqa: S608
                        "WHERE tenant = %s AND agent_id = %s", (tenant, agent_id),
                  _AGENT_COLUMNS)
    return One(_agent_item(rows[0]), position) if rows else None


def _agent_item(row: dict) -> dict:
    return {**row, "registered_at": rfc3339(row["registered_at"]),
            "updated_at": rfc3339(row["updated_at"])}


def get_policy(conn, tenant: str, agent_id: str) -> One | None:
    """The agent's current policy (`omc.agent.Policy`); for an agent still `registering`,
    the policy its RegisterAgent asked for."""
    position = as_of(conn)
    rows = _all(conn, "SELECT policy FROM policies WHERE tenant = %s AND agent_id = %s",
                (tenant, agent_id))
    if not rows:
        rows = _all(conn, "SELECT requested_policy FROM agents WHERE tenant = %s AND "
                          "agent_id = %s AND status = 'registering' AND requested_policy "
                          "IS NOT NULL", (tenant, agent_id))
    return One(json.loads(rows[0][0]), position) if rows else None


# -- transactions ----------------------------------------------------------------------------

_TX_COLUMNS = ("request_id", "tenant", "task_id", "action_id", "chain_id", "sender", "to",
               "value_wei", "nonce", "tx_hash", "status", "block_number", "block_hash",
               "confirmations", "gas_used", "effective_gas_price_wei", "updated_at")


def list_transactions(conn, tenant: str, *, task_id: str | None = None,
                      status: str | None = None, limit: int = 50,
                      cursor: str | None = None) -> Page:
    """The tenant's transaction requests, newest first, optionally of one task or status."""
    _check_limit(limit)
    where, params = ["tenant = %s"], [tenant]
    if task_id is not None:
        where.append("task_id = %s")
        params.append(task_id)
    if status is not None:
        where.append("status = %s")
        params.append(status)
    position = as_of(conn)
    rows = _page_rows(conn, "transactions", (*_TX_COLUMNS, "requested_at"), where, params,
                      "requested_at", "request_id", "transactions", cursor, limit)
    items = _tx_items(conn, tenant, rows[:limit])
    return Page(items, _next(rows, limit, "transactions", "requested_at", "request_id"),
                position)


def get_transaction(conn, tenant: str, tx_hash: str) -> One | None:
    """The transaction signed under `tx_hash`, whichever of its hashes (replacements
    included) it is."""
    position = as_of(conn)
    request_id = _request_of(conn, tenant, tx_hash)
    if request_id is None:
        return None
    rows = _dicts(conn, f"SELECT {_cols(_TX_COLUMNS)} FROM transactions "  # noqa: S608
                        "WHERE tenant = %s AND request_id = %s", (tenant, request_id),
                  _TX_COLUMNS)
    return One(_tx_items(conn, tenant, rows)[0], position) if rows else None


def _request_of(conn, tenant: str, tx_hash: str) -> str | None:
    tx_hash = tx_hash.lower()
    rows = _all(conn, "SELECT request_id FROM tx_hashes WHERE tenant = %s AND tx_hash = %s",
                (tenant, tx_hash)) or \
        _all(conn, "SELECT request_id FROM transactions WHERE tenant = %s AND tx_hash = %s "
                   "LIMIT 1", (tenant, tx_hash))
    return rows[0][0] if rows else None


def _tx_items(conn, tenant: str, rows: list[dict]) -> list[dict]:
    hashes: dict[str, list[str]] = {}
    if rows:
        marks = ", ".join(["%s"] * len(rows))
        sql = ("SELECT request_id, tx_hash FROM tx_hashes WHERE tenant = %s AND "  # noqa: S608
               f"request_id IN ({marks}) ORDER BY signed_sequence IS NULL, signed_sequence, "
               "tx_hash")
        for request_id, tx_hash in _all(conn, sql, (tenant, *[r["request_id"] for r in rows])):
            hashes.setdefault(request_id, []).append(tx_hash)
    items = []
    for row in rows:
        item = {c: row[c] for c in _TX_COLUMNS}
        known = hashes.get(row["request_id"], [])
        if row["tx_hash"] and row["tx_hash"] not in known:
            known = [*known, row["tx_hash"]]
        item["tx_hashes"] = known
        item["updated_at"] = rfc3339(row["updated_at"])
        items.append({c: item[c] for c in (*_TX_COLUMNS[:10], "tx_hashes", *_TX_COLUMNS[10:])})
    return items


_RECEIPT_COLUMNS = ("tx_hash", "block_number", "block_hash", "gas_used",
                    "effective_gas_price_wei", "status_ok", "contract_address", "confirmations")


def get_receipt(conn, tenant: str, tx_hash: str) -> One | None:
    """The receipt of the transaction signed under `tx_hash` (any of its hashes): the one in
    the canonical chain; None while it is not included (or after a reorg took it away)."""
    position = as_of(conn)
    request_id = _request_of(conn, tenant, tx_hash)
    if request_id is None:
        return None
    rows = _dicts(conn, f"SELECT {_cols(_RECEIPT_COLUMNS)} FROM receipts "  # noqa: S608
                        "WHERE tenant = %s AND request_id = %s AND canonical = 1 "
                        "ORDER BY block_number DESC, tx_hash LIMIT 1", (tenant, request_id),
                  _RECEIPT_COLUMNS)
    if not rows:
        return None
    return One({**rows[0], "status_ok": bool(rows[0]["status_ok"])}, position)


# -- helpers -------------------------------------------------------------------------------


def _check_limit(limit: int) -> None:
    if not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be an integer from 1 to {MAX_LIMIT}, not {limit!r}")


def _cols(columns: Sequence[str]) -> str:
    return ", ".join(f"`{c}`" for c in columns)


def _all(conn, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
    cursor = conn.cursor()
    try:
        cursor.execute(sql, tuple(params))
        return [tuple(_text(v) for v in row) for row in cursor.fetchall()]
    finally:
        cursor.close()


def _dicts(conn, sql: str, params: Sequence[Any], columns: Sequence[str]) -> list[dict]:
    return [dict(zip(columns, row, strict=True)) for row in _all(conn, sql, params)]


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes | bytearray) else value


def _json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _page_rows(conn, table: str, columns: Sequence[str], where: list[str], params: list,
               time_column: str, id_column: str, kind: str, cursor: str | None,
               limit: int) -> list[dict]:
    """Up to limit + 1 rows (one more tells whether a next page exists), newest first."""
    if cursor is not None:
        moment, last_id = _decode_cursor(cursor, kind)
        where = [*where, f"(`{time_column}` < %s OR (`{time_column}` = %s AND "
                         f"`{id_column}` < %s))"]
        params = [*params, moment, moment, last_id]
    selected = list(dict.fromkeys([*columns, time_column, id_column]))
    return _dicts(conn, f"SELECT {_cols(selected)} FROM `{table}` "  # noqa: S608
                        f"WHERE {' AND '.join(where)} "
                        f"ORDER BY `{time_column}` DESC, `{id_column}` DESC LIMIT %s",
                  (*params, limit + 1), selected)


def _next(rows: list[dict], limit: int, kind: str, time_column: str,
          id_column: str) -> str | None:
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    return _encode_cursor(kind, last[time_column], last[id_column])


def _encode_cursor(kind: str, moment: datetime, last_id: str) -> str:
    text = json.dumps([kind, moment.isoformat(timespec="microseconds"), last_id],
                      separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, kind: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        found_kind, moment, last_id = json.loads(raw)
        if found_kind != kind or not isinstance(last_id, str):
            raise ValueError(found_kind)
        return datetime.fromisoformat(moment), last_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as error:
        raise InvalidCursor(f"not a cursor of this list of {kind}") from error
