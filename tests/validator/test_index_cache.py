"""The index's client side on its own: window encodings, searches, and the bounded cache."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from d3.validator import index as index_module
from d3.validator.index import TweetIndex
from d3.validator.index_cache import (
    BLOCK,
    CachedWindow,
    WindowCache,
    decode_base,
    decode_delta,
    encode_base,
    encode_delta,
)

TOP = (1 << 40) - 1


def _offsets(n: int, seed: int, span: int = 1 << 40) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.unique(rng.integers(0, span, n, dtype=np.uint64))


def _probes(truth: np.ndarray, seed: int) -> np.ndarray:
    """Members, their neighbours, the same low word under another high byte, the edges."""
    rng = np.random.default_rng(seed)
    picked = truth[rng.integers(0, len(truth), 50)] if len(truth) else truth
    near = np.concatenate((picked, picked + 1, picked - 1, picked ^ np.uint64(1 << 32)))
    edges = np.array([0, 1, TOP - 1, TOP], np.uint64)
    return np.concatenate((near[near <= TOP], edges, rng.integers(0, TOP, 50, dtype=np.uint64)))


def _window(base: np.ndarray, delta: np.ndarray) -> CachedWindow:
    return CachedWindow.from_stored(encode_base(base), encode_delta(delta[::-1]))


def test_encodings_round_trip_at_the_edges():
    values = np.array([0, 1, 255, 256, (1 << 32) - 1, 1 << 32, TOP], np.uint64)
    assert decode_base(encode_base(values)).tolist() == values.tolist()
    delta = encode_delta(values)
    assert delta[:5] == b"\0\0\0\0\0" and delta[-5:] == b"\xff" * 5  # big-endian, 5 bytes
    assert decode_delta(delta).tolist() == values.tolist()
    for decode in (decode_base, decode_delta):
        with pytest.raises(ValueError, match="multiple of 5"):
            decode(b"1234")


@pytest.mark.parametrize("n", [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 5 * BLOCK + 7, 3000])
@pytest.mark.parametrize("delta_n", [0, 1, 9])
def test_a_cached_window_answers_like_a_set(n, delta_n):
    every = _offsets(n + delta_n + 200, seed=n * 31 + delta_n)
    rng = np.random.default_rng(n)
    chosen = rng.permutation(len(every))[: n + delta_n]
    base, delta = np.sort(every[chosen[:n]]), np.sort(every[chosen[n:]])
    view = _window(base, delta)
    truth = set(base.tolist()) | set(delta.tolist())
    assert (view.base_len, view.delta_len, view.size) == (len(base), len(delta), len(truth))
    assert view.raw == encode_base(base)
    assert view.offsets().tolist() == sorted(truth)
    probes = _probes(np.sort(np.array(sorted(truth), np.uint64)), seed=n)
    few = max(1, n // (2 * BLOCK))  # fewer look-ups than blocks: a block compared each
    for queries in (np.sort(probes), probes):  # sorted (ingest) and in any order (readers)
        for start in range(0, len(queries), few):
            part = queries[start : start + few]
            assert view.contains(part).tolist() == [q in truth for q in part.tolist()]
        # Many look-ups: the base decoded once.
        assert view.contains(queries).tolist() == [q in truth for q in queries.tolist()]

    fresh = np.setdiff1d(every, np.array(sorted(truth), np.uint64))[:20]
    grown = truth | set(fresh.tolist())
    appended, merged = view.appended(fresh), view.merged(fresh)
    assert (appended.base_len, appended.delta_len) == (len(base), len(delta) + len(fresh))
    assert (merged.base_len, merged.delta_len) == (len(grown), 0)
    assert merged.raw == encode_base(np.array(sorted(grown), np.uint64))
    for after in (appended, merged):
        assert after.offsets().tolist() == sorted(grown)
        assert after.contains(probes).tolist() == [q in grown for q in probes.tolist()]
        assert after.contains(fresh).all()
    assert view.contains(fresh).sum() == 0  # the original is left as it was


def test_a_dense_window_and_blocks_across_a_high_byte():
    # Consecutive offsets around 2^32: a block holds both high bytes.
    base = np.arange((1 << 32) - 40, (1 << 32) + 40, 2, dtype=np.uint64)
    view = _window(base, np.array([(1 << 32) + 1], np.uint64))
    probes = np.arange((1 << 32) - 45, (1 << 32) + 45, dtype=np.uint64)
    truth = set(base.tolist()) | {(1 << 32) + 1}
    assert view.contains(probes).tolist() == [q in truth for q in probes.tolist()]
    # A low word that matches a member's, under another high byte, is not a member.
    assert not view.contains(base[:5] ^ np.uint64(1 << 33)).any()


def _entry(n: int) -> CachedWindow:
    return _window(_offsets(n, seed=n), np.empty(0, np.uint64))


def test_the_cache_is_bounded_and_evicts_the_least_recently_used():
    one = _entry(100).nbytes
    cache = WindowCache(3 * one, group_bits=6)
    for window in range(3):
        cache.put(window, _entry(100), version=1)
    assert len(cache) == 3 and cache.nbytes == 3 * one
    cache.get(0)  # now the most recently used
    cache.put(3, _entry(100), version=1)
    assert 1 not in cache and {0, 2, 3} <= {w for w in range(4) if w in cache}
    assert cache.nbytes <= cache.max_bytes
    cache.put(9, _entry(2_000), version=1)  # larger than the whole cache: not kept
    assert 9 not in cache and cache.nbytes <= cache.max_bytes
    empty = WindowCache(0, group_bits=6)
    empty.put(0, _entry(10), version=1)
    assert len(empty) == 0 and empty.version(0) is None
    with pytest.raises(ValueError):
        WindowCache(-1, group_bits=6)


def test_every_cached_window_of_a_group_is_at_the_groups_version():
    cache = WindowCache(1 << 30, group_bits=6)
    cache.put(0, _entry(10), version=4)
    cache.put(1, _entry(10), version=4)
    cache.put(64, _entry(10), version=9)  # another group
    assert cache.version(0) == 4 and cache.version(1) == 9
    cache.put(2, _entry(10), version=3)  # older than the group's: not kept
    assert 2 not in cache and cache.version(0) == 4
    cache.put(2, _entry(10), version=5)  # newer: the group's others are stale, dropped
    assert 0 not in cache and 1 not in cache and 2 in cache and cache.version(0) == 5
    cache.advance(0, before=5, after=6)  # this client's own write: the others stay valid
    assert 2 in cache and cache.version(0) == 6
    cache.advance(0, before=5, after=7)  # a write from a version it did not have: drop
    assert 2 not in cache and cache.version(0) is None
    assert 64 in cache
    cache.drop(64)
    assert cache.version(1) is None and cache.nbytes == 0 and len(cache) == 0
    cache.put(64, _entry(10), version=1)
    cache.clear()
    assert len(cache) == 0 and cache.nbytes == 0 and cache.version(1) is None


def test_a_group_read_across_a_write_is_read_again(monkeypatch):
    """The windows of one group can take several MGETs; if a write lands between them
    their versions differ, and the read is repeated rather than trusted."""

    class Redis:
        def register_script(self, _script):
            return None

    index = TweetIndex(Redis())
    answers = [
        [(7, {0: _entry(10)}), (8, {1: _entry(10)})],  # a write between the two
        [(8, {0: _entry(10)}), (8, {1: _entry(10)})],
    ]
    calls = []

    async def fetch(batches, versions):
        calls.append(batches)
        return answers[len(calls) - 1]

    index._fetch = fetch
    monkeypatch.setattr(index_module, "FETCH_BATCH", 1)
    views = asyncio.run(index._views({0: [0, 1]}))
    assert len(calls) == 2 and views[0][0] == 8 and set(views[0][1]) == {0, 1}
    assert index.cache.version(0) == 8
