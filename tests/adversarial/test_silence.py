"""Attacks through per-ID silence: tweets a look-up source says nothing about while it
answers others (Apify returns only what it found, so invented and deleted tweets are
silent there). Through the real validator over the dev chain, looking tweets up on the
local X server through the X API client, with the answers X gave as "not found" turned
into silence the way an Apify validator sees them.
"""

from __future__ import annotations

import dataclasses
import json
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


async def _one_miner(arena: Arena, x_world, redis_url: str, name: str, table, silent):
    """`name` publishes `table`; a validator whose look-ups leave out `silent` reads it
    (one round) and is ready to audit at the period's seed block: (runner, look-up, seed)."""
    await arena.publish(name, [table])
    lookup = ApifyLike(x_world, silent=silent)
    runner = arena.runner(redis_url, lookup=lookup)
    _silent_audit(runner)
    arena.net.dev.advance(1)
    await arena.round(runner)
    return runner, lookup, _seed_block(runner)


def test_a_fabricator_on_an_apify_validator_freezes_nobody_and_pays_at_once(
    net, redis_url, x_world
):
    """Invented tweets are silent on an Apify validator. Before, the silence held the
    fabricator's whole period for everyone for a day (`max_wait_blocks`): its rivals'
    credit of that period counted nowhere meanwhile. Now both audits are recorded at the
    first ask, the invented tweets as not found (provisionally): the honest miner's
    credit counts, the fabricator's audit fails and its credibility drops at once, as on
    an X API validator, and at the seed block plus `max_wait_blocks` it is final and the
    period closes."""
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
            seen = []
            for block in (seed, seed + WAIT - 1, seed + WAIT):
                report, scores = await _at(arena, runner, lookup, block)
                credibility = await runner.state.credibility(SCORING.period_blocks)
                seen.append((report, scores, credibility, await runner.state.audit_periods()))
            await arena.close()
            return arena, seen

    arena, seen = run(body())
    honest_key, fabricator_key = arena.hotkey("honest"), arena.hotkey("fabricator")
    failed = (1 - CREDIBILITY_ALPHA) * INITIAL_CREDIBILITY
    assert [r.audits_provisional for r, *_ in seen] == [1, 1, 0]
    for report, scores, credibility, _ in seen:
        assert report.audits_waiting == 0
        assert scores[honest_key].unique == SAMPLE  # counted at once, and all along
        assert scores[fabricator_key].unique == 0
        assert credibility[fabricator_key] == failed  # from the first ask
        assert credibility[honest_key] == INITIAL_CREDIBILITY
    # Both at once; the re-ask an hour (here CONFIRM blocks) after; final at the deadline.
    assert [r.audited for r, *_ in seen] == [2, 1, 1]
    assert [periods for *_, periods in seen] == [[0], [0], []]  # closed at the deadline


def test_tweets_silent_for_a_moment_are_found_at_the_re_ask(net, redis_url, x_world):
    """X leaves 20 of an honest miner's 50 tweets out of one answer (a glitch on its side):
    they count as not found at once, provisionally. The re-ask an hour later
    (`silence_confirm_blocks`) asks 8 of them (`reask_cap`), finds them, and so asks the
    other 12 at the next round: the result is revised to all its credit, and its
    credibility is whole again."""
    real = x_world.tweets.slice(0, SAMPLE)
    glitch = set(real["id"].to_pylist()[:20])

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            arena = await Arena.open(client, net, ["honest"])
            runner, lookup, seed = await _one_miner(
                arena, x_world, redis_url, "honest", real, glitch
            )
            _, during = await _at(arena, runner, lookup, seed)
            low = (await runner.state.credibility(SCORING.period_blocks))[arena.hotkey("honest")]
            lookup.silent.clear()  # X answers about them again
            reports = [await _at(arena, runner, lookup, seed + CONFIRM + i) for i in (0, 1)]
            cred = (await runner.state.credibility(SCORING.period_blocks))[arena.hotkey("honest")]
            periods = await runner.state.audit_periods()
            asked = lookup.asked(glitch)
            await arena.close()
            return arena, seed, during, low, reports, cred, periods, asked

    arena, seed, during, low, reports, cred, periods, asked = run(body())
    key = arena.hotkey("honest")
    assert during[key].unique < SAMPLE and low < INITIAL_CREDIBILITY  # 20 of 50 silent
    assert [(b - seed, n) for b, n in asked] == [(0, 20), (CONFIRM, 8), (CONFIRM + 1, 12)]
    assert [r.audited for r, _ in reports] == [1, 1]  # two revisions
    assert reports[-1][1][key].unique == SAMPLE
    assert cred == INITIAL_CREDIBILITY and periods == []


def test_silent_tweets_are_asked_again_twice_and_alone(net, redis_url, x_world):
    """A miner whose sampled tweets X keeps silent about (ten of its 50, the rest real) is
    asked about them, and only them, twice more, at most `reask_cap` (8 here) at a time:
    `silence_confirm_blocks` after the first sight and at the deadline. The validator
    runs a round every 5 blocks; before, it asked the whole sample again in each one (20
    rounds x 50 look-ups here, 288 a day on finney)."""
    real = x_world.tweets.slice(0, SAMPLE)
    quiet = set(real["id"].to_pylist()[:10])

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            arena = await Arena.open(client, net, ["quiet"])
            runner, lookup, seed = await _one_miner(arena, x_world, redis_url, "quiet", real, quiet)
            reports = [await _at(arena, runner, lookup, seed + 5 * i) for i in range(21)]
            audits = await runner.state.audits()
            await arena.close()
            return arena, seed, lookup, reports, audits

    arena, seed, lookup, reports, audits = run(body())
    schedule = [(b - seed, n) for b, n in lookup.asked(quiet)]
    assert schedule == [(0, 10), (CONFIRM, 8), (WAIT, 8)]
    first = lookup.asks[0][1]
    assert len(set(first)) == len(first) == SAMPLE
    # After the first: the silent ten, and probes (a tweet X answered before: X answers?).
    later = [a for _, a in lookup.asks[1:]]
    assert all(set(a) <= quiet or not set(a) & quiet for a in later)
    assert sum(len(a) for a in later if set(a) & quiet) == 16
    assert sum(len(a) for a in later if not set(a) & quiet) <= 2
    audited = [r.audited for r, _ in reports]
    assert audited[0] == 1 and audited[-1] == 1 and sum(audited) == 3  # and one revision
    [result] = audits[arena.hotkey("quiet")].values()
    assert result.altered == 0 and result.checked > result.found > 0  # silent: not found


@pytest.mark.parametrize("schedule_seed", range(4))
def test_validators_that_first_saw_the_silence_apart_make_it_final_at_the_same_deadline(
    net, redis_url, x_world, schedule_seed
):
    """The deadline is on chain (seed + `max_wait_blocks`), not the block a validator first
    saw the silence at: over seeded round cadences, two validators whose first audits are
    up to `max_wait_blocks - silence_confirm_blocks` apart both count the silent picks as
    not found from their first audit, keep the period open until the same block, and then
    hold the same result. (Before, the timer was each validator's own: one closed the
    period up to 40 blocks here, hours on finney, before the other.)"""
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
            closed: list[int | None] = [None, None]
            first: list = [None, None]
            last: list = [None, None]
            block = seed
            while None in closed:
                for v, runner in enumerate(runners):
                    if block >= starts[v] and closed[v] is None and rng.random() < 0.5:
                        await _at(arena, runner, lookups[v], block)
                        results = (await runner.state.audits()).get(arena.hotkey("quiet"))
                        first[v] = first[v] or results
                        last[v] = results
                        if not await runner.state.audit_periods():
                            closed[v] = block
                block += rng.randrange(1, 12)
            await arena.close()
            return seed, starts, closed, first, last

    seed, starts, closed, first, last = run(body())
    assert all(b >= seed + WAIT for b in closed), (starts, closed)
    counts = [{p: (r.checked, r.found, r.altered) for p, r in a.items()} for a in first + last]
    assert counts[0] == counts[1] == counts[2] == counts[3]  # the first result stands
    assert last[0] == last[1]
    assert "10 tweets X stayed silent about count as not found" in last[0][0].reason


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


def test_deleting_a_probe_tweet_cannot_dress_silence_up_as_an_outage(net, redis_url, x_world):
    """A fabricator whose whole sample is silent, alone in its period, leaves the
    validator one way to tell silence from an outage: probing tweets X answered before.
    The probes come from several miners' samples, so an attacker that deletes the one it
    controls (here: a bait tweet in a rival's sample) does not turn its silence into an
    "outage", which would never expire and would stall every audit of the period. (With
    one probe tweet, deleting it did.)"""
    start = CORPUS_END - timedelta(days=1)
    invented = synthetic_table(SAMPLE, seed=4712, start=start, source="x_api")

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            arena = await Arena.open(client, net, ["a", "b", "fabricator"])
            await arena.publish("a", [x_world.tweets.slice(0, SAMPLE)])
            await arena.publish("b", [x_world.tweets.slice(SAMPLE, SAMPLE)])
            lookup = ApifyLike(x_world)
            runner = arena.runner(redis_url, lookup=lookup)
            _silent_audit(runner)
            net.dev.advance(1)
            await arena.round(runner)
            await _at(arena, runner, lookup, _seed_block(runner))  # period 0: a and b
            probes = json.loads(await runner.state.get_meta("x_answered_ids"))
            lookup.silent.add(probes[arena.hotkey("a")])  # the attacker deletes its bait
            await arena.publish("fabricator", [invented])  # alone in period 1
            net.dev.advance(1)
            await arena.round(runner)
            report, _scores = await _at(
                arena, runner, lookup, _seed_block(runner) + SCORING.period_blocks
            )
            audits = await runner.state.audits()
            await arena.close()
            return arena, probes, report, audits

    arena, probes, report, audits = run(body())
    assert set(probes) == {arena.hotkey("a"), arena.hotkey("b")}
    assert report.audited == 1 and report.audits_waiting == 0
    [result] = audits[arena.hotkey("fabricator")].values()
    assert result.found == 0 and result.failed


def test_silence_kept_by_the_earlier_release_is_asked_at_once_and_recorded(net, redis_url, x_world):
    """The earlier release kept a waiting miner's silence ({tweet ID: block first seen})
    and no result, nor what X answered about the rest. A validator upgraded mid-wait asks
    about the whole sample at its next round (not an hour later, and not only the silent
    tweets, which would count the rest as silent too) and records the miner's result."""
    real = x_world.tweets.slice(0, SAMPLE)
    quiet = set(real["id"].to_pylist()[:10])

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            arena = await Arena.open(client, net, ["quiet"])
            runner, lookup, seed = await _one_miner(arena, x_world, redis_url, "quiet", real, quiet)
            await _at(arena, runner, lookup, seed)
            hotkey, redis = arena.hotkey("quiet"), runner.state.redis
            for kind in ("audits", "averdicts", "averdict_blocks"):  # as that release left it
                await redis.hdel(runner.state._key(kind, hotkey), "0")
            old = json.dumps({str(i): seed for i in sorted(quiet)})
            await redis.hset(runner.state._key("silence"), f"{hotkey}:0", old)
            await redis.hdel(runner.state._key("kept"), f"{hotkey}:0")
            before = len(lookup.asks)
            report, scores = await _at(arena, runner, lookup, seed + 1)
            asked = lookup.asks[before:]
            audits = await runner.state.audits()
            await arena.close()
            return arena, report, scores, asked, audits

    arena, report, scores, asked, audits = run(body())
    assert report.audited == 1 and report.audits_provisional == 1
    assert len(asked[0][1]) == SAMPLE  # nothing kept: the whole sample, once
    [result] = audits[arena.hotkey("quiet")].values()
    assert result.found < result.checked and scores[arena.hotkey("quiet")].unique > 0
