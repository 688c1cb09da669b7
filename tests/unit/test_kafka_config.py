from __future__ import annotations

import base64
from pathlib import Path

from omc_config import Settings
from omc_stack.components.kafka import new_cluster_id, render_config


def _properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines()
             if line.strip() and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def test_cluster_id_is_16_random_bytes_in_unpadded_base64url() -> None:
    first, second = new_cluster_id(), new_cluster_id()

    assert len(first) == 22
    assert "=" not in first
    assert len(base64.urlsafe_b64decode(first + "==")) == 16
    assert first != second


def test_broker_config_is_a_single_kraft_node_on_the_configured_loopback_ports() -> None:
    stack = Settings.from_env({"OMC_KAFKA_PORT": "29092",
                               "OMC_KAFKA_CONTROLLER_PORT": "29093"}).stack

    config = _properties(render_config(stack, Path("/data/kafka")))

    assert config["process.roles"] == "broker,controller"
    assert config["controller.quorum.voters"] == "1@127.0.0.1:29093"
    assert config["listeners"] == "PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093"
    assert config["advertised.listeners"] == "PLAINTEXT://127.0.0.1:29092"
    assert config["log.dirs"] == "/data/kafka"


def test_broker_config_never_auto_creates_topics_and_fits_one_node() -> None:
    config = _properties(render_config(Settings.from_env({}).stack, Path("/d")))

    assert config["auto.create.topics.enable"] == "false"
    for key in ("offsets.topic.replication.factor", "transaction.state.log.replication.factor",
                "transaction.state.log.min.isr", "share.coordinator.state.topic.replication.factor",
                "share.coordinator.state.topic.min.isr", "default.replication.factor"):
        assert config[key] == "1", key
