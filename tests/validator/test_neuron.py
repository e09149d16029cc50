"""The validator as operators run it: a process, killed and restarted."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

import pyarrow as pa
import pytest
import redis.asyncio as aioredis

from d3.dev.synthetic import synthetic_table
from d3.validator.index import TweetIndex
from tests.support.datasets import register_and_publish
from tests.support.net import NETUID, run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _validator(net, redis_url: str, *extra: str) -> subprocess.Popen:
    args = _validator_args(net, redis_url, *extra)
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def _validator_args(net, redis_url: str, *extra: str) -> list[str]:
    return [
        sys.executable, os.path.join(ROOT, "neurons", "validator.py"),
        "--netuid", str(NETUID), "--subtensor.network", f"dev:{net.dev.path}",
        "--wallet.name", "validator", "--wallet.path", str(net.wallets_dir),
        "--redis.url", redis_url, "--neuron.poll_blocks", "1", "--verify.daily_budget", "0",
        "--verify.structure_only", "--neuron.weights_interval", "1", *extra,
    ]  # fmt: skip


async def _register_and_publish(net, datasets: dict[str, list[pa.Table]]) -> None:
    await register_and_publish(net, NETUID, datasets)


async def _credits(redis_url: str) -> dict[str, int]:
    index = TweetIndex(aioredis.Redis.from_url(redis_url))
    totals = {hk: sum(per.values()) for hk, per in (await index.credits()).items()}
    await index.redis.aclose()
    return totals


def test_kill_9_mid_ingest_then_restart_gives_the_uninterrupted_credits(net, redis_url):
    start = datetime(2025, 9, 1, tzinfo=UTC)
    a = [synthetic_table(20_000, seed=s, start=start) for s in range(6)]
    b = [synthetic_table(20_000, seed=s, start=start) for s in range(4, 10)]  # overlaps a
    run(_register_and_publish(net, {"alpha": a, "beta": b}))
    ids_a = {i for t in a for i in t["id"].to_pylist()}
    ids_b = {i for t in b for i in t["id"].to_pylist()} - ids_a
    alpha, beta = (net.wallet(n).hotkey.ss58_address for n in ("alpha", "beta"))
    expected = {alpha: len(ids_a), beta: len(ids_b)}

    process = _validator(net, redis_url)
    deadline = time.monotonic() + 120
    partial = None
    while time.monotonic() < deadline and process.poll() is None:
        credits = run(_credits(redis_url))
        if 0 < sum(credits.values()) < sum(expected.values()):
            process.send_signal(signal.SIGKILL)
            partial = credits
            break
        time.sleep(0.01)
    process.wait(10)
    assert partial is not None, "did not catch the validator mid-ingest"

    restarted = _validator(net, redis_url)
    try:
        while time.monotonic() < deadline and run(_credits(redis_url)) != expected:
            assert restarted.poll() is None, restarted.stdout.read()
            time.sleep(0.1)
        assert run(_credits(redis_url)) == expected
    finally:
        restarted.send_signal(signal.SIGTERM)
        out, _ = restarted.communicate(timeout=30)
    assert restarted.returncode == 0, out[-2000:]
    assert "manifest accepted" in out


def test_unregistered_validator_exits_non_zero(net, redis_url):
    net.wallet("validator")
    process = _validator(net, redis_url)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "is not registered on netuid" in out


def _without_structure_only(net, redis_url: str, *extra: str) -> list[str]:
    """The validator's argv with its default look-up budget and no look-up source."""
    args = _validator_args(net, redis_url, *extra)
    at = args.index("--verify.daily_budget")
    del args[at : at + 2]
    return [a for a in args if a != "--verify.structure_only"]


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        ((), "--verify.x_bearer_token (or D3_VERIFY_X_BEARER_TOKEN) is required"),
        (("--verify.lookup_kind", "apify"), "--verify.apify_token (or D3_VERIFY_APIFY_TOKEN)"),
    ],
)
def test_no_lookup_source_refuses_to_start_unless_structure_only_is_chosen(
    net, redis_url, extra, names
):
    run(_register_and_publish(net, {}))
    args = _without_structure_only(net, redis_url, *extra)
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 1
    [line] = [line for line in out.splitlines() if "fatal:" in line]
    assert "no look-up source" in line and names in line
    assert "--verify.structure_only" in line and "Traceback" not in out


def test_structure_only_mode_is_loud(net, redis_url):
    run(_register_and_publish(net, {}))
    process = _validator(net, redis_url)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(
        target=lambda: [lines.put(line) for line in process.stdout], daemon=True
    )
    reader.start()
    try:
        deadline = time.monotonic() + 60  # a bound, not a wait: the line comes at start-up
        line = ""
        while "STRUCTURE-ONLY MODE" not in line:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        assert "invented tweets" in line
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_redis_unreachable_too_long_exits_non_zero(net):
    run(_register_and_publish(net, {}))
    net.dev.set_block_time(0.2)  # the loop paces itself by blocks
    process = _validator(net, "redis://127.0.0.1:1/0", "--redis.max_outage_s", "1")
    out, _ = process.communicate(timeout=90)
    assert process.returncode == 1
    assert "redis unreachable" in out


def test_bad_flag_is_one_line_and_status_2():
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "neurons", "validator.py"), "--netuid", "1",
         "--redis.url", "http://x"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "validator.py: error: --redis.url: Value error, scheme must be one of redis://, "
        "rediss://, unix:// (got 'http://x')"
    ]


def test_a_layout_drop_at_start_up_rebuilds_the_same_credit(net, redis_url):
    """A validator whose Redis holds another state layout drops it and replays chain
    history; an index client that had already read windows must not trust what it
    remembers of them (it would find every tweet "already indexed" and credit nobody)."""
    import asyncio

    from d3.config import load_config
    from d3.validator.neuron import Validator, ValidatorConfig
    from tests.support.runner import make_runner

    datasets = {"m0": [synthetic_table(300, seed=70)], "m1": [synthetic_table(200, seed=71)]}
    run(_register_and_publish(net, datasets))
    argv = _validator_args(net, redis_url)[2:]
    config = load_config(ValidatorConfig, argv, env={})

    async def body():
        import bittensor as bt

        async with bt.Subtensor("local", substrate=net.dev) as client:
            chain = await net.chain(client, "validator")
            runner = make_runner(chain, redis_url)
            await runner.process(await chain.metagraph())  # the index client's cache is warm
            before = {hk: sum(p.values()) for hk, p in (await runner.index.credits()).items()}
            await runner.state.set_meta("version", "1")  # as an older release left it
            validator = Validator(config, chain, runner)
            task = asyncio.create_task(validator.run())
            deadline = time.monotonic() + 60
            while validator.leaderboard is None:  # its first round is done
                assert not task.done() and time.monotonic() < deadline
                await asyncio.sleep(0.05)  # the loop's turn
            validator.stop.set()
            await task
            after = {hk: sum(p.values()) for hk, p in (await runner.index.credits()).items()}
            await runner.state.redis.aclose()
            return before, after

    before, after = run(body())
    assert sum(before.values()) == 500 and after == before
