"""A real miner process: local X server → store → dataset dir → commitment on the dev chain;
then the validator's own pipeline fetches and verifies what it published."""

from __future__ import annotations

import asyncio
import os

import bittensor as bt
import pytest
import redis.asyncio as aioredis

from d3.dev.runner import local_runner
from d3.dev.x_server import DEFAULT_TOKEN, LocalXServer
from d3.validator.audit import AuditParams
from d3.validator.fetcher import FetchLimits
from d3.validator.pipeline import PipelineLimits
from d3.validator.scoring import ScoringParams
from d3.validator.verifier import LookupBudget
from d3.validator.x_lookup import source_lookup
from scraping.x_api import XApiSource
from tests.support.net import NETUID, register
from tests.support.neuron import PLAN, start_miner

TWO_QUERIES = PLAN + '[[queries]]\nname = "data"\nhashtags = ["data"]\n'


@pytest.fixture
def x():
    with LocalXServer(seed=7, size=3000) as server:
        yield server


async def _validate(net, x, redis_url):
    async with bt.Subtensor("local", substrate=net.dev) as client:
        redis = aioredis.Redis.from_url(redis_url)
        runner = local_runner(
            await net.chain(client, "validator"),
            redis,
            ScoringParams(),
            fetch=FetchLimits(deadline_s=10),
            lookup=source_lookup(XApiSource(DEFAULT_TOKEN, api_base_url=x.base_url)),
            audit=AuditParams(),
            budget=LookupBudget(100_000),
        )
        report = await runner.process(await runner.chain.metagraph())
        await redis.aclose()
        return report


def test_miner_commits_then_publishes_what_a_validator_accepts(net, x, redis_url, tmp_path):
    register(net, "miner", "validator")
    miner = start_miner(net, x, tmp_path, plan=TWO_QUERIES)
    try:
        miner.wait_for(r"published \d+ rows")  # after its manifest, the last file, is up
    finally:
        exit_status = miner.stop()
    assert exit_status == 0, miner.tail()
    assert "committed at block" in miner.stdout and "miner stopped" in miner.stdout
    assert list(miner.host_dir.glob("*.parquet")) and list(miner.host_dir.glob("*.json"))
    # The audit ranks rows by the block after the grace period (production timing).
    net.dev.advance(PipelineLimits().grace_blocks + 1)
    report = asyncio.run(_validate(net, x, redis_url))
    assert report.accepted and not report.rejected, report
    assert report.new_unique > 0


def test_unregistered_miner_says_so_and_exits_non_zero(net, x, tmp_path):
    net.wallet("miner")
    miner = start_miner(net, x, tmp_path)
    assert miner.wait() == 1
    assert f"is not registered on netuid {NETUID}: register it first" in miner.stdout
    assert not miner.host_dir.exists() or os.listdir(miner.host_dir) == []
