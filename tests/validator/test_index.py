"""The Redis index against a real redis-server."""

from __future__ import annotations

import asyncio
import random

import pyarrow as pa
import pytest
import redis.asyncio as aioredis

from d3.snowflake import ms_to_id
from d3.validator.index import (
    GROUP_BITS,
    WINDOW_BITS,
    IngestResult,
    TweetIndex,
    pack_offsets,
    unpack_offsets,
)

BASE_MS = 1_767_225_600_000


def ids_over(hours: float, n: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    span = int(hours * 3_600_000)
    return sorted(
        {ms_to_id(BASE_MS + rng.randrange(span), rng.randrange(1 << 22)) for _ in range(n)}
    )


def run(coro):
    return asyncio.run(coro)


async def _index(redis_url: str) -> TweetIndex:
    return TweetIndex(aioredis.Redis.from_url(redis_url), prefix="t")


def test_pack_round_trip_at_the_edges():
    values = pa.array([0, 1, (1 << 32) - 1, 1 << 32, (1 << WINDOW_BITS) - 1], pa.uint64())
    data = pack_offsets(values)
    assert len(data) == 5 * len(values)
    assert unpack_offsets(data).to_pylist() == values.to_pylist()
    with pytest.raises(ValueError, match="multiple of 5"):
        unpack_offsets(b"1234")


def test_first_committer_wins_with_overlapping_data(redis_url):
    a_ids = ids_over(10, 20_000, seed=1)
    b_ids = a_ids[5_000:15_000] + ids_over(10, 3_000, seed=2)

    async def body():
        index = await _index(redis_url)
        first = await index.ingest(pa.array(a_ids, pa.int64()), "A", "shard-a:A", period=3)
        second = await index.ingest(pa.array(b_ids, pa.int64()), "B", "shard-b:B", period=3)
        return first, second, await index.credits(), await index.size()

    first, second, credits, size = run(body())
    b_unique = len(set(b_ids) - set(a_ids))
    assert first.new == len(a_ids) and first.duplicates == 0
    assert second.new == b_unique and second.duplicates == len(b_ids) - b_unique
    assert credits == {"A": {3: len(a_ids)}, "B": {3: b_unique}}
    assert size == len(set(a_ids) | set(b_ids))


def test_same_data_from_a_second_miner_earns_nothing(redis_url):
    ids = pa.array(ids_over(2, 5_000, seed=3), pa.int64())

    async def body():
        index = await _index(redis_url)
        await index.ingest(ids, "honest", "s:honest", period=1)
        copy = await index.ingest(ids, "copier", "s:copier", period=1)
        return copy, await index.credits()

    copy, credits = run(body())
    assert copy.new == 0 and copy.duplicates == len(ids)
    assert "copier" not in credits and credits["honest"] == {1: len(ids)}


def test_reingesting_is_idempotent_and_resumes_partial_work(redis_url):
    ids = ids_over(30, 40_000, seed=4)  # spans several groups
    groups = {i >> (WINDOW_BITS + GROUP_BITS) for i in ids}
    assert len(groups) >= 3
    first_group = min(groups)
    partial = [i for i in ids if i >> (WINDOW_BITS + GROUP_BITS) == first_group]

    async def body():
        index = await _index(redis_url)
        # A crash after the first group's transaction: only that group landed.
        await index.ingest(pa.array(partial, pa.int64()), "A", "shard:A", period=0)
        resumed = await index.ingest(pa.array(ids, pa.int64()), "A", "shard:A", period=0)
        again = await index.ingest(pa.array(ids, pa.int64()), "A", "shard:A", period=0)
        return resumed, again, await index.credits()

    resumed, again, credits = run(body())
    assert resumed.skipped_groups == 1
    assert resumed.new == len(ids) - len(partial)
    assert again.new == 0 and again.skipped_groups == len(groups)
    # However it was interrupted, the token knows its whole credit.
    assert resumed.credited == again.credited == len(ids)
    assert credits == {"A": {0: len(ids)}}


def test_duplicates_within_input_and_membership(redis_url):
    ids = ids_over(1, 1_000, seed=5)

    async def body():
        index = await _index(redis_url)
        result = await index.ingest(pa.array(ids + ids[:10], pa.int64()), "A", "x", period=0)
        return result, await index.contains([ids[0], ids[-1], ids[0] + 1, 42])

    result, present = run(body())
    assert result.new == len(ids) and result.duplicates == 10
    assert present == [True, True, False, False]


def test_keys_of_a_group_share_one_cluster_slot(redis_url):
    ids = ids_over(1, 100, seed=6)

    async def body():
        index = await _index(redis_url)
        await index.ingest(pa.array(ids, pa.int64()), "A", "x", period=0)
        return [k.decode() async for k in index.redis.scan_iter(match="t:{g*")]

    keys = run(body())
    tags = {k[k.index("{") : k.index("}") + 1] for k in keys}
    assert len(tags) == 1 and any(k.endswith(":credit") for k in keys)
    assert any(k.endswith(":done") for k in keys)


def test_compact_memory(redis_url):
    """At realistic density an ID costs a few bytes (a plain key per ID costs ~70)."""
    ids = ids_over(24, 200_000, seed=7)

    async def body():
        index = await _index(redis_url)
        before = (await index.redis.info("memory"))["used_memory"]
        for start in range(0, len(ids), 50_000):
            chunk = pa.array(ids[start : start + 50_000], pa.int64())
            await index.ingest(chunk, "A", f"c{start}", period=0)
        after = (await index.redis.info("memory"))["used_memory"]
        return (after - before) / len(ids)

    assert run(body()) <= 10


# -- layout v2: base + delta windows, the client cache, compare-and-set ------------------


def _batches(seed: int, count: int, size: int, hours: float = 10) -> list[list[int]]:
    """Batches with repeats within each (a tenth) and across them (a third of each batch
    comes from earlier batches), spread over `hours` (several groups)."""
    rng = random.Random(seed)
    span = int(hours * 3_600_000)
    seen: list[int] = []
    out = []
    for _ in range(count):
        batch = [
            ms_to_id(BASE_MS + rng.randrange(span), rng.randrange(1 << 22)) for _ in range(size)
        ]
        if seen:
            batch += rng.choices(seen, k=size // 3)
        batch += rng.choices(batch, k=size // 10)
        rng.shuffle(batch)
        seen += batch
        out.append(batch)
    return out


async def _check_exact(index: TweetIndex, batches: list[list[int]], hotkeys: str = "AB") -> None:
    """Ingest `batches` in turn, each against a Python set of what came before."""
    truth: set[int] = set()
    expected: dict[str, int] = {}
    for n, batch in enumerate(batches):
        hotkey = hotkeys[n % len(hotkeys)]
        result = await index.ingest(pa.array(batch, pa.int64()), hotkey, f"b{n}", period=0)
        fresh = set(batch) - truth
        assert result.new == len(fresh), n
        assert result.duplicates == len(batch) - len(fresh)
        truth |= fresh
        if fresh:
            expected[hotkey] = expected.get(hotkey, 0) + len(fresh)
    assert await index.size() == len(truth)
    assert await index.credits() == {h: {0: c} for h, c in expected.items()}
    probe = random.Random(1).sample(sorted(truth), 200)
    absent = [i + 1 for i in probe if i + 1 not in truth]
    assert await index.contains(probe + absent) == [True] * len(probe) + [False] * len(absent)
    windows = {i >> WINDOW_BITS for i in truth}
    stored = []
    for window in sorted(windows):
        stored += (await index.window_ids(window)).to_pylist()
    assert stored == sorted(truth)


async def _dump(redis: aioredis.Redis, prefix: str) -> dict[bytes, object]:
    """Every key of the index and its value, for byte-for-byte comparisons."""
    out: dict[bytes, object] = {}
    async for key in redis.scan_iter(match=f"{prefix}:*"):
        kind = (await redis.type(key)).decode()
        if kind == "string":
            out[key[len(prefix) :]] = await redis.get(key)
        elif kind == "hash":
            out[key[len(prefix) :]] = await redis.hgetall(key)
        elif kind == "zset":
            out[key[len(prefix) :]] = await redis.zrange(key, 0, -1, withscores=True)
        else:
            out[key[len(prefix) :]] = sorted(await redis.smembers(key))
    return out


def test_exact_against_a_python_set_with_repeats_within_and_across_batches(redis_url):
    batches = _batches(seed=11, count=12, size=6_000)

    async def body():
        index = await _index(redis_url)
        await _check_exact(index, batches)
        return index.stats

    stats = run(body())
    assert stats.appends > 0 and stats.merges > 0  # both write paths taken


def test_exact_with_a_tiny_cache_and_with_none(redis_url):
    batches = _batches(seed=12, count=8, size=4_000)

    async def body(cache_bytes: int):
        redis = aioredis.Redis.from_url(redis_url)
        await redis.flushall()
        index = TweetIndex(redis, prefix="t", cache_bytes=cache_bytes)
        await _check_exact(index, batches)
        assert index.cache.nbytes <= cache_bytes  # the cache is bounded
        return index

    none = run(body(0))
    assert len(none.cache) == 0 and none.stats.cache_hits == 0
    tiny = run(body(20_000))
    assert 0 < len(tiny.cache) < len({i >> WINDOW_BITS for b in batches for i in b})


def test_reingesting_with_a_used_token_credits_nothing_twice(redis_url):
    first, other = _batches(seed=13, count=2, size=5_000)

    async def body():
        index = await _index(redis_url)
        once = await index.ingest(pa.array(first, pa.int64()), "A", "tok", period=2)
        # The same token again, from a warm cache and from a cold one, even with other IDs
        # in the same groups: the groups it applied are skipped whole.
        again = await index.ingest(pa.array(first, pa.int64()), "A", "tok", period=2)
        cold = await _index(redis_url)
        replay = await cold.ingest(pa.array(first + other, pa.int64()), "A", "tok", period=2)
        return once, again, replay, await index.credits(), await index.size()

    once, again, replay, credits, size = run(body())
    assert once.new == len(set(first)) and again.new == 0 and replay.new >= 0
    assert again.credited == once.credited == len(set(first))
    assert again.skipped_groups == once.skipped_groups + len({i >> 46 for i in first})
    groups_first = {i >> (WINDOW_BITS + GROUP_BITS) for i in first}
    others_new = {i for i in other if i >> (WINDOW_BITS + GROUP_BITS) not in groups_first}
    assert replay.new == len(others_new - set(first))
    assert credits == {"A": {2: len(set(first)) + replay.new}}
    assert size == len(set(first)) + replay.new


def test_two_writers_racing_on_the_same_windows_stay_exact(redis_url):
    """Two writers on one Redis: each one's cache goes stale under the other's writes, the
    compare-and-set refuses, and it refetches and retries with the same token."""
    batches = _batches(seed=14, count=16, size=3_000, hours=2)

    async def body():
        a = TweetIndex(aioredis.Redis.from_url(redis_url), prefix="t")
        b = TweetIndex(aioredis.Redis.from_url(redis_url), prefix="t")
        # Interleaved: every write of one writer makes the other's cache stale.
        truth: set[int] = set()
        expected = {"A": 0, "B": 0}
        for n, batch in enumerate(batches[:8]):
            hotkey = "AB"[n % 2]
            result = await (a, b)[n % 2].ingest(pa.array(batch, pa.int64()), hotkey, f"r{n}", 0)
            assert result.new == len(set(batch) - truth)
            expected[hotkey] += result.new
            truth |= set(batch)
        conflicts = a.stats.conflicts + b.stats.conflicts
        assert await a.credits() == {h: {0: c} for h, c in expected.items()}

        # Concurrent: both at once, on the same windows, each with its own tokens.
        async def stream(writer, parity):
            for n in range(8 + parity, 16, 2):
                await writer.ingest(pa.array(batches[n], pa.int64()), "AB"[n % 2], f"r{n}", 0)

        await asyncio.gather(stream(a, 0), stream(b, 1))
        return conflicts, await a.credits(), await b.size()

    conflicts, credits, size = run(body())
    truth = set().union(*batches)
    assert conflicts > 0
    assert size == len(truth)
    assert sum(sum(p.values()) for p in credits.values()) == len(truth)


def test_what_is_stored_does_not_depend_on_the_cache(redis_url):
    """Validators with warm, cold, tiny or no caches hold the same bytes."""
    batches = _batches(seed=15, count=10, size=4_000)

    async def body():
        redis = aioredis.Redis.from_url(redis_url)
        dumps = []
        for prefix, cache_bytes, fresh_each_time in (
            ("warm", 1 << 30, False),
            ("none", 0, False),
            ("tiny", 30_000, False),
            ("cold", 1 << 30, True),
        ):
            index = TweetIndex(redis, prefix=prefix, cache_bytes=cache_bytes)
            for n, batch in enumerate(batches):
                if fresh_each_time:
                    index = TweetIndex(redis, prefix=prefix)
                await index.ingest(pa.array(batch, pa.int64()), "AB"[n % 2], f"d{n}", 0)
            dumps.append(await _dump(redis, prefix))
        return dumps

    dumps = run(body())
    assert all(d == dumps[0] for d in dumps[1:])
    assert any(k.startswith(b":{g") and b":d:" in k for k in dumps[0])  # deltas in use


def test_a_lost_script_is_reloaded(redis_url):
    ids = ids_over(3, 3_000, seed=16)

    async def body():
        index = await _index(redis_url)
        await index.ingest(pa.array(ids[:1_000], pa.int64()), "A", "one", period=0)
        await index.redis.script_flush()  # a restarted or failed-over Redis
        result = await index.ingest(pa.array(ids, pa.int64()), "A", "two", period=0)
        assert index.stats.script_loads >= 1
        return result, await index.size()

    result, size = run(body())
    assert result.new == len(ids) - 1_000 and size == len(ids)


def test_an_empty_ingest_and_an_index_wiped_behind_the_clients_back(redis_url):
    ids = ids_over(2, 2_000, seed=17)

    async def body():
        index = await _index(redis_url)
        empty = await index.ingest(pa.array([], pa.int64()), "A", "e", period=0)
        await index.ingest(pa.array(ids, pa.int64()), "A", "a", period=0)
        await index.redis.flushall()  # e.g. another release's state layout, dropped
        index.forget()
        again = await index.ingest(pa.array(ids[:500], pa.int64()), "B", "b", period=0)
        return empty, again, await index.credits(), await index.size()

    empty, again, credits, size = run(body())
    assert empty == IngestResult(new=0, duplicates=0, skipped_groups=0, credited=0)
    assert again.new == 500 and credits == {"B": {0: 500}} and size == 500


def test_exact_when_each_window_takes_its_own_read(redis_url, monkeypatch):
    """A group's windows read in many MGETs, by two racing writers with cold caches."""
    from d3.validator import index as index_module

    monkeypatch.setattr(index_module, "FETCH_BATCH", 1)
    batches = _batches(seed=18, count=10, size=3_000, hours=3)

    async def body():
        redis = aioredis.Redis.from_url(redis_url)
        a, b = TweetIndex(redis, prefix="t"), TweetIndex(redis, prefix="t")

        async def stream(writer, parity):
            for n in range(parity, len(batches), 2):
                writer.forget()  # cold every time: every window read again
                await writer.ingest(pa.array(batches[n], pa.int64()), "AB"[n % 2], f"f{n}", 0)

        await asyncio.gather(stream(a, 0), stream(b, 1))
        return await a.credits(), await a.size(), a.stats.cache_misses

    credits, size, misses = run(body())
    truth = set().union(*batches)
    assert size == len(truth) and misses > 0
    assert sum(sum(p.values()) for p in credits.values()) == len(truth)
