"""Attacks through per-ID silence: tweets a look-up source says nothing about while it
answers others (Apify returns only what it found, so invented and deleted tweets are
silent there). Through the real validator over the dev chain, looking tweets up on the
local X server through the X API client, with the answers X gave as "not found" turned
into silence the way an Apify validator sees them.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Collection
from datetime import timedelta

import bittensor as bt
import pytest

from d3.dev.synthetic import synthetic_table
from d3.validator.scoring import CREDIBILITY_ALPHA, INITIAL_CREDIBILITY
from d3.validator.verifier import LookupAnswer
from tests.support.net import run

from .support import AUDIT, CORPUS_END, SAMPLE, SCORING, Arena, with_column

WAIT = 100  # max_wait_blocks here (7,200 in production)
CONFIRM = 50  # silence_confirm_blocks here (300 in production)
SILENT_AUDIT = dataclasses.replace(
    AUDIT, max_wait_blocks=WAIT, silence_confirm_blocks=CONFIRM, min_per_miner=8
)


class ApifyLike:
    """The validator's look-up as an Apify validator sees it: tweets X does not have, and
    `silent` ones, get no answer at all (neither found nor missing). Records every ask."""

    def __init__(self, x_world, silent: Collection[int] = ()):
        self.up = x_world.lookup()
        self.silent = set(silent)
        self.asks: list[tuple[int, list[int]]] = []  # (block, ids asked)
        self.block = 0

    async def __call__(self, ids) -> LookupAnswer:
        self.asks.append((self.block, list(ids)))
        answer = await self.up([i for i in ids if i not in self.silent])
        found = {i: r for i, r in answer.found.items() if i not in self.silent}
        return LookupAnswer(found=found, failed=set(ids) - found.keys())

    def asked(self, ids: Collection[int]) -> list[tuple[int, int]]:
        """(block, how many of `ids`) for every ask that touched them."""
        wanted = set(ids)
        return [(b, len(wanted.intersection(a))) for b, a in self.asks if wanted.intersection(a)]


def _silent_audit(runner) -> None:
    runner.audit = runner.pipeline.audit = SILENT_AUDIT


def _seed_block(runner) -> int:
    return SCORING.period_blocks - 1 + runner.pipeline.limits.grace_blocks + AUDIT.delay_blocks


async def _at(arena: Arena, runner, lookup: ApifyLike, block: int):
    """One round of `runner` with the chain at `block` (advanced if behind)."""
    head = await arena.chains["validator"].block()
    if head < block:
        arena.net.dev.advance(block - head)
    lookup.block = await arena.chains["validator"].block()
    report, _ = await arena.round(runner)
    scores = {s.hotkey: s for s in await runner.scores(await arena.graph())}
    return report, scores


def test_a_fabricator_on_an_apify_validator_freezes_nobody_but_itself(net, redis_url, x_world):
    """Invented tweets are silent on an Apify validator. Before, the silence held the
    fabricator's whole period for everyone for a day (`max_wait_blocks`): its rivals'
    credit of that period counted nowhere meanwhile. Now the honest miner's credit counts
    at the first audit, the fabricator's waits alone, and at the seed block plus
    `max_wait_blocks` its invented tweets count as not found and its audit fails."""
    honest = x_world.tweets.slice(0, SAMPLE)
    start = CORPUS_END - timedelta(days=1)
    invented = synthetic_table(SAMPLE, seed=4711, start=start, source="x_api")

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            arena = await Arena.open(client, net, ["honest", "fabricator"])
            await arena.publish("honest", [honest])
            await arena.publish("fabricator", [invented])
            lookup = ApifyLike(x_world)
            runner = arena.runner(redis_url, lookup=lookup)
            _silent_audit(runner)
            net.dev.advance(1)
            await arena.round(runner)
            seed = _seed_block(runner)
            first = await _at(arena, runner, lookup, seed)
            before = await _at(arena, runner, lookup, seed + WAIT - 1)
            after = await _at(arena, runner, lookup, seed + WAIT)
            credibility = await runner.state.credibility(SCORING.period_blocks)
            periods = await runner.state.audit_periods()
            await arena.close()
            return arena, first, before, after, credibility, periods

    arena, first, before, after, credibility, periods = run(body())
    honest_key, fabricator_key = arena.hotkey("honest"), arena.hotkey("fabricator")
    for report, scores in (first, before):
        assert scores[honest_key].unique == SAMPLE  # counted at once, and all along
        assert scores[fabricator_key].unique == 0  # waits alone
        assert report.audits_waiting == 1
    report, scores = after
    assert report.audited == 1 and report.audits_waiting == 0
    assert scores[fabricator_key].unique == 0 and scores[honest_key].unique == SAMPLE
    assert credibility[fabricator_key] == (1 - CREDIBILITY_ALPHA) * INITIAL_CREDIBILITY
    assert credibility[honest_key] == INITIAL_CREDIBILITY
    assert periods == []  # closed


def test_re_asks_back_off_and_ask_only_what_is_silent(net, redis_url, x_world):
    """A miner whose sampled tweets X keeps silent about (ten of them, the rest real) is
    asked about them again after waits that double from `reask_blocks`, at most
    `min_per_miner` at a time, and every one at the deadline: the validator runs a round
    every 5 blocks, and before it asked the whole sample again in each one (20 rounds x
    50 look-ups here, 288 a day on finney)."""
    real = x_world.tweets.slice(0, SAMPLE)
    quiet = set(real["id"].to_pylist()[:10])

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            arena = await Arena.open(client, net, ["quiet"])
            await arena.publish("quiet", [real])
            lookup = ApifyLike(x_world, silent=quiet)
            runner = arena.runner(redis_url, lookup=lookup)
            _silent_audit(runner)
            net.dev.advance(1)
            await arena.round(runner)
            seed = _seed_block(runner)
            reports = [await _at(arena, runner, lookup, seed + 5 * i) for i in range(21)]
            audits = await runner.state.audits()
            await arena.close()
            return arena, seed, lookup, reports, audits

    arena, seed, lookup, reports, audits = run(body())
    # The first ask: the sample's distinct tweets; then only silent ones, 8 at a time,
    # at 25, 50 blocks after it; then the deadline (seed + 100) asks all 10. (Between, a
    # probe of one tweet X answered before tells that X still answers: one look-up.)
    schedule = [(b - seed, n) for b, n in lookup.asked(quiet)]
    assert schedule == [(0, 10), (25, 8), (50, 8), (100, 10)]
    first = lookup.asks[0][1]
    assert len(set(first)) == len(first) == SAMPLE
    later = [a for _, a in lookup.asks[1:]]
    assert all(set(a) <= quiet or len(a) == 1 for a in later)
    assert sum(map(len, later)) <= 8 + 8 + 10 + 3
    assert [r.audited for r, _ in reports].count(1) == 1 and reports[-1][0].audited == 1
    [result] = audits[arena.hotkey("quiet")].values()
    picks_of_quiet = result.checked - result.found
    assert result.altered == 0 and picks_of_quiet > 0  # the silent picks: not found


@pytest.mark.parametrize("schedule_seed", range(4))
def test_validators_that_first_saw_the_silence_apart_count_it_at_the_same_deadline(
    net, redis_url, x_world, schedule_seed
):
    """The deadline is on chain (seed + `max_wait_blocks`), not the block a validator first
    saw the silence at: over seeded round cadences, two validators whose first audits are
    up to `max_wait_blocks - silence_confirm_blocks` apart keep the silent miner's
    period open until the same block, and then both count the same result. (Before, the
    timer was each validator's own: one counted the silent tweets as not found up to 40
    blocks here, hours on finney, before the other.)"""
    real = x_world.tweets.slice(0, SAMPLE)
    quiet = set(real["id"].to_pylist()[:10])
    second_url = redis_url.rsplit("/", 1)[0] + "/1"

    async def body():
        rng = random.Random(schedule_seed)
        async with bt.Subtensor("local", substrate=net.dev) as client:
            arena = await Arena.open(client, net, ["quiet"])
            await arena.publish("quiet", [real])
            lookups = [ApifyLike(x_world, silent=quiet) for _ in range(2)]
            urls = (redis_url, second_url)
            runners = [arena.runner(u, lookup=lk) for u, lk in zip(urls, lookups, strict=True)]
            for runner in runners:
                _silent_audit(runner)
            net.dev.advance(1)
            seed = _seed_block(runners[0])
            starts = [seed + rng.randrange(0, 10), seed + rng.randrange(20, WAIT - CONFIRM + 1)]
            counted: list[int | None] = [None, None]
            results = [None, None]
            block = seed
            while None in counted:
                for v, runner in enumerate(runners):
                    if block >= starts[v] and counted[v] is None and rng.random() < 0.5:
                        report, _ = await _at(arena, runner, lookups[v], block)
                        if report.audited:
                            counted[v] = block
                            results[v] = (await runner.state.audits())[arena.hotkey("quiet")]
                block += rng.randrange(1, 12)
            await arena.close()
            return seed, starts, counted, results

    seed, starts, counted, results = run(body())
    assert all(b >= seed + WAIT for b in counted), (starts, counted)
    assert results[0] == results[1]


def test_an_altered_tweet_beside_silent_ones_fails_the_audit_at_once(net, redis_url, x_world):
    """Silence cannot shelter an alteration: a miner that rewrote one tweet and keeps the
    rest of its sample silent fails its audit at the first ask, not a day later."""
    real = x_world.tweets.slice(0, SAMPLE)
    ids = real["id"].to_pylist()
    texts = real["text"].to_pylist()
    texts[-1] = texts[-1] + " (buy now)"
    altered = with_column(real, "text", texts)

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            arena = await Arena.open(client, net, ["alterer"])
            await arena.publish("alterer", [altered])
            lookup = ApifyLike(x_world, silent=set(ids[:-1]))
            runner = arena.runner(redis_url, lookup=lookup)
            _silent_audit(runner)
            net.dev.advance(1)
            await arena.round(runner)
            report, _ = await _at(arena, runner, lookup, _seed_block(runner))
            audits = await runner.state.audits()
            await arena.close()
            return arena, report, audits

    arena, report, audits = run(body())
    assert report.audited == 1 and report.audits_waiting == 0
    [result] = audits[arena.hotkey("alterer")].values()
    assert result.altered >= 1 and result.factor == (0, 1)
