# ruff: noqa: F811 (fixtures imported from the integration conftest)
"""`python -m omc_notary` killed with SIGKILL in the middle of a stream of events and started
again: its checkpoints stay contiguous (each follows the previous one of its stream, no size
twice), cover every event in the end, and the log verifies."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from omc_audit.verify import verify_log
from omc_events.records import CheckpointSigned
from omc_proofs.checkpoint import checkpoint_problems
from tests.integration.conftest import fresh_topic, kafka_admin, stack  # noqa: F401
from tests.support.auditlog import AuditLog

pytestmark = pytest.mark.integration


def _checkpoints(log: AuditLog) -> dict[str, list[CheckpointSigned]]:
    found: dict[str, list[CheckpointSigned]] = {}
    for record in log.proof_records():
        if isinstance(record, CheckpointSigned):
            found.setdefault(record.stream_id, []).append(record)
    return found


def test_a_killed_notary_leaves_contiguous_checkpoints(settings, fresh_topic, tmp_path):
    log = AuditLog(settings, fresh_topic)
    key_file = tmp_path / "notary.key"
    key_file.write_text("22" * 32 + "\n")  # the key AuditLog signs with (log.key)
    env = {**os.environ, "OMC_NOTARY_TOPICS": ",".join(log.topics.events),
           "OMC_NOTARY_PROOF_TOPIC": log.topics.proof, "OMC_NOTARY_TX_TOPIC": log.tx_topic,
           "OMC_NOTARY_EVERY_EVENTS": "4", "OMC_NOTARY_EVERY_SECONDS": "1",
           "OMC_NOTARY_KEY_FILE": str(key_file)}

    def start() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "omc_notary"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    rng = random.Random(11)
    process = start()
    try:
        for _ in range(4):
            log.tasks(3, rng)
            time.sleep(0.3)
        deadline = time.monotonic() + 30  # until it has written something, then kill it
        while not _checkpoints(log) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _checkpoints(log), "the notary wrote nothing"
        log.tasks(3, rng)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        log.tasks(3, rng)  # written while it is down
        process = start()
        for _ in range(3):
            log.tasks(2, rng)
            time.sleep(0.3)
        sizes = _stream_sizes(log)
        deadline = time.monotonic() + 40  # until every event is covered (time trigger: 1 s)
        while time.monotonic() < deadline:
            last = {s: c[-1].tree_size for s, c in _checkpoints(log).items()}
            if last == sizes:
                break
            time.sleep(0.3)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)
    streams = _checkpoints(log)
    assert {s: c[-1].tree_size for s, c in streams.items()} == sizes
    for stream, checkpoints in streams.items():
        got = [c.tree_size for c in checkpoints]
        assert got == sorted(set(got)), f"{stream}: a size twice or out of order: {got}"
        assert [c.previous_tree_size for c in checkpoints] == [0, *got[:-1]], stream
        assert all(checkpoint_problems(c, [log.key.address]) == [] for c in checkpoints)
    report = verify_log(settings, log.topics, trusted=(log.key.address,))
    assert report.ok, [str(f) for f in report.findings]
    assert not report.notes


def _stream_sizes(log: AuditLog) -> dict[str, int]:
    """Events per stream of the task topic, now."""
    from omc_audit.source import partitions, read_partitions

    bootstrap = log.settings.kafka_bootstrap
    sizes = {}
    for p in partitions(bootstrap, log.topics.task):
        held = read_partitions(bootstrap, [(log.topics.task, p)])
        if held:
            sizes[f"{log.topics.task}:{p}"] = len(held)
    return sizes
