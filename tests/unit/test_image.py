"""The Dockerfile builds one non-root image whose entrypoint runs any service by name."""

from __future__ import annotations

import importlib.util
import re

import pytest

from omc_cli import service
from omc_cli.main import cli
from omc_config.settings import REPO_ROOT

DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()
STAGES = re.split(r"(?m)^FROM ", DOCKERFILE)[1:]
IGNORED = [line.strip() for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
           if line.strip() and not line.startswith("#")]


def _instructions(stage: str, keyword: str) -> list[str]:
    return re.findall(rf"(?m)^{keyword} (.+)$", stage)


def test_the_image_is_built_in_two_stages_on_python_3_11_slim() -> None:
    assert re.search(r"(?m)^ARG PYTHON_IMAGE=python:3\.11-slim$", DOCKERFILE)
    assert [stage.split()[0] for stage in STAGES] == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]
    assert STAGES[0].split()[2] == "build"
    assert STAGES[1].split()[2] == "runtime"


def test_the_runtime_stage_has_no_compiler_and_runs_as_a_numeric_non_root_user() -> None:
    runtime = STAGES[1]
    (user,) = _instructions(runtime, "USER")

    assert "build-essential" in STAGES[0]
    assert not re.search(r"build-essential|gcc|apt-get install", runtime)
    assert re.fullmatch(r"[1-9]\d{3,}:[1-9]\d{3,}", user)


def test_the_runtime_stage_copies_the_virtualenv_and_the_schemas_it_points_at() -> None:
    runtime = STAGES[1]

    assert "COPY --from=build /opt/omc/venv /opt/omc/venv" in runtime
    assert "COPY schemas /opt/omc/schemas" in runtime
    assert "OMC_SCHEMAS_DIR=/opt/omc/schemas" in runtime
    assert _instructions(runtime, "ENTRYPOINT") == ['["python", "-m", "omc_cli.service"]']


def test_the_build_context_holds_only_what_the_image_copies() -> None:
    copied = {source for line in _instructions(DOCKERFILE, "COPY")
              if not line.startswith("--from") for source in line.split()[:-1]}

    assert IGNORED[0] == "*"
    kept = {entry.strip("!/") for entry in IGNORED if entry.startswith("!")}

    assert kept == {"pyproject.toml", "README.md", "libs", "services", "projections", "schemas"}
    assert copied == kept


@pytest.mark.parametrize(("name", "module"), sorted(service.MODULES.items()))
def test_every_service_the_entrypoint_names_is_a_package_of_this_project(name, module) -> None:
    spec = importlib.util.find_spec(f"{module}.__main__")

    assert spec is not None, f"{name}: python -m {module} has no __main__"


def test_every_job_is_a_command_of_the_cli() -> None:
    for name, words in service.JOBS.items():
        command = cli
        for word in words:
            command = command.commands[word]  # KeyError: the job names no command
        assert command is not None, name


def test_an_unknown_name_is_refused_with_the_list_of_names(capsys) -> None:
    assert service.main(["gatewya"]) == 2
    err = capsys.readouterr().err
    assert "unknown service 'gatewya'" in err
    assert "proj-mysql" in err


def test_no_name_prints_the_usage_and_fails_but_help_succeeds(capsys) -> None:
    assert service.main([]) == 2
    assert service.main(["--help"]) == 0
    assert "services: gateway, runtime" in capsys.readouterr().out


def test_omc_runs_any_command_of_the_cli() -> None:
    with pytest.raises(SystemExit) as stopped:
        service.main(["omc", "k8s", "--help"])

    assert stopped.value.code == 0


def test_the_dev_key_is_refused_on_any_chain_but_anvils(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("OMC_STACK_DIR", str(tmp_path))
    monkeypatch.setenv("OMC_CHAIN_ID", "1")

    assert service.main(["dev-key"]) == 2
    assert "31337" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.key"))
