from __future__ import annotations

import pytest

from omc_config import Settings
from omc_errors import ConfigError


def test_defaults_point_at_the_local_stack_on_non_standard_ports() -> None:
    settings = Settings.from_env({})

    assert settings.kafka_bootstrap == "127.0.0.1:19092"
    assert (settings.mysql.host, settings.mysql.port) == ("127.0.0.1", 13306)
    assert settings.redis_url == "redis://127.0.0.1:16379/0"
    assert settings.chain_rpc_url == "http://127.0.0.1:18545"
    assert settings.schema_registry_url == "http://127.0.0.1:18081"
    assert settings.chain_id == 31337
    assert settings.stack.dir.name == ".stack"


def test_ports_move_the_stack_and_the_client_addresses_together() -> None:
    settings = Settings.from_env({"OMC_KAFKA_PORT": "29092", "OMC_REDIS_PORT": "26379"})

    assert settings.stack.kafka_port == 29092
    assert settings.kafka_bootstrap == "127.0.0.1:29092"
    assert settings.redis_url == "redis://127.0.0.1:26379/0"


def test_explicit_client_addresses_win_over_the_local_stack() -> None:
    settings = Settings.from_env({
        "OMC_KAFKA_BOOTSTRAP": "kafka-0.prod:9092,kafka-1.prod:9092",
        "OMC_CHAIN_RPC_URL": "https://rpc.example.org",
    })

    assert settings.kafka_bootstrap == "kafka-0.prod:9092,kafka-1.prod:9092"
    assert settings.chain_rpc_url == "https://rpc.example.org"


def test_every_invalid_variable_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({
            "OMC_KAFKA_PORT": "kafka",
            "OMC_CHAIN_ID": "0",
            "OMC_REDIS_URL": "http://127.0.0.1:6379",
            "OMC_BLOCK_TIME": "-1",
            "OMC_KAFKA_HEAP": "lots",
            "OMC_MYSQL_DATABASE": "omc; DROP TABLE x",
        })

    problems = raised.value.problems
    assert len(problems) == 6
    for name in ("OMC_KAFKA_PORT", "OMC_CHAIN_ID", "OMC_REDIS_URL", "OMC_BLOCK_TIME",
                 "OMC_KAFKA_HEAP", "OMC_MYSQL_DATABASE"):
        assert any(problem.startswith(f"{name}=") for problem in problems), name
    assert "a port number (1-65535)" in str(raised.value)


def test_out_of_range_port_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"OMC_MYSQL_PORT='70000' is not a port number"):
        Settings.from_env({"OMC_MYSQL_PORT": "70000"})


def test_two_components_on_one_port_are_refused() -> None:
    with pytest.raises(ConfigError, match="OMC_REDIS_PORT and OMC_KAFKA_PORT are both 19092"):
        Settings.from_env({"OMC_REDIS_PORT": "19092"})


def test_the_mysql_password_never_shows_in_a_repr() -> None:
    settings = Settings.from_env({"OMC_MYSQL_PASSWORD": "s3cret-value"})

    assert settings.mysql.password == "s3cret-value"
    assert "s3cret-value" not in repr(settings)
    assert "s3cret-value" not in repr(settings.mysql)
