"""The proof index on fresh topics and a fresh database: inclusion proofs served from it
verify against the notary's signed roots, consistency proofs between checkpoints verify,
another tenant sees nothing, and a restart of the projector in the middle changes nothing."""

from __future__ import annotations

import random

import pytest

from omc_events.records import CheckpointSigned
from omc_proj_proofs import migrations, queries
from omc_proj_proofs.projector import ProofProjector
from omc_proofs.checkpoint import unhex32
from omc_proofs.merkle import verify_consistency, verify_inclusion
from tests.support.auditlog import AuditLog

pytestmark = pytest.mark.integration


def _projector(log: AuditLog, connect) -> ProofProjector:
    return ProofProjector(connect, log.settings.kafka_bootstrap, log.codec.decode,
                          log.topics.events, log.topics.proof, batch=7)


def test_proofs_served_from_the_index_verify(settings, fresh_topic, mysql_connect):
    log = AuditLog(settings, fresh_topic, task_partitions=1)
    migrations.apply(mysql_connect())
    log.tasks(3, random.Random(5))
    notary = log.notary(every_events=5)
    log.settle(notary)
    _, events = log.task(events=6)
    log.settle(notary, tick=61)
    notary.close()
    # a restart in the middle: the first projector stops after a few batches
    first = _projector(log, mysql_connect)
    first.start()
    first.step()
    first.step()
    first.close()
    second = _projector(log, mysql_connect)
    second.run_until_caught_up()
    second.close()
    db = mysql_connect()
    checkpoints = [r for r in log.proof_records() if isinstance(r, CheckpointSigned)]
    stream = f"{log.topics.task}:0"
    sizes = [c.tree_size for c in checkpoints if c.stream_id == stream]
    assert len(sizes) >= 2
    for event in events:
        item = queries.inclusion(db, "acme", event.meta.event_id)
        assert item is not None
        assert item["checkpoint"] is not None
        assert item["root_matches"]
        assert verify_inclusion(bytes.fromhex(event.meta.hash), item["leaf_index"],
                                item["tree_size"], [unhex32(h) for h in item["audit_path"]],
                                unhex32(item["checkpoint"]["root"]))
        assert queries.inclusion(db, "globex", event.meta.event_id) is None
    answer = queries.consistency(db, "acme", stream, sizes[0], sizes[-1])
    assert answer is not None
    assert answer["roots_match"]
    assert verify_consistency(sizes[0], sizes[-1], unhex32(answer["from"]["root"]),
                              unhex32(answer["to"]["root"]),
                              [unhex32(h) for h in answer["proof"]])
    assert queries.consistency(db, "acme", stream, sizes[0] + 1, sizes[-1]) is None
    assert queries.consistency(db, "globex", stream, sizes[0], sizes[-1]) is None
    cursor = db.cursor()
    cursor.execute("SELECT COUNT(*), COUNT(DISTINCT leaf_index) FROM proof_leaves")
    total, distinct = cursor.fetchone()
    assert total == distinct == sizes[-1]  # every leaf once, after the restart too
