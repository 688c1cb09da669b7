"""RFC 6962 / RFC 9162 Merkle trees over a stream's event hashes, and their proofs.

    leaf_hash(data)  = SHA-256(0x00 || data)          data: the envelope `hash` (32 bytes)
    node_hash(l, r)  = SHA-256(0x01 || l || r)
    MTH([])          = SHA-256(b"")
    MTH(D[n])        = node_hash(MTH(D[0:k]), MTH(D[k:n])), k the largest power of 2 < n

`MerkleTree` is append-only and keeps every complete, aligned power-of-two subtree, so roots
and proofs for any size up to the current one cost O(log n) hashes. The proofs are RFC 9162's
(§2.1.3 inclusion, §2.1.4 consistency); `verify_inclusion` and `verify_consistency` are its
verification algorithms, which need nothing but the proof, the sizes and the roots.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleTree:
    """An append-only tree of leaves; roots and proofs for every size up to `size`."""

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]  # _levels[h][i]: hash of leaves [i*2^h, (i+1)*2^h)
        for leaf in leaves:
            self.append(leaf)

    @classmethod
    def of_leaves(cls, leaves: Sequence[bytes]) -> MerkleTree:
        """The tree of `leaves` (leaf data, as `append` takes), built level by level: the
        same tree as appending them one by one, with far less Python per leaf."""
        tree = cls()
        sha = hashlib.sha256
        row = [sha(b"\x00" + data).digest() for data in leaves]
        tree._levels = [row]
        while len(row) >= 2:
            row = [sha(b"\x01" + row[i] + row[i + 1]).digest()
                   for i in range(0, len(row) - 1, 2)]
            tree._levels.append(row)
        return tree

    @classmethod
    def of_levels(cls, levels: list[list[bytes]]) -> MerkleTree:
        """A tree from another tree's `levels` (built elsewhere, e.g. another process)."""
        tree = cls()
        tree._levels = levels
        return tree

    @property
    def levels(self) -> list[list[bytes]]:
        """Every complete aligned subtree: levels[h][i] covers leaves [i*2^h, (i+1)*2^h)."""
        return self._levels

    @property
    def size(self) -> int:
        return len(self._levels[0])

    def append(self, data: bytes) -> None:
        """Add a leaf (its data, e.g. a 32-byte event hash; hashed here with 0x00)."""
        self.append_hash(leaf_hash(data))

    def append_hash(self, hashed: bytes) -> None:
        """Add a leaf by its leaf hash."""
        levels = self._levels
        levels[0].append(hashed)
        height = 0
        while len(levels[height]) % 2 == 0:
            if len(levels) == height + 1:
                levels.append([])
            row = levels[height]
            levels[height + 1].append(node_hash(row[-2], row[-1]))
            height += 1

    def leaf(self, index: int) -> bytes:
        """The leaf hash at `index`."""
        return self._levels[0][index]

    def node(self, height: int, index: int) -> bytes:
        """The complete aligned subtree of 2^height leaves starting at index * 2^height."""
        return self._levels[height][index]

    def _subtree(self, start: int, n: int) -> bytes:
        """MTH of leaves [start, start + n)."""
        if n & (n - 1) == 0 and start % n == 0:
            height = n.bit_length() - 1
            return self.node(height, start >> height)
        k = _split(n)
        return node_hash(self._subtree(start, k), self._subtree(start + k, n - k))

    def root(self, size: int | None = None) -> bytes:
        """The root of the first `size` leaves (all by default)."""
        size = self.size if size is None else size
        self._check(size)
        return EMPTY_ROOT if size == 0 else self._subtree(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 PATH(index, D[0:size]): the audit path of leaf `index`."""
        size = self.size if size is None else size
        self._check(size)
        if not 0 <= index < size:
            raise ValueError(f"leaf {index} is not in a tree of {size}")
        path: list[bytes] = []
        start, n, m = 0, size, index
        while n > 1:
            k = _split(n)
            if m < k:
                path.append(self._subtree(start + k, n - k))
                n = k
            else:
                path.append(self._subtree(start, k))
                start, n, m = start + k, n - k, m - k
        path.reverse()
        return path

    def consistency_proof(self, old_size: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 PROOF(old_size, D[0:size]); empty when old_size is 0 or equals size."""
        size = self.size if size is None else size
        self._check(size)
        if not 0 <= old_size <= size:
            raise ValueError(f"no consistency proof from {old_size} to {size}")
        if old_size in (0, size):
            return []
        path: list[bytes] = []
        start, n, m, whole = 0, size, old_size, True
        while m != n:
            k = _split(n)
            if m <= k:
                path.append(self._subtree(start + k, n - k))
                n = k
            else:
                path.append(self._subtree(start, k))
                start, n, m, whole = start + k, n - k, m - k, False
        if not whole:
            path.append(self._subtree(start, m))
        path.reverse()
        return path

    def _check(self, size: int) -> None:
        if not 0 <= size <= self.size:
            raise ValueError(f"the tree has {self.size} leaves, not {size}")


class NodeTree(MerkleTree):
    """Proofs for a tree of `size` leaves from stored complete aligned subtrees (what a
    projection keeps): `nodes[(height, index)]`. `needed(...)` names the nodes a proof reads,
    so a store fetches just those (O(log n) of them)."""

    def __init__(self, size: int, nodes: Mapping[tuple[int, int], bytes]) -> None:
        super().__init__()
        self._size = size
        self._nodes = nodes

    @property
    def size(self) -> int:
        return self._size

    def append_hash(self, hashed: bytes) -> None:
        raise TypeError("a NodeTree is read-only")

    def node(self, height: int, index: int) -> bytes:
        return self._nodes[(height, index)]

    def leaf(self, index: int) -> bytes:
        return self.node(0, index)

    @staticmethod
    def needed(size: int, call: Callable[[MerkleTree], object]) -> set[tuple[int, int]]:
        """The (height, index) keys `call(tree)` reads on a tree of `size` leaves."""
        wanted: set[tuple[int, int]] = set()

        class _Recorder(dict):
            def __missing__(self, key: tuple[int, int]) -> bytes:
                wanted.add(key)
                return EMPTY_ROOT

        call(NodeTree(size, _Recorder()))
        return wanted


def root_of(leaves: Sequence[bytes]) -> bytes:
    """MTH of leaf data (each hashed with 0x00)."""
    return MerkleTree(leaves).root()


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes],
                     root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: does `path` prove leaf data `leaf` at `index` in the tree `root`?"""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf_hash(leaf)
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(old_size: int, size: int, old_root: bytes, root: bytes,
                       path: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: does `path` prove the tree `old_root` is a prefix of `root`?"""
    if old_size < 0 or old_size > size:
        return False
    if old_size == size:
        return not path and old_root == root
    if old_size == 0:
        return not path
    if not path:
        return False
    proof = list(path)
    if old_size & (old_size - 1) == 0:
        proof.insert(0, old_root)
    fn, sn = old_size - 1, size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == root
