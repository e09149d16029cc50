"""Validating one 1M-tweet manifest end to end, from a loopback HTTP host.

Fetch (HTTP) → parse (Parquet, with limits) → checks (every record rule, columnar) →
Redis (the index), timed per phase, plus the whole pipeline in one go. The baseline, in
the same process on a sample of the same rows, is the per-row path: one pydantic
validation per tweet, then the original design's pipelined `SETNX <id> 1`.

    python bench/validate_bench.py [--tweets 1000000] [--shard-rows 100000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import redis
import redis.asyncio as aioredis
from bittensor.sp_core import Keypair

from d3.commitment import Commitment, parse_locator
from d3.dev.redis_server import start_redis
from d3.dev.static_server import StaticServer
from d3.dev.synthetic import synthetic_table
from d3.manifest import build_manifest
from d3.record import TweetRecord, check_table
from d3.shards import ShardLimits, decode_shard, encode_shard, shard_name
from d3.validator.fetcher import Fetcher, FetchLimits
from d3.validator.index import TweetIndex
from d3.validator.pipeline import ManifestPipeline, PipelineLimits, WorkItem
from d3.validator.state import ValidatorState

NETUID = 1


def build_dataset(directory: Path, tweets: int, shard_rows: int):
    signer = Keypair.create_from_uri("//BenchMiner")
    shards = []
    for n, start in enumerate(range(0, tweets, shard_rows)):
        table = synthetic_table(min(shard_rows, tweets - start), seed=n)
        shard = encode_shard(table)
        (directory / shard.name).write_bytes(shard.data)
        shards.append(shard)
    manifest = build_manifest(signer, NETUID, shards, None)
    (directory / manifest.name).write_bytes(manifest.to_bytes())
    return signer, manifest


async def phases(url: str, manifest, redis_url: str) -> dict[str, float]:
    locator = parse_locator(url)
    fetcher = Fetcher(FetchLimits(deadline_s=300), allow_private=True)
    limits = ShardLimits()
    now = datetime.now(UTC)
    timings = {"fetch": 0.0, "parse": 0.0, "checks": 0.0, "redis": 0.0}
    index = TweetIndex(aioredis.Redis.from_url(redis_url), prefix="phases")
    for ref in manifest.body.shards:
        t0 = time.perf_counter()
        data = await fetcher.fetch(locator, shard_name(ref.sha256), ref.bytes)
        t1 = time.perf_counter()
        table = decode_shard(data, limits, expected_sha256=ref.sha256)
        t2 = time.perf_counter()
        check_table(table, now)
        t3 = time.perf_counter()
        await index.ingest(table["id"].combine_chunks(), "miner", f"{ref.sha256}:miner", 0)
        t4 = time.perf_counter()
        for key, value in zip(timings, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            timings[key] += value
    await fetcher.close()
    await index.redis.aclose()
    return timings


async def end_to_end(url: str, signer, manifest, redis_url: str) -> tuple[float, int]:
    client = aioredis.Redis.from_url(redis_url)
    state, index = ValidatorState(client, "e2e"), TweetIndex(client, "e2e")

    async def block_hash(_block: int) -> str:
        return "0x" + "11" * 32

    pipeline = ManifestPipeline(
        Fetcher(FetchLimits(deadline_s=300), allow_private=True),
        state,
        NETUID,
        block_hash,
        lambda: datetime.now(UTC),
        limits=PipelineLimits(max_rows=10_000_000),
    )
    item = WorkItem(10, signer.ss58_address, 0, Commitment(manifest.sha256, parse_locator(url)))
    start = time.perf_counter()
    prepared = await pipeline.prepare(item, head_block=11)
    new = 0
    for sha, ids in prepared.shard_ids:
        new += (await index.ingest(ids, signer.ss58_address, f"{sha}:x", 0)).new
    elapsed = time.perf_counter() - start
    await client.aclose()
    return elapsed, new


def baseline(table: pa.Table, redis_url: str) -> tuple[float, float]:
    """Seconds per tweet of per-row validation, and of pipelined SETNX."""
    rows = table.to_pylist()
    start = time.perf_counter()
    for row in rows:
        TweetRecord.model_validate(row)
    per_row_check = (time.perf_counter() - start) / len(rows)
    client = redis.Redis.from_url(redis_url)
    start = time.perf_counter()
    pipe = client.pipeline(transaction=False)
    for tweet_id in table["id"].to_pylist():
        pipe.setnx(str(tweet_id), 1)
    pipe.execute()
    per_row_redis = (time.perf_counter() - start) / len(rows)
    return per_row_check, per_row_redis


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tweets", type=int, default=1_000_000)
    parser.add_argument("--shard-rows", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=20_000, help="rows for the baseline")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="d3vb"))
    try:
        signer, manifest = build_dataset(directory, args.tweets, args.shard_rows)
        size = sum(r.bytes for r in manifest.body.shards)
        with start_redis() as server, StaticServer(directory) as http:
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            timings = asyncio.run(phases(http.base_url, manifest, server.url))
            elapsed, new = asyncio.run(end_to_end(http.base_url, signer, manifest, server.url))
            peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            check_s, redis_s = baseline(synthetic_table(args.sample, seed=999), server.url)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    n = args.tweets
    total = sum(timings.values())
    naive = (check_s + redis_s) * n + timings["fetch"] + timings["parse"]
    without_index = timings["fetch"] + timings["parse"] + timings["checks"]
    figures = {
        "tweets": n,
        "shards": len(manifest.body.shards),
        "bytes": size,
        "end_to_end_s": round(elapsed, 2),
        "tweets_per_s": round(n / elapsed),
        "share": {k: round(v / total, 3) for k, v in timings.items()},
        "phase_s": {k: round(v, 2) for k, v in timings.items()},
        "vs_without_index": round(elapsed / without_index, 2),
        "baseline_s": round(naive, 1),
        "speedup": round(naive / elapsed, 1),
        "peak_rss_mb": round(peak_mb),
        "rss_before_mb": round(rss_before / 1024),
        "new": new,
    }
    print(f"manifest: {n:,} tweets in {len(manifest.body.shards)} shards ({size / 1e6:.0f} MB)")
    print(f"end to end: {elapsed:.2f}s ({n / elapsed:,.0f} tweets/s), {new:,} new")
    for key, value in timings.items():
        print(f"  {key:<7} {value:6.2f}s  {value / total:5.1%}")
    print(
        f"end to end is {elapsed / without_index:.2f}x fetch + parse + checks alone "
        f"({without_index:.2f}s)"
    )
    print(f"per-row baseline (pydantic + SETNX, scaled from {args.sample:,}): {naive:.1f}s")
    print(f"D3 is {naive / elapsed:.1f}x the per-row path; peak RSS {peak_mb:.0f} MB")
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
