"""The Redis index against a real redis-server."""

from __future__ import annotations

import asyncio
import random

import pyarrow as pa
import pytest
import redis.asyncio as aioredis

from d3.snowflake import ms_to_id
from d3.validator.index import GROUP_BITS, WINDOW_BITS, TweetIndex, pack_offsets, unpack_offsets

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
