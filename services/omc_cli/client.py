"""`omc submit | tasks | follow | agents`: the gateway's HTTP API from a shell, via omc_sdk.

    omc submit "<instruction>" --agent A [--chain-id N] [--max-value-wei W]
               [--idempotency-key K] [--follow] [--json]
    omc tasks list [--status S] [--agent A] [--limit N] [--json]
    omc tasks show ID [--events] [--json]
    omc follow ID [--from-beginning] [--json]        prints each event as it arrives
    omc agents list [--limit N] [--json]
    omc agents show ID [--policy] [--json]
    omc agents register --name N --description D --signer 0x… --model M
                        --policy-file policy.json [--agent-id ID] [--idempotency-key K] [--json]
    omc agents set-policy ID --policy-file policy.json [--idempotency-key K] [--json]

The gateway and the key come from OMC_API_URL (default http://127.0.0.1:18080) and
OMC_API_KEY (`omc keys create`). Tables for people by default; `--json` prints the API's
own items for scripts (`follow --json`: one event per line). Exit 0 on success and 1 on any
error, printed with the problem's details and each field it names; `follow` and
`submit --follow` also exit 1 when the task ends without completing (failed or cancelled).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import click

from omc_cli.friendly import friendly
from omc_errors import OmcError
from omc_sdk import Accepted, Client, TaskEvent

# How commands get their client; tests put a factory over a fake transport here.
client_factory: Callable[[], Client] = Client

TASK_FIELDS = ("task_id", "status", "agent_id", "tenant", "chain_id", "instruction",
               "submitted_at", "updated_at", "last_sequence", "last_event_type", "last_hash",
               "pending_action_id", "tx_hashes", "result", "failure")
AGENT_FIELDS = ("agent_id", "name", "status", "tenant", "description", "signer_address",
                "model", "policy_version", "registered_at", "updated_at")

COMPLETED = "omc.task.TaskCompleted"
APPEAR_WITHIN = 30.0
"""Seconds `submit --follow` waits for the accepted task to be projected (404s until then)."""


def _client() -> Client:
    return client_factory()


# -- output -----------------------------------------------------------------------------------


def _json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def _cell(value: Any, width: int | None = None) -> str:
    if value is None:
        text = "-"
    elif isinstance(value, list | tuple):
        text = ",".join(map(str, value)) or "-"
    elif isinstance(value, Mapping):
        text = json.dumps(value, separators=(",", ":"), default=str)
    else:
        text = " ".join(str(value).split())
    if width is not None and len(text) > width:
        text = text[:width - 1] + "…"
    return text


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str, int | None]],
           empty: str) -> None:
    """Columns are (title, key, widest); the last column is never padded."""
    if not rows:
        click.echo(empty)
        return
    cells = [[_cell(row.get(key), widest) for _, key, widest in columns] for row in rows]
    widths = [max(len(title), *(len(r[i]) for r in cells)) for i, (title, _, _) in
              enumerate(columns)]
    for line in [[title for title, _, _ in columns], *cells]:
        click.echo("  ".join(c.ljust(w) for c, w in zip(line[:-1], widths, strict=False))
                   + ("  " if len(line) > 1 else "") + line[-1])


def _fields(item: Mapping[str, Any], order: Sequence[str]) -> None:
    keys = [k for k in order if k in item] + [k for k in item if k not in order]
    width = max(map(len, keys), default=0)
    for key in keys:
        click.echo(f"{key:<{width}}  {_cell(item[key])}")


def _accepted(accepted: Accepted, what: str, as_json: bool) -> None:
    if as_json:
        _json(accepted.raw)
        return
    click.echo(f"accepted: {what} {accepted.aggregate_id} "
               f"(command {accepted.command_id}, {accepted.command_type})")


EVENT_COLUMNS = (("SEQ", "sequence", None), ("EVENT", "event_type", None),
                 ("OCCURRED_AT", "occurred_at", None), ("ACTOR", "actor", 24),
                 ("HASH", "hash", 14), ("PAYLOAD", "payload", 60))


def _event_line(event: TaskEvent) -> str:
    payload = _cell(event.payload, 100) if event.payload else ""
    return (f"{event.sequence:>4}  {event.occurred_at or '-':<25} {event.event_type:<24} "
            f"{payload}").rstrip()


def _follow(api: Client, task_id: str, *, from_beginning: bool, as_json: bool,
            appear_within: float = 0.0) -> None:
    last: TaskEvent | None = None
    if not as_json:
        click.echo(f"following task {task_id} (Ctrl-C to stop) ...", err=True)
    for event in api.follow_task(task_id, from_beginning=from_beginning,
                                 appear_within=appear_within):
        last = event
        click.echo(json.dumps(event.raw, default=str) if as_json else _event_line(event))
    if last is None:  # the stream ended at once: the task had already ended
        task = api.get_task(task_id)
        ended = {"completed": COMPLETED, "failed": "omc.task.TaskFailed",
                 "cancelled": "omc.task.TaskCancelled"}.get(task.status)
        if not as_json:
            click.echo(f"task {task_id} had already ended: {task.status}", err=True)
        if ended not in (None, COMPLETED):
            raise OmcError(f"task {task_id} did not complete: {task.status}"
                           + (f" ({_cell(task.failure)})" if task.failure else ""))
        return
    if last.event_type != COMPLETED:
        reason = last.payload.get("reason") or last.payload.get("error") or ""
        raise OmcError(f"task {task_id} did not complete: {last.event_type}"
                       + (f" ({_cell(reason)})" if reason else ""))


def _policy_file(path: Path) -> dict[str, Any]:
    try:
        policy = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as error:
        raise OmcError(f"cannot read the policy file {path}: {error}") from error
    except ValueError as error:
        raise OmcError(f"the policy file {path} is not JSON: {error}") from error
    if isinstance(policy, dict) and set(policy) == {"policy"}:
        policy = policy["policy"]
    if not isinstance(policy, dict):
        raise OmcError(f"the policy file {path} must hold a JSON object (the policy)")
    return policy


POLICY_FILE = click.option(
    "--policy-file", required=True, help="The policy as JSON (docs/api.md, `policy`).",
    type=click.Path(exists=True, dir_okay=False, path_type=Path))
IDEMPOTENCY_KEY = click.option(
    "--idempotency-key", help="Make a repeat of this command a no-op (default: a fresh one).")
JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


# -- submit, follow ---------------------------------------------------------------------------


@click.command()
@click.argument("instruction")
@click.option("--agent", "agent_id", required=True, help="The agent that carries the task out.")
@click.option("--chain-id", type=click.IntRange(min=1), default=31337, show_default=True,
              envvar="OMC_CHAIN_ID", help="The chain it may act on (env OMC_CHAIN_ID).")
@click.option("--max-value-wei", help="The most it may spend, in wei (a decimal integer).")
@IDEMPOTENCY_KEY
@click.option("--follow", "follow", is_flag=True, help="Then print its events until it ends.")
@JSON
@friendly
def submit(instruction: str, agent_id: str, chain_id: int, max_value_wei: str | None,
           idempotency_key: str | None, follow: bool, as_json: bool) -> None:
    """Submit a task: INSTRUCTION for an agent, in plain words."""
    if max_value_wei is not None and not (max_value_wei.isascii() and max_value_wei.isdigit()):
        raise click.BadParameter("is a non-negative integer in wei, in decimal digits",
                                 param_hint="--max-value-wei")
    with _client() as api:
        accepted = api.submit_task(agent_id, instruction, chain_id=chain_id,
                                   max_value_wei=max_value_wei, idempotency_key=idempotency_key)
        _accepted(accepted, "task", as_json)
        if follow:
            _follow(api, accepted.aggregate_id, from_beginning=True, as_json=as_json,
                    appear_within=APPEAR_WITHIN)
        elif not as_json:
            click.echo(f"follow it with: omc follow {accepted.aggregate_id} --from-beginning")


@click.command()
@click.argument("task_id")
@click.option("--from-beginning", is_flag=True, help="Print its whole trail first.")
@JSON
@friendly
def follow(task_id: str, from_beginning: bool, as_json: bool) -> None:
    """Print TASK_ID's events as they happen, until it completes, fails or is cancelled."""
    with _client() as api:
        _follow(api, task_id, from_beginning=from_beginning, as_json=as_json)


# -- tasks ------------------------------------------------------------------------------------


@click.group()
def tasks() -> None:
    """The tasks the API key's tenant submitted."""


@tasks.command("list")
@click.option("--status", type=click.Choice(["accepted", "submitted", "running",
                                             "awaiting_approval", "completed", "failed",
                                             "cancelled"]))
@click.option("--agent", "agent_id", help="Only this agent's tasks.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True,
              help="How many, newest first.")
@JSON
@friendly
def tasks_list(status: str | None, agent_id: str | None, limit: int, as_json: bool) -> None:
    """List tasks, newest first."""
    with _client() as api:
        found = list(islice(api.iter_tasks(status=status, agent_id=agent_id,
                                           page_size=min(limit, 200)), limit))
    rows = [t.raw for t in found]
    if as_json:
        _json(rows)
        return
    _table(rows, (("TASK_ID", "task_id", None), ("STATUS", "status", None),
                  ("AGENT", "agent_id", 36), ("CHAIN", "chain_id", None),
                  ("UPDATED_AT", "updated_at", None), ("INSTRUCTION", "instruction", 50)),
           "no tasks")


@tasks.command("show")
@click.argument("task_id")
@click.option("--events", "with_events", is_flag=True, help="Also its audit trail.")
@JSON
@friendly
def tasks_show(task_id: str, with_events: bool, as_json: bool) -> None:
    """Show one task (and, with --events, every event of its trail)."""
    with _client() as api:
        task = api.get_task(task_id)
        events = list(api.iter_task_events(task_id)) if with_events else []
    if as_json:
        _json({"task": task.raw, "events": [e.raw for e in events]} if with_events
              else task.raw)
        return
    _fields(task.raw, TASK_FIELDS)
    if with_events:
        click.echo("")
        _table([e.raw for e in events], EVENT_COLUMNS, "no events yet")


# -- agents -----------------------------------------------------------------------------------


@click.group()
def agents() -> None:
    """The agents of the API key's tenant: list, show, register, set a policy."""


@agents.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@JSON
@friendly
def agents_list(limit: int, as_json: bool) -> None:
    """List agents."""
    with _client() as api:
        rows = [a.raw for a in islice(api.iter_agents(page_size=min(limit, 200)), limit)]
    if as_json:
        _json(rows)
        return
    _table(rows, (("AGENT_ID", "agent_id", None), ("NAME", "name", 24),
                  ("STATUS", "status", None), ("MODEL", "model", 24),
                  ("POLICY", "policy_version", None), ("SIGNER", "signer_address", None)),
           "no agents")


@agents.command("show")
@click.argument("agent_id")
@click.option("--policy", "with_policy", is_flag=True, help="Also its current policy.")
@JSON
@friendly
def agents_show(agent_id: str, with_policy: bool, as_json: bool) -> None:
    """Show one agent (and, with --policy, its current policy)."""
    with _client() as api:
        agent = api.get_agent(agent_id)
        policy = api.get_policy(agent_id) if with_policy else None
    if as_json:
        _json({"agent": agent.raw, "policy": policy.raw} if policy else agent.raw)
        return
    _fields(agent.raw, AGENT_FIELDS)
    if policy is not None:
        click.echo("\npolicy:")
        click.echo(json.dumps(policy.raw, indent=2))


@agents.command("register")
@click.option("--name", required=True, help="What people call it.")
@click.option("--signer", "signer_address", required=True, help="Its signer's address, 0x….")
@click.option("--model", required=True, help="The LLM it thinks with.")
@POLICY_FILE
@click.option("--description", required=True, help="What it is for.")
@click.option("--agent-id", help="Its id (default: the gateway derives one).")
@IDEMPOTENCY_KEY
@JSON
@friendly
def agents_register(name: str, signer_address: str, model: str, policy_file: Path,
                    description: str, agent_id: str | None, idempotency_key: str | None,
                    as_json: bool) -> None:
    """Register an agent with its policy (needs the `admin` scope)."""
    policy = _policy_file(policy_file)
    with _client() as api:
        accepted = api.register_agent(name=name, signer_address=signer_address, model=model,
                                      policy=policy, description=description,
                                      agent_id=agent_id, idempotency_key=idempotency_key)
    _accepted(accepted, "agent", as_json)


@agents.command("set-policy")
@click.argument("agent_id")
@POLICY_FILE
@IDEMPOTENCY_KEY
@JSON
@friendly
def agents_set_policy(agent_id: str, policy_file: Path, idempotency_key: str | None,
                      as_json: bool) -> None:
    """Replace AGENT_ID's policy (needs the `admin` scope)."""
    policy = _policy_file(policy_file)
    with _client() as api:
        accepted = api.set_policy(agent_id, policy, idempotency_key=idempotency_key)
    _accepted(accepted, "agent", as_json)


COMMANDS: list[click.Command] = [submit, tasks, follow, agents]
