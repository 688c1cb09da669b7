"""`omc submit | tasks | follow | agents` through click's CliRunner, against the SDK's
FakeGateway (docs/api.md in memory) put in through `omc_cli.client.client_factory`."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import omc_cli.client
from omc_cli.main import cli
from omc_sdk import Client
from omc_sdk.testing import FakeGateway

URL = "http://gateway.test"
POLICY = {"version": 1, "allowed_chain_ids": [31337], "allowed_contracts": [],
          "allowed_selectors": [], "deny_addresses": [], "allowed_recipients": [],
          "max_value_wei": "1000", "budget_wei": "5000", "budget_window_seconds": 3600,
          "max_fee_per_gas_wei": "100000000000", "approval_threshold_wei": "500",
          "max_inferences_per_task": 4}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeGateway:
    fake = FakeGateway()
    key = fake.add_key(tenant="tenant-a")
    monkeypatch.setattr(omc_cli.client, "client_factory", lambda: Client(
        URL, key, transport=fake.transport(), sleep=fake.sleep))
    return fake


def omc(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_the_commands_are_on_omc():
    assert {"submit", "tasks", "follow", "agents"} <= set(cli.commands)


def test_submit_prints_the_task_and_sends_the_options(fake):
    result = omc("submit", "pay 5 wei to bob", "--agent", "agent-1", "--chain-id", "5",
                 "--max-value-wei", "5", "--idempotency-key", "order-1")
    assert result.exit_code == 0, result.output
    (task_id,) = fake.tasks
    assert f"accepted: task {task_id}" in result.stdout
    assert f"omc follow {task_id} --from-beginning" in result.stdout
    assert fake.requests[0].headers["Idempotency-Key"] == "order-1"
    command = fake.commands[0]
    assert (command["instruction"], command["chain_id"], command["max_value_wei"]) == (
        "pay 5 wei to bob", 5, "5")


def test_submit_json_survives_a_lost_answer_with_one_task(fake):
    fake.drop_next(lost=True)  # retried with the same key: still one task
    result = omc("submit", "x", "--agent", "agent-1", "--json")
    assert result.exit_code == 0, result.output
    accepted = json.loads(result.stdout)
    assert accepted["command_type"] == "omc.command.SubmitTask"
    assert list(fake.tasks) == [accepted["aggregate_id"]]


def schedule_after_submit(fake, monkeypatch, *event_types: str) -> None:
    original = fake.handle

    def handle(request):  # the task's events happen once it is submitted
        response = original(request)
        if request.method == "POST":
            fake.schedule(response.headers["Location"].rsplit("/", 1)[-1], *event_types)
        return response

    monkeypatch.setattr(fake, "handle", handle)


def test_submit_follow_until_completed(fake, monkeypatch):
    schedule_after_submit(fake, monkeypatch, "TaskStarted", "TaskCompleted")
    result = omc("submit", "x", "--agent", "agent-1", "--follow")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].split()[2] == "omc.task.TaskCompleted"
    (stream,) = [r for r in fake.requests if r.url.path.endswith("/stream")]
    assert stream.url.params["from"] == "beginning"


def test_submit_follow_prints_events_and_fails_when_the_task_fails(fake, monkeypatch):
    schedule_after_submit(fake, monkeypatch, "TaskStarted", "TaskFailed")
    result = omc("submit", "x", "--agent", "agent-1", "--follow")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert "TaskStarted" in lines[1]
    assert lines[2].split()[0] == "2"
    assert "TaskFailed" in lines[2]
    assert "did not complete: omc.task.TaskFailed" in result.stderr


def test_submit_refuses_a_bad_amount_before_sending(fake):
    result = omc("submit", "x", "--agent", "a", "--max-value-wei", "1.5")
    assert result.exit_code == 2
    assert "--max-value-wei" in result.stderr
    assert fake.requests == []


def test_follow_prints_each_event_as_it_arrives_and_resumes(fake):
    task = fake.add_task()
    fake.add_event(task["task_id"], "TaskStarted", {"model": "m"})
    fake.schedule(task["task_id"], "InferenceCompleted", "TaskCompleted")
    fake.break_stream(after=2)
    result = omc("follow", task["task_id"], "--from-beginning")
    assert result.exit_code == 0, result.output
    assert [line.split()[:3:2] for line in result.stdout.splitlines()] == [
        ["1", "omc.task.TaskStarted"], ["2", "omc.task.InferenceCompleted"],
        ["3", "omc.task.TaskCompleted"]]
    assert '{"model":"m"}' in result.stdout
    assert len([r for r in fake.requests if r.url.path.endswith("/stream")]) == 2
    lines = omc("follow", task["task_id"], "--from-beginning", "--json").stdout.splitlines()
    assert [json.loads(line)["sequence"] for line in lines] == [1, 2, 3]


def test_follow_of_a_task_that_has_ended(fake):
    task = fake.add_task()
    fake.add_event(task["task_id"], "TaskCancelled")
    result = omc("follow", task["task_id"])
    assert result.exit_code == 1
    assert "had already ended: cancelled" in result.stderr


def test_tasks_list_table_filters_limit_and_json(fake):
    for i in range(5):
        fake.add_task(agent_id="agent-1" if i % 2 else "agent-2",
                      instruction=f"job {i} " + "very long " * 10)
    result = omc("tasks", "list", "--agent", "agent-1")
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["TASK_ID", "STATUS", "AGENT", "CHAIN", "UPDATED_AT",
                              "INSTRUCTION"]
    assert len(rows) == 2
    assert all(row.endswith("…") for row in rows)
    listed = json.loads(omc("tasks", "list", "--limit", "3", "--json").stdout)
    assert len(listed) == 3
    assert listed[0]["task_id"] == list(fake.tasks)[-1]
    assert "_order" not in listed[0]
    assert fake.requests[-1].url.params["limit"] == "3"
    assert omc("tasks", "list", "--status", "failed").stdout == "no tasks\n"


def test_tasks_show_with_events(fake):
    task = fake.add_task(instruction="swap")
    for kind in ("TaskStarted", "TaskCompleted"):
        fake.add_event(task["task_id"], kind)
    result = omc("tasks", "show", task["task_id"], "--events")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].split() == ["task_id", task["task_id"]]
    assert "status" in result.stdout
    assert "completed" in result.stdout
    assert "SEQ  EVENT" in result.stdout
    shown = json.loads(omc("tasks", "show", task["task_id"], "--events", "--json").stdout)
    assert shown["task"]["instruction"] == "swap"
    assert [e["event_type"] for e in shown["events"]] == [
        "omc.task.TaskStarted", "omc.task.TaskCompleted"]
    assert json.loads(omc("tasks", "show", task["task_id"], "--json").stdout)["status"] == (
        "completed")


def test_agents_register_list_show_and_set_policy(fake, tmp_path):
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps(POLICY))
    result = omc("agents", "register", "--name", "trader", "--description", "buys low",
                 "--signer", "0x" + "ab" * 20,
                 "--model", "gpt-test", "--policy-file", str(policy_file), "--json")
    assert result.exit_code == 0, result.output
    agent_id = json.loads(result.stdout)["aggregate_id"]
    assert fake.commands[0]["policy"] == POLICY
    assert fake.commands[0]["description"] == "buys low"
    listed = omc("agents", "list")
    assert listed.stdout.splitlines()[0].split()[:3] == ["AGENT_ID", "NAME", "STATUS"]
    assert agent_id in listed.stdout
    policy_file.write_text(json.dumps({"policy": {**POLICY, "version": 2}}))
    changed = omc("agents", "set-policy", agent_id, "--policy-file", str(policy_file))
    assert changed.exit_code == 0, changed.output
    assert changed.stdout.startswith(f"accepted: agent {agent_id}")
    shown = json.loads(omc("agents", "show", agent_id, "--policy", "--json").stdout)
    assert shown["agent"]["policy_version"] == 2
    assert shown["policy"]["version"] == 2
    human = omc("agents", "show", agent_id).stdout
    assert human.splitlines()[1].split() == ["name", "trader"]


def test_a_bad_policy_file_is_an_error_not_a_traceback(fake, tmp_path):
    policy_file = tmp_path / "policy.json"
    policy_file.write_text("{not json")
    result = omc("agents", "set-policy", "a1", "--policy-file", str(policy_file))
    assert result.exit_code == 1
    assert "is not JSON" in result.stderr
    assert fake.requests == []


def test_problems_are_printed_and_exit_1(fake):
    fake.fail_next(503, times=4)  # the first try and 3 retries
    result = omc("tasks", "show", "t1")
    assert result.exit_code == 1
    assert result.stderr == "error: 503 Unavailable (unavailable)\n"
    assert fake.slept
    result = omc("tasks", "show", "nope")
    assert result.exit_code == 1
    assert "error: 404 Not found (not-found): no task nope" in result.stderr


def test_a_422_shows_each_field(fake):
    fake.fail_next(422, detail="the body has problems", errors=[
        {"field": "policy.max_value_wei", "problem": "is not a non-negative integer"},
        {"field": "policy.colour", "problem": "is not a known field"}])
    result = omc("submit", "x", "--agent", "a")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: 422 Invalid body (invalid-body): the body has problems",
        "  - policy.max_value_wei: is not a non-negative integer",
        "  - policy.colour: is not a known field"]
    assert len(fake.requests) == 1


def test_without_a_key_the_error_says_how_to_get_one(monkeypatch):
    fake = FakeGateway()
    monkeypatch.setattr(omc_cli.client, "client_factory", lambda: Client(
        URL, None, transport=fake.transport()))
    result = omc("agents", "list")
    assert result.exit_code == 1
    assert "set OMC_API_KEY" in result.stderr


def test_a_bad_api_url_is_a_configuration_error(monkeypatch):
    monkeypatch.setenv("OMC_API_URL", "gateway:18080")
    result = omc("tasks", "list")
    assert result.exit_code == 1
    assert "OMC_API_URL='gateway:18080' is not an http(s) URL" in result.stderr


def test_a_value_the_api_cannot_take_is_an_error_before_sending(fake):
    result = omc("submit", "x", "--agent", "a", "--idempotency-key", "k" * 201)
    assert result.exit_code == 1
    assert "error: an Idempotency-Key is 1-200 printable ASCII characters" in result.stderr
    assert fake.requests == []
