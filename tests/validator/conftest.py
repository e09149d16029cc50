from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import bittensor as bt
import pytest
import redis.asyncio as aioredis

from d3.chain.sdk import SdkChain
from d3.dev.chain_state import SubnetParams
from d3.dev.substrate import DevSubstrate
from d3.dev.wallets import dev_wallet
from d3.validator.audit import AuditParams
from d3.validator.fetcher import Fetcher, FetchLimits
from d3.validator.index import TweetIndex
from d3.validator.pipeline import ManifestPipeline, PipelineLimits
from d3.validator.rounds import RoundRunner
from d3.validator.scoring import ScoringParams
from d3.validator.state import ValidatorState
from d3.validator.verifier import LookupBudget

NETUID = 3
# Audits in tests look at up to 20 new rows per commitment and per miner.
# Rows are ranked by the block after the commit (production: after the grace period), so
# tests need not wait out the grace period; test_audit.py covers the production timing.
TEST_AUDIT = AuditParams(
    lookups_per_period=100, min_per_miner=20, candidates_per_commitment=20, rank_delay_blocks=1
)


@dataclass
class Net:
    dev: DevSubstrate
    wallets_dir: Path
    data_dir: Path

    def wallet(self, name: str) -> bt.Wallet:
        return dev_wallet(self.wallets_dir, name)

    async def chain(self, client, name: str) -> SdkChain:
        return SdkChain(client, self.wallet(name), NETUID)


@pytest.fixture
def net(tmp_path) -> Iterator[Net]:
    dev = DevSubstrate(tmp_path / "chain.sqlite")
    owner = dev_wallet(tmp_path / "wallets", "owner")
    dev.create_subnet(
        NETUID,
        owner.hotkey.ss58_address,
        owner.coldkeypub.ss58_address,
        SubnetParams(weights_rate_limit=2, tempo=100),
    )
    # file:// locators must fit the 128-byte commitment: keep the hosts' paths short.
    hosts = Path(tempfile.mkdtemp(prefix="d3h"))
    yield Net(dev, tmp_path / "wallets", hosts)
    shutil.rmtree(hosts, ignore_errors=True)


def make_runner(
    chain,
    redis_url: str,
    lookup=None,
    limits: PipelineLimits | None = None,
    prefix: str = "d3",
    scoring: ScoringParams | None = None,
    audit: AuditParams | None = None,
) -> RoundRunner:
    limits = limits or PipelineLimits(grace_blocks=5)
    scoring = scoring or ScoringParams(period_blocks=1000, window_periods=7, decay=0.5)
    redis = aioredis.Redis.from_url(redis_url)
    state = ValidatorState(redis, prefix)
    pipeline = ManifestPipeline(
        Fetcher(FetchLimits(deadline_s=10, retries=0), allow_file=True, allow_private=True),
        state,
        NETUID,
        chain.block_hash,
        lambda: datetime.now(UTC),
        block_time_ms=chain.block_timestamp_ms,
        fresh_from_block=scoring.fresh_from_block,
        audit=(audit or TEST_AUDIT) if lookup else None,
        limits=limits,
    )
    return RoundRunner(
        chain,
        TweetIndex(redis, prefix),
        state,
        pipeline,
        scoring,
        lookup=lookup,
        budget=LookupBudget(10**9) if lookup else None,
    )


def run(coro):
    return asyncio.run(coro)


async def registered(client, net: Net, names) -> dict:
    """name -> chain of each named wallet, registered on the subnet."""
    chains = {n: await net.chain(client, n) for n in names}
    for chain in chains.values():
        assert (await chain.register()).ok
    return chains


async def audit_now(runner: RoundRunner, dev: DevSubstrate):
    """Close the current period (advance to the block that seeds its audit) and run the
    round that audits it; returns that round's report."""
    head = await runner.chain.block()
    end = (runner.scoring.period_of(head) + 1) * runner.scoring.period_blocks - 1
    seed_block = end + runner.pipeline.limits.grace_blocks + runner.pipeline.audit.delay_blocks
    if head < seed_block:
        dev.advance(seed_block - head)
    return await runner.process(await runner.chain.metagraph())
