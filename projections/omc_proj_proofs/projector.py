"""Folding the log into the proof index.

    consumes   the event topics the notary covers, and omc.proof.events.v1; every partition,
               assigned by this process (no group), from the offsets stored in MySQL
    writes     per event message: its leaf and the subtrees it completes; per
               CheckpointSigned: the checkpoint; per AnchorConfirmed: the anchor on it
    guarantee  one MySQL transaction per batch holds the rows and the new offsets
    traces     while tracing is on, a CONSUMER span `index <event type>` per record it indexes
               (child of the trace context its envelope carries; attributes omc.projection
               "proofs", omc.stream_id, omc.leaf_index for a leaf), and the record's ids on
               every log line written meanwhile (`omc_obs.handling`); while tracing is off,
               one check per batch

`ProofProjector(connect, bootstrap, decode, event_topics, proof_topic).run_until_caught_up()`
(tests, replays) or `.run(stop)`. The frontier (the newest node of each height per stream) is
read back from MySQL on start.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from omc_events.records import AnchorConfirmed, AnchorSubmitted, CheckpointSigned
from omc_obs import tracing
from omc_obs.handling import bound_to, handling
from omc_proofs.checkpoint import stream_id
from omc_proofs.leaves import leaf_data
from omc_proofs.merkle import leaf_hash, node_hash

log = logging.getLogger(__name__)
PROJECTION = "proofs"

class _Stream:
    def __init__(self, size: int, frontier: dict[int, bytes]) -> None:
        self.size = size
        self.frontier = frontier  # height -> newest complete node of that height


class ProofProjector:
    def __init__(self, connect: Callable[[], Any], bootstrap: str,
                 decode: Callable[[bytes], Any], event_topics: Sequence[str],
                 proof_topic: str, batch: int = 2000) -> None:
        self.connect = connect
        self.bootstrap = bootstrap
        self.decode = decode
        self.event_topics = tuple(event_topics)
        self.proof_topic = proof_topic
        self.batch = batch
        self.streams: dict[str, _Stream] = {}
        self.registries: dict[str, str] = {}  # request_id -> registry (AnchorSubmitted)
        self.db = connect()
        self.consumer: Consumer | None = None
        self.positions: dict[tuple[str, int], int] = {}

    # -- start -----------------------------------------------------------------------------

    def start(self) -> None:
        consumer = self.consumer = Consumer({
            "bootstrap.servers": self.bootstrap,
            "group.id": f"omc.proj.proofs.{uuid.uuid4().hex}", "enable.auto.commit": False,
            "enable.partition.eof": False, "isolation.level": "read_committed"})
        cursor = self.db.cursor()
        cursor.execute("SELECT topic, kafka_partition, next_offset FROM proof_offsets")
        stored = {(t, p): o for t, p, o in cursor.fetchall()}
        assignment = []
        for topic in (*self.event_topics, self.proof_topic):
            metadata = consumer.list_topics(topic, timeout=10).topics[topic]
            if metadata.error is not None:
                raise KafkaException(metadata.error)
            for p in sorted(metadata.partitions):
                offset = stored.get((topic, p), 0)
                self.positions[(topic, p)] = offset
                assignment.append(TopicPartition(topic, p, offset))
        consumer.assign(assignment)
        self.db.commit()

    def _stream(self, key: str) -> _Stream:
        found = self.streams.get(key)
        if found is None:
            cursor = self.db.cursor()
            cursor.execute("SELECT COUNT(*) FROM proof_leaves WHERE stream_id = %s", (key,))
            size = int(cursor.fetchone()[0])
            frontier = {}
            height = 0
            while (size >> height) > 0:
                cursor.execute("SELECT node_hash FROM proof_nodes WHERE stream_id = %s AND "
                               "height = %s AND node_index = %s",
                               (key, height, (size >> height) - 1))
                row = cursor.fetchone()
                if row is not None:
                    frontier[height] = bytes(row[0])
                height += 1
            found = self.streams[key] = _Stream(size, frontier)
        return found

    # -- batches ---------------------------------------------------------------------------

    def step(self, timeout: float = 0.5) -> int:
        assert self.consumer is not None, "start() first"
        messages = self.consumer.consume(self.batch, timeout)
        leaves, nodes, checkpoints, anchors = [], [], [], []
        traced = tracing.enabled()
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(error)
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            self.positions[(topic, partition)] = offset + 1
            value = message.value() or b""
            try:
                record = self.decode(value)
            except Exception:  # undecodable: still a leaf (omc_proofs.leaves), no metadata
                record = None
            meta = getattr(record, "meta", None)
            if topic == self.proof_topic:
                if traced and meta is not None:
                    with self._handling(record, meta):
                        self._proof(record, checkpoints, anchors)
                else:
                    self._proof(record, checkpoints, anchors)
                continue
            key = stream_id(topic, partition)
            stream = self._stream(key)
            if traced and meta is not None:  # a span per leaf, only while tracing is on
                with self._handling(record, meta, **{"omc.stream_id": key,
                                                     "omc.leaf_index": stream.size}):
                    self._leaf(key, stream, offset, meta, value, leaves, nodes)
            else:
                self._leaf(key, stream, offset, meta, value, leaves, nodes)
        if messages:
            self._write(leaves, nodes, checkpoints, anchors)
        return len(messages)

    def _leaf(self, key: str, stream: _Stream, offset: int, meta: Any, value: bytes,
              leaves: list, nodes: list) -> None:
        """Add the message at `offset` as the stream's next leaf."""
        data = leaf_data(value)
        index = stream.size
        leaves.append((key, index, offset, meta.event_id if meta else None,
                       meta.tenant if meta else None, data.hex()))
        hashed = leaf_hash(data)
        nodes.append((key, 0, index, hashed))
        stream.size += 1
        self._complete(key, stream, index, hashed, nodes)

    @staticmethod
    def _handling(record: Any, meta: Any, **attributes: Any):
        """The span (and log fields) of indexing `record`."""
        return handling(record, f"index {meta.event_type}", **{"omc.projection": PROJECTION},
                        **attributes)

    @staticmethod
    def _complete(key: str, stream: _Stream, index: int, hashed: bytes, nodes: list) -> None:
        """Record the subtrees leaf `index` completes: while the newest node is a right
        child, its left sibling is the frontier's node of that height."""
        node, height, position = hashed, 0, index
        while True:
            left = stream.frontier.get(height) if position & 1 else None
            stream.frontier[height] = node
            if left is None:
                return
            node = node_hash(left, node)
            height += 1
            position >>= 1
            nodes.append((key, height, position, node))

    def _proof(self, record: Any, checkpoints: list, anchors: list) -> None:
        if isinstance(record, (CheckpointSigned, AnchorSubmitted, AnchorConfirmed)):
            with bound_to(record):  # few records: their ids on the lines, traced or not
                self._proof_record(record, checkpoints, anchors)

    def _proof_record(self, record: Any, checkpoints: list, anchors: list) -> None:
        if isinstance(record, CheckpointSigned):
            checkpoints.append((record.stream_id, record.tree_size, record.root,
                                record.first_offset, record.last_offset,
                                record.previous_tree_size, record.digest, record.signer,
                                record.signature, record.meta.event_id))
        elif isinstance(record, AnchorSubmitted):
            self.registries[record.request_id] = record.anchor_address
        elif isinstance(record, AnchorConfirmed):
            registry = self.registries.get(record.request_id)
            if registry is None:
                log.warning("anchor of %s at tree size %d confirmed in %s without its "
                            "AnchorSubmitted (request %s): its registry stays unknown",
                            record.stream_id, record.tree_size, record.tx_hash,
                            record.request_id)
            anchors.append((record.chain_id, registry, record.tx_hash, record.block_number,
                            record.stream_id, record.tree_size, record.root))

    def _write(self, leaves, nodes, checkpoints, anchors) -> None:
        cursor = self.db.cursor()
        if leaves:
            cursor.executemany(
                "INSERT IGNORE INTO proof_leaves (stream_id, leaf_index, log_offset, event_id, "
                "tenant, event_hash) VALUES (%s, %s, %s, %s, %s, %s)", leaves)
        if nodes:
            cursor.executemany(
                "INSERT IGNORE INTO proof_nodes (stream_id, height, node_index, node_hash) "
                "VALUES (%s, %s, %s, %s)", nodes)
        if checkpoints:
            cursor.executemany(
                "INSERT IGNORE INTO proof_checkpoints (stream_id, tree_size, root, first_offset,"
                " last_offset, previous_tree_size, digest, signer, signature, event_id) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", checkpoints)
        for anchor in anchors:
            cursor.execute(
                "UPDATE proof_checkpoints SET anchor_chain_id = %s, anchor_registry = %s, "
                "anchor_tx_hash = %s, anchor_block_number = %s WHERE stream_id = %s AND "
                "tree_size = %s AND root = %s", anchor)
        cursor.executemany(
            "INSERT INTO proof_offsets (topic, kafka_partition, next_offset) VALUES (%s, %s, %s)"
            " ON DUPLICATE KEY UPDATE next_offset = VALUES(next_offset)",
            [(t, p, o) for (t, p), o in self.positions.items()])
        self.db.commit()

    def caught_up(self) -> bool:
        assert self.consumer is not None
        return all(self.positions[(t, p)] >= self.consumer.get_watermark_offsets(
            TopicPartition(t, p), timeout=10, cached=False)[1] for t, p in self.positions)

    def run_until_caught_up(self) -> None:
        if self.consumer is None:
            self.start()
        while not self.caught_up():
            self.step()

    def run(self, stop: Callable[[], bool]) -> None:
        self.start()
        try:
            while not stop():
                self.step()
        finally:
            self.close()

    def close(self) -> None:
        if self.consumer is not None:
            self.consumer.close()
            self.consumer = None
        self.db.close()
