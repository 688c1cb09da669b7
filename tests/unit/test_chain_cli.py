"""`omc chain`: the artifacts check from the command line, token amounts without floats, and a
rebuild with the pinned compiler giving the committed bytes exactly (when node and the pinned
solc are installed)."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from omc_chain.artifacts import ARTIFACTS_DIR, CONTRACTS, CONTRACTS_DIR, build_artifacts
from omc_cli.chain import _base_units
from omc_cli.main import cli
from omc_errors import OmcError


def test_build_check_passes_on_the_committed_artifacts() -> None:
    result = CliRunner().invoke(cli, ["chain", "build", "--check"])

    assert result.exit_code == 0, result.output
    assert "match their sources" in result.output


@pytest.mark.parametrize(("text", "units"), [
    ("1", 10**18), ("12.5", 125 * 10**17), ("0.000000000000000001", 1), ("0", 0),
    ("1000000", 10**24),
])
def test_token_amounts_become_exact_base_units(text, units) -> None:
    assert _base_units(text) == units


@pytest.mark.parametrize("text", ["-1", "0.0000000000000000001", "NaN", "inf", "ten", "1e-19"])
def test_bad_token_amounts_are_refused(text) -> None:
    with pytest.raises(OmcError):
        _base_units(text)


@pytest.mark.skipif(shutil.which("node") is None
                    or not (CONTRACTS_DIR / "node_modules" / "solc").exists(),
                    reason="the pinned solc is not installed (npm ci in deploy/contracts)")
def test_rebuilding_gives_the_committed_artifacts_byte_for_byte(tmp_path) -> None:
    build_artifacts(tmp_path, report=lambda line: None)

    for name in CONTRACTS:
        built = json.loads((tmp_path / f"{name}.json").read_text())
        committed = json.loads((ARTIFACTS_DIR / f"{name}.json").read_text())
        assert built == committed
