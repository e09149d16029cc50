"""Index layout v2 on a real 3-node Redis Cluster: one slot per group script, scripts
loaded on every node, racing writers, and the v1 migration."""

from __future__ import annotations

import asyncio
import random
import shutil

import pyarrow as pa
import pytest

from d3.dev.redis_server import start_redis_cluster
from d3.redis_url import connect_redis
from d3.snowflake import ms_to_id
from d3.validator.index import TweetIndex
from tests.validator.legacy_index import LegacyTweetIndex

pytestmark = pytest.mark.skipif(shutil.which("redis-cli") is None, reason="needs redis-cli")

BASE_MS = 1_767_225_600_000


def _batches(count: int, size: int) -> list[list[int]]:
    """Over two days (about ten groups, on every node), with repeats across batches."""
    rng = random.Random(21)
    span = 2 * 86_400_000
    out: list[list[int]] = []
    for _ in range(count):
        batch = [
            ms_to_id(BASE_MS + rng.randrange(span), rng.randrange(1 << 22)) for _ in range(size)
        ]
        if out:
            batch += rng.sample(out[-1], size // 4)
        out.append(batch)
    return out


def test_index_on_a_cluster(tmp_path):
    batches = _batches(12, 4_000)
    truth = set().union(*batches)

    async def body(url: str):
        a, b = (TweetIndex(connect_redis(url, cluster=True)) for _ in range(2))
        legacy = LegacyTweetIndex(connect_redis(url, cluster=True))
        try:
            # A v1 index first, migrated in place.
            for n, batch in enumerate(batches[:4]):
                await legacy.ingest(pa.array(batch, pa.int64()), "AB"[n % 2], f"c{n}", 0)
            assert await a.layout() == "v1"
            assert await a.migrate() > 1
            v1_credits = await a.credits()
            assert sum(sum(p.values()) for p in v1_credits.values()) == len(
                set().union(*batches[:4])
            )

            # Two writers at once on the same windows; the scripts vanish from every node
            # half-way (a failover, a restart).
            async def stream(writer, parity):
                for n in range(4 + parity, 12, 2):
                    if n == 8:
                        await writer.redis.script_flush()
                    await writer.ingest(pa.array(batches[n], pa.int64()), "AB"[n % 2], f"c{n}", 0)

            await asyncio.gather(stream(a, 0), stream(b, 1))
            replay = await a.ingest(pa.array(batches[5], pa.int64()), "B", "c5", 0)
            slots = {await a.redis.cluster_keyslot(k) async for k in a.redis.scan_iter("d3:*")}
            assert a.stats.script_loads + b.stats.script_loads > 0
            return await a.credits(), await b.size(), replay, slots
        finally:
            for client in (a.redis, b.redis, legacy.redis):
                await client.aclose()

    with start_redis_cluster(tmp_path / "cluster") as cluster:
        credits, size, replay, slots = asyncio.run(body(cluster.url))
    assert size == len(truth)
    assert sum(sum(p.values()) for p in credits.values()) == len(truth)
    assert replay.new == 0 and replay.skipped_groups > 0
    assert len(slots) > 3
