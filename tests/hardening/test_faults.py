"""Faults: Redis dies mid-round, the chain drops connections, X fails, the disk fills up.

Each must recover without losing acknowledged data or counting credit twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import subprocess
import tempfile
import time
from pathlib import Path
from typing import ClassVar

import bittensor as bt
import pyarrow as pa
import pytest
import redis.asyncio as aioredis
from loguru import logger
from redis.exceptions import ConnectionError as RedisConnectionError

from d3.config import SubtensorConfig
from d3.dev.redis_server import start_redis
from d3.dev.synthetic import synthetic_table
from d3.dev.x_server import DEFAULT_TOKEN, LocalXServer
from d3.miner.neuron import scrape_forever
from d3.miner.store import TweetStore
from d3.validator.neuron import Validator, ValidatorConfig, build_runner
from scraping.query_plan import parse_plan
from scraping.x_api import XApiSource
from tests.support.datasets import TruthLookup, write_dataset
from tests.support.net import NETUID, run
from tests.support.runner import audit_now, make_runner


async def _publish(
    net, datasets: dict[str, list[pa.Table]], stake: tuple[str, ...] = ("validator",)
):
    async with bt.Subtensor("local", substrate=net.dev) as client:
        for name in ("validator", *datasets):
            assert (await (await net.chain(client, name)).register()).ok
        for name in stake:
            net.dev.set_stake(net.wallet(name).hotkey.ss58_address, 10**12)
        for name, tables in datasets.items():
            published = write_dataset(net.data_dir / name, net.wallet(name).hotkey, NETUID, tables)
            assert (await (await net.chain(client, name)).commit(published.commitment)).ok
    net.dev.advance(1)


def _expected(net, datasets: dict[str, list[pa.Table]]) -> dict[str, int]:
    seen: set[int] = set()
    out = {}
    for name, tables in datasets.items():  # commit order = insertion order here
        ids = {i for t in tables for i in t["id"].to_pylist()}
        out[net.wallet(name).hotkey.ss58_address] = len(ids - seen)
        seen |= ids
    return out


async def _credits(runner) -> dict[str, int]:
    return {hk: sum(p.values()) for hk, p in (await runner.index.credits()).items()}


def test_redis_killed_mid_round_then_restarted(net, tmp_path):
    datasets = {f"m{i}": [synthetic_table(2000, seed=100 + i)] for i in range(5)}
    datasets["m5"] = [synthetic_table(2000, seed=100)]  # a late copy of m0
    run(_publish(net, datasets))
    server = start_redis(tmp_path / "redis", persistent=True)
    accepted = 0

    def kill_after_second_accept(message) -> None:
        nonlocal accepted
        if "manifest accepted" in message.record["message"]:
            accepted += 1
            if accepted == 2:
                server.kill()

    sink = logger.add(kill_after_second_accept, level="INFO")

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            chain = await net.chain(client, "validator")
            runner = make_runner(chain, server.url)
            with pytest.raises((RedisConnectionError, OSError)):
                await runner.process(await chain.metagraph())
            logger.remove(sink)
            restarted = start_redis(tmp_path / "redis", port=server.port, persistent=True)
            try:
                runner = make_runner(chain, restarted.url)
                report = await runner.process(await chain.metagraph())
                again = await runner.process(await chain.metagraph())
                return report, again, await _credits(runner)
            finally:
                restarted.stop()

    report, again, credits = run(body())
    assert accepted == 2
    assert len(report.accepted) == 4 and again.accepted == []  # the first two were kept
    assert credits == {hk: n for hk, n in _expected(net, datasets).items() if n}


class FlakySubstrate:
    """A node that drops a tenth of all requests: the SDK sees connection errors (a
    timelocked weight commit alone takes some fifteen requests)."""

    # Dropping the client's own shutdown would test nothing of ours.
    RELIABLE: ClassVar[set[str]] = {"close"}

    def __init__(self, inner):
        self._inner = inner
        self._rng = random.Random(5)
        self.dropped = 0

    def __getattr__(self, name):
        target = getattr(self._inner, name)
        if not asyncio.iscoroutinefunction(target) or name in self.RELIABLE:
            return target

        async def flaky(*args, **kwargs):
            if self._rng.random() < 0.1:
                self.dropped += 1
                raise bt.RpcConnectionError("connection reset by peer")
            return await target(*args, **kwargs)

        return flaky


def test_validator_survives_a_chain_endpoint_dropping_connections(net, redis_url):
    datasets = {"m0": [synthetic_table(800, seed=200)], "m1": [synthetic_table(600, seed=201)]}
    run(_publish(net, datasets))
    net.dev.set_block_time(0.05)
    flaky = FlakySubstrate(net.dev)
    config = ValidatorConfig(
        netuid=NETUID,
        subtensor=SubtensorConfig(network=f"dev:{net.dev.path}"),
        neuron={"poll_blocks": 1, "weights_interval": 1, "grace_blocks": 5},
        verify={"daily_budget": 0, "structure_only": True},
    )

    async def body():
        async with bt.Subtensor("local", substrate=flaky) as client:
            from d3.chain.sdk import SdkChain

            chain = SdkChain(client, net.wallet("validator"), NETUID)
            redis = aioredis.Redis.from_url(redis_url)
            validator = Validator(config, chain, build_runner(config, chain, redis))
            task = asyncio.create_task(validator.run())
            deadline = time.monotonic() + 60
            weights = {}
            while time.monotonic() < deadline and not task.done():
                with contextlib.suppress(Exception):
                    weights = (await net_weights(net)).get(0, {})
                if len(weights) == 2:
                    break
                await asyncio.sleep(0.2)
            validator.stop.set()
            await asyncio.wait_for(task, 30)
            credits = await _credits(validator.runner)
            await redis.aclose()
            return weights, credits

    weights, credits = run(body())
    assert flaky.dropped > 5
    assert len(weights) == 2 and weights[1] > weights[2]
    assert credits == _expected(net, datasets)


async def net_weights(net):
    async with bt.Subtensor("local", substrate=net.dev) as client:
        return await client.weights.weights(NETUID)


def test_x_outage_is_no_signal_not_a_miners_fault(net, redis_url):
    table = synthetic_table(500, seed=300)
    run(_publish(net, {"m0": [table]}))

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            chain = await net.chain(client, "validator")
            lookup = TruthLookup(table)
            lookup.down = True
            runner = make_runner(chain, redis_url, lookup)
            report = await runner.process(await chain.metagraph())
            during = await audit_now(runner, net.dev)  # X down: the audit waits
            waiting = await runner.scores(await chain.metagraph())
            lookup.down = False
            after = await runner.process(await chain.metagraph())
            scores = await runner.scores(await chain.metagraph())
            return (
                report,
                during,
                waiting,
                after,
                scores,
                await runner.state.credibility(runner.scoring.period_blocks),
            )

    report, during, waiting, after, scores, credibility = run(body())
    assert len(report.accepted) == 1 and not report.rejected
    assert during.audited == 0 and sum(s.unique for s in waiting) == 0  # no evidence yet
    assert after.audited == 1 and sum(s.unique for s in scores) == 500
    assert credibility[net.wallet("m0").hotkey.ss58_address] == 1.0


def test_x_server_errors_through_tweepy_are_no_signal(net, redis_url):
    with LocalXServer(seed=3, size=500) as x:
        x.inject_faults(server_errors=10_000)
        source = XApiSource(DEFAULT_TOKEN, api_base_url=x.base_url, max_retries=1, backoff_s=0.01)
        result = asyncio.run(source.lookup([1, 2, 3]))
    assert result.failed == {1, 2, 3} and not result.missing


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 1 MiB filesystem (tmpfs) that fills up; needs root, as CI runs."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_while_the_miner_stores(tiny_disk: Path):
    plan = parse_plan(
        {
            "defaults": {"interval_s": 10, "limit": 100, "languages": []},
            "queries": [
                {"name": q, "keywords": [q]}
                for q in ("the", "a", "data", "model", "and", "to", "of")
            ],
        },
        "test",
    )
    errors: list[str] = []
    sink = logger.add(lambda m: errors.append(m.record["message"]), level="ERROR")
    store = TweetStore(tiny_disk / "store.sqlite")
    filler = tiny_disk / "filler"  # leave ~150 KiB: a few searches' worth
    free = lambda: __import__("shutil").disk_usage(tiny_disk).free  # noqa: E731
    filler.write_bytes(b"\0" * max(0, free() - 150 * 1024))
    acknowledged = 0
    with LocalXServer(seed=4, size=6000) as x:
        source = XApiSource(DEFAULT_TOKEN, api_base_url=x.base_url)

        async def body():
            nonlocal acknowledged
            stop = asyncio.Event()
            task = asyncio.create_task(scrape_forever(source, plan, store, stop))
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not errors:
                x.publish(300)
                await asyncio.sleep(0.1)
            # What the store acknowledged, read after the failure: on a fast machine the
            # disk may fill before the first look, and that must not make the test vacuous.
            acknowledged = await asyncio.to_thread(store.count)
            stop.set()
            await asyncio.wait_for(task, 30)  # still alive: it stopped because we asked

        asyncio.run(body())
    logger.remove(sink)
    assert any("store write failed" in e for e in errors), errors
    store.close()
    # Free the space, reopen: every acknowledged tweet is there and the file is sound.
    filler.unlink()
    reopened = TweetStore(tiny_disk / "store.sqlite")
    assert reopened.count() >= acknowledged > 0
    assert reopened._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    reopened.close()


def test_a_spent_usage_cap_stops_the_miner_asking_for_an_hour():
    """A monthly cap does not lift in minutes: the scrape loop must not spend every due
    query (and a warning each) on it, round after round."""
    plan = parse_plan(
        {
            "defaults": {"interval_s": 10, "limit": 10, "languages": []},
            "queries": [{"name": q, "keywords": [q]} for q in ("the", "data", "model")],
        },
        "test",
    )
    errors: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, LocalXServer(seed=4, size=500) as x:
        store = TweetStore(Path(tmp) / "store.sqlite")
        x.inject_faults(usage_capped=100)
        source = XApiSource(DEFAULT_TOKEN, api_base_url=x.base_url)

        async def body():
            stop, logged = asyncio.Event(), asyncio.Event()

            def sink(message) -> None:  # loguru calls it on the loop's thread
                errors.append(message.record["message"])
                logged.set()

            handle = logger.add(sink, level="ERROR")
            task = asyncio.create_task(scrape_forever(source, plan, store, stop))
            try:
                await asyncio.wait_for(logged.wait(), 30)
            finally:
                logger.remove(handle)
            stop.set()
            await asyncio.wait_for(task, 30)  # the hour-long back-off ends on stop

        asyncio.run(body())
        store.close()
        capped = 100 - x.faults.usage_capped
    assert capped == 1  # one request, then the loop waits
    [line] = [e for e in errors if "usage cap" in e]
    assert "retry in 3600s" in line
