"""Index ingest: D3's packed Redis index vs the original design's `SETNX <id> 1` per tweet.

Both run in this process against the same freshly started local redis-server (flushed in
between), so the ratios are meaningful on a noisy machine even when the absolute numbers
are not. IDs are synthetic snowflakes spread over one day, ingested in shard-sized chunks:
"d3" in time order (each chunk a contiguous stretch, like a miner's successive shards),
"d3_spread" in random chunks each spanning the whole day (many miners searching the same
period), the harder case for a time-windowed index.

    python bench/index_bench.py [--ids 5000000] [--chunk 50000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time

import pyarrow as pa
import redis
import redis.asyncio as aioredis

from d3.dev.redis_server import start_redis
from d3.snowflake import ms_to_id
from d3.validator.index import TweetIndex

DAY_MS = 86_400_000
BASE_MS = 1_767_225_600_000


def synthetic_ids(n: int, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    ids = {ms_to_id(BASE_MS + rng.randrange(DAY_MS), rng.randrange(1 << 22)) for _ in range(n)}
    return sorted(ids)


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


async def run_d3(url: str, ids: list[int], chunk: int, spread: bool = False) -> float:
    index = TweetIndex(aioredis.Redis.from_url(url))
    if spread:
        ids = random.Random(1).sample(ids, len(ids))
    arrays = [pa.array(ids[i : i + chunk], pa.int64()) for i in range(0, len(ids), chunk)]
    start = time.perf_counter()
    for n, array in enumerate(arrays):
        await index.ingest(array, "miner", f"chunk{n}", period=0)
    elapsed = time.perf_counter() - start
    await index.redis.aclose()
    return elapsed


def run_original(client: redis.Redis, ids: list[int], chunk: int) -> float:
    """The original validator's path: one `SETNX <id> 1` per tweet, pipelined per chunk."""
    start = time.perf_counter()
    for i in range(0, len(ids), chunk):
        pipe = client.pipeline(transaction=False)
        for tweet_id in ids[i : i + chunk]:
            pipe.setnx(str(tweet_id), 1)
        pipe.execute()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=5_000_000)
    parser.add_argument("--chunk", type=int, default=50_000)
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()

    ids = synthetic_ids(args.ids)
    n = len(ids)
    with start_redis() as server:
        client = redis.Redis.from_url(server.url)
        figures = {}
        for name in ("d3", "d3_spread", "original"):
            client.flushall()
            before = used_memory(client)
            if name.startswith("d3"):
                spread = name == "d3_spread"
                elapsed = asyncio.run(run_d3(server.url, ids, args.chunk, spread))
            else:
                elapsed = run_original(client, ids, args.chunk)
            figures[name] = {
                "ids_per_s": round(n / elapsed),
                "bytes_per_id": round((used_memory(client) - before) / n, 2),
                "seconds": round(elapsed, 2),
            }
            print(
                f"{name:>9}: {figures[name]['ids_per_s']:>12,} IDs/s  "
                f"{figures[name]['bytes_per_id']:>7} bytes/ID  ({elapsed:.1f}s)"
            )
    speedup = figures["d3"]["ids_per_s"] / figures["original"]["ids_per_s"]
    memory_ratio = figures["original"]["bytes_per_id"] / figures["d3"]["bytes_per_id"]
    print(f"D3 is {speedup:.1f}x faster and {memory_ratio:.1f}x smaller per ID ({n:,} IDs)")
    if args.json:
        print(
            json.dumps(
                {
                    "ids": n,
                    **figures,
                    "speedup": round(speedup, 2),
                    "memory_ratio": round(memory_ratio, 2),
                }
            )
        )


if __name__ == "__main__":
    main()
