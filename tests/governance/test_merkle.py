"""RFC 9162 tree hashing and proofs against a naive recomputation, for random tree sizes."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from cityhub.governance import merkle


def naive_mth(leaves: list[bytes]) -> bytes:
    """MTH straight from RFC 9162 2.1.1, over leaf data (not hashes)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + naive_mth(leaves[:k]) + naive_mth(leaves[k:])).digest()


def tree(n: int) -> tuple[list[bytes], merkle.LeafList]:
    data = [f"record {i}".encode() for i in range(n)]
    return data, merkle.LeafList([merkle.leaf_hash(d) for d in data])


def test_known_vectors() -> None:
    assert merkle.root(merkle.LeafList([]), 0).hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert merkle.leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=130))
def test_root_matches_naive_recomputation(n: int) -> None:
    data, source = tree(n)
    assert merkle.root(source, n) == naive_mth(data)
    for size in range(n + 1):  # every prefix, the way older signed heads are checked
        assert merkle.root(source, size) == naive_mth(data[:size])


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_inclusion_proofs_verify_and_wrong_ones_fail(data: st.DataObject) -> None:
    n = data.draw(st.integers(min_value=1, max_value=200))
    size = data.draw(st.integers(min_value=1, max_value=n))
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    leaves, source = tree(n)
    top = naive_mth(leaves[:size])
    path = merkle.inclusion_path(source, index, size)
    leaf = merkle.leaf_hash(leaves[index])
    assert merkle.verify_inclusion(leaf, index, size, path, top)
    assert not merkle.verify_inclusion(merkle.leaf_hash(b"forged"), index, size, path, top)
    assert not merkle.verify_inclusion(leaf, index, size, path, merkle.leaf_hash(b"x"))
    if size > 1:
        other = data.draw(st.integers(min_value=0, max_value=size - 1).filter(lambda i: i != index))
        assert not merkle.verify_inclusion(leaf, other, size, path, top)
        flipped = data.draw(st.integers(min_value=0, max_value=len(path) - 1))
        bad = list(path)
        bad[flipped] = bytes([bad[flipped][0] ^ 1]) + bad[flipped][1:]
        assert not merkle.verify_inclusion(leaf, index, size, bad, top)
        assert not merkle.verify_inclusion(leaf, index, size, path[:-1], top)
        assert not merkle.verify_inclusion(leaf, index, size, [*path, path[0]], top)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_consistency_proofs_verify_and_wrong_ones_fail(data: st.DataObject) -> None:
    new = data.draw(st.integers(min_value=1, max_value=200))
    old = data.draw(st.integers(min_value=1, max_value=new))
    leaves, source = tree(new)
    old_root, new_root = naive_mth(leaves[:old]), naive_mth(leaves)
    path = merkle.consistency_path(source, old, new)
    assert merkle.verify_consistency(old, new, old_root, new_root, path)
    # A rewritten history is not consistent: change one of the old leaves.
    forged = list(leaves)
    forged[data.draw(st.integers(min_value=0, max_value=old - 1))] = b"forged"
    assert not merkle.verify_consistency(old, new, naive_mth(forged[:old]), new_root, path)
    assert not merkle.verify_consistency(old, new, old_root, naive_mth(forged), path)
    if old < new:
        assert not merkle.verify_consistency(old, new, old_root, new_root, path[:-1])
        assert path
        assert not merkle.verify_consistency(
            old, new, old_root, new_root, [merkle.leaf_hash(b"x"), *path[1:]])
