"""Reading the proof index: inclusion proofs for events, consistency proofs between
checkpoints. Synchronous; each function takes a connection first (the gateway runs it in a
worker thread on a pooled connection).

    inclusion(connection, tenant, event_id) -> dict | None    None: no such event for tenant
    consistency(connection, tenant, stream_id, first, second) -> dict | None
                                            None: either size is not a checkpoint of it, or
                                            the tenant has no event in the stream
    as_of(connection) -> dict                the projection's position

An inclusion proof is against the newest anchored checkpoint covering the event, else the
newest one; an event not covered yet answers with `checkpoint: null` and no path.
"""

from __future__ import annotations

from typing import Any

from omc_proofs.checkpoint import hex32, parse_stream_id
from omc_proofs.merkle import NodeTree

_CHECKPOINT = ("stream_id, tree_size, root, first_offset, last_offset, previous_tree_size, "
               "digest, signer, signature, event_id, anchor_chain_id, anchor_registry, "
               "anchor_tx_hash, anchor_block_number")


def _checkpoint(row: tuple) -> dict[str, Any]:
    (stream, size, root, first, last, previous, digest, signer, signature, event_id,
     chain_id, registry, tx_hash, block) = row
    anchor = None if tx_hash is None else {"chain_id": chain_id, "registry": registry,
                                           "tx_hash": tx_hash, "block_number": block}
    return {"stream_id": stream, "tree_size": size, "root": root, "first_offset": first,
            "last_offset": last, "previous_tree_size": previous, "digest": digest,
            "signer": signer, "signature": signature, "event_id": event_id, "anchor": anchor}


def _nodes(connection, stream: str, keys: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    if not keys:
        return {}
    cursor = connection.cursor()
    ordered = sorted(keys)
    marks = ", ".join(["(%s, %s)"] * len(ordered))
    cursor.execute(f"SELECT height, node_index, node_hash FROM proof_nodes WHERE stream_id = %s "  # noqa: S608 (placeholders only)
                   f"AND (height, node_index) IN ({marks})",
                   (stream, *[v for key in ordered for v in key]))
    return {(int(h), int(i)): bytes(v) for h, i, v in cursor.fetchall()}


def inclusion(connection, tenant: str, event_id: str) -> dict[str, Any] | None:
    cursor = connection.cursor()
    cursor.execute("SELECT stream_id, leaf_index, log_offset, tenant, event_hash FROM "
                   "proof_leaves WHERE event_id = %s ORDER BY leaf_index LIMIT 1", (event_id,))
    row = cursor.fetchone()
    if row is None or row[3] != tenant:
        return None
    stream, index, offset, _, event_hash = row
    topic, partition = parse_stream_id(stream)
    item: dict[str, Any] = {"event_id": event_id, "stream_id": stream, "topic": topic,
                            "partition": partition, "offset": int(offset),
                            "leaf_index": int(index), "leaf": event_hash, "tree_size": None,
                            "audit_path": [], "checkpoint": None}
    cursor.execute(f"SELECT {_CHECKPOINT} FROM proof_checkpoints WHERE stream_id = %s AND "  # noqa: S608
                   "tree_size > %s ORDER BY anchor_tx_hash IS NULL, tree_size DESC LIMIT 1",
                   (stream, index))
    found = cursor.fetchone()
    if found is None:
        return item
    checkpoint = _checkpoint(found)
    size = checkpoint["tree_size"]

    def proof(tree):
        return tree.inclusion_proof(index), tree.root()

    keys = NodeTree.needed(size, proof)
    nodes = _nodes(connection, stream, keys)
    if len(nodes) < len(keys):  # the index is behind the checkpoint: not served yet
        return item
    path, root = proof(NodeTree(size, nodes))
    item.update(tree_size=size, audit_path=[hex32(h) for h in path], checkpoint=checkpoint,
                root_matches=hex32(root) == checkpoint["root"])
    return item


def consistency(connection, tenant: str, stream: str, first: int,
                second: int) -> dict[str, Any] | None:
    cursor = connection.cursor()
    cursor.execute("SELECT 1 FROM proof_leaves WHERE stream_id = %s AND tenant = %s LIMIT 1",
                   (stream, tenant))
    if cursor.fetchone() is None:
        return None
    cursor.execute(f"SELECT {_CHECKPOINT} FROM proof_checkpoints WHERE stream_id = %s AND "  # noqa: S608
                   "tree_size IN (%s, %s)", (stream, first, second))
    found = {row[1]: _checkpoint(row) for row in cursor.fetchall()}
    if first not in found or second not in found or first > second:
        return None

    def proof(tree):
        return tree.consistency_proof(first), tree.root(first), tree.root()

    keys = NodeTree.needed(second, proof)
    nodes = _nodes(connection, stream, keys)
    if len(nodes) < len(keys):
        return None
    path, old_root, root = proof(NodeTree(second, nodes))
    return {"stream_id": stream, "from": found[first], "to": found[second],
            "proof": [hex32(h) for h in path],
            "roots_match": (hex32(old_root), hex32(root)) == (found[first]["root"],
                                                              found[second]["root"])}


def as_of(connection) -> dict[str, Any]:
    cursor = connection.cursor()
    cursor.execute("SELECT topic, kafka_partition, next_offset FROM proof_offsets")
    return {"projection": "proj_proofs",
            "offsets": {f"{t}:{p}": int(o) for t, p, o in cursor.fetchall()},
            "updated_at": None}
