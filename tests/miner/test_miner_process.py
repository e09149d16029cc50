"""A real miner process: local X server → store → dataset dir → commitment on the dev chain;
then the validator's own pipeline fetches and verifies what it published."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import bittensor as bt
import pytest
import redis.asyncio as aioredis

from d3.chain.sdk import SdkChain
from d3.dev.chain_state import SubnetParams
from d3.dev.substrate import DevSubstrate
from d3.dev.wallets import dev_wallet
from d3.dev.x_server import DEFAULT_TOKEN, LocalXServer
from d3.validator.audit import AuditParams
from d3.validator.fetcher import Fetcher, FetchLimits
from d3.validator.index import TweetIndex
from d3.validator.pipeline import ManifestPipeline, PipelineLimits
from d3.validator.rounds import RoundRunner
from d3.validator.scoring import ScoringParams
from d3.validator.state import ValidatorState
from d3.validator.verifier import LookupBudget
from d3.validator.x_lookup import source_lookup
from scraping.x_api import XApiSource

ROOT = Path(__file__).resolve().parents[2]
NETUID = 5
PLAN = """
[defaults]
interval_s = 10
limit = 200
[[queries]]
name = "ai"
keywords = ["ai", "model"]
[[queries]]
name = "data"
hashtags = ["data"]
"""


@pytest.fixture
def world(tmp_path):
    dev = DevSubstrate(tmp_path / "chain.sqlite")
    owner = dev_wallet(tmp_path / "w", "owner")
    dev.create_subnet(
        NETUID, owner.hotkey.ss58_address, owner.coldkeypub.ss58_address, SubnetParams()
    )
    host_dir = Path(tempfile.mkdtemp(prefix="d3m"))
    with LocalXServer(seed=7, size=3000) as x:
        yield dev, x, host_dir, tmp_path
    shutil.rmtree(host_dir, ignore_errors=True)


def _miner(dev, x, host_dir, tmp) -> subprocess.Popen:
    (tmp / "plan.toml").write_text(PLAN)
    args = [
        sys.executable,
        str(ROOT / "neurons" / "miner.py"),
        "--netuid",
        str(NETUID),
        "--subtensor.network",
        f"dev:{dev.path}",
        "--wallet.name",
        "miner",
        "--wallet.path",
        str(tmp / "w"),
        "--source.x_bearer_token",
        DEFAULT_TOKEN,
        "--source.x_api_base_url",
        x.base_url,
        "--source.query_plan",
        str(tmp / "plan.toml"),
        "--host.dir",
        str(host_dir),
        "--neuron.store_path",
        str(tmp / "m" / "store.sqlite"),
        "--neuron.commit_interval",
        "1",
        "--neuron.shard_rows",
        "100",
    ]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


async def _register(dev, tmp, *names):
    async with bt.Subtensor("local", substrate=dev) as client:
        for name in names:
            assert (await SdkChain(client, dev_wallet(tmp / "w", name), NETUID).register()).ok


async def _validate(dev, x, tmp, redis_url):
    async with bt.Subtensor("local", substrate=dev) as client:
        chain = SdkChain(client, dev_wallet(tmp / "w", "validator"), NETUID)
        redis = aioredis.Redis.from_url(redis_url)
        state = ValidatorState(redis)
        lookup = source_lookup(XApiSource(DEFAULT_TOKEN, api_base_url=x.base_url))
        pipeline = ManifestPipeline(
            Fetcher(FetchLimits(deadline_s=10), allow_file=True, allow_private=True),
            state,
            NETUID,
            chain.block_hash,
            lambda: datetime.now(UTC),
            audit=AuditParams(),
        )
        runner = RoundRunner(
            chain,
            TweetIndex(redis),
            state,
            pipeline,
            ScoringParams(),
            lookup=lookup,
            budget=LookupBudget(100_000),
        )
        report = await runner.process(await chain.metagraph())
        await redis.aclose()
        return report


def test_miner_commits_then_publishes_what_a_validator_accepts(world, redis_url):
    dev, x, host_dir, tmp = world
    asyncio.run(_register(dev, tmp, "miner", "validator"))
    process = _miner(dev, x, host_dir, tmp)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not list(host_dir.glob("*.json")):
            assert process.poll() is None, process.stderr.read()
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err[-3000:]
    assert "committed at block" in err and "miner stopped" in err
    assert list(host_dir.glob("*.parquet"))
    # The audit ranks rows by the block after the grace period (production timing).
    dev.advance(PipelineLimits().grace_blocks + 1)
    report = asyncio.run(_validate(dev, x, tmp, redis_url))
    assert report.accepted and not report.rejected, report
    assert report.new_unique > 0


def test_unregistered_miner_says_so_and_exits_non_zero(world):
    dev, x, host_dir, tmp = world
    dev_wallet(tmp / "w", "miner")
    process = _miner(dev, x, host_dir, tmp)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "is not registered on netuid 5: register it first" in err
    assert os.listdir(host_dir) == []
