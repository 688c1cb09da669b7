"""The MySQL projection without a database: the tables match their DDL, the `apply` functions
fold a history into the right rows whatever the interleaving of topics, duplicates change
nothing, SQL literals are escaped, cursors are opaque and checked, settings are validated."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime

import pytest

from omc_errors import ConfigError
from omc_events import records as r
from omc_proj_mysql import queries
from omc_proj_mysql.__main__ import Options
from omc_proj_mysql.apply import HANDLERS, At
from omc_proj_mysql.convert import payload, payload_json, rfc3339, to_json, utc
from omc_proj_mysql.migrations import DIRECTORY, migrations
from omc_proj_mysql.store import Literals, View
from omc_proj_mysql.tables import ALL, ROWS, TASK_EVENTS, TASKS, TRANSACTIONS, Mode, Table
from tests.integration.test_proj_mysql_support import (
    CHAIN_ID,
    OUTCOMES,
    History,
    address,
    new_id,
    role_of,
    tx_hash,
)


class Memory:
    """The database as the store writes it (FOLD rows guarded, INSERT first wins, MERGE
    fills blanks), batch by batch, to check `apply` alone."""

    def __init__(self) -> None:
        self.rows: dict[Table, dict[tuple, dict]] = {table: {} for table in ROWS}

    def batch(self, items: list[tuple[At, r.Record]]) -> None:
        view = View()
        for _, record in items:
            for table, key in HANDLERS[record.SCHEMA].loads(record):
                view.need(table, key)
        for table, keys in view.needed.items():
            view.loaded[table] = {k: dict(self.rows[table][k]) for k in keys
                                  if k in self.rows[table]}
        for at, record in items:
            HANDLERS[record.SCHEMA].apply(view, record, at)
        for table, rows in view.pending.items():
            stored = self.rows[table]
            for key, row in rows.items():
                before = stored.get(key)
                if before is None:
                    stored[key] = dict(row)
                elif table.mode is Mode.MERGE:
                    stored[key] = {c: row[c] if row[c] is not None else before[c]
                                   for c in table.columns}
                elif table.mode is Mode.FOLD and row[table.guard] >= before[table.guard]:
                    stored[key] = dict(row)

    def snapshot(self) -> dict[str, dict]:
        return {table.name: dict(rows) for table, rows in self.rows.items()}


def positioned(history: History) -> list[tuple[At, r.Record]]:
    """Each record at a fixed position: its topic by role, partition by aggregate."""
    counters: dict[tuple[str, int], int] = {}
    items = []
    for record in history.records:
        role = role_of(record)
        partition = hash(record.meta.aggregate_id) % 2 if role != "proof" else 0
        offset = counters.get((role, partition), 0)
        counters[(role, partition)] = offset + 1
        items.append((At(role, partition, offset), record))
    return items


def fold(items: list[tuple[At, r.Record]], batch: int = 7) -> dict[str, dict]:
    memory = Memory()
    for start in range(0, len(items), batch):
        memory.batch(items[start:start + batch])
    return memory.snapshot()


# -- the tables --------------------------------------------------------------------------------


def test_every_table_matches_its_ddl() -> None:
    ddl = DIRECTORY.joinpath("V001__read_model.sql").read_text()
    found = {}
    for name, body in re.findall(r"CREATE TABLE IF NOT EXISTS (\w+) \((.*?)\n\) ENGINE", ddl,
                                 re.S):
        lines = [line.strip() for line in body.strip().splitlines()]
        columns = tuple(line.split()[0].strip("`") for line in lines
                        if not line.startswith(("PRIMARY KEY", "KEY")))
        (key,) = [line for line in lines if line.startswith("PRIMARY KEY")]
        found[name] = (columns, tuple(c.strip("` ") for c in key[13:-1].rstrip(",)").split(",")))
    for migration in sorted(DIRECTORY.glob("V*__*.sql"))[1:]:  # later ones only add columns
        for table, added in re.findall(r"ALTER TABLE (\w+)\s+(.*?);", migration.read_text(),
                                       re.S):
            columns, key = found[table]
            found[table] = (columns + tuple(re.findall(r"ADD COLUMN (\w+)", added)), key)

    assert found == {table.name: (table.columns, table.key) for table in ALL}
    assert [m.version for m in migrations()] == [1, 2]
    assert "utf8mb4_nopad_bin" in ddl


def test_the_guard_is_compared_first_and_updated_last() -> None:
    clause = TASKS.on_duplicate

    assert clause.endswith("`last_sequence` = GREATEST(`last_sequence`, VALUES(`last_sequence`))")
    assert clause.count("IF(VALUES(`last_sequence`) >= `last_sequence`") == \
        len(TASKS.columns) - len(TASKS.key) - 1
    assert TASK_EVENTS.on_duplicate == "`tenant` = `tenant`"


# -- apply ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world() -> History:
    return History("unit").world(16)


def test_every_outcome_has_its_status(world: History) -> None:
    rows = fold(positioned(world))
    tasks = rows["tasks"]

    for n in range(16):
        tenant = ("acme", "globex")[(n % 4) // 2]
        task = tasks[(tenant, new_id("unit", "task", tenant, n))]
        outcome = OUTCOMES[n % len(OUTCOMES)]
        assert task["status"] == {"waiting": "awaiting_approval", "replaced": "completed",
                                  "reorged": "completed", "tx_failed": "failed",
                                  "rejected": "failed"}.get(outcome, outcome), outcome
    assert {a["status"] for a in rows["agents"].values()} == {"active"}
    assert {a["policy_version"] for a in rows["agents"].values()} == {2}
    assert sorted(b["status"] for b in rows["budgets"].values()) == \
        ["released"] * 2 + ["reserved"] * 6
    assert sorted(t["status"] for t in rows["transactions"].values()) == \
        ["confirmed"] * 6 + ["failed"] * 2
    assert {a["status"] for a in rows["anchors"].values()} == {"confirmed"}
    assert sum(1 for h in rows["tx_hashes"].values() if h["replaced_by"]) == 2
    assert sum(1 for x in rows["receipts"].values() if x["canonical"]) == 6


@pytest.mark.parametrize("seed", range(8))
def test_any_interleaving_of_topics_gives_the_same_rows(world: History, seed: int) -> None:
    items = positioned(world)
    by_partition: dict[tuple[str, int], list] = {}
    for item in items:
        by_partition.setdefault(item[0][:2], []).append(item)
    rng = random.Random(seed)
    shuffled = []
    queues = [list(q) for q in by_partition.values()]
    while queues:  # a random merge that keeps each partition's order
        queue = rng.choice(queues)
        shuffled.append(queue.pop(0))
        if not queue:
            queues.remove(queue)

    assert fold(shuffled, batch=rng.randint(1, 50)) == fold(items)


def test_duplicates_change_nothing(world: History) -> None:
    items = positioned(world)
    rng = random.Random(1)
    doubled = []
    for i, item in enumerate(items):
        doubled.append(item)
        if rng.random() < 0.3:  # at-least-once: a message again, later, at a new offset
            doubled.append((At(item[0].topic, item[0].partition, 10_000 + i), item[1]))

    assert fold(doubled) == fold(items)
    assert fold(items + items) == fold(items)


def test_a_refused_submit_task_fails_the_task_whichever_topic_comes_first() -> None:
    history = History("refused")
    history.task("acme", new_id("agent"), 0, "rejected")
    command, refusal = positioned(history)

    for order in ([command, refusal], [refusal, command]):
        task = next(iter(fold(order, batch=1)["tasks"].values()))
        assert task["status"] == "failed"
        assert task["instruction"] == "task 0: pay 1 wei"
        assert task["failure"] == '{"code":"REJECTED:NOT_FOUND","reason":"no such agent"}'
    assert fold([command, refusal], 1) == fold([refusal, command], 1)


def test_a_final_status_stays_final_and_unchained_messages_are_not_in_the_trail() -> None:
    history = History("final")
    task_id = history.task("acme", new_id("agent"), 2, "cancelled")
    late = history.make(r.InferenceRequested, "task", task_id, "acme", task_id=task_id,
                        inference_id=new_id("late"), step=9)
    loose = history.make(r.CommandRejected, "task", task_id, "acme", chained=False,
                         rejected_command_id=new_id("x"),
                         rejected_command_type=r.CancelTask.SCHEMA,
                         code=r.RejectionCode.INVALID_STATE, reason="finished")

    rows = fold(positioned(history))
    task = rows["tasks"][("acme", task_id)]

    assert task["status"] == "cancelled"
    assert task["last_sequence"] == late.meta.sequence
    assert len(rows["task_events"]) == late.meta.sequence
    assert loose.meta.sequence == 0


def a_request_stuck_at_its_cap(history: History) -> tuple[str, str, object, object]:
    """A transfer signed and broadcast, then given up at REPLACEMENT_CAP; (request id, tx hash,
    a tx-manager event maker, a watcher event maker)."""
    signer = address("cap", "signer")
    account, request_id, first = f"{CHAIN_ID}:{signer}", new_id("cap", "request"), \
        tx_hash("cap", 1)

    def tx_event(kind, **fields):
        return history.make(kind, "account", account, "acme", actor="svc:tx-manager",
                            request_id=request_id, **fields)

    def receipt_event(kind, **fields):
        return history.make(kind, "receipts", account, "acme", actor="svc:chain-watcher",
                            request_id=request_id, **fields)

    history.make(r.TxRequested, "account", account, "acme", chained=False,
                 request_id=request_id, task_id=None, action_id=None,
                 purpose=r.TxPurpose.ACTION, chain_id=CHAIN_ID, sender=signer,
                 to=address("cap", "to"), value_wei="1", data="0x")
    tx_event(r.TxSigned, chain_id=CHAIN_ID, sender=signer, nonce=0, tx_hash=first,
             replaces_tx_hash=None)
    tx_event(r.TxBroadcast, tx_hash=first, attempt=1, already_known=False)
    return request_id, first, tx_event, receipt_event


def test_a_confirmation_after_the_replacement_cap_wins_in_either_order() -> None:
    for cap_first in (True, False):
        history = History(f"cap-{cap_first}")
        request_id, first, tx_event, receipt_event = a_request_stuck_at_its_cap(history)
        block = {"block_number": 9, "block_hash": tx_hash("block", 9)}
        if cap_first:
            tx_event(r.TxFailed, tx_hash=first, nonce=0, code=r.TxFailureCode.REPLACEMENT_CAP,
                     detail="stuck at the cap")
        receipt_event(r.TxIncluded, tx_hash=first, transaction_index=0, gas_used=21000,
                      effective_gas_price_wei="1", status_ok=True, contract_address=None,
                      **block)
        receipt_event(r.TxConfirmed, tx_hash=first, confirmations=2, **block)
        if not cap_first:  # written by a tx manager that had not seen the receipt yet
            tx_event(r.TxFailed, tx_hash=first, nonce=0, code=r.TxFailureCode.REPLACEMENT_CAP,
                     detail="stuck at the cap")

        for batch in (1, 50):
            tx = fold(positioned(history), batch)["transactions"][("acme", request_id)]
            assert (tx["status"], tx["failure_code"], tx["failure_detail"], tx["tx_hash"],
                    tx["block_number"]) == ("confirmed", None, None, first, 9), cap_first


def test_a_cancelled_request_says_so() -> None:
    history = History("cancelled")
    request_id, first, tx_event, _ = a_request_stuck_at_its_cap(history)
    tx_event(r.TxFailed, tx_hash=first, nonce=0, code=r.TxFailureCode.CANCELLED,
             detail="cancelled by request x")

    tx = fold(positioned(history))["transactions"][("acme", request_id)]
    assert (tx["status"], tx["failure_code"]) == ("failed", "CANCELLED")


def test_the_payload_is_the_record_without_its_envelope(world: History) -> None:
    proposed = next(e for e in world.records if e.SCHEMA == "omc.task.ActionProposed")

    body = payload(proposed)

    assert "meta" not in body
    assert body["action"]["kind"] == str(proposed.action.kind)
    assert list(body) == ["task_id", "inference_id", "action"]
    assert to_json(body).startswith('{"task_id":"')


# -- values ---------------------------------------------------------------------------------


def test_sql_literals() -> None:
    literal = Literals()
    when = datetime(2026, 11, 25, 12, 0, 0, 5)

    assert literal("it's \\ \"x\"\n\r\x00\x1a") == "'it\\'s \\\\ \"x\"\n\r\\0\\Z'"
    assert Literals(no_backslash_escapes=True)("it's \\") == "'it''s \\'"
    assert literal(None) == "NULL"
    assert (literal(True), literal(False), literal(42)) == ("1", "0", "42")
    assert literal(when) == "'2026-11-25 12:00:00.000005'"
    assert literal(b"\x01\xff") == "X'01ff'"
    assert literal(r.TxPurpose.ACTION) == "'ACTION'"
    with pytest.raises(TypeError):
        literal(1.5)


def test_times() -> None:
    aware = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

    assert utc(aware) == datetime(2026, 11, 25, 12, 0)
    assert rfc3339(aware) == rfc3339(utc(aware)) == "2026-11-25T12:00:00.000000Z"
    assert rfc3339(None) is None


# -- queries --------------------------------------------------------------------------------


def test_cursors_are_opaque_and_belong_to_one_list() -> None:
    moment = datetime(2026, 11, 25, 12, 0, 0, 123)
    cursor = queries._encode_cursor("tasks", moment, "id-1")

    assert queries._decode_cursor(cursor, "tasks") == (moment, "id-1")
    assert "id-1" not in cursor
    for bad in ("", "!!!", "bm90IGpzb24", cursor[:-3], queries._encode_cursor("agents", moment,
                                                                              "id-1")):
        with pytest.raises(queries.InvalidCursor):
            queries._decode_cursor(bad, "tasks")


def test_as_of_as_json() -> None:
    as_of = queries.AsOf("mysql", {"omc.task.events.v1/0": 41},
                         datetime(2026, 11, 25, 12, 0))

    assert as_of.to_json() == {"projection": "mysql", "offsets": {"omc.task.events.v1/0": 41},
                               "updated_at": "2026-11-25T12:00:00.000000Z"}
    assert queries.AsOf("mysql", {}, None).to_json()["updated_at"] is None


@pytest.mark.parametrize("limit", [0, -1, 1001, "5"])
def test_a_limit_out_of_range_is_refused(limit) -> None:
    with pytest.raises(ValueError, match="limit"):
        queries.list_tasks(None, "acme", limit=limit)


def test_the_transaction_item_has_the_documented_order() -> None:
    assert "to" in TRANSACTIONS.columns
    assert (*queries._TX_COLUMNS[:10], "tx_hashes", *queries._TX_COLUMNS[10:]) == (
        "request_id", "tenant", "task_id", "action_id", "chain_id", "sender", "to",
        "value_wei", "nonce", "tx_hash", "tx_hashes", "status", "block_number", "block_hash",
        "confirmations", "gas_used", "effective_gas_price_wei", "updated_at")


# -- settings ------------------------------------------------------------------------------


def test_options_default_to_the_catalogue() -> None:
    options = Options.from_env({})

    assert options.metrics_port == 18091
    assert options.topics == ("omc.commands.v1", "omc.task.events.v1", "omc.agent.events.v1",
                              "omc.tx.events.v1", "omc.proof.events.v1")
    assert options.instance_id is None


def test_every_bad_option_is_named() -> None:
    with pytest.raises(ConfigError) as raised:
        Options.from_env({"OMC_PROJ_MYSQL_METRICS_PORT": "0", "OMC_PROJ_MYSQL_BATCH": "x",
                          "OMC_PROJ_MYSQL_TOPICS": "ok,no way", "OMC_MYSQL_PORT": "port"})

    problems = "\n".join(raised.value.problems)
    for name in ("OMC_PROJ_MYSQL_METRICS_PORT", "OMC_PROJ_MYSQL_BATCH",
                 "OMC_PROJ_MYSQL_TOPICS", "OMC_MYSQL_PORT"):
        assert name in problems


def test_the_fast_payload_is_the_plain_one(world: History) -> None:
    for record in world.records:
        assert payload_json(record) == to_json(payload(record))
