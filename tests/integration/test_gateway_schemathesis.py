"""Schemathesis against the served OpenAPI document of a gateway process on the real stack:
generated valid and invalid requests on every operation, with a key holding every scope.

Asserted: no 5xx on any request, and every answer conforms to the document (status codes,
media types, headers, bodies), including that invalid requests are refused. Not asserted:
that every schema-valid request is accepted, since some checks cannot be written in JSON
Schema (EIP-55 checksums, amounts above 2**256 - 1, a deadline in the past), nor that what a
command creates can be read at once (commands are asynchronous: 202, then projections).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from omc_config import Settings
from tests.integration import test_gateway as served
from tests.integration.test_gateway import make_keys, serve

pytestmark = pytest.mark.integration
database = served.database

CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_headers_conformance,response_schema_conformance,negative_data_rejection")


@pytest.mark.timeout(600)
def test_no_generated_request_gets_a_5xx_and_every_answer_conforms(
        database: str, settings: Settings, tmp_path: Path) -> None:
    tokens = make_keys(settings, database, ("fuzz",))
    for gateway in serve(database, tokens, tmp_path / "gateway.log"):
        result = subprocess.run(
            [str(Path(sys.executable).with_name("st")), "run", f"{gateway.url}/openapi.json",
             "--header", f"Authorization: Bearer {tokens['fuzz']}",
             "--checks", CHECKS, "--phases", "examples,coverage,fuzzing",
             "--max-examples", "25", "--max-time", "150", "--seed", "20261125",
             "--workers", "2", "--generation-database", "none", "--no-color",
             "--request-timeout", "20"],
            capture_output=True, text=True, timeout=480, check=False, cwd=tmp_path)
        assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-3000:]
        selected = re.search(r"Selected: (\d+)/(\d+)", result.stdout)
        tested = re.search(r"Tested: (\d+)", result.stdout)
        assert selected is not None, result.stdout[-5000:]
        assert tested is not None, result.stdout[-5000:]
        # every operation it selected was tested, none cut by the time budget
        assert int(tested.group(1)) == int(selected.group(1)) == int(selected.group(2)), \
            result.stdout[-5000:]
        server_errors = [line for line in gateway.log.read_text().splitlines()
                         if '"status": 5' in line and '"status": 503' not in line]
        assert server_errors == []
