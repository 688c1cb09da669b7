"""The MySQL projection on the real stack: sealed events through Kafka and the registry into
MariaDB, read back through the gateway's queries.

Each test has fresh topics standing for the projector's five (and a dead-letter topic), their
subjects registered under the fresh names, a fresh consumer group and a fresh database. The
projector runs in-process batch by batch; test_proj_mysql_process.py runs it as a process,
tests/reliability/test_projector_kill.py kills it.
"""

from __future__ import annotations

import dataclasses
import struct
import time
import uuid

import pytest
from confluent_kafka import Consumer

from omc_config import Settings
from omc_events import records as r
from omc_kafka.consumer import consumer_config
from omc_proj_mysql import queries
from omc_proj_mysql.apply import At
from omc_proj_mysql.projector import Item
from omc_store.mysql import connect
from tests.integration.test_proj_mysql_support import (
    OUTCOMES,
    SCHEMAS,
    History,
    Log,
    dump,
    fresh_database,
    new_id,
    offsets,
)
from tests.support.samples import sample

pytestmark = pytest.mark.integration

TASK_KEYS = ["task_id", "tenant", "agent_id", "status", "instruction", "chain_id",
             "submitted_at", "updated_at", "last_sequence", "last_event_type", "last_hash",
             "pending_action_id", "result", "failure", "tx_hashes"]
EVENT_KEYS = ["event_id", "sequence", "event_type", "occurred_at", "actor", "correlation_id",
              "causation_id", "prev_hash", "hash", "topic", "partition", "offset", "payload"]
AGENT_KEYS = ["agent_id", "tenant", "name", "description", "signer_address", "model", "status",
              "policy_version", "registered_at", "updated_at"]
TX_KEYS = ["request_id", "tenant", "task_id", "action_id", "chain_id", "sender", "to",
           "value_wei", "nonce", "tx_hash", "tx_hashes", "status", "block_number", "block_hash",
           "confirmations", "gas_used", "effective_gas_price_wei", "updated_at"]
RECEIPT_KEYS = ["tx_hash", "block_number", "block_hash", "gas_used", "effective_gas_price_wei",
                "status_ok", "contract_address", "confirmations"]
POLICY_KEYS = ["version", "allowed_chain_ids", "allowed_contracts", "allowed_selectors",
               "allowed_recipients", "deny_addresses", "max_value_wei", "budget_wei",
               "budget_window_seconds", "max_fee_per_gas_wei", "approval_threshold_wei",
               "max_inferences_per_task", "token_limits"]
STATUS_OF = {"completed": "completed", "failed": "failed", "cancelled": "cancelled",
             "waiting": "awaiting_approval", "replaced": "completed", "reorged": "completed",
             "tx_failed": "failed", "rejected": "failed"}


@pytest.fixture
def log(stack, settings: Settings, fresh_topic) -> Log:
    return Log.fresh(settings, fresh_topic)


@pytest.fixture
def database(stack, settings: Settings):
    with fresh_database(settings) as name:
        yield name


@pytest.fixture
def db(settings: Settings, database: str):
    connection = connect(settings, database)
    yield connection
    connection.close()


def project(log: Log, database: str, history: History, **options):
    log.send(history.records)
    projector = log.projector(database, **options)
    try:
        log.project(projector, database)
    finally:
        projector.close()
    return projector


def read(db, function, *args, **kwargs):
    """A query as the gateway runs it: on a connection that is rolled back afterwards."""
    try:
        return function(db, *args, **kwargs)
    finally:
        db.rollback()


# -- rows and queries -------------------------------------------------------------------------


def test_a_history_becomes_rows_that_the_queries_answer_with(settings, log, database,
                                                             db) -> None:
    history = History("world").world(16)
    project(log, database, history)

    tasks = read(db, queries.list_tasks, "acme", limit=200).items + \
        read(db, queries.list_tasks, "globex", limit=200).items
    by_id = {task["task_id"]: task for task in tasks}
    expected = {new_id("world", "task", ("acme", "globex")[(n // 2) % 2], n):
                STATUS_OF[OUTCOMES[n % len(OUTCOMES)]] for n in range(16)}

    assert {t: by_id[t]["status"] for t in expected} == expected
    assert all(list(task) == TASK_KEYS for task in tasks)
    completed = next(t for t in tasks if t["status"] == "completed")
    assert completed["result"]["summary"] == "paid 1 wei"
    assert completed["tx_hashes"] == completed["result"]["tx_hashes"]
    waiting = next(t for t in tasks if t["status"] == "awaiting_approval")
    assert waiting["pending_action_id"] == new_id(waiting["task_id"], "action", 1)
    refused = [t for t in tasks if (t["failure"] or {}).get("code") == "REJECTED:NOT_FOUND"]
    assert len(refused) == 2
    assert refused[0]["instruction"].startswith("task ")  # filled in from the command
    cancelled = next(t for t in tasks if t["status"] == "cancelled")
    assert cancelled["failure"]["cancelled_by"] == "key:abc"


def test_the_task_trail_is_every_event_of_its_chain_with_where_it_was_read(
        settings, log, database, db) -> None:
    history = History("trail").world(8)
    project(log, database, history)
    task_id = new_id("trail", "task", "acme", 0)  # completed: the longest chain
    chain = [e for e in history.records
             if e.meta.aggregate_id == task_id and e.meta.sequence > 0]

    page = read(db, queries.task_events, "acme", task_id)
    second = read(db, queries.task_events, "acme", task_id, after=3, limit=2)

    assert [e["sequence"] for e in page.items] == list(range(1, len(chain) + 1))
    assert [e["hash"] for e in page.items] == [e.meta.hash for e in chain]
    assert [e["prev_hash"] for e in page.items][1:] == [e.meta.hash for e in chain][:-1]
    assert all(list(e) == EVENT_KEYS for e in page.items)
    first = page.items[0]
    assert first["event_type"] == "omc.task.TaskSubmitted"
    assert first["topic"] == log.topics["task"]
    assert first["occurred_at"].endswith("Z")
    assert first["payload"]["instruction"] == "task 0: pay 1 wei"
    assert "meta" not in first["payload"]
    assert page.next_cursor is None
    assert [e["sequence"] for e in second.items] == [4, 5]
    assert second.next_cursor == "5"
    assert read(db, queries.task_events, "acme", "no-such-task") is None


def test_agents_policies_transactions_and_receipts(settings, log, database, db) -> None:
    history = History("tx").world(8)
    project(log, database, history)
    agents = read(db, queries.list_agents, "acme").items
    agent_id = new_id("tx", "agent", "acme", 0)
    replaced = new_id("tx", "task", "acme", 4)   # outcome "replaced" (tenant: (n % 4) // 2)

    policy = read(db, queries.get_policy, "acme", agent_id)
    agent = read(db, queries.get_agent, "acme", agent_id)
    txs = read(db, queries.list_transactions, "acme", task_id=replaced).items

    assert len(agents) == 2
    assert all(list(a) == AGENT_KEYS for a in agents)
    assert agent.item["status"] == "active"
    assert agent.item["policy_version"] == 2
    assert list(policy.item) == POLICY_KEYS
    assert policy.item["version"] == 2
    assert len(txs) == 1
    (tx,) = txs
    assert list(tx) == TX_KEYS
    assert tx["status"] == "confirmed"
    assert len(tx["tx_hashes"]) == 2
    assert tx["tx_hash"] == tx["tx_hashes"][1]
    by_old = read(db, queries.get_transaction, "acme", tx["tx_hashes"][0])
    assert by_old.item == tx
    receipt = read(db, queries.get_receipt, "acme", tx["tx_hashes"][0])
    assert list(receipt.item) == RECEIPT_KEYS
    assert receipt.item["tx_hash"] == tx["tx_hash"]
    assert receipt.item["status_ok"] is True
    assert receipt.item["confirmations"] == 3
    task = read(db, queries.get_task, "acme", replaced).item
    assert task["tx_hashes"] == tx["tx_hashes"]
    reorged = new_id("tx", "task", "acme", 5)  # outcome "reorged": included again in 1006
    (again,) = read(db, queries.list_transactions, "acme", task_id=reorged).items
    assert again["block_number"] == 1006
    assert again["status"] == "confirmed"
    assert read(db, queries.get_receipt, "acme", again["tx_hash"]).item[
        "block_number"] == 1006
    failed = read(db, queries.list_transactions, "acme", status="failed").items + \
        read(db, queries.list_transactions, "globex", status="failed").items
    assert [t["status"] for t in failed] == ["failed"]


def test_commands_make_rows_before_the_runtime_answers(settings, log, database, db) -> None:
    history = History("early")
    agent_id = new_id("early", "agent")
    policy = history.policy(1)
    history.make(r.RegisterAgent, "agent", agent_id, "acme", chained=False, agent_id=agent_id,
                 policy=policy, name="a", description="d",
                 signer_address="0x" + "ab" * 20, model="local-planner")
    task_id = new_id("early", "task")
    history.make(r.SubmitTask, "task", task_id, "acme", chained=False, task_id=task_id,
                 agent_id=agent_id, instruction="do it", chain_id=31337)
    project(log, database, history)

    task = read(db, queries.get_task, "acme", task_id).item
    agent = read(db, queries.get_agent, "acme", agent_id).item

    assert (task["status"], task["last_sequence"], task["instruction"]) == ("accepted", 0,
                                                                           "do it")
    assert agent["status"] == "registering"
    assert read(db, queries.get_policy, "acme", agent_id).item["version"] == 1
    assert read(db, queries.task_events, "acme", task_id).items == []


def test_any_text_comes_back_exactly_as_it_was_written(settings, log, database, db) -> None:
    nasty = "it's \\ \"x\"\n\r\x00\x1a\t 🚀 ünïcode '); DROP TABLE tasks; -- %s %(x)s"
    history = History("text")
    task_id = new_id("text", "task")
    history.make(r.SubmitTask, "task", task_id, "acme", chained=False, task_id=task_id,
                 agent_id=new_id("text", "agent"), instruction=nasty, chain_id=31337)
    history.make(r.TaskSubmitted, "task", task_id, "acme", task_id=task_id,
                 agent_id=new_id("text", "agent"), instruction=nasty, chain_id=31337,
                 submitted_by=nasty)
    project(log, database, history)

    task = read(db, queries.get_task, "acme", task_id).item
    (event,) = read(db, queries.task_events, "acme", task_id).items

    assert task["instruction"] == nasty
    assert event["payload"]["instruction"] == nasty
    assert event["payload"]["submitted_by"] == nasty


# -- pagination and tenants ------------------------------------------------------------------


def test_lists_are_newest_first_in_pages_with_opaque_cursors(settings, log, database,
                                                             db) -> None:
    history = History("pages").world(24, tenants=("acme",), agents_per_tenant=2)
    project(log, database, history)
    everything = read(db, queries.list_tasks, "acme", limit=200).items

    pages, cursor = [], None
    while True:
        page = read(db, queries.list_tasks, "acme", limit=5, cursor=cursor)
        pages.append(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break

    assert len(everything) == 24
    assert [t["submitted_at"] for t in everything] == sorted(
        (t["submitted_at"] for t in everything), reverse=True)
    assert [t for page in pages for t in page] == everything
    assert [len(page) for page in pages] == [5, 5, 5, 5, 4]
    completed = read(db, queries.list_tasks, "acme", status="completed", limit=2)
    assert all(t["status"] == "completed" for t in completed.items)
    assert completed.next_cursor is not None
    agent_id = everything[0]["agent_id"]
    assert len(read(db, queries.list_tasks, "acme", agent_id=agent_id, limit=200).items) == 12
    assert read(db, queries.list_tasks, "acme", agent_id="other").items == []
    with pytest.raises(queries.InvalidCursor):
        read(db, queries.list_tasks, "acme", cursor="not-a-cursor")
    agents_cursor = read(db, queries.list_agents, "acme", limit=1).next_cursor
    with pytest.raises(queries.InvalidCursor):
        read(db, queries.list_tasks, "acme", cursor=agents_cursor)


def test_another_tenants_rows_are_never_returned(settings, log, database, db) -> None:
    history = History("tenants").world(8)
    project(log, database, history)
    acme_task = new_id("tenants", "task", "acme", 0)
    acme_agent = new_id("tenants", "agent", "acme", 0)
    (acme_tx,) = read(db, queries.list_transactions, "acme", task_id=acme_task).items

    for other in ("globex", "ACME", "acme ", ""):
        assert read(db, queries.get_task, other, acme_task) is None
        assert read(db, queries.task_events, other, acme_task) is None
        assert read(db, queries.get_agent, other, acme_agent) is None
        assert read(db, queries.get_policy, other, acme_agent) is None
        assert read(db, queries.get_transaction, other, acme_tx["tx_hash"]) is None
        assert read(db, queries.get_receipt, other, acme_tx["tx_hash"]) is None
        assert read(db, queries.list_transactions, other, task_id=acme_task).items == []
        listed = read(db, queries.list_tasks, other, limit=200).items
        assert all(t["tenant"] == other for t in listed)
    assert {t["tenant"] for t in read(db, queries.list_tasks, "globex", limit=200).items} == \
        {"globex"}


# -- offsets, idempotence, poison -----------------------------------------------------------


def test_offsets_are_stored_with_the_rows_and_answered_as_of(settings, log, database,
                                                            db) -> None:
    history = History("offsets").world(8)
    project(log, database, history)
    ends = {key: high for key, high in log.watermarks().items() if high > 0}

    page = read(db, queries.list_tasks, "acme")

    assert offsets(settings, database) == ends
    assert page.as_of.to_json()["projection"] == "mysql"
    assert page.as_of.offsets == {f"{t}/{p}": o for (t, p), o in ends.items()}
    assert page.as_of.to_json()["updated_at"].endswith("Z")


def _batch(settings: Settings, log: Log, count: int) -> list[Item]:
    """The log's messages as one batch of items, read without a projector."""
    consumer = Consumer(consumer_config(settings, f"omc.test.{uuid.uuid4().hex}"))
    consumer.subscribe(list(log.names))
    items: list[Item] = []
    try:
        for _ in range(60):
            for message in consumer.consume(500, timeout=1):
                if message.error() is None:
                    items.append(Item(At(message.topic(), message.partition(),
                                         message.offset()),
                                      log.codec.decode(message.value()), message))
            if len(items) >= count:
                break
    finally:
        consumer.close()
    return sorted(items, key=lambda item: item.at)


def test_the_same_batch_twice_gives_the_same_rows(settings, log, database) -> None:
    history = History("twice").world(16)
    log.send(history.records)
    items = _batch(settings, log, len(history.records))
    projector = log.projector(database)
    try:
        first = projector.apply(items, check_moved=False)
        after_first = dump(settings, database)
        again = projector.apply(items, check_moved=False)
        after_again = dump(settings, database)
        connection = connect(settings, database)
        connection.cursor().execute("DELETE FROM projection_offsets")
        connection.commit()
        connection.close()
        without_offsets = projector.apply(items, check_moved=False)
        after_without = dump(settings, database)
    finally:
        projector.close()

    assert first.records == len(history.records)
    assert (again.records, again.skipped) == (0, len(items))
    assert without_offsets.records == len(items)  # applied again: the rows' guards hold
    assert after_again == after_first
    assert after_without == after_first


def test_poison_goes_to_the_dead_letter_topic_and_the_offsets_move_past_it(
        settings, log, database, db) -> None:
    history = History("poison").world(4)
    log.send(history.records[:10])
    log.send_raw("task", b"not avro at all", partition=0)
    log.send_raw("task", struct.pack(">bI", 0, 987654) + b"\x00", partition=1)
    log.send(history.records[10:])
    projector = log.projector(database)
    try:
        log.project(projector, database)
        dead = projector.metrics.dead_letters.labels("mysql", log.topics["task"])._value.get()
    finally:
        projector.close()

    letters = _read_dead_letters(settings, log, 2)
    assert sorted((d.origin_topic, d.origin_partition, d.error_type) for d in letters) == \
        sorted([(log.topics["task"], 0, "Undecodable"), (log.topics["task"], 1,
                                                         "UnknownSchema")])
    assert dead == 2
    assert offsets(settings, database) == {k: h for k, h in log.watermarks().items() if h}
    assert len(read(db, queries.list_tasks, "acme", limit=200).items) == 2


def _read_dead_letters(settings: Settings, log: Log, count: int) -> list:
    consumer = Consumer(consumer_config(settings, f"omc.test.{uuid.uuid4().hex}"))
    consumer.subscribe([log.dead])
    found = []
    try:
        for _ in range(30):
            found += [log.codec.decode(m.value()) for m in consumer.consume(10, timeout=1)
                      if m.error() is None]
            if len(found) >= count:
                break
    finally:
        consumer.close()
    return found


def test_unknown_types_are_counted_and_skipped_and_refused_rows_dead_lettered(
        settings, log, database, db) -> None:
    history = History("odd").world(2)
    unknown = sample(SCHEMAS.set, "omc.chain.BlockObserved")
    too_long = dataclasses.replace(history.records[1], meta=dataclasses.replace(
        history.records[1].meta, tenant="t" * 500))
    items = [Item(At(log.topics["task"], 0, i), record) for i, record in
             enumerate([unknown, too_long, *history.records[2:6]])]
    projector = log.projector(database)
    try:
        applied = projector.apply_safely(items)
        unknown_count = projector.metrics.unknown.labels(
            "mysql", "omc.chain.BlockObserved")._value.get()
        refused = projector.metrics.dead_letters.labels("mysql", log.topics["task"])._value.get()
    finally:
        projector.close()

    assert unknown_count == 1
    assert refused == 1
    assert applied.records == 4
    assert offsets(settings, database) == {(log.topics["task"], 0): 6}
    assert read(db, queries.list_agents, "t" * 500).items == []
    assert len(read(db, queries.list_agents, "acme").items) == 2


def test_the_lag_is_measured(settings, log, database) -> None:
    history = History("lag").world(4)
    log.send(history.records)
    projector = log.projector(database, batch_size=5)
    try:
        projector.step()
        while not projector.assigned:
            projector.step()
        projector.update_lag(every=0)
        waiting = sum(sample.value for metric in projector.metrics.lag_messages.collect()
                      for sample in metric.samples)
        log.project(projector, database)
        projector.update_lag(every=0)
        after = sum(sample.value for metric in projector.metrics.lag_messages.collect()
                    for sample in metric.samples)
        seconds = projector.metrics.lag_seconds.labels("mysql")._value.get()
    finally:
        projector.close()

    assert waiting > 0
    assert (after, seconds) == (0, 0)


def test_two_instances_of_one_group_share_the_partitions(settings, log, database) -> None:
    group = f"omc.test.proj.mysql.{uuid.uuid4().hex[:8]}"
    first, second = log.projector(database, group=group), log.projector(database, group=group)
    try:
        deadline = time.monotonic() + 120
        while not (first.assigned and second.assigned and
                   len(first.assigned | second.assigned) == 11):
            assert time.monotonic() < deadline, "the group did not settle"
            first.step()
            second.step()
        log.send(History("pair").world(24).records)
        wanted = {key: high for key, high in log.watermarks().items() if high}
        while offsets(settings, database) != wanted:
            assert time.monotonic() < deadline, "the pair did not finish"
            first.step()
            second.step()
        shares = (set(first.assigned), set(second.assigned))
    finally:
        first.close()
        second.close()
    together = dump(settings, database)

    with fresh_database(settings) as alone:
        project(log, alone, History("unused"))
        assert dump(settings, alone) == together
    assert shares[0]
    assert shares[1]
    assert not shares[0] & shares[1]
