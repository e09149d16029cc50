"""A validator round over many miners: 256 miners with 10k new tweets each.

A dev chain through the real SDK, every miner registered and committed, datasets on
local directories, a real redis-server. The round takes the validator's whole path: it
reads the commitments from chain history (one `CommitmentOf` read per miner, at the block
before its commitment, finding nothing older), queues them, and judges them in (block,
hotkey) order in batches until the queue is empty. The baseline, in the same process, is
the same round over 16 miners: the ratio of time per miner says how the round scales.

    python bench/round_bench.py [--miners 256] [--tweets 10000] [--repeat 1] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import bittensor as bt
import pyarrow as pa
import pyarrow.compute as pc
import redis.asyncio as aioredis
from loguru import logger

from d3.chain.sdk import SdkChain, _isolate_sdk_cache
from d3.commitment import Commitment, parse_locator
from d3.dev.chain_state import SubnetParams
from d3.dev.redis_server import start_redis
from d3.dev.substrate import DevSubstrate
from d3.dev.synthetic import synthetic_table
from d3.dev.wallets import dev_wallet
from d3.manifest import build_manifest
from d3.record import URL_PREFIX
from d3.shards import encode_shard
from d3.validator.fetcher import Fetcher, FetchLimits
from d3.validator.index import TweetIndex
from d3.validator.pipeline import ManifestPipeline, PipelineLimits
from d3.validator.rounds import RoundRunner
from d3.validator.scoring import ScoringParams
from d3.validator.state import ValidatorState

NETUID = 1


def miner_table(base: pa.Table, shift: int) -> pa.Table:
    """`base` with every ID moved by `shift` in the sequence bits: same times, new tweets."""
    ids = pc.add(base["id"], pa.scalar(shift, pa.int64()))
    url = pc.binary_join_element_wise(
        URL_PREFIX, base["author_username"], "/status/", pc.cast(ids, pa.string()), ""
    )
    table = base.set_column(0, "id", ids)
    return table.set_column(table.schema.get_field_index("url"), "url", url)


async def round_over(miners: int, tweets: int, workdir: Path, redis_url: str) -> dict:
    dev = DevSubstrate(workdir / "chain.sqlite")
    wallets = workdir / "wallets"
    owner = dev_wallet(wallets, "owner")
    dev.create_subnet(
        NETUID,
        owner.hotkey.ss58_address,
        owner.coldkeypub.ss58_address,
        SubnetParams(max_uids=miners + 1, commit_space_per_tempo=10**9),
    )
    base = synthetic_table(tweets, seed=1)
    async with bt.Subtensor("local", substrate=dev) as client:
        validator = SdkChain(client, dev_wallet(wallets, "validator"), NETUID)
        assert (await validator.register()).ok
        for i in range(miners):
            wallet = dev_wallet(wallets, f"m{i}")
            chain = SdkChain(client, wallet, NETUID)
            assert (await chain.register()).ok
            shard = encode_shard(miner_table(base, shift=i * 7))
            host = workdir / "h" / str(i)
            host.mkdir(parents=True)
            (host / shard.name).write_bytes(shard.data)
            manifest = build_manifest(wallet.hotkey, NETUID, [shard], None)
            (host / manifest.name).write_bytes(manifest.to_bytes())
            text = Commitment(manifest.sha256, parse_locator(f"file://{host}")).encode()
            assert (await chain.commit(text)).ok
        dev.advance(1)
        redis = aioredis.Redis.from_url(redis_url)
        await redis.flushall()
        state = ValidatorState(redis)
        pipeline = ManifestPipeline(
            Fetcher(FetchLimits(deadline_s=60), allow_file=True, allow_private=True),
            state,
            NETUID,
            validator.block_hash,
            lambda: datetime.now(UTC),
            limits=PipelineLimits(),
        )
        runner = RoundRunner(validator, TweetIndex(redis), state, pipeline, ScoringParams())
        graph = await validator.metagraph()
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        report = await runner.process(graph)
        scores = await runner.scores(graph)
        elapsed = time.perf_counter() - start
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        await redis.aclose()
    assert len(report.accepted) == miners, report.rejected
    assert report.caught_up and report.read == miners, (report.caught_up, report.read)
    return {
        "miners": miners,
        "tweets_per_miner": tweets,
        "round_s": round(elapsed, 2),
        "s_per_miner": round(elapsed / miners, 4),
        "new_unique": report.new_unique,
        "read_from_history": report.read,
        "peak_rss_mb": round(rss_after / 1024),
        "rss_growth_mb": round((rss_after - rss_before) / 1024),
        "scored": sum(1 for s in scores if s.weight > 0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--miners", type=int, default=256)
    parser.add_argument("--tweets", type=int, default=10_000)
    parser.add_argument("--baseline-miners", type=int, default=16)
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs of each size, interleaved; the medians are reported (the 16-miner round "
        "takes about a second, so one run of it is mostly noise)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    _isolate_sdk_cache()
    logger.remove()
    logger.add(lambda m: None)  # the round logs a line per manifest; keep the bench quiet
    runs: dict[str, list[dict]] = {"baseline": [], "round": []}
    with start_redis() as server:
        for _ in range(args.repeat):
            for label, miners in (("baseline", args.baseline_miners), ("round", args.miners)):
                workdir = Path(tempfile.mkdtemp(prefix="d3rb"))
                try:
                    r = asyncio.run(round_over(miners, args.tweets, workdir, server.url))
                finally:
                    shutil.rmtree(workdir, ignore_errors=True)
                runs[label].append(r)
                print(
                    f"{label:>8}: {miners} miners x {args.tweets:,} tweets in {r['round_s']}s "
                    f"({r['s_per_miner']}s/miner), "
                    f"{r['new_unique']:,} new, peak RSS {r['peak_rss_mb']} MB",
                    flush=True,
                )
    results = {label: _median(rs) for label, rs in runs.items()}
    scaling = results["round"]["s_per_miner"] / results["baseline"]["s_per_miner"]
    print(
        f"time per miner at {args.miners} miners is {scaling:.2f}x that at "
        f"{args.baseline_miners}" + (f" (medians of {args.repeat} runs)" if args.repeat > 1 else "")
    )
    if args.json:
        scaled = {**results, "per_miner_scaling": round(scaling, 2), "repeat": args.repeat}
        print(json.dumps(scaled))


def _median(runs: list[dict]) -> dict:
    """Each figure's median over the runs; the runs' times when there were several."""
    out = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    out = {k: round(v) if isinstance(runs[0][k], int) else round(v, 4) for k, v in out.items()}
    if len(runs) > 1:
        out["runs_round_s"] = [r["round_s"] for r in runs]
    return out


if __name__ == "__main__":
    main()
