"""Index ingest: D3's index vs its previous layout and the original `SETNX <id> 1` per tweet.

Everything runs in this process against the same freshly started local redis-server
(flushed in between), so the ratios are meaningful on a noisy machine even when the
absolute numbers are not. IDs are synthetic snowflakes spread over one day, ingested in
shard-sized chunks.

Part one (`--ids`, from an empty index): "d3" in time order (each chunk a contiguous
stretch, like a miner's successive shards), "d3_spread" in random chunks each spanning the
whole day (many miners searching the same period), and "original" (`SETNX`).

Part two (`--indexed`, the steady state): a day of IDs already indexed (preloaded in time
order), then `--spread-ids` more in chunks spread over the same day, each half new and half
already indexed. Per layout: IDs/s of the spread chunks, bytes per indexed ID (Redis
`used_memory`), Redis server CPU seconds per 1M spread IDs (`INFO cpu`) and this process's
CPU seconds per 1M (the least noisy figure on a shared machine). "d3" is this
index with a cold cache (a fresh `TweetIndex` for the spread chunks, as after a restart:
the first chunk reads every window of the day); "warm" leaves that first chunk out, the
steady state of a validator that has run for a while; "previous" is the layout
before it (`tests/validator/legacy_index.py`, which rewrites whole windows in Lua);
"setnx" is the original path, preloaded with only the IDs the chunks repeat (a key per ID
costs the same whatever the keyspace's size, and 50M keys would take half an hour).
`--repeat N` runs every layout N times, interleaved, and reports the medians.

    python bench/index_bench.py [--ids 5000000] [--indexed 5000000,50000000]
        [--spread-ids 1000000] [--chunk 50000] [--repeat 1] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import redis
import redis.asyncio as aioredis

from d3.dev.redis_server import start_redis
from d3.snowflake import TWITTER_EPOCH_MS, ms_to_id
from d3.validator.index import TweetIndex

DAY_MS = 86_400_000
BASE_MS = 1_767_225_600_000
LEGACY = Path(__file__).resolve().parents[1] / "tests" / "validator" / "legacy_index.py"


def synthetic_ids(n: int, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    ids = {ms_to_id(BASE_MS + rng.randrange(DAY_MS), rng.randrange(1 << 22)) for _ in range(n)}
    return sorted(ids)


def day_ids(n: int, seed: int) -> np.ndarray:
    """`n` distinct snowflakes over one day, in random order (numpy: 50M in seconds)."""
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, DAY_MS, int(n * 1.01) + 1000, dtype=np.int64)
    raw = ((raw + (BASE_MS - TWITTER_EPOCH_MS)) << 22) | rng.integers(0, 1 << 22, len(raw))
    raw.sort()
    distinct = raw[np.concatenate(([True], raw[1:] != raw[:-1]))]
    return rng.permutation(distinct)[:n]


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def server_cpu(client: redis.Redis) -> float:
    cpu = client.info("cpu")
    return float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])


def legacy_index_class() -> type:
    spec = importlib.util.spec_from_file_location("d3_legacy_index", LEGACY)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.LegacyTweetIndex


# -- part one: from an empty index -------------------------------------------------------


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


def part_one(url: str, client: redis.Redis, n_ids: int, chunk: int) -> dict:
    ids = synthetic_ids(n_ids)
    n = len(ids)
    figures: dict = {}
    for name in ("d3", "d3_spread", "original"):
        client.flushall()
        before = used_memory(client)
        if name.startswith("d3"):
            elapsed = asyncio.run(run_d3(url, ids, chunk, name == "d3_spread"))
        else:
            elapsed = run_original(client, ids, chunk)
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
    return {
        "ids": n,
        **figures,
        "speedup": round(speedup, 2),
        "memory_ratio": round(memory_ratio, 2),
    }


# -- part two: spread chunks into a day already indexed ----------------------------------


def spread_workload(
    indexed: int, spread_ids: int, chunk: int, seed: int = 7
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """(the preloaded day, sorted; the preloaded IDs the chunks repeat; the spread chunks,
    each half new IDs and half repeats, shuffled)."""
    fresh_count = spread_ids // 2
    everything = day_ids(indexed + fresh_count, seed)
    preload, fresh = np.sort(everything[:indexed]), everything[indexed:]
    rng = np.random.default_rng(seed + 1)
    repeats = preload[rng.choice(indexed, spread_ids - fresh_count, replace=False)]
    half = chunk // 2
    chunks = []
    for start in range(0, fresh_count, half):
        part = np.concatenate((fresh[start : start + half], repeats[start : start + half]))
        chunks.append(rng.permutation(part))
    return preload, repeats, chunks


async def spread_index(
    url: str,
    make: Callable[[aioredis.Redis], object],
    preload: np.ndarray,
    chunks: list[np.ndarray],
    chunk: int,
) -> dict:
    """Preload in time order, then the spread chunks through a fresh index (cold)."""
    client = aioredis.Redis.from_url(url)
    index = make(client)
    start = time.perf_counter()
    for n, begin in enumerate(range(0, len(preload), chunk)):
        await index.ingest(pa.array(preload[begin : begin + chunk]), "p", f"pre{n}", period=0)
    preload_s = time.perf_counter() - start
    del index
    index = make(client)  # cold: nothing of the preload cached
    sync = redis.Redis.from_url(url)
    server = [server_cpu(sync)]
    times, client_cpu, new = [], [], 0
    for n, ids in enumerate(chunks):
        t0, c0 = time.perf_counter(), time.process_time()
        result = await index.ingest(pa.array(ids), f"m{n % 16}", f"spread{n}", period=1)
        times.append(time.perf_counter() - t0)
        client_cpu.append(time.process_time() - c0)
        new += result.new
        if n == 0:
            server.append(server_cpu(sync))
    server.append(server_cpu(sync))
    sync.close()
    await client.aclose()
    return {
        "preload_s": preload_s,
        "times": times,
        "client_cpu": client_cpu,
        "cpu": server[-1] - server[0],
        "cpu_warm": server[-1] - server[1] if len(server) == 3 else None,
        "new": new,
    }


def spread_setnx(client: redis.Redis, repeats: np.ndarray, chunks: list[np.ndarray]) -> dict:
    """SETNX, preloaded with just the IDs the chunks repeat."""
    for start in range(0, len(repeats), 50_000):
        pipe = client.pipeline(transaction=False)
        for tweet_id in repeats[start : start + 50_000].tolist():
            pipe.setnx(str(tweet_id), 1)
        pipe.execute()
    cpu_before = server_cpu(client)
    times, client_cpu = [], []
    for ids in chunks:
        t0, c0 = time.perf_counter(), time.process_time()
        pipe = client.pipeline(transaction=False)
        for tweet_id in ids.tolist():
            pipe.setnx(str(tweet_id), 1)
        pipe.execute()
        times.append(time.perf_counter() - t0)
        client_cpu.append(time.process_time() - c0)
    return {
        "preload_s": 0.0,
        "times": times,
        "client_cpu": client_cpu,
        "cpu": server_cpu(client) - cpu_before,
        "cpu_warm": None,
        "new": 0,
    }


def spread_figure(run: dict, spread_total: int, first: int, indexed: int, stored_bytes: float):
    """One run's figures: IDs/s cold (every chunk) and warm (all but the first), Redis's
    and this process's CPU seconds per 1M spread IDs, bytes per indexed ID."""
    warm_ids = spread_total - first
    figure = {
        "ids_per_s": round(spread_total / sum(run["times"])),
        "bytes_per_id": round(stored_bytes, 2),
        "server_cpu_s_per_1m": round(run["cpu"] / spread_total * 1e6, 3),
        "client_cpu_s_per_1m": round(sum(run["client_cpu"]) / spread_total * 1e6, 3),
        "seconds": round(sum(run["times"]), 2),
    }
    if len(run["times"]) > 1:
        figure["warm_ids_per_s"] = round(warm_ids / sum(run["times"][1:]))
        figure["warm_client_cpu_s_per_1m"] = round(sum(run["client_cpu"][1:]) / warm_ids * 1e6, 3)
        if run["cpu_warm"] is not None:
            figure["warm_server_cpu_s_per_1m"] = round(run["cpu_warm"] / warm_ids * 1e6, 3)
    if run["preload_s"]:
        figure["time_ordered_ids_per_s"] = round(indexed / run["preload_s"])
    return figure


def median_figure(figures: list[dict]) -> dict:
    """Each figure's median over the runs (and every run's IDs/s when there were several)."""
    out = {key: statistics.median(f[key] for f in figures) for key in figures[0]}
    out = {k: round(v) if isinstance(figures[0][k], int) else round(v, 3) for k, v in out.items()}
    if len(figures) > 1:
        out["runs_ids_per_s"] = [f["ids_per_s"] for f in figures]
        out["runs_warm_ids_per_s"] = [f.get("warm_ids_per_s") for f in figures]
    return out


def part_two(
    url: str,
    client: redis.Redis,
    indexed: int,
    spread_ids: int,
    chunk: int,
    only: str = "",
    repeat: int = 1,
) -> dict:
    preload, repeats, chunks = spread_workload(indexed, spread_ids, chunk)
    spread_total = sum(len(c) for c in chunks)
    legacy = legacy_index_class()
    out: dict = {"indexed": indexed, "spread_ids": spread_total, "repeat": repeat}
    layouts = [
        (name, make)
        for name, make in (
            ("d3", lambda r: TweetIndex(r)),
            ("previous", lambda r: legacy(r)),
            ("setnx", None),
        )
        if not only or name in only.split(",")
    ]
    figures: dict[str, list[dict]] = {name: [] for name, _ in layouts}
    for n in range(repeat):  # interleaved, so that a slow minute hits every layout
        for name, make in layouts:
            client.flushall()
            before = used_memory(client)
            if make is None:
                run = spread_setnx(client, repeats, chunks)
                stored = spread_total  # keys: the repeated half was preloaded, the rest new
            else:
                run = asyncio.run(spread_index(url, make, preload, chunks, chunk))
                stored = indexed + run["new"]
            per_id = (used_memory(client) - before) / stored
            figures[name].append(spread_figure(run, spread_total, len(chunks[0]), indexed, per_id))
            if repeat > 1:
                f = figures[name][-1]
                print(f"    run {n + 1}/{repeat} {name}: {f['ids_per_s']:,} IDs/s", flush=True)
    for name, _ in layouts:
        figure = out[name] = median_figure(figures[name])
        print(
            f"  {name:>8}: {figure['ids_per_s']:>10,} IDs/s spread"
            f" (warm {figure.get('warm_ids_per_s', 0):>10,})"
            f"  {figure['bytes_per_id']:>6} bytes/ID"
            f"  server CPU s/1M {figure['server_cpu_s_per_1m']}"
            f" (warm {figure.get('warm_server_cpu_s_per_1m', '-')})"
            f"  client CPU s/1M {figure['client_cpu_s_per_1m']}"
            f" (warm {figure.get('warm_client_cpu_s_per_1m', '-')})"
            + (
                f"  time order {figure['time_ordered_ids_per_s']:,} IDs/s"
                if "time_ordered_ids_per_s" in figure
                else ""
            )
        )
    for base in ("previous", "setnx"):
        if base not in out or "d3" not in out:
            continue
        out[f"vs_{base}"] = round(out["d3"]["ids_per_s"] / out[base]["ids_per_s"], 2)
        out[f"warm_vs_{base}"] = round(out["d3"]["warm_ids_per_s"] / out[base]["warm_ids_per_s"], 2)
    if "vs_previous" in out and "vs_setnx" in out:
        print(
            f"  spread at {indexed:,} indexed: {out['vs_previous']}x the previous layout, "
            f"{out['vs_setnx']}x SETNX (warm {out['warm_vs_previous']}x, "
            f"{out['warm_vs_setnx']}x)" + (" (medians)" if repeat > 1 else "")
        )
    return out


def label(indexed: int) -> str:
    return f"d3_spread_{indexed // 1_000_000}m" if indexed >= 1_000_000 else f"d3_spread_{indexed}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=5_000_000, help="part one; 0 skips it")
    parser.add_argument(
        "--indexed",
        default="5000000,50000000",
        help="part two: IDs already indexed, comma-separated; empty skips it",
    )
    parser.add_argument("--spread-ids", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=50_000)
    parser.add_argument("--only", default="", help="part two: e.g. 'd3' (skip the baselines)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="part two: runs of each layout, interleaved; the medians are reported",
    )
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()

    result: dict = {}
    with start_redis() as server:
        client = redis.Redis.from_url(server.url)
        if args.ids:
            result.update(part_one(server.url, client, args.ids, args.chunk))
        for indexed in (int(v) for v in args.indexed.split(",") if v.strip()):
            print(f"spread chunks of {args.chunk:,} into {indexed:,} IDs already indexed:")
            result[label(indexed)] = part_two(
                server.url, client, indexed, args.spread_ids, args.chunk, args.only, args.repeat
            )
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
