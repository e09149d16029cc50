"""A validator's round runner wired as the tests need it (`d3.dev.runner`): files from
`file://` hosts on loopback, no fetch retries, audits on a small sample ranked one block
after the commit."""

from __future__ import annotations

import redis.asyncio as aioredis

from d3.dev.runner import local_runner
from d3.dev.substrate import DevSubstrate
from d3.validator.audit import AuditParams
from d3.validator.fetcher import FetchLimits
from d3.validator.pipeline import PipelineLimits
from d3.validator.rounds import RoundRunner
from d3.validator.scoring import ScoringParams
from d3.validator.verifier import LookupBudget

# Audits in tests look at up to 20 new rows per commitment and per miner.
# Rows are ranked by the block after the commit (production: after the grace period), so
# tests need not wait out the grace period; test_audit.py covers the production timing.
TEST_AUDIT = AuditParams(
    lookups_per_period=100, min_per_miner=20, candidates_per_commitment=20, rank_delay_blocks=1
)


def make_runner(
    chain,
    redis_url: str,
    lookup=None,
    limits: PipelineLimits | None = None,
    prefix: str = "d3",
    scoring: ScoringParams | None = None,
    audit: AuditParams | None = None,
) -> RoundRunner:
    return local_runner(
        chain,
        aioredis.Redis.from_url(redis_url),
        scoring or ScoringParams(period_blocks=1000, window_periods=7, decay=0.5),
        prefix=prefix,
        fetch=FetchLimits(deadline_s=10, retries=0),
        limits=limits or PipelineLimits(grace_blocks=5),
        lookup=lookup,
        audit=(audit or TEST_AUDIT) if lookup else None,
        budget=LookupBudget(10**9) if lookup else None,
    )


async def audit_now(runner: RoundRunner, dev: DevSubstrate):
    """Close the current period (advance to the block that seeds its audit) and run the
    round that audits it; returns that round's report."""
    head = await runner.chain.block()
    end = (runner.scoring.period_of(head) + 1) * runner.scoring.period_blocks - 1
    seed_block = end + runner.pipeline.limits.grace_blocks + runner.pipeline.audit.delay_blocks
    if head < seed_block:
        dev.advance(seed_block - head)
    return await runner.process(await runner.chain.metagraph())
