"""Following a task's live stream (SSE) with `Client` and `AsyncClient`: until a terminal
event, `from=beginning` or `now`, resumption with Last-Event-ID after a broken connection.
Also the async twin's request path (retries, idempotency) on the same fake."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from omc_sdk import AsyncClient, Client, NotFound, ProtocolError, TransportError, Unavailable
from omc_sdk.testing import FakeGateway

URL = "http://gateway.test"
TRAIL = ("TaskStarted", "InferenceCompleted", "ActionProposed", "TaskCompleted")


@pytest.fixture
def fake() -> FakeGateway:
    return FakeGateway()


@pytest.fixture
def client(fake: FakeGateway):
    with Client(URL, fake.add_key(), transport=fake.transport(), sleep=fake.sleep,
                rng=lambda: 0.0) as client:
        yield client


def streams(fake: FakeGateway) -> list[httpx.Request]:
    return [r for r in fake.requests if r.url.path.endswith("/stream")]


def test_from_beginning_yields_the_whole_trail_and_stops_at_the_terminal_event(client, fake):
    task = fake.add_task()
    fake.add_event(task["task_id"], "TaskStarted")
    fake.schedule(task["task_id"], *TRAIL[1:], "NeverSent")
    events = list(client.follow_task(task["task_id"], from_beginning=True))
    assert [e.event_type for e in events] == [f"omc.task.{t}" for t in TRAIL]
    assert [e.sequence for e in events] == [1, 2, 3, 4]
    (request,) = streams(fake)
    assert request.url.params["from"] == "beginning"
    assert request.headers["Accept"] == "text/event-stream"
    assert "Last-Event-ID" not in request.headers


def test_from_now_yields_only_what_happens_after_connecting(client, fake):
    task = fake.add_task()
    fake.add_event(task["task_id"], "TaskStarted")
    fake.schedule(task["task_id"], "TaskCancelled")
    events = list(client.follow_task(task["task_id"]))
    assert [(e.sequence, e.event_type) for e in events] == [(2, "omc.task.TaskCancelled")]
    assert streams(fake)[0].url.params["from"] == "now"


def test_a_broken_stream_resumes_after_the_last_event_without_loss_or_repeat(client, fake):
    task = fake.add_task()
    fake.schedule(task["task_id"], *TRAIL)
    fake.break_stream(after=2)
    fake.break_stream(after=0)  # the second connection dies before any event
    events = list(client.follow_task(task["task_id"], from_beginning=True))
    assert [e.sequence for e in events] == [1, 2, 3, 4]
    first, second, third = streams(fake)
    assert "Last-Event-ID" not in first.headers
    assert second.headers["Last-Event-ID"] == "2"
    assert third.headers["Last-Event-ID"] == "2"
    assert fake.slept == [0.25, 0.5]


def test_the_servers_retry_time_is_the_least_wait_before_reconnecting(client, fake):
    fake.stream_retry_ms = 3000
    task = fake.add_task()
    fake.schedule(task["task_id"], *TRAIL)
    fake.break_stream(after=1)
    assert len(list(client.follow_task(task["task_id"], from_beginning=True))) == 4
    assert fake.slept == [3.0]


def test_the_failure_count_resets_after_each_event(fake):
    with Client(URL, fake.add_key(), transport=fake.transport(), sleep=fake.sleep,
                retries=1) as client:
        task = fake.add_task()
        fake.schedule(task["task_id"], *TRAIL)
        for _ in range(3):
            fake.break_stream(after=1)  # each connection brings one event, then dies
        assert len(list(client.follow_task(task["task_id"], from_beginning=True))) == 4


def test_too_many_breaks_in_a_row_raise_a_transport_error(client, fake):
    task = fake.add_task()
    fake.schedule(task["task_id"], *TRAIL)
    for _ in range(4):
        fake.break_stream(after=0)
    with pytest.raises(TransportError, match="broke 4 times in a row: connection reset"):
        list(client.follow_task(task["task_id"]))


def test_resuming_from_a_known_event_id(client, fake):
    task = fake.add_task()
    for kind in TRAIL:
        fake.add_event(task["task_id"], kind)
    events = list(client.follow_task(task["task_id"], last_event_id=3))
    assert [e.sequence for e in events] == [4]
    assert streams(fake)[0].headers["Last-Event-ID"] == "3"


def test_a_stream_that_ends_on_a_finished_task_stops(client, fake):
    task = fake.add_task()
    for kind in TRAIL:
        fake.add_event(task["task_id"], kind)
    assert list(client.follow_task(task["task_id"])) == []  # from now: nothing is left
    assert len(streams(fake)) == 1


def test_stream_errors_map_like_any_answer(client, fake):
    with pytest.raises(NotFound):
        list(client.follow_task("nope"))
    task = fake.add_task()
    fake.schedule(task["task_id"], "TaskFailed")
    fake.fail_next(503, retry_after="2", path=f"/v1/tasks/{task['task_id']}/stream")
    assert [e.event_type for e in client.follow_task(task["task_id"])] == ["omc.task.TaskFailed"]
    assert fake.slept == [2.0]
    fake.fail_next(503, times=4, path=f"/v1/tasks/{task['task_id']}/stream")
    with pytest.raises(Unavailable):
        list(client.follow_task(task["task_id"]))


def test_a_task_just_accepted_is_awaited_until_it_is_projected(fake):
    task_id = "6f1c2b3a-1d2e-4f50-8a9b-0c1d2e3f4a5b"

    def sleep(seconds: float) -> None:  # the projection catches up during the third wait
        fake.sleep(seconds)
        if len(fake.slept) == 3:
            fake.add_task(task_id=task_id)
            fake.schedule(task_id, *TRAIL)

    with Client(URL, fake.add_key(), transport=fake.transport(), sleep=sleep,
                rng=lambda: 0.0) as client:
        events = list(client.follow_task(task_id, from_beginning=True, appear_within=1.0))
        with pytest.raises(NotFound):  # not forever: about `appear_within` seconds of polls
            list(client.follow_task("never-accepted", appear_within=1.0))

    assert [e.sequence for e in events] == [1, 2, 3, 4]
    assert fake.slept[:3] == [0.2, 0.2, 0.2]
    assert len(fake.slept) == 3 + 5  # then five polls for the task that never appears


def test_an_answer_that_is_not_an_event_stream_is_a_protocol_error(fake):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"item": {}})

    with Client(URL, "k", transport=httpx.MockTransport(handler)) as client, \
            pytest.raises(ProtocolError, match="not text/event-stream"):
        list(client.follow_task("t"))


# -- the async twin ---------------------------------------------------------------------------


def test_async_client_has_the_same_behaviour():
    async def scenario(fake: FakeGateway) -> None:
        async with AsyncClient(URL, fake.add_key(), transport=fake.transport(),
                               sleep=fake.asleep, rng=lambda: 0.0) as client:
            fake.fail_next(429, retry_after="3")
            fake.drop_next(lost=True)
            accepted = await client.submit_task("agent-1", "x", chain_id=1)
            assert len({r.headers["Idempotency-Key"] for r in fake.requests}) == 1
            assert len(fake.commands) == 1
            assert fake.slept == [3.0, 0.5]
            task_id = accepted.aggregate_id
            fake.schedule(task_id, *TRAIL)
            fake.break_stream(after=1)
            events = [e async for e in client.follow_task(task_id, from_beginning=True)]
            assert [e.sequence for e in events] == [1, 2, 3, 4]
            assert (await client.get_task(task_id)).status == "completed"
            for _ in range(4):
                fake.add_task()
            assert len([t async for t in client.iter_tasks(page_size=2)]) == 5
            assert len((await client.task_events(task_id)).items) == 4
            assert (await client.readyz()).ok
            with pytest.raises(NotFound):
                await client.get_agent("nope")

    asyncio.run(scenario(FakeGateway()))
