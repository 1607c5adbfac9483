"""RFC 9162 Merkle tree hashing: tree heads, inclusion and consistency proofs and their checks.

Leaves are hashed as SHA-256(0x00 || data), interior nodes as SHA-256(0x01 || left || right); the
tree over n leaves splits at the largest power of two smaller than n (RFC 9162 section 2.1).
Proofs are built over a `Subtrees` source, which answers the hash of a perfect, aligned subtree
(2^level leaves starting at a multiple of 2^level): a list in memory, or the ledger's stored
interior nodes, so a proof over a million leaves needs O(log^2 n) lookups.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class Subtrees(Protocol):
    """Hashes of perfect aligned subtrees: `subtree(level, pos)` covers leaves
    [pos * 2^level, (pos + 1) * 2^level)."""

    def subtree(self, level: int, pos: int) -> bytes: ...


class LeafList:
    """Subtrees of an in-memory list of leaf hashes, every level computed once and kept."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.levels: list[list[bytes]] = [list(leaves)]
        while len(self.levels[-1]) > 1:
            below = self.levels[-1]
            self.levels.append(
                [node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
            )

    def subtree(self, level: int, pos: int) -> bytes:
        return self.levels[level][pos]


def mth(source: Subtrees, start: int, end: int) -> bytes:
    """MTH(D[start:end]) where `start` is aligned as RFC 9162's recursion leaves it."""
    n = end - start
    if n == 0:
        return EMPTY_ROOT
    if n & (n - 1) == 0 and start % n == 0:
        return source.subtree(n.bit_length() - 1, start // n)
    k = split_point(n)
    return node_hash(mth(source, start, start + k), mth(source, start + k, end))


def root(source: Subtrees, size: int) -> bytes:
    return mth(source, 0, size)


def inclusion_path(source: Subtrees, index: int, size: int) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 9162 2.1.3.1, from the leaf's sibling upwards."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    return _path(source, index, 0, size)


def _path(source: Subtrees, m: int, start: int, end: int) -> list[bytes]:
    n = end - start
    if n <= 1:
        return []
    k = split_point(n)
    if m < k:
        return [*_path(source, m, start, start + k), mth(source, start + k, end)]
    return [*_path(source, m - k, start + k, end), mth(source, start, start + k)]


def consistency_path(source: Subtrees, old: int, new: int) -> list[bytes]:
    """PROOF(old, D[0:new]) of RFC 9162 2.1.4.1 (empty when old is 0 or equals new)."""
    if not 0 <= old <= new:
        raise ValueError(f"no consistency proof from size {old} to size {new}")
    if old in (0, new):
        return []
    return _subproof(source, old, 0, new, True)


def _subproof(source: Subtrees, m: int, start: int, end: int, whole: bool) -> list[bytes]:
    n = end - start
    if m == n:
        return [] if whole else [mth(source, start, end)]
    k = split_point(n)
    if m <= k:
        return [*_subproof(source, m, start, start + k, whole), mth(source, start + k, end)]
    return [*_subproof(source, m - k, start + k, end, False), mth(source, start, start + k)]


def verify_inclusion(
    leaf: bytes, index: int, size: int, path: Sequence[bytes], expected_root: bytes
) -> bool:
    """RFC 9162 2.1.3.2: does `path` prove leaf hash `leaf` at `index` under `expected_root`?"""
    if index >= size or index < 0:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == expected_root


def verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, path: Sequence[bytes]
) -> bool:
    """RFC 9162 2.1.4.2: does `path` prove the tree of size `new` extends the one of size `old`?"""
    if old < 0 or old > new:
        return False
    if old == new:
        return not path and old_root == new_root
    if old == 0:
        return not path and old_root == EMPTY_ROOT
    proof = list(path)
    if old & (old - 1) == 0:
        proof.insert(0, old_root)
    if not proof:
        return False
    fn, sn = old - 1, new - 1
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
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0
