"""Slow but valid data: every file arrives within its deadline, so no single fetch fails,
but the judging order is global and fetch time adds up. A long never-committed ancestry
(applied in parts, each part its own item deadline) or a stream of slow commitments from
one hotkey would hold every other miner's commitments, and the close of the period, for
as long as the host likes. Each commitment (its ancestry included) and each hotkey's
commitments of a period get a fetch-time allowance; past it the commitment is rejected as
the miner's fault. A real local HTTP server trickles the files."""

from __future__ import annotations

import bittensor as bt

from d3.manifest import MANIFEST_SUFFIX
from d3.validator.fetcher import FetchLimits
from d3.validator.pipeline import PipelineLimits
from d3.validator.scoring import CREDIBILITY_ALPHA, INITIAL_CREDIBILITY
from tests.support.net import run

from .hosts import HostileHost
from .support import Arena, LogBook

PER_FILE_S = 0.6  # each shard trickles in over this long: well within its deadline
DEADLINE_S = 2.0  # --fetch.deadline_s of these tests


def _serve_slowly(host: HostileHost, published) -> None:
    host.serve(published.manifest_sha256 + MANIFEST_SUFFIX, published.manifest_bytes)
    for shard in published.shards:
        host.slowly(shard.name, shard.data, PER_FILE_S, steps=3)


async def _judge_all(arena: Arena, runner, rounds: int = 20) -> tuple[list, float]:
    reports, wall = [], 0.0
    for _ in range(rounds):
        report, seconds = await arena.round(runner)
        reports.append(report)
        wall += seconds
        if not await runner.state.queue_size():
            break
    return reports, wall


def test_a_long_slow_ancestry_gets_one_commitments_allowance(
    net, redis_url, logs: LogBook, x_world
):
    """Six never-committed manifests, one shard each, applied one part at a time (one
    shard per part here, 1,000 in production), each shard served in 0.6 s: every part is
    within its own deadline, and the whole took 3.6 s or more, the global order held all
    along (in production: up to 900 s per part, parts without end). With 2 s for one
    commitment, its ancestry included, it is rejected as the miner's fault within about
    that, and the honest miner who committed after it is credited."""
    budget_s = 2.0
    tweets = x_world.tweets

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client, HostileHost() as host:
            arena = await Arena.open(client, net, ["staller", "honest"])
            parent = None
            for i in range(6):
                part = await arena.publish(
                    "staller",
                    [tweets.slice(300 + 10 * i, 10)],
                    commit=i == 5,  # only the last is committed: the rest are ancestry
                    parent=parent,
                    locator=host.base_url,
                )
                _serve_slowly(host, part)
                parent = part.manifest_sha256
            honest = await arena.publish("honest", [tweets.slice(0, 100)])
            runner = arena.runner(
                redis_url,
                lookup=x_world.lookup(),
                fetch=FetchLimits(deadline_s=DEADLINE_S, retries=0),
                limits=PipelineLimits(grace_blocks=5, max_shards=1, max_commitment_s=budget_s),
            )
            net.dev.advance(10)  # past the grace period
            reports, wall = await _judge_all(arena, runner)
            credited = await arena.credited(runner)
            await arena.close()
            return arena, reports, wall, credited, part, honest

    arena, reports, wall, credited, own, honest = run(body())
    rejected = {sha: why for r in reports for sha, why in r.rejected.items()}
    assert rejected[own.manifest_sha256] == (
        "this commitment, its ancestry included, took more than 2s of fetching "
        "(the limit for one commitment)"
    )
    assert any(honest.manifest_sha256 in r.accepted for r in reports)
    assert credited["honest"] == 100
    assert credited["staller"] < 60  # the parts fetched in time count; the rest never do
    assert wall < budget_s + 1.5, wall
    assert any("manifest rejected: this commitment" in m for m in logs.of(arena.hotkey("staller")))


def test_a_stream_of_slow_commitments_gets_one_hotkeys_allowance_per_period(
    net, redis_url, logs: LogBook, x_world
):
    """One hotkey commits again and again, each commitment small and served slowly
    (each within every per-file and per-commitment limit): its commitments of the period
    share one allowance, and once it is spent the next ones are rejected without a fetch,
    so one hotkey cannot keep the global order for itself. Those rejections are the miner's
    fault but cost only their share of the period's one credibility outcome, not a 0 each
    (0.8^3 = 0.51 before)."""
    tweets = x_world.tweets

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client, HostileHost() as host:
            arena = await Arena.open(client, net, ["streamer", "honest"])
            published = []
            parent = None
            for i in range(5):
                p = await arena.publish(
                    "streamer", [tweets.slice(300 + 10 * i, 10)], parent=parent,
                    locator=host.base_url,
                )  # fmt: skip
                _serve_slowly(host, p)
                published.append(p)
                parent = p.manifest_sha256
            honest = await arena.publish("honest", [tweets.slice(0, 100)])
            runner = arena.runner(
                redis_url,
                lookup=x_world.lookup(),
                fetch=FetchLimits(deadline_s=DEADLINE_S, retries=0),
                limits=PipelineLimits(grace_blocks=5, max_hotkey_period_s=1.5),
            )
            net.dev.advance(10)
            reports, wall = await _judge_all(arena, runner)
            credited = await arena.credited(runner)
            asked = [host.asked_for(p.shards[0].name) for p in published]
            await arena.audit(runner)
            audits = await runner.state.audits()
            cred = await runner.state.credibility(runner.scoring.period_blocks)
            streamer = arena.hotkey("streamer")
            await arena.close()
            return (
                reports,
                wall,
                credited,
                published,
                honest,
                asked,
                audits[streamer],
                cred[streamer],
            )

    reports, wall, credited, published, honest, asked, audits, cred = run(body())
    accepted = {sha for r in reports for sha in r.accepted}
    rejected = {sha: why for r in reports for sha, why in r.rejected.items()}
    verdicts = [p.manifest_sha256 in accepted for p in published]
    assert verdicts[:2] == [True, True] and not any(verdicts[3:])  # 0.6 s each of 1.5 s
    for p in published[3:]:
        assert rejected[p.manifest_sha256].startswith("this hotkey's commitments of period 0 ")
    assert asked[4] == 0  # rejected without a fetch
    assert honest.manifest_sha256 in accepted and credited["honest"] == 100
    assert wall < 1.5 + DEADLINE_S, wall
    [result] = audits.values()
    assert not result.failed  # the tweets are real
    share = sum(verdicts) / len(verdicts)
    assert cred == (1 - CREDIBILITY_ALPHA) * INITIAL_CREDIBILITY + CREDIBILITY_ALPHA * share
