"""Bootstrap: a validator with an empty Redis replays chain history for many miners.

A validator that starts fresh (new operator, lost Redis, state layout bump) must read
every commitment back to the history horizon, one `CommitmentOf` read at `block - 1` per
commitment, and judge them all in global (block, hotkey) order before its weights mean
anything. This bench measures that path on the dev chain through the real SDK: the
history reads, the queue and the ordered ingest. Tables are small (a few dozen tweets per
commitment) so Parquet and the index do not hide the per-commitment cost.

The baseline, in the same process and on the same chain, is a validator that followed the
same history incrementally, one round after every step of commits. Both run against one
redis-server under separate prefixes, and the bench checks that they end with identical
scores: the horizon argument (`ScoringParams.history_horizon`) says a validator that never
read the oldest commitments reaches the same credit, and this is that claim at scale.

History shape: `--miners` miners each commit `--commits` times, one step of commits after
another (every miner once per step). Each commitment is a signed manifest chained to the
miner's previous one, with `--tweets` fresh tweets created just before the step and
`--copied` tweets copied from another miner's previous commitment (duplicates: no
credit). Every 16th miner uploads a corrupt shard every 4th step (a rejection that costs
credibility). Scoring uses the default window and freshness (WINDOW_PERIODS=7,
FRESH_PERIODS=2) with a short period, chosen unless `--period-blocks` says otherwise so
that about a quarter of the history falls before the horizon: the bootstrapped validator
must skip those commitments and still agree with the one that judged them.

    python bench/bootstrap_bench.py [--miners 256] [--commits 12] [--json]
    python bench/bootstrap_bench.py --miners 256 --commits 20   # a bigger run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bittensor as bt
import pyarrow as pa
import redis.asyncio as aioredis
from loguru import logger

from d3.chain.interface import CommitmentRecord, MetagraphSnapshot
from d3.chain.sdk import SdkChain, _isolate_sdk_cache
from d3.commitment import Commitment, parse_locator
from d3.dev.chain_state import SubnetParams
from d3.dev.redis_server import start_redis
from d3.dev.runner import local_runner
from d3.dev.substrate import GENESIS_TIMESTAMP_MS, DevSubstrate
from d3.dev.synthetic import synthetic_table
from d3.dev.wallets import dev_wallet
from d3.manifest import build_manifest
from d3.shards import encode_shard
from d3.validator.fetcher import FetchLimits
from d3.validator.index import IngestResult, TweetIndex
from d3.validator.rounds import RoundReport, RoundRunner
from d3.validator.scoring import (
    FRESH_PERIODS,
    PERIOD_BLOCKS,
    WINDOW_PERIODS,
    MinerScore,
    ScoringParams,
)

if TYPE_CHECKING:
    from loguru import Record

NETUID = 1
CONCURRENCY = 8  # the validator's default (--neuron.concurrency); history reads run 2x this
HORIZON_CUT = 0.25  # the share of history the auto-chosen period puts before the horizon
BENCH = logger.bind(bench=True)


def chain_time(block: int) -> datetime:
    """The dev chain's timestamp of `block` (what `Timestamp.Now` answers)."""
    return datetime.fromtimestamp((GENESIS_TIMESTAMP_MS + block * 12_000) / 1000, tz=UTC)


@dataclass
class ReadStats:
    """`CommitmentOf` reads as the history walk sees them (latency includes queueing)."""

    reads: int = 0
    seconds: float = 0.0


class TimedChain(SdkChain):
    """The real SDK chain, counting historical commitment reads: the cost a bootstrap pays
    per commitment, and the one an archive node's latency multiplies on finney."""

    def __init__(self, client: bt.Client, wallet: Any, netuid: int):
        super().__init__(client, wallet, netuid)
        self.stats = ReadStats()

    async def commitment_of(self, hotkey: str, block: int) -> CommitmentRecord | None:
        start = time.perf_counter()
        try:
            return await super().commitment_of(hotkey, block)
        finally:
            self.stats.reads += 1
            self.stats.seconds += time.perf_counter() - start


class TimedIndex(TweetIndex):
    """The real index, timing its ingest calls (the round applies them one at a time, in
    order, so their sum is the index's share of judging)."""

    def __init__(self, redis: aioredis.Redis, prefix: str):
        super().__init__(redis, prefix)
        self.seconds = 0.0

    async def ingest(self, ids: pa.Array, hotkey: str, token: str, period: int) -> IngestResult:
        start = time.perf_counter()
        try:
            return await super().ingest(ids, hotkey, token, period)
        finally:
            self.seconds += time.perf_counter() - start


@dataclass
class MinerSim:
    """One miner's publishing state: its chain handle, host directory and manifest chain."""

    chain: SdkChain
    signer: Any
    host: Path
    parent: str | None = None
    last_own: pa.Table | None = None  # what the next miner copies from
    commits: list[int] = field(default_factory=list)  # blocks


def make_runner(
    chain: SdkChain,
    redis: aioredis.Redis,
    prefix: str,
    scoring: ScoringParams,
    round_seconds: float,
) -> RoundRunner:
    """A runner wired like `neuron.build_runner` (freshness bound from block timestamps),
    minus X look-ups: the bench is about chain history, not X."""
    return local_runner(
        chain,
        redis,
        scoring,
        prefix=prefix,
        fetch=FetchLimits(deadline_s=60),
        index=TimedIndex(redis, prefix),
        concurrency=CONCURRENCY,
        round_seconds=round_seconds,
    )


def auto_period(miners: int, commits: int) -> int:
    """A period such that the history horizon (8 to 9 periods before the head with the
    default window and freshness) cuts about HORIZON_CUT of the committed history."""
    span = (miners + 2) + miners * commits  # registrations, then one block per commit
    kept_periods = WINDOW_PERIODS + FRESH_PERIODS - 0.5
    return max(1, round(span * (1 - HORIZON_CUT) / kept_periods))


async def publish_step(
    miners: list[MinerSim], step: int, dev: DevSubstrate, tweets: int, copied: int
) -> None:
    """Every miner uploads one manifest chained to its last and commits it, in uid order.

    Tweets are created just before the step starts, so each is fresh for its commitment
    and the freshness bound treats them like a live miner's scrape."""
    start_block = dev.state.head()
    created = chain_time(start_block)
    previous = [m.last_own for m in miners]
    for i, miner in enumerate(miners):
        own = synthetic_table(
            tweets,
            seed=step * 1_000_003 + i,
            start=created - timedelta(seconds=2 * tweets + 10),
        )
        source = previous[(i + 1) % len(miners)]
        table = own
        if copied and source is not None:  # another miner's tweets: duplicates, no credit
            table = pa.concat_tables([own, source.slice(0, copied)])
        shard = encode_shard(table)
        data = shard.data
        if i % 16 == 5 and step % 4 == 1:  # a corrupt upload: rejected, costs credibility
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        (miner.host / shard.name).write_bytes(data)
        manifest = build_manifest(miner.signer, NETUID, [shard], miner.parent, created_at=created)
        (miner.host / manifest.name).write_bytes(manifest.to_bytes())
        text = Commitment(manifest.sha256, parse_locator(f"file://{miner.host}")).encode()
        verdict = await miner.chain.commit(text)
        assert verdict.ok and verdict.block is not None, verdict.message
        miner.commits.append(verdict.block)
        miner.parent = manifest.sha256
        miner.last_own = own


async def catch_up(runner: RoundRunner, graph: MetagraphSnapshot) -> list[RoundReport]:
    """Rounds until the queue is empty, as the neuron loops while `caught_up` is False."""
    reports = [await runner.process(graph)]
    while not reports[-1].caught_up:
        reports.append(await runner.process(graph))
    return reports


def sum_reports(reports: list[RoundReport]) -> dict[str, int]:
    """Totals over a validator's rounds: a bootstrap may span several (`caught_up`)."""
    return {
        "accepted": sum(len(r.accepted) for r in reports),
        "rejected": sum(len(r.rejected) for r in reports),
        "neutral": sum(r.neutral for r in reports),
        "new_unique": sum(r.new_unique for r in reports),
    }


def compare(a: list[MinerScore], b: list[MinerScore]) -> list[str]:
    """Human-readable differences between two score lists (empty: identical)."""
    if len(a) != len(b):
        return [f"{len(a)} scores vs {len(b)}"]
    return [f"{x} != {y}" for x, y in zip(a, b, strict=True) if x != y]


async def judged_manifests(redis: aioredis.Redis, prefix: str) -> int:
    """Manifests a validator has judged: its commitments' own plus the ancestors reached
    through `parent` (a bootstrap takes those for each hotkey's first commitment after the
    horizon, back to the freshness bound). Reads the state layout directly: a diagnostic."""
    total = 0
    async for key in redis.scan_iter(match=f"{prefix}:{{state}}:judged:*", count=1000):
        total += int(await redis.hlen(key))
    return total


async def sequential_reads(chain: TimedChain, miners: list[MinerSim], count: int) -> float:
    """Seconds per `CommitmentOf` read with nothing else running: the unloaded cost."""
    rng = random.Random(7)
    picks = [rng.choice(miners) for _ in range(count)]
    start = time.perf_counter()
    for miner in picks:
        await chain.commitment_of(miner.chain.hotkey, rng.choice(miner.commits))
    return (time.perf_counter() - start) / count


async def bench(args: argparse.Namespace, workdir: Path, redis_url: str) -> dict:
    period = args.period_blocks or auto_period(args.miners, args.commits)
    scoring = ScoringParams(period_blocks=period)  # default window, freshness and decay
    dev = DevSubstrate(workdir / "chain.sqlite")
    wallets = workdir / "wallets"
    owner = dev_wallet(wallets, "owner")
    dev.create_subnet(
        NETUID,
        owner.hotkey.ss58_address,
        owner.coldkeypub.ss58_address,
        SubnetParams(max_uids=args.miners + 1, commit_space_per_tempo=10**9),
    )
    redis = aioredis.Redis.from_url(redis_url)
    await redis.flushall()
    async with bt.Subtensor("local", substrate=dev) as client:
        vwallet = dev_wallet(wallets, "validator")
        incremental_chain = TimedChain(client, vwallet, NETUID)
        bootstrap_chain = TimedChain(client, vwallet, NETUID)
        assert (await incremental_chain.register()).ok
        miners: list[MinerSim] = []
        setup_start = time.perf_counter()
        for i in range(args.miners):
            wallet = dev_wallet(wallets, f"m{i}")
            chain = SdkChain(client, wallet, NETUID)
            assert (await chain.register()).ok
            host = workdir / "h" / str(i)
            host.mkdir(parents=True)
            miners.append(MinerSim(chain, wallet.hotkey, host))
        BENCH.info(
            "{} miners registered in {:.1f}s; period {} blocks",
            args.miners,
            time.perf_counter() - setup_start,
            period,
        )

        # The baseline: history as it happens, one validator round after every step.
        incremental = make_runner(incremental_chain, redis, "inc", scoring, args.round_seconds)
        await incremental.state.ensure_version()
        publish_s = incremental_s = 0.0
        incremental_reports: list[RoundReport] = []
        for step in range(args.commits):
            start = time.perf_counter()
            await publish_step(miners, step, dev, args.tweets, args.copied)
            publish_s += time.perf_counter() - start
            start = time.perf_counter()
            incremental_reports += await catch_up(incremental, await incremental_chain.metagraph())
            incremental_s += time.perf_counter() - start
            BENCH.info(
                "step {}/{}: {} commitments published (head {}); incremental validator judged "
                "them in {:.1f}s",
                step + 1,
                args.commits,
                len(miners),
                dev.state.head(),
                time.perf_counter() - start,
            )
        dev.advance(1)
        graph = await bootstrap_chain.metagraph()
        start = time.perf_counter()
        incremental_reports += await catch_up(incremental, graph)
        incremental_s += time.perf_counter() - start
        incremental_reads = incremental_chain.stats.reads
        incremental_scores = await incremental.scores(graph)

        # The bootstrap: an empty state and index, the whole history at once.
        horizon = scoring.history_horizon(graph.block)
        committed = [b for m in miners for b in m.commits]
        expected = sum(1 for b in committed if b >= horizon)
        BENCH.info(
            "bootstrap at head {}: {} commitments on chain, {} at or after the horizon {}",
            graph.block,
            len(committed),
            expected,
            horizon,
        )
        bootstrap = make_runner(bootstrap_chain, redis, "boot", scoring, args.round_seconds)
        await bootstrap.state.ensure_version()
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with logger.contextualize(validator="bootstrap"):
            start = time.perf_counter()
            read = await bootstrap.sync_history(graph.block)
            history_s = time.perf_counter() - start
            BENCH.info("history: {} commitments queued in {:.1f}s", read, history_s)
            start = time.perf_counter()
            bootstrap_reports = await catch_up(bootstrap, graph)
            judge_s = time.perf_counter() - start
        assert await bootstrap.state.queue_size() == 0
        bootstrap_scores = await bootstrap.scores(graph)
        bootstrap_manifests = await judged_manifests(redis, "boot")
        assert isinstance(bootstrap.index, TimedIndex)
        index_s = bootstrap.index.seconds
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        reads = ReadStats(bootstrap_chain.stats.reads, bootstrap_chain.stats.seconds)
        per_read_s = await sequential_reads(bootstrap_chain, miners, min(1000, len(committed)))
        await redis.aclose()

    differences = compare(incremental_scores, bootstrap_scores)
    incremental_judged = sum(
        len(r.accepted) + len(r.rejected) + r.neutral for r in incremental_reports
    )
    boot = sum_reports(bootstrap_reports)
    judged = boot["accepted"] + boot["rejected"] + boot["neutral"]
    return {
        "miners": args.miners,
        "commits_per_miner": args.commits,
        "tweets_per_commit": args.tweets + args.copied,
        "period_blocks": period,
        "head": graph.block,
        "horizon": horizon,
        "committed": len(committed),
        "read": read,
        "expected_read": expected,
        "history_reads": reads.reads,
        "history_s": round(history_s, 2),
        "history_reads_per_s": round(reads.reads / history_s, 1),
        "read_latency_loaded_ms": round(1000 * reads.seconds / max(1, reads.reads), 2),
        "read_latency_sequential_ms": round(1000 * per_read_s, 2),
        "judge_s": round(judge_s, 2),
        "judge_rounds": len(bootstrap_reports),
        "index_s": round(index_s, 2),
        "judged": judged,
        **boot,
        "manifests_judged": bootstrap_manifests,
        "bootstrap_s": round(history_s + judge_s, 2),
        "commitments_per_s": round(read / (history_s + judge_s), 1),
        "judged_per_s": round(judged / judge_s, 1),
        "incremental_rounds": len(incremental_reports),
        "incremental_judged": incremental_judged,
        "incremental_reads": incremental_reads,
        "incremental_s": round(incremental_s, 2),
        "incremental_per_s": round(incremental_judged / incremental_s, 1),
        "incremental_new_unique": sum_reports(incremental_reports)["new_unique"],
        "publish_s": round(publish_s, 2),
        "scores_equal": not differences,
        "score_differences": differences[:5],
        "scored": sum(1 for s in bootstrap_scores if s.weight > 0),
        "peak_rss_mb": round(rss_after / 1024),
        "rss_growth_mb": round((rss_after - rss_before) / 1024),
    }


def finney_estimate(result: dict, miners: int, blocks_per_commit: int) -> dict:
    """A finney bootstrap at the default scoring window, from the rates measured here.

    The history kept is 8 to 9 periods (horizon = window start minus FRESH_PERIODS); take
    the worst case, 9. Each hotkey's walk is sequential (a read names the next block to
    read), and the walks run 2 x concurrency at a time, so the read wall time is about
    ceil(miners / 16) x reads per hotkey x the endpoint's latency per read."""
    per_miner = (WINDOW_PERIODS + FRESH_PERIODS) * PERIOD_BLOCKS // blocks_per_commit
    commitments = miners * per_miner
    lanes = 2 * CONCURRENCY
    sequential_reads = math.ceil(miners / lanes) * per_miner
    latencies_ms = {
        "dev chain (measured)": result["read_latency_sequential_ms"],
        "10 ms": 10.0,
        "50 ms": 50.0,
        "200 ms": 200.0,
    }
    return {
        "miners": miners,
        "commitments_per_miner": per_miner,
        "commitments": commitments,
        "history_read_s": {k: round(sequential_reads * v / 1000) for k, v in latencies_ms.items()},
        "judge_s_at_measured_rate": round(commitments / result["judged_per_s"]),
    }


def progress_only(record: Record) -> bool:
    """The bench's own lines, the bootstrap's progress lines and errors; not the round's
    line per manifest (thousands here) nor the baseline's."""
    if record["extra"].get("bench") or record["level"].no >= 40:
        return True
    if record["extra"].get("validator") != "bootstrap":
        return False
    name = record["name"] or ""
    message = record["message"]
    return name == "d3.validator.history" or (
        name == "d3.validator.rounds" and message.startswith(("judged ", "forgot "))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--miners", type=int, default=256)
    parser.add_argument("--commits", type=int, default=12, help="commitments per miner")
    parser.add_argument("--tweets", type=int, default=20, help="fresh tweets per commitment")
    parser.add_argument("--copied", type=int, default=5, help="duplicates per commitment")
    parser.add_argument("--period-blocks", type=int, default=0, help="0: cut ~1/4 of history")
    parser.add_argument("--blocks-per-commit", type=int, default=100, help="finney estimate")
    parser.add_argument(
        "--round-seconds", type=float, default=600, help="as --neuron.round_seconds"
    )
    parser.add_argument("--verbose", action="store_true", help="every validator log line")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    _isolate_sdk_cache()
    logger.remove()
    logger.add(
        sys.stderr,
        level="INFO",
        format="{time:HH:mm:ss} {message}",
        filter=None if args.verbose else progress_only,
    )
    workdir = Path(tempfile.mkdtemp(prefix="d3bb"))  # short: file:// locators fit 128 bytes
    try:
        with start_redis() as server:
            r = asyncio.run(bench(args, workdir, server.url))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    estimate = finney_estimate(r, 256, args.blocks_per_commit)
    print(
        f"history: {r['committed']:,} commitments on chain ({r['miners']} miners x "
        f"{r['commits_per_miner']}), period {r['period_blocks']} blocks, horizon {r['horizon']}"
        f" of head {r['head']}: {r['read']:,} read (expected {r['expected_read']:,})"
    )
    print(
        f"bootstrap: history reads {r['history_s']}s ({r['history_reads']:,} reads, "
        f"{r['history_reads_per_s']:,}/s, {r['read_latency_loaded_ms']} ms each under load, "
        f"{r['read_latency_sequential_ms']} ms alone); judging {r['judge_s']}s "
        f"({r['judged']:,} commitments, {r['judged_per_s']}/s, index {r['index_s']}s) "
        f"in {r['judge_rounds']} round(s); {r['commitments_per_s']} commitments/s overall"
    )
    print(
        f"  {r['accepted']:,} accepted, {r['rejected']:,} rejected, {r['neutral']} neutral; "
        f"{r['manifests_judged']:,} manifests judged (with ancestors past the horizon); "
        f"{r['new_unique']:,} new unique; peak RSS {r['peak_rss_mb']} MB "
        f"(+{r['rss_growth_mb']} MB during bootstrap)"
    )
    print(
        f"baseline (incremental, {r['incremental_rounds']} rounds): {r['incremental_judged']:,} "
        f"commitments in {r['incremental_s']}s ({r['incremental_per_s']}/s); bootstrap judging "
        f"is {r['judged_per_s'] / r['incremental_per_s']:.2f}x that rate"
    )
    print(
        f"scores equal to the incremental validator's: {r['scores_equal']} "
        f"({r['scored']} miners with weight)"
    )
    for line in r["score_differences"]:
        print(f"  {line}")
    reads = ", ".join(f"{k}: {v:,}s" for k, v in estimate["history_read_s"].items())
    print(
        f"finney estimate, 256 miners, 1 commit/{args.blocks_per_commit} blocks, "
        f"{WINDOW_PERIODS}+{FRESH_PERIODS} periods of {PERIOD_BLOCKS}: "
        f"{estimate['commitments']:,} commitments; history reads at per-read latency {reads}; "
        f"judging ~{estimate['judge_s_at_measured_rate']:,}s at this bench's rate"
    )
    if args.json:
        print(json.dumps({**r, "finney_estimate": estimate}))


if __name__ == "__main__":
    main()
