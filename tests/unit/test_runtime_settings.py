"""The agent runtime's settings: defaults for the local stack, every bad value named."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from omc_errors import ConfigError
from omc_runtime.app import attestor_from
from omc_runtime.settings import RuntimeSettings


def test_the_defaults_run_the_offline_planner_with_a_local_attestation_key() -> None:
    settings = RuntimeSettings.from_env({})

    assert settings.llm == "local"
    assert settings.attestor_key_is_local
    assert settings.attestor_key_file == settings.base.stack.dir / "runtime" / "attestor.key"
    assert (settings.wall_seconds, settings.approval_seconds) == (600, 3600)
    assert settings.metrics_port == settings.base.stack.runtime_metrics_port


def test_an_openai_compatible_endpoint_with_prices() -> None:
    settings = RuntimeSettings.from_env({
        "OMC_RUNTIME_LLM": "openai", "OMC_RUNTIME_LLM_BASE_URL": "http://127.0.0.1:8000/v1",
        "OMC_RUNTIME_LLM_PRICES": "gpt-4o-mini=0.00015:0.0006,local=0:0"})

    assert settings.llm_base_url == "http://127.0.0.1:8000/v1"
    assert settings.llm_prices["gpt-4o-mini"] == (Decimal("0.00015"), Decimal("0.0006"))


def test_every_bad_value_is_named_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        RuntimeSettings.from_env({"OMC_RUNTIME_LLM": "magic", "OMC_RUNTIME_WALL_SECONDS": "0",
                                  "OMC_RUNTIME_LLM_PRICES": "gpt=cheap"})
    text = str(caught.value)
    assert "OMC_RUNTIME_LLM='magic'" in text
    assert "OMC_RUNTIME_WALL_SECONDS" in text
    assert "OMC_RUNTIME_LLM_PRICES" in text


def test_a_configured_key_file_must_exist_and_only_the_local_one_is_made(
        tmp_path: Path) -> None:
    configured = RuntimeSettings.from_env(
        {"OMC_RUNTIME_ATTESTOR_KEY_FILE": str(tmp_path / "mounted" / "key")})
    assert not configured.attestor_key_is_local
    with pytest.raises(ConfigError):
        attestor_from(configured.attestor_key_file, make=False)

    local = tmp_path / "runtime" / "attestor.key"
    made = attestor_from(local, make=True)
    assert local.stat().st_mode & 0o777 == 0o600
    assert attestor_from(local, make=False).address == made.address  # the same key again
