"""`omc schemas check`: a breaking change to a released schema is caught, from git history."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from omc_events import history
from omc_events.contract_check import check_against, check_parse
from omc_events.schemas import AVRO_DIR, SchemaSet


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo,
                   check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository whose first commit releases the project's current schemas."""
    shutil.copytree(AVRO_DIR, tmp_path / "schemas" / "avro")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "release 1")
    return tmp_path


def _edit(repo: Path, record: str, change) -> SchemaSet:
    path = repo / "schemas" / "avro" / Path(*record.split(".")).with_suffix(".avsc")
    schema = json.loads(path.read_text())
    change(schema)
    path.write_text(json.dumps(schema, indent=2))
    return SchemaSet.load(repo / "schemas" / "avro")


def test_the_current_schemas_are_compatible_with_their_own_history() -> None:
    schemas = SchemaSet.load()

    assert check_parse(schemas) == []
    assert check_against(schemas, history.released(), "git history") == []


def test_adding_a_field_without_a_default_is_refused(repo: Path) -> None:
    def add_required(schema):
        schema["fields"].append({"name": "priority", "type": "int", "doc": "new"})

    changed = _edit(repo, "omc.task.TaskSubmitted", add_required)
    problems = check_against(changed, history.released(repo), "git history")

    assert len(problems) == 1
    assert problems[0].startswith("omc.task.TaskSubmitted: incompatible with git history")
    assert "priority" in problems[0]


def test_adding_a_field_with_a_default_is_accepted(repo: Path) -> None:
    def add_optional(schema):
        schema["fields"].append(
            {"name": "priority", "type": ["null", "int"], "default": None, "doc": "new"})

    changed = _edit(repo, "omc.task.TaskSubmitted", add_optional)

    assert check_against(changed, history.released(repo), "git history") == []


def test_changing_a_field_type_is_refused(repo: Path) -> None:
    def retype(schema):
        field = next(f for f in schema["fields"] if f["name"] != "meta")
        field["type"] = "long"

    changed = _edit(repo, "omc.tx.TxSigned", retype)
    problems = check_against(changed, history.released(repo), "git history")

    assert problems
    assert all(p.startswith("omc.tx.TxSigned:") for p in problems)


def test_a_released_version_committed_later_still_binds(repo: Path) -> None:
    def add_optional(schema):
        schema["fields"].append(
            {"name": "priority", "type": ["null", "int"], "default": None, "doc": "new"})

    _edit(repo, "omc.task.TaskSubmitted", add_optional)
    _git(repo, "commit", "-qam", "release 2")

    def retype_priority(schema):
        schema["fields"][-1]["type"] = ["null", "string"]

    changed = _edit(repo, "omc.task.TaskSubmitted", retype_priority)

    assert any("priority" in p for p in check_against(changed, history.released(repo), "git"))


def test_removing_a_released_record_is_refused(repo: Path) -> None:
    (repo / "schemas" / "avro" / "omc" / "task" / "TaskCancelled.avsc").unlink()
    remaining = SchemaSet.load(repo / "schemas" / "avro")

    problems = check_against(remaining, history.released(repo), "git history")

    assert problems == ["omc.task.TaskCancelled: released in git history but removed; records "
                        "are never removed from the contract (deprecate it instead)"]
