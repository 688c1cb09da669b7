"""omc_config.options.EnvOptions: a service's own variables, every problem named at once."""

from __future__ import annotations

import pytest

from omc_config.options import EnvOptions
from omc_errors import ConfigError


def test_defaults_when_unset_or_blank() -> None:
    read = EnvOptions({"OMC_X_BATCH": "  "})

    assert read.number("OMC_X_BATCH", 500, 1, 1000) == 500
    assert read.text("OMC_X_GROUP", "omc.x") == "omc.x"
    assert read.topic("OMC_X_TOPIC", "omc.commands.v1") == "omc.commands.v1"
    assert read.topics("OMC_X_TOPICS", ("a", "b")) == ("a", "b")
    read.check()


def test_every_bad_variable_is_named_in_one_error() -> None:
    read = EnvOptions({"OMC_X_BATCH": "many", "OMC_X_PORT": "70000",
                       "OMC_X_TOPIC": "bad topic", "OMC_X_TOPICS": "ok,b c",
                       "OMC_MYSQL_PORT": "nope"})
    read.number("OMC_X_BATCH", 500, 1, 1000)
    read.number("OMC_X_PORT", 80, 1, 65535)
    read.topic("OMC_X_TOPIC", "t")
    read.topics("OMC_X_TOPICS", ("t",))
    read.problem("OMC_X_PREFIX is wrong")

    with pytest.raises(ConfigError) as raised:
        read.check()

    problems = raised.value.problems
    assert "OMC_X_BATCH='many' is not an integer from 1 to 1000" in problems
    assert "OMC_X_PORT='70000' is not an integer from 1 to 65535" in problems
    assert "OMC_X_TOPIC='bad topic' is not a Kafka topic name" in problems
    assert "OMC_X_TOPICS: 'b c' is not a Kafka topic name" in problems
    assert "OMC_X_PREFIX is wrong" in problems
    assert any("OMC_MYSQL_PORT" in p for p in problems)  # the project's own settings too
    assert read.base.mysql.port == 13306  # defaults stand in for the invalid settings
