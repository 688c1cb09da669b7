"""The Redis projection's pure parts: the task-event item, the status machine, key names,
settings, and the XREAD reply shapes. No Redis, no Kafka."""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
from datetime import UTC, datetime

import pytest

from omc_errors import ConfigError
from omc_events.avro import Schemas
from omc_events.chain import seal, seal_command
from omc_events.envelope import ChainHead
from omc_events.record import Record
from omc_proj_redis import queries, view
from omc_proj_redis.__main__ import ProjectorSettings, catalogue_for
from omc_proj_redis.keys import Keys, glob_escape
from tests.support.samples import sample

SCHEMAS = Schemas()
TASK = "5f0c8a1e-4b8d-4c1e-9a57-2f1f3a0b6c11"
AGENT = "0d7e4c2a-8b1f-4f3e-a9d2-6c5b4a3f2e10"
ACTION = "8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def event(name: str, *, tenant: str = "acme", task: str = TASK, **fields) -> Record:
    record = sample(SCHEMAS.set, name, aggregate_id=task, causation=f"{task}/{name}")
    meta = dataclasses.replace(record.meta, tenant=tenant, aggregate_type="task")
    names = {f.name for f in dataclasses.fields(record)}
    extra = {k: v for k, v in {"task_id": task, "agent_id": AGENT}.items() if k in names}
    return dataclasses.replace(record, meta=meta, **extra, **fields)


def chain(*specs: str | tuple[str, dict], tenant: str = "acme", task: str = TASK) -> list:
    head, sealed = ChainHead(), []
    for spec in specs:
        name, fields = (spec, {}) if isinstance(spec, str) else spec
        record, head = seal(SCHEMAS, event(name, tenant=tenant, task=task, **fields), head)
        sealed.append(record)
    return sealed


def submit(tenant: str = "acme", task: str = TASK) -> Record:
    return seal_command(SCHEMAS, event("omc.command.SubmitTask", tenant=tenant, task=task))


def fold(messages: list[Record]) -> tuple[dict | None, list[view.Outcome]]:
    """Apply messages in order as the projector does; the final status and the outcomes."""
    status, outcomes = None, []
    for offset, record in enumerate(messages):
        if record.meta.event_type == view.SUBMIT_TASK:
            outcome = view.on_command(status, record)
        else:
            outcome = view.on_event(status, record, "omc.task.events.v1", 0, offset)
        status = outcome.status if outcome.status is not None else status
        outcomes.append(outcome)
    return status, outcomes


# -- the task-event item --------------------------------------------------------------------


def test_task_event_is_the_documented_item_with_the_payload_without_meta() -> None:
    (submitted,) = chain("omc.task.TaskSubmitted")

    item = view.task_event(submitted, "omc.task.events.v1", 3, 41)

    assert list(item) == ["event_id", "sequence", "event_type", "occurred_at", "actor",
                          "correlation_id", "causation_id", "prev_hash", "hash", "topic",
                          "partition", "offset", "payload"]
    assert item["sequence"] == 1
    assert item["event_type"] == "omc.task.TaskSubmitted"
    assert item["occurred_at"] == "2026-11-25T12:00:00.123456Z"
    assert item["hash"] == submitted.meta.hash
    assert item["prev_hash"] == "0" * 64
    assert (item["topic"], item["partition"], item["offset"]) == ("omc.task.events.v1", 3, 41)
    assert "meta" not in item["payload"]
    assert item["payload"]["task_id"] == TASK
    assert item["payload"]["instruction"] == submitted.instruction
    assert json.loads(view.encode_item(item)) == item


def test_payload_has_enums_as_symbols_nested_records_as_objects_times_as_rfc3339() -> None:
    failed, proposed, approval = (
        chain("omc.task.TaskFailed")[0], chain("omc.task.ActionProposed")[0],
        chain("omc.task.ApprovalRequested")[0])

    assert view.task_event(failed, "t", 0, 0)["payload"]["code"] == failed.code.value
    action = view.task_event(proposed, "t", 0, 0)["payload"]["action"]
    assert action["kind"] == proposed.action.kind.value
    assert action["to"] == proposed.action.to
    assert view.task_event(approval, "t", 0, 0)["payload"]["expires_at"] == \
        "2026-11-25T12:00:00.123456Z"


def test_plain_writes_bytes_as_base64_and_tuples_as_lists() -> None:
    assert view.plain(b"\x01\x02\xff") == base64.b64encode(b"\x01\x02\xff").decode()
    assert view.plain(("a", ("b",))) == ["a", ["b"]]


def test_rfc3339_is_utc_with_microseconds_and_z() -> None:
    assert view.rfc3339(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == \
        "2026-01-02T03:04:05.000000Z"
    assert view.rfc3339(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05.000000Z"


# -- the status machine ---------------------------------------------------------------------


def test_a_task_moves_through_the_documented_statuses() -> None:
    events = chain("omc.task.TaskSubmitted", "omc.task.InferenceRequested",
                   "omc.task.InferenceCompleted", "omc.task.ActionProposed",
                   "omc.task.PolicyEvaluated",
                   ("omc.task.ApprovalRequested", {"action_id": ACTION}),
                   ("omc.task.ActionApproved", {"action_id": ACTION}),
                   "omc.task.ToolResultRecorded", "omc.task.TaskCompleted")
    statuses, pending = [], []
    status = view.on_command(None, submit()).status
    statuses.append(status["status"])
    for offset, record in enumerate(events):
        status = view.on_event(status, record, "e", 0, offset).status
        statuses.append(status["status"])
        pending.append(status.get("pending_action_id"))

    assert statuses == ["accepted", "submitted", "running", "running", "running", "running",
                        "awaiting_approval", "running", "running", "completed"]
    assert pending[5] == ACTION
    assert pending[6:] == [None, None, None]
    assert status["last_sequence"] == "9"
    assert status["last_event_type"] == "omc.task.TaskCompleted"
    assert status["last_hash"] == events[-1].meta.hash
    assert status["agent_id"] == AGENT
    assert status["tenant"] == "acme"
    assert status["updated_at"] == "2026-11-25T12:00:00.123456Z"


@pytest.mark.parametrize(("final", "expected"), [("omc.task.TaskFailed", "failed"),
                                                 ("omc.task.TaskCancelled", "cancelled")])
def test_final_statuses_stay_final(final: str, expected: str) -> None:
    events = chain("omc.task.TaskSubmitted", ("omc.task.ApprovalRequested",
                                              {"action_id": ACTION}), final,
                   ("omc.task.ToolResultRecorded", {}),
                   ("omc.command.CommandRejected",
                    {"rejected_command_type": "omc.command.CancelTask"}))

    status, outcomes = fold(events)

    assert status["status"] == expected
    assert "pending_action_id" not in status
    assert status["last_sequence"] == "5"
    assert all(o.skipped is None for o in outcomes)


def test_a_refused_submit_task_fails_the_task_but_not_one_already_submitted() -> None:
    refused = chain(("omc.command.CommandRejected",
                     {"rejected_command_type": view.SUBMIT_TASK}))
    duplicate = chain("omc.task.TaskSubmitted", "omc.task.InferenceRequested",
                      ("omc.command.CommandRejected",
                       {"rejected_command_type": view.SUBMIT_TASK}))

    assert fold([submit(), *refused])[0]["status"] == "failed"
    assert fold(refused)[0]["status"] == "failed"
    assert fold(duplicate)[0]["status"] == "running"


def test_another_refusal_on_an_unknown_task_gives_no_status() -> None:
    status, _ = fold(chain(("omc.command.CommandRejected",
                            {"rejected_command_type": "omc.command.CancelTask"})))

    assert "status" not in status
    assert status["tenant"] == "acme"


def test_the_command_may_come_before_or_after_the_events_with_the_same_result() -> None:
    events = chain("omc.task.TaskSubmitted", "omc.task.InferenceRequested",
                   ("omc.command.CommandRejected",
                    {"rejected_command_type": "omc.command.ApproveAction"}))
    refused = chain(("omc.command.CommandRejected",
                     {"rejected_command_type": view.SUBMIT_TASK}))
    for log in (events, refused, events[:1], events[2:]):
        results = {json.dumps(fold([*log[:i], submit(), *log[i:]])[0], sort_keys=True)
                   for i in range(len(log) + 1)}
        assert len(results) == 1, log


def test_a_replayed_event_changes_nothing() -> None:
    events = chain("omc.task.TaskSubmitted", "omc.task.InferenceRequested")

    status, outcomes = fold([*events, *events, events[0]])

    assert [o.skipped for o in outcomes] == [None, None, "duplicate", "duplicate", "duplicate"]
    assert status["last_sequence"] == "2"


def test_a_second_submit_task_is_already_known() -> None:
    status, outcomes = fold([submit(), submit()])

    assert outcomes[1].skipped == "already_known"
    assert status["status"] == "accepted"
    assert status["last_sequence"] == "0"


def test_another_tenant_cannot_touch_a_task() -> None:
    mine = chain("omc.task.TaskSubmitted")
    theirs = chain("omc.task.TaskSubmitted", "omc.task.TaskCompleted", tenant="evil")

    status, outcomes = fold([*mine, theirs[1], submit(tenant="evil")])

    assert [o.skipped for o in outcomes] == [None, "tenant_mismatch", "tenant_mismatch"]
    assert status["status"] == "submitted"


def test_unchained_and_foreign_records_are_skipped() -> None:
    unchained = event("omc.task.TaskSubmitted")  # sequence 0
    foreign = sample(SCHEMAS.set, "omc.tx.TxSigned", aggregate_id=TASK)
    cancel = seal_command(SCHEMAS, event("omc.command.CancelTask"))

    assert view.on_event(None, unchained, "e", 0, 0).skipped == "unchained"
    assert view.on_event(None, foreign, "e", 0, 0).skipped == "not_a_task_event"
    assert view.on_command(None, cancel).skipped == "not_projected"


def test_every_record_of_the_task_topic_is_projected() -> None:
    on_topic = set(catalogue_for(ProjectorSettings.from_env({}))["omc.task.events.v1"].records)

    assert on_topic == set(view.TASK_EVENTS)
    terminal = queries.TERMINAL

    assert terminal == {"omc.task.TaskCompleted", "omc.task.TaskFailed",
                        "omc.task.TaskCancelled"}


def test_statuses_are_all_documented_ones() -> None:
    documented = {"accepted", "submitted", "running", "awaiting_approval", "completed",
                  "failed", "cancelled"}
    kinds = list(view.STATUS_AFTER)
    for pair in itertools.product(kinds, repeat=2):
        status, _ = fold([submit(), *chain(*pair)])
        assert status["status"] in documented


# -- keys, settings, reply shapes -----------------------------------------------------------


def test_keys_follow_the_naming_convention() -> None:
    keys = Keys()

    assert keys.status("t1") == "omc:v1:task:t1:status"
    assert keys.events("t1") == "omc:v1:task:t1:events"
    assert keys.offsets == "omc:v1:proj:redis:offsets"
    assert keys.is_task_key("omc:v1:task:t1:status")
    assert keys.is_task_key("omc:v1:task:t1:events")
    assert not keys.is_task_key("omc:v1:task:t1:cache")
    assert not keys.is_task_key("omc:v1:task:a:b:status")
    assert not keys.is_task_key("omc:v2:task:t1:status")
    with pytest.raises(ValueError, match="trailing"):
        Keys("omc:v1:")


def test_glob_escape_makes_a_prefix_literal() -> None:
    assert glob_escape("omc:t[1]*?\\") == "omc:t\\[1\\]\\*\\?\\\\"


def test_settings_default_to_the_local_stack_and_list_every_problem() -> None:
    default = ProjectorSettings.from_env({})

    assert (default.prefix, default.maxlen, default.metrics_port, default.group) == \
        ("omc:v1", 1000, 18092, "omc.proj.redis")
    assert (default.commands_topic, default.events_topic, default.deadletter_topic) == \
        ("omc.commands.v1", "omc.task.events.v1", "omc.deadletter.v1")
    with pytest.raises(ConfigError) as raised:
        ProjectorSettings.from_env({"OMC_PROJ_REDIS_MAXLEN": "0",
                                    "OMC_PROJ_REDIS_BATCH": "many",
                                    "OMC_PROJ_REDIS_PREFIX": "omc:",
                                    "OMC_PROJ_REDIS_EVENTS_TOPIC": "bad topic"})
    assert len(raised.value.problems) == 4


def test_renamed_topics_carry_the_records_of_the_topics_they_stand_for() -> None:
    settings = ProjectorSettings.from_env({"OMC_PROJ_REDIS_EVENTS_TOPIC": "omc.test.e",
                                           "OMC_PROJ_REDIS_DEADLETTER_TOPIC": "omc.test.d"})

    catalogue = catalogue_for(settings)

    assert catalogue["omc.test.e"].records == catalogue["omc.task.events.v1"].records
    assert catalogue["omc.test.d"].subject("omc.deadletter.DeadLetter") == \
        "omc.test.d-omc.deadletter.DeadLetter"


def test_xread_replies_are_read_in_both_protocol_shapes() -> None:
    entries = [(b"1-0", {b"event": b"{}"}), (b"2-0", {b"event": b"{}"})]

    assert queries._entries([[b"k", entries]]) == entries
    assert queries._entries({b"k": [entries]}) == entries
    assert queries._entries([]) == []
    assert queries._entries(None) == []
