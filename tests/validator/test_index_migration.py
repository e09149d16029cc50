"""Index layout v1 -> v2: one explicit step, and no writer of either layout on the other."""

from __future__ import annotations

import asyncio
import random

import pyarrow as pa
import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from d3.snowflake import ms_to_id
from d3.validator import index_migrate
from d3.validator.index import LayoutError, TweetIndex
from tests.validator.legacy_index import LegacyTweetIndex, pack_offsets

BASE_MS = 1_767_225_600_000


def _ids(n: int, seed: int, hours: float = 12) -> list[int]:
    rng = random.Random(seed)
    span = int(hours * 3_600_000)
    return [ms_to_id(BASE_MS + rng.randrange(span), rng.randrange(1 << 22)) for _ in range(n)]


async def _v1_index(redis: aioredis.Redis) -> tuple[set[int], dict]:
    """A v1 index of two miners' overlapping data: (every ID, the credits)."""
    legacy = LegacyTweetIndex(redis, prefix="t")
    a, b = _ids(20_000, 1), _ids(5_000, 2)
    await legacy.ingest(pa.array(a, pa.int64()), "A", "a", period=0)
    await legacy.ingest(pa.array(a[:3_000] + b, pa.int64()), "B", "b", period=0)
    return set(a) | set(b), await legacy.credits()


async def _keys(redis: aioredis.Redis) -> dict[bytes, bytes]:
    return {k: await redis.dump(k) async for k in redis.scan_iter(match="t:*")}


def test_a_v1_index_is_refused_until_migrated_then_carries_on_exactly(redis_url):
    async def body():
        redis = aioredis.Redis.from_url(redis_url)
        truth, credits = await _v1_index(redis)
        index = TweetIndex(redis, prefix="t")
        assert await index.layout() == "v1"
        before = await _keys(redis)
        with pytest.raises(LayoutError, match="index_migrate"):
            await index.ingest(pa.array(_ids(100, 3), pa.int64()), "C", "c", period=0)
        with pytest.raises(LayoutError):
            await index.credits()
        assert await _keys(redis) == before  # refused before writing anything

        converted = await index.migrate()
        assert await index.layout() == "v2" and converted > 1
        assert await index.migrate() == 0  # idempotent
        assert await index.credits() == credits and await index.size() == len(truth)
        assert await index.contains(sorted(truth)[:50]) == [True] * 50

        # Writing on: the v1 windows are the bases, and the tokens still hold.
        c = _ids(8_000, 4) + sorted(truth)[:2_000]
        result = await index.ingest(pa.array(c, pa.int64()), "C", "c", period=0)
        replay = await index.ingest(pa.array(_ids(20_000, 1), pa.int64()), "A", "a", period=0)
        return truth, c, result, replay, await index.credits(), await index.size()

    truth, c, result, replay, credits, size = asyncio.run(body())
    assert result.new == len(set(c) - truth)
    assert replay.new == 0 and replay.credited == len(set(_ids(20_000, 1)))
    assert credits["C"] == {0: result.new}
    assert size == len(truth | set(c))


def test_a_v1_writer_cannot_write_to_a_v2_index(redis_url):
    async def body():
        redis = aioredis.Redis.from_url(redis_url)
        index = TweetIndex(redis, prefix="t")
        ids = _ids(10_000, 5)
        await index.ingest(pa.array(ids, pa.int64()), "A", "a", period=0)
        before = await _keys(redis)
        legacy = LegacyTweetIndex(redis, prefix="t")
        more = pa.array(ids[:5_000] + _ids(1_000, 6), pa.int64())
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            await legacy.ingest(more, "B", "b", period=0)
        # A v1 writer that had passed its first step before the migration: its script
        # fails on the token set as well.
        window = ids[0] >> 40
        offsets = sorted({i & ((1 << 40) - 1) for i in ids if i >> 40 == window} | {7})
        keys = [legacy._key(window >> 6, "done"), legacy._key(window >> 6, "credit")]
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            await legacy._apply(
                keys=[*keys, legacy.window_key(window)],
                args=["b", "B:0", pack_offsets(pa.array(offsets, pa.uint64()))],
            )
        return before, await _keys(redis)

    before, after = asyncio.run(body())
    assert after == before


def test_the_migration_command(redis_url, capsys):
    async def build():
        await _v1_index(aioredis.Redis.from_url(redis_url))

    asyncio.run(build())
    index_migrate.main(["--redis.url", redis_url, "--redis.prefix", "t"])
    assert "layout v1 -> v2" in capsys.readouterr().out
    index_migrate.main(["--redis.url", redis_url, "--redis.prefix", "t"])
    assert "layout v2 -> v2 (0 keys converted)" in capsys.readouterr().out
