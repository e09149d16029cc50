"""The validator loop in-process on a dev chain with commit-reveal on: weight-sets and their
reveals are counted, and once the reveal lands the leaderboard's chain weights match the
weights it set."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import bittensor as bt
import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from d3.config import load_config
from d3.dev.synthetic import synthetic_table
from d3.metrics import MetricsServer, ValidatorMetrics
from d3.validator.neuron import Validator, ValidatorConfig, build_runner
from tests.support.net import NETUID

from .test_validator_process import _register_and_publish


async def _until(check, what: str, task: asyncio.Task, deadline_s: float = 120):
    deadline = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < deadline:
        if task.done():
            task.result()  # raises what ended the loop
            raise AssertionError("the validator loop ended")
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.05)  # a pause for the loop, not a synchronisation
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def _sample(text: str, name: str, **labels: str) -> float:
    return sum(
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_weight_sets_and_reveals_are_counted_and_chain_weights_reach_the_leaderboard(
    net, redis_url
):
    start = datetime(2025, 9, 1, tzinfo=UTC)
    data = {
        "alpha": [synthetic_table(300, seed=0, start=start)],
        "beta": [synthetic_table(300, seed=s, start=start) for s in (1, 2)],
    }
    asyncio.run(_register_and_publish(net, data))
    net.dev.next_epoch(NETUID)  # permits are computed at epochs; the rate limit passes
    argv = [
        "--netuid", str(NETUID), "--subtensor.network", f"dev:{net.dev.path}",
        "--wallet.name", "validator", "--wallet.path", str(net.wallets_dir),
        "--redis.url", redis_url, "--neuron.poll_blocks", "1", "--verify.daily_budget", "0",
        "--verify.structure_only", "--neuron.weights_interval", "1",
    ]  # fmt: skip
    config = load_config(ValidatorConfig, argv, env={})

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            chain = await net.chain(client, "validator")
            redis = aioredis.Redis.from_url(redis_url)
            metrics = ValidatorMetrics()
            runner = build_runner(config, chain, redis, metrics)
            validator = Validator(config, chain, runner, metrics)
            documents = {"/leaderboard.json": validator.leaderboard_json}
            server = MetricsServer(metrics.registry, validator.health, documents=documents)
            with server:
                task = asyncio.create_task(validator.run())
                try:
                    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:

                        async def metric(name: str, **labels: str) -> float:
                            return _sample((await http.get("/metrics")).text, name, **labels)

                        await _until(
                            lambda: metric("d3_validator_weight_sets_total", verdict="ok"),
                            "a weight-set",
                            task,
                        )
                        assert await metric("d3_validator_last_weights_block") > 0
                        net.dev.next_epoch(NETUID)  # the reveal

                        async def revealed():
                            if not await metric("d3_validator_reveals_total", outcome="revealed"):
                                # The chain goes on making blocks: a loop that was still
                                # busy when the epoch turned waits for the next one.
                                net.dev.advance(1)
                                return None
                            board = (await http.get("/leaderboard.json")).json()
                            rows = board["miners"]
                            return board if any(r["chain_weight"] for r in rows) else None

                        board = await _until(revealed, "a reveal on the leaderboard", task)
                finally:
                    validator.stop.set()
                    await task
            await redis.aclose()
            return board, {n: net.wallet(n).hotkey.ss58_address for n in data}

    board, hotkeys = asyncio.run(body())
    rows = {r["hotkey"]: r for r in board["miners"]}
    for name in ("alpha", "beta"):
        row = rows[hotkeys[name]]
        assert row["weight"] > 0
        assert row["chain_weight"] == pytest.approx(row["weight"], abs=1e-3)
    assert rows[hotkeys["beta"]]["rank"] == 1
