"""Fixtures shared by every test folder."""

from __future__ import annotations

import pytest

from omc_config import Settings


@pytest.fixture(scope="session")
def settings() -> Settings:
    """The settings every process of the project would read from this environment."""
    return Settings.from_env()
