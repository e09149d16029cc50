"""A real validator process on a dev chain: /metrics moves after a round, /healthz turns
503 while the loop cannot progress, and /leaderboard.json holds the numbers that set
weights (`RoundRunner.scores`)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import bittensor as bt
import pyarrow as pa
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from d3.dev.runner import local_runner
from d3.dev.synthetic import synthetic_table
from d3.validator.scoring import ScoringParams
from tests.observability.support import free_port, get, get_json, poll
from tests.support.datasets import register_and_publish
from tests.support.net import NETUID

ROOT = Path(__file__).resolve().parents[2]
STALE_S = 4


async def _register_and_publish(net, datasets: dict[str, list[pa.Table]]) -> None:
    await register_and_publish(net, NETUID, datasets)


def _validator(net, redis_url: str, port: int, log: Path) -> subprocess.Popen:
    args = [
        sys.executable, str(ROOT / "neurons" / "validator.py"),
        "--netuid", str(NETUID), "--subtensor.network", f"dev:{net.dev.path}",
        "--wallet.name", "validator", "--wallet.path", str(net.wallets_dir),
        "--redis.url", redis_url, "--neuron.poll_blocks", "1", "--verify.daily_budget", "0",
        "--verify.structure_only",
        # No weight-set: nothing writes to the chain, so no block comes unless the test
        # makes one, and the loop (which waits for the next block) cannot progress.
        "--neuron.weights_interval", "1000000",
        "--metrics.port", str(port), "--metrics.stale_s", str(STALE_S),
    ]  # fmt: skip
    out = log.open("w")
    return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, text=True)


def _families(url: str) -> dict[str, list]:
    text = get(f"{url}/metrics").text
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def _value(families: dict, name: str, **labels: str) -> float:
    """The sum of the samples named `name` (a counter's `_total` too) with `labels`."""
    return sum(
        s.value
        for samples in families.values()
        for s in samples
        if s.name in (name, f"{name}_total")
        and all(s.labels.get(k) == v for k, v in labels.items())
    )


async def _scores_at(net, redis_url: str, block: int):
    """`RoundRunner.scores` as a validator with the process's settings computes them."""
    async with bt.Subtensor("local", substrate=net.dev) as client:
        chain = await net.chain(client, "validator")
        redis = aioredis.Redis.from_url(redis_url)
        runner = local_runner(chain, redis, ScoringParams())
        try:
            return await runner.scores(await chain.metagraph(block))
        finally:
            await redis.aclose()


def test_metrics_move_healthz_fails_when_stuck_and_the_leaderboard_is_the_scores(
    net, redis_url, tmp_path
):
    start = datetime(2025, 9, 1, tzinfo=UTC)
    a = [synthetic_table(300, seed=s, start=start) for s in range(2)]
    b = [synthetic_table(300, seed=s, start=start) for s in range(1, 5)]  # overlaps a
    asyncio.run(_register_and_publish(net, {"alpha": a, "beta": b}))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "validator.log"
    process = _validator(net, redis_url, port, log)

    def alive() -> None:
        assert process.poll() is None, log.read_text()[-3000:]

    try:
        # A round: both commitments judged, the counters moved, the gauges set.
        def observed() -> dict | None:
            f = _families(url)
            index = _value(f, "d3_validator_index_credited_ids")  # set after the round
            done = _value(f, "d3_validator_manifests_accepted") >= 2 and index > 0
            # The round is counted after its gauges are set: a scrape in between sees both.
            done = done and _value(f, "d3_validator_rounds", outcome="ok") >= 1
            return f if done else None

        families = poll(observed, "two accepted manifests in /metrics", alive=alive)
        assert _value(families, "d3_validator_rounds", outcome="ok") >= 1
        assert _value(families, "d3_validator_round_duration_seconds_count") >= 1
        assert _value(families, "d3_validator_commitments_read") >= 2
        unique = _value(families, "d3_validator_new_unique_tweets")
        assert unique == len({i for t in a + b for i in t["id"].to_pylist()})
        assert _value(families, "d3_validator_index_credited_ids") == unique
        assert _value(families, "d3_validator_caught_up") == 1
        assert _value(families, "d3_build_info", role="validator") == 1

        # The leaderboard: the same numbers RoundRunner.scores gives at its block.
        _, board = poll(
            lambda: (r := get_json(f"{url}/leaderboard.json"))[0] == 200 and r,
            "the leaderboard",
            alive=alive,
        )
        scores = asyncio.run(_scores_at(net, redis_url, board["block"]))
        rows = {row["uid"]: row for row in board["miners"]}
        assert set(rows) == {s.uid for s in scores}
        for s in scores:
            row = rows[s.uid]
            assert (row["hotkey"], row["unique"], row["noise"]) == (s.hotkey, s.unique, s.noise)
            assert (row["credibility"], row["score"], row["weight"]) == (
                s.credibility, s.score, s.weight,
            )  # fmt: skip
            assert row["chain_weight"] == 0.0  # no weights set yet
        hotkeys = {n: net.wallet(n).hotkey.ss58_address for n in ("alpha", "beta")}
        ranked = [row["hotkey"] for row in board["miners"]]
        assert ranked[:2] == [hotkeys["beta"], hotkeys["alpha"]]  # beta brought more new
        assert board["miners"][0]["rank"] == 1 and "credibility" in board["legend"]

        # Stuck: no new block comes, so the loop cannot finish another iteration.
        _, body = poll(
            lambda: (r := get_json(f"{url}/healthz"))[0] == 503 and r,
            "healthz 503 while the loop is stuck",
            deadline_s=60,
            alive=alive,
        )
        assert body["loops"]["rounds"]["ok"] is False
        stuck_at = body["loops"]["rounds"]["iterations"]
        rounds_before = _value(_families(url), "d3_validator_rounds", outcome="ok")

        # Unstuck: a block lets the loop run one more iteration, and health comes back.
        net.dev.advance(1)
        _, body = poll(
            lambda: (r := get_json(f"{url}/healthz"))[0] == 200 and r,
            "healthz 200 once the loop progresses",
            deadline_s=60,
            alive=alive,
        )
        assert body["loops"]["rounds"]["iterations"] > stuck_at
        assert _value(_families(url), "d3_validator_rounds", outcome="ok") > rounds_before
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    text = log.read_text()
    assert process.returncode == 0, text[-3000:]
    assert f"metrics on http://127.0.0.1:{port}/metrics" in text


def test_metrics_port_in_use_is_one_fatal_line(net, redis_url, tmp_path):
    asyncio.run(_register_and_publish(net, {}))
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        log = tmp_path / "validator.log"
        process = _validator(net, redis_url, port, log)
        process.wait(timeout=120)
    text = log.read_text()
    assert process.returncode == 1, text[-2000:]
    [line] = [line for line in text.splitlines() if "fatal:" in line]
    assert f"cannot serve metrics on 127.0.0.1:{port}" in line
    assert "Traceback" not in text
