"""omc_proofs.merkle against a naive recursive RFC 6962 reference, on random trees 1..300."""

from __future__ import annotations

import hashlib
import random

import pytest

from omc_proofs.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    root_of,
    verify_consistency,
    verify_inclusion,
)


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def ref_root(leaves: list[bytes]) -> bytes:
    n = len(leaves)
    if n == 0:
        return _h(b"")
    if n == 1:
        return _h(b"\x00" + leaves[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return _h(b"\x01" + ref_root(leaves[:k]) + ref_root(leaves[k:]))


def ref_path(m: int, leaves: list[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*ref_path(m, leaves[:k]), ref_root(leaves[k:])]
    return [*ref_path(m - k, leaves[k:]), ref_root(leaves[:k])]


def ref_subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [ref_root(leaves)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*ref_subproof(m, leaves[:k], whole), ref_root(leaves[k:])]
    return [*ref_subproof(m - k, leaves[k:], False), ref_root(leaves[:k])]


def _leaves(rng: random.Random, n: int) -> list[bytes]:
    return [rng.randbytes(32) for _ in range(n)]


def _flip(rng: random.Random, data: bytes) -> bytes:
    i = rng.randrange(len(data))
    return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1:]


def test_empty_and_known_vectors():
    assert root_of([]) == EMPTY_ROOT == _h(b"")
    assert root_of([b"a"]) == _h(b"\x00a")
    assert root_of([b"a", b"b"]) == _h(b"\x01" + _h(b"\x00a") + _h(b"\x00b"))


def test_roots_and_proofs_match_the_reference_and_verify():
    rng = random.Random(7)
    leaves = _leaves(rng, 300)
    tree = MerkleTree()
    for n in range(1, 301):
        tree.append(leaves[n - 1])
        prefix = leaves[:n]
        root = tree.root()
        for m in range(n):  # every leaf's proof verifies
            assert verify_inclusion(leaves[m], m, n, tree.inclusion_proof(m), root)
        for m in range(1, n + 1):  # every (m, n) consistency proof verifies
            assert verify_consistency(m, n, tree.root(m), root, tree.consistency_proof(m))
        if n > 24 and n % 23:  # the naive reference: every size to 24, then a sample
            continue
        assert root == ref_root(prefix)
        for m in rng.sample(range(n), min(n, 6)):
            assert tree.inclusion_proof(m) == ref_path(m, prefix)
            assert tree.consistency_proof(m + 1) == (
                ref_subproof(m + 1, prefix, True) if m + 1 < n else [])


@pytest.mark.parametrize("seed", range(3))
def test_any_altered_byte_fails(seed):
    rng = random.Random(100 + seed)
    for _ in range(100):
        n = rng.randint(1, 300)
        leaves = _leaves(rng, n)
        tree = MerkleTree(leaves)
        root = tree.root()
        m = rng.randrange(n)
        path = tree.inclusion_proof(m)
        assert not verify_inclusion(_flip(rng, leaves[m]), m, n, path, root)
        assert not verify_inclusion(leaves[m], m, n, path, _flip(rng, root))
        if path:
            i = rng.randrange(len(path))
            bad = [*path[:i], _flip(rng, path[i]), *path[i + 1:]]
            assert not verify_inclusion(leaves[m], m, n, bad, root)
            assert not verify_inclusion(leaves[m], m, n, path[:-1], root)
        if n > 1:
            other = (m + 1 + rng.randrange(n - 1)) % n
            assert not verify_inclusion(leaves[m], other, n, path, root)
        old = rng.randint(1, n)
        proof = tree.consistency_proof(old)
        old_root = tree.root(old)
        assert verify_consistency(old, n, old_root, root, proof)
        assert not verify_consistency(old, n, _flip(rng, old_root), root, proof)
        assert not verify_consistency(old, n, old_root, _flip(rng, root), proof)
        if proof:
            i = rng.randrange(len(proof))
            bad = [*proof[:i], _flip(rng, proof[i]), *proof[i + 1:]]
            assert not verify_consistency(old, n, old_root, root, bad)
        if old < n:
            # a different old tree (one leaf changed) is not a prefix of this one
            changed = MerkleTree([*leaves[:old - 1], _flip(rng, leaves[old - 1])])
            assert not verify_consistency(old, n, changed.root(), root, proof)


def test_bad_sizes():
    tree = MerkleTree([b"x"] * 5)
    with pytest.raises(ValueError, match="not in a tree"):
        tree.inclusion_proof(5)
    with pytest.raises(ValueError, match="leaves"):
        tree.root(6)
    assert not verify_inclusion(b"x", 5, 5, [], tree.root())
    assert not verify_consistency(6, 5, tree.root(), tree.root(), [])
    assert not verify_consistency(3, 5, tree.root(3), tree.root(), [])


def test_proofs_from_stored_nodes_equal_the_full_trees():
    from omc_proofs.merkle import NodeTree

    rng = random.Random(3)
    leaves = _leaves(rng, 200)
    tree = MerkleTree(leaves)
    stored = {(h, i): tree.node(h, i) for h in range(8) for i in range(200 >> h)}
    for _ in range(60):
        n = rng.randint(1, 200)
        m = rng.randrange(n)
        keys = NodeTree.needed(n, lambda t, m=m: t.inclusion_proof(m))
        assert len(keys) <= 2 * n.bit_length()
        nodes = NodeTree(n, {k: stored[k] for k in keys})
        assert nodes.inclusion_proof(m) == tree.inclusion_proof(m, n)
        old = rng.randint(1, n)
        keys = NodeTree.needed(n, lambda t, old=old: (t.consistency_proof(old), t.root(old),
                                                      t.root()))
        nodes = NodeTree(n, {k: stored[k] for k in keys})
        assert nodes.consistency_proof(old) == tree.consistency_proof(old, n)
        assert nodes.root() == tree.root(n)
