"""Attacks on the audit itself rather than on the data: X outages that must not turn into
"not found", engagement withdrawn to make an honest row look inflated, and a commit
cadence that must not change what one failed audit costs. Through the real validator
over the dev chain, looking tweets up on a real local X server through the X API client.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import bittensor as bt
import pyarrow as pa
import pyarrow.compute as pc

from d3.dev.synthetic import synthetic_table
from d3.validator.scoring import CREDIBILITY_ALPHA, INITIAL_CREDIBILITY
from d3.validator.verifier import LookupAnswer
from d3.validator.x_lookup import source_lookup
from scraping.x_api import XApiSource
from tests.support.net import run

from .support import AUDIT, CORPUS_END, SAMPLE, SCORING, Arena, with_column

WAIT = 100  # max_wait_blocks in these tests (7,200 in production)


def _short_wait(runner) -> None:
    runner.audit = runner.pipeline.audit = dataclasses.replace(
        AUDIT, max_wait_blocks=WAIT, silence_confirm_blocks=WAIT
    )


class _Switch:
    """The validator's look-ups: through a revoked bearer token (X answers 401 to every
    request, the validator-wide failure an expired token or a suspended developer account
    is) while `down`, through the valid one after."""

    def __init__(self, x_world):
        self.up = x_world.lookup()
        self.revoked = source_lookup(
            XApiSource("revoked-token", api_base_url=x_world.server.base_url, max_retries=0)
        )
        self.down = True

    async def __call__(self, ids) -> LookupAnswer:
        return await (self.revoked if self.down else self.up)(ids)


def test_an_x_outage_longer_than_max_wait_changes_no_miners_credit_or_credibility(
    net, redis_url, x_world
):
    """The validator's X access fails wholesale (401 on every request) from before the
    period closes until well past `max_wait_blocks` after its seed, then comes back: the
    audit waits all along, and the result is exactly what an audit without the outage
    gives: an honest miner keeps all its credit, one with deletions loses only them, and
    nobody's credibility moves. (The old rule counted every tweet still unanswered
    `max_wait_blocks` after the seed as not found: every miner zeroed.)"""
    honest = x_world.tweets.slice(0, SAMPLE)
    invented = synthetic_table(10, seed=911, start=CORPUS_END - timedelta(days=1), source="x_api")
    deleting = [x_world.tweets.slice(100, SAMPLE - 10), invented]  # 10 of 50 not on X

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            arena = await Arena.open(client, net, ["honest", "deleting"])
            await arena.publish("honest", [honest])
            await arena.publish("deleting", deleting)
            switch = _Switch(x_world)
            runner = arena.runner(redis_url, lookup=switch)
            _short_wait(runner)
            net.dev.advance(1)
            await arena.round(runner)
            during = [(await arena.audit(runner))[0]]  # the seed block is final: X is down
            for _ in range(3):  # 3 x 60 blocks: past the seed + max_wait_blocks
                net.dev.advance(60)
                during.append((await arena.round(runner))[0])
            waiting_scores = {s.hotkey: s for s in await runner.scores(await arena.graph())}
            switch.down = False
            back, _ = await arena.round(runner)
            scores = {s.hotkey: s for s in await runner.scores(await arena.graph())}
            audits = await runner.state.audits()
            await arena.close()
            return arena, during, waiting_scores, back, scores, audits

    arena, during, waiting_scores, back, scores, audits = run(body())
    assert [r.audited for r in during] == [0, 0, 0, 0]
    assert [r.audits_waiting for r in during] == [2, 2, 2, 2]
    assert all(s.unique == 0 for s in waiting_scores.values())  # the period waits, for all
    assert back.audited == 2 and back.audits_waiting == 0
    [h] = audits[arena.hotkey("honest")].values()
    [d] = audits[arena.hotkey("deleting")].values()
    assert (h.found, h.checked, d.found, d.checked) == (SAMPLE, SAMPLE, SAMPLE - 10, SAMPLE)
    assert scores[arena.hotkey("honest")].unique == SAMPLE
    assert scores[arena.hotkey("deleting")].unique == SAMPLE - 10  # its deletions, no more
    assert {scores[arena.hotkey(n)].credibility for n in ("honest", "deleting")} == {
        INITIAL_CREDIBILITY
    }


def test_per_id_silence_first_seen_past_its_deadline_is_asked_again_before_it_is_final(
    net, redis_url, x_world
):
    """A validator that audits a period long after its seed (it bootstraps, or its X
    access was down) and finds X silent about one miner's tweets while X answers the
    others' counts them as not found at once, provisionally, though the deadline on chain
    (seed + `max_wait_blocks`) is past: it asks again `silence_confirm_blocks` later
    before the result is final and the period closes."""
    honest = x_world.tweets.slice(0, SAMPLE)
    silent_table = x_world.tweets.slice(200, SAMPLE)
    silent_ids = set(silent_table["id"].to_pylist())

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            arena = await Arena.open(client, net, ["honest", "silent"])
            await arena.publish("honest", [honest])
            await arena.publish("silent", [silent_table])
            up = x_world.lookup()

            async def silent_on_some(ids) -> LookupAnswer:
                answer = await up([i for i in ids if i not in silent_ids])
                return dataclasses.replace(answer, failed={i for i in ids if i in silent_ids})

            runner = arena.runner(redis_url, lookup=silent_on_some)
            _short_wait(runner)
            net.dev.advance(1)
            await arena.round(runner)
            head = await arena.chains["validator"].block()
            seed = SCORING.period_blocks - 1 + runner.pipeline.limits.grace_blocks + 1
            net.dev.advance(seed - head + 3 * WAIT)  # the seed is long past at the first look
            first, _ = await arena.round(runner)
            still_open = await runner.state.audit_periods()
            net.dev.advance(WAIT + 1)
            late, _ = await arena.round(runner)
            scores = {s.hotkey: s for s in await runner.scores(await arena.graph())}
            closed = await runner.state.audit_periods()
            await arena.close()
            return arena, first, still_open, late, scores, closed

    arena, first, still_open, late, scores, closed = run(body())
    assert first.audited == 2 and first.audits_waiting == 0  # the silent one provisionally
    assert still_open == [0]
    assert late.audited == 1 and late.audits_waiting == 0 and closed == []
    assert scores[arena.hotkey("silent")].unique == 0
    assert scores[arena.hotkey("honest")].unique == SAMPLE


def test_engagement_withdrawn_after_the_scrape_costs_one_pick_not_the_period(
    net, redis_url, x_world
):
    """A griefer posts replies under its own tweet, lets the victim scrape it at
    reply_count 60, and deletes them before the audit: X now reports 0, far below the
    victim's row (60 > 0 + max(50, 100 %)). Counts earn nothing and anyone can withdraw
    them, so the pick counts as not found: the victim loses that pick's share of its
    credit, not the period, and no credibility. (It zeroed the period before.)"""
    tweets = x_world.tweets.slice(0, 300)
    zero = tweets.filter(pc.equal(tweets["reply_count"], 0))
    assert zero.num_rows, "the corpus has tweets without replies"
    target = zero["id"][0].as_py()
    others = tweets.filter(pc.not_equal(tweets["id"], target)).slice(0, SAMPLE - 1)
    victim = pa.concat_tables([zero.slice(0, 1), others])
    victim = victim.take(pc.sort_indices(victim["id"]))
    replies = [
        60 if i == target else n
        for i, n in zip(victim["id"].to_pylist(), victim["reply_count"].to_pylist(), strict=True)
    ]
    scraped = with_column(victim, "reply_count", replies)  # as the victim scraped it

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            arena = await Arena.open(client, net, ["victim"])
            await arena.publish("victim", [scraped])
            runner = arena.runner(redis_url, lookup=x_world.lookup())
            net.dev.advance(1)
            await arena.round(runner)
            await arena.audit(runner)
            [result] = (await runner.state.audits())[arena.hotkey("victim")].values()
            [score] = [
                s
                for s in await runner.scores(await arena.graph())
                if s.hotkey == arena.hotkey("victim")
            ]
            await arena.close()
            return result, score

    result, score = run(body())
    # Every row is picked the same number of times (the sample cycles through them).
    assert result.altered == 0 and result.found * SAMPLE == (SAMPLE - 1) * result.checked
    assert f"tweet {target} differs from X in reply_count: 60, X has 0" in result.reason
    assert score.unique == SAMPLE - 1  # that pick's share, and nothing more
    assert score.credibility == INITIAL_CREDIBILITY


def test_one_failed_audit_costs_the_same_whatever_the_commit_cadence(net, redis_url, x_world):
    """Two miners with the same invented data, one committing it in 6 commitments and one
    in a single one, both fail the period's audit: one credibility outcome per audited
    miner-period, so both lose the same (before, the outcome was repeated per audited
    commitment: 0.8^6 against 0.8)."""
    start = CORPUS_END - timedelta(days=1)
    frequent = [synthetic_table(10, seed=920 + i, start=start, source="x_api") for i in range(6)]
    rare = synthetic_table(60, seed=930, start=start, source="x_api")

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            arena = await Arena.open(client, net, ["frequent", "rare"])
            parent = None
            for table in frequent:  # a new manifest on the last one, every few blocks
                published = await arena.publish("frequent", [table], parent=parent)
                parent = published.manifest_sha256
                net.dev.advance(2)
            await arena.publish("rare", [rare])
            runner = arena.runner(redis_url, lookup=x_world.lookup())
            net.dev.advance(1)
            for _ in range(6):  # one commitment per hotkey per batch
                await arena.round(runner)
            pools = {n: await runner.state.candidates(arena.hotkey(n), 0) for n in ("frequent",)}
            await arena.audit(runner)
            audits = await runner.state.audits()
            credibility = await runner.state.credibility(runner.scoring.period_blocks)
            await arena.close()
            return arena, pools, audits, credibility

    arena, pools, audits, credibility = run(body())
    assert len(pools["frequent"]) == 6  # its sample spans six commitments
    for name in ("frequent", "rare"):
        [result] = audits[arena.hotkey(name)].values()
        assert result.found == 0 and result.checked == SAMPLE  # both fail
    expected = (1 - CREDIBILITY_ALPHA) * INITIAL_CREDIBILITY
    assert credibility[arena.hotkey("frequent")] == credibility[arena.hotkey("rare")] == expected
