"""The index and validator state on a real 3-node Redis Cluster give the same credits."""

from __future__ import annotations

import asyncio
import random
import shutil

import pyarrow as pa
import pytest
import redis.asyncio as aioredis

from d3.chain.interface import CommitmentRecord
from d3.dev.redis_server import start_redis_cluster
from d3.redis_url import connect_redis
from d3.snowflake import ms_to_id
from d3.validator.index import TweetIndex
from d3.validator.state import Judgement, ValidatorState, Verdict

pytestmark = pytest.mark.skipif(shutil.which("redis-cli") is None, reason="needs redis-cli")


def _workload() -> list[tuple[str, str, list[int]]]:
    """Three miners with overlapping tweets over three days (many groups, many slots)."""
    rng = random.Random(9)
    base = 1_767_225_600_000
    pool = sorted(
        {
            ms_to_id(base + rng.randrange(3 * 86_400_000), rng.randrange(1 << 22))
            for _ in range(60_000)
        }
    )
    work = []
    for n, hotkey in enumerate(("alice", "bob", "carol")):
        ids = rng.sample(pool, 30_000)
        for chunk in range(3):
            work.append(
                (hotkey, f"shard{n}{chunk}:{hotkey}", ids[chunk * 10_000 : (chunk + 1) * 10_000])
            )
    return work


async def _ingest(redis) -> tuple[dict, dict]:
    index, state = TweetIndex(redis), ValidatorState(redis)
    for block, (hotkey, token, ids) in enumerate(_workload()):
        sha = token.ljust(64, "0")[:64]
        record = CommitmentRecord(hotkey, block, f"d3.1:{token}", None)
        await state.enqueue([record], {(hotkey, block): sha})
        await index.ingest(pa.array(ids, pa.int64()), hotkey, token, period=block // 4)
        await state.judge(
            record, [Judgement(sha, True, "", block)], Verdict(block, block % 3 != 1, "", True)
        )
    again = _workload()[0]  # a replayed ingest changes nothing
    await index.ingest(pa.array(again[2], pa.int64()), again[0], again[1], period=0)
    assert await state.queue_size() == 0
    return await index.credits(), await state.credibility(period_blocks=4)


def test_cluster_gives_exactly_the_single_node_credits(tmp_path, redis_url):
    single = asyncio.run(_ingest(aioredis.Redis.from_url(redis_url)))
    with start_redis_cluster(tmp_path / "cluster") as cluster:

        async def on_cluster():
            client = connect_redis(cluster.url, cluster=True)
            try:
                result = await _ingest(client)
                slots = {await client.cluster_keyslot(k) async for k in client.scan_iter("d3:*")}
                return result, slots
            finally:
                await client.aclose()

        clustered, slots = asyncio.run(on_cluster())
    assert clustered == single
    assert sum(sum(p.values()) for p in single[0].values()) == 60_000 or single[0]
    assert len(slots) > 3  # groups really are spread over slots
