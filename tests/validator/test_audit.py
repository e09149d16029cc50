"""The audit's rules, each against the attack it stops: through the real validator over the
dev chain, with X as a table of the real tweets."""

from __future__ import annotations

import dataclasses

import bittensor as bt
import pyarrow as pa

from d3.dev.synthetic import synthetic_table
from d3.hub.decisions import audit_passed
from d3.validator.audit import AuditParams, AuditResult, CandidateSet, allot, draw
from d3.validator.pipeline import PipelineLimits
from d3.validator.scoring import INITIAL_CREDIBILITY
from tests.support.datasets import TruthLookup, write_dataset
from tests.support.net import NETUID, registered, run
from tests.support.runner import TEST_AUDIT, audit_now, make_runner


def test_rows_are_ranked_only_after_the_grace_period(net, redis_url):
    """In production the key that ranks a commitment's rows for the audit comes from the
    block after its grace period: the miner has to decide what to upload (or withhold)
    before anyone, itself included, can know which rows the audit will ask about."""
    table = synthetic_table(50, seed=60)

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            chains = await registered(client, net, ["validator", "miner"])
            published = write_dataset(
                net.data_dir / "m", net.wallet("miner").hotkey, NETUID, [table]
            )
            verdict = await chains["miner"].commit(published.commitment)
            runner = make_runner(
                chains["validator"], redis_url, TruthLookup(table), audit=AuditParams()
            )
            net.dev.advance(1)
            early = await runner.process(await chains["validator"].metagraph())
            net.dev.advance(runner.pipeline.limits.grace_blocks + 1)
            later = await runner.process(await chains["validator"].metagraph())
            return verdict.block, early, later

    _, early, later = run(body())
    assert len(early.pending) == 1 and not early.accepted  # the key does not exist yet
    assert later.accepted == early.pending


def test_an_invented_ancestor_split_across_parts_is_still_audited(net, redis_url):
    """A long never-committed ancestry is applied in parts: each part keeps its own
    candidates, so invented ancestors cannot hide behind the real rows of the last part."""
    invented = synthetic_table(200, seed=61)  # not on X
    real = synthetic_table(20, seed=62)

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            chains = await registered(client, net, ["validator", "cheat"])
            signer, host = net.wallet("cheat").hotkey, net.data_dir / "cheat"
            # Two never-committed ancestors of invented tweets, then the committed manifest.
            first = write_dataset(host, signer, NETUID, [invented.slice(0, 100)])
            second = write_dataset(
                host, signer, NETUID, [invented.slice(100, 100)], first.manifest.sha256
            )
            own = write_dataset(host, signer, NETUID, [real], second.manifest.sha256)
            assert (await chains["cheat"].commit(own.commitment)).ok
            limits = PipelineLimits(grace_blocks=5, max_rows=150)  # two parts
            runner = make_runner(chains["validator"], redis_url, TruthLookup(real), limits)
            net.dev.advance(1)
            await runner.process(await chains["validator"].metagraph())
            pool = await runner.state.candidates(chains["cheat"].hotkey, 0)
            await audit_now(runner, net.dev)
            [score] = [
                s
                for s in await runner.scores(await chains["validator"].metagraph())
                if s.hotkey == chains["cheat"].hotkey
            ]
            return pool, score

    pool, score = run(body())
    assert sorted(c.new for c in pool) == [100, 120]  # both parts, kept apart
    assert score.unique < 220 // 2 and score.credibility < INITIAL_CREDIBILITY


def test_credit_with_no_row_to_check_counts_as_not_found():
    """Padding a commitment until none of its credited rows is ranked (copies, stale
    rows) leaves credit with no candidate: picks that land on it cannot vouch for it."""
    ids = pa.table({"id": pa.array(range(1, 11), pa.int64())})
    pool = [CandidateSet(5, 100, ids), CandidateSet(6, 900, None)]
    shares = []
    for seed in range(200):
        sample, unverifiable = draw(pool, 10, seed=seed)
        assert (0 if sample is None else sample.num_rows) + unverifiable == 10
        shares.append(unverifiable / 10)
    assert 0.85 < sum(shares) / len(shares) < 0.95  # the credit with nothing to show: 90 %
    assert draw([CandidateSet(5, 100, None)], 8, seed=1) == (None, 8)


def test_one_huge_invented_commitment_cannot_hide_behind_many_real_ones():
    """144 real commitments of 1,000 tweets and one of 2,000,000 invented ones: picks fall
    on each commitment in proportion to its credit, whatever few candidates it kept, so
    the found share is the invented commitment's share of the credit, not 4 tweets in
    300 (which credited 2,080,000 tweets before)."""
    params = AuditParams()
    real = [
        CandidateSet(i, 1000, pa.table({"id": pa.array([2 * (i * 100 + k) for k in range(4)])}))
        for i in range(144)
    ]  # even IDs: X finds them
    huge = 2_000_000
    n = params.candidates_for(huge)
    invented = CandidateSet(999, huge, pa.table({"id": pa.array([2 * k + 1 for k in range(n)])}))
    credit = 144 * 1000 + huge
    credited = []
    for seed in range(50):
        sample, unverifiable = draw([*real, invented], 300, seed=seed)
        found = sum(1 for i in sample["id"].to_pylist() if i % 2 == 0)
        credited.append(credit * found // (sample.num_rows + unverifiable))
    assert n == 2000
    assert sum(credited) / len(credited) < 1.1 * 144 * 1000  # its real tweets, and no more


def test_silence_about_one_miners_tweets_holds_no_period_back(net, redis_url):
    """X stays silent about one miner's tweets while it answers the other's: the period
    counts at once for both, the silent tweets as not found (provisionally: the period
    stays open, and they are asked again), and at the seed block plus `max_wait_blocks`
    they stay not found for good and the period closes. (The old rule held the period
    for everyone for a day: a miner could freeze the whole subnet's credit with tweets
    that Apify says nothing about.)"""
    honest_table, staller_table = synthetic_table(40, seed=63), synthetic_table(40, seed=64)
    silent = set(staller_table["id"].to_pylist())

    class SilentOnSome(TruthLookup):
        async def __call__(self, ids):
            answer = await super().__call__([i for i in ids if i not in silent])
            answer.failed.update(i for i in ids if i in silent)
            return answer

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            chains = await registered(client, net, ["validator", "honest", "staller"])
            for name, table in (("honest", honest_table), ("staller", staller_table)):
                published = write_dataset(
                    net.data_dir / name, net.wallet(name).hotkey, NETUID, [table]
                )
                assert (await chains[name].commit(published.commitment)).ok
            lookup = SilentOnSome(honest_table, staller_table)
            audit = dataclasses.replace(TEST_AUDIT, max_wait_blocks=100, silence_confirm_blocks=50)
            runner = make_runner(chains["validator"], redis_url, lookup, audit=audit)
            net.dev.advance(1)
            await runner.process(await chains["validator"].metagraph())
            first = await audit_now(runner, net.dev)
            again = await runner.process(await chains["validator"].metagraph())
            scores = {
                s.hotkey: s for s in await runner.scores(await chains["validator"].metagraph())
            }
            open_periods = await runner.state.audit_periods()
            # X stays silent past `max_wait_blocks`: the silent tweets count as not found.
            net.dev.advance(runner.audit.max_wait_blocks + 1)
            late = await runner.process(await chains["validator"].metagraph())
            final = {
                s.hotkey: s for s in await runner.scores(await chains["validator"].metagraph())
            }
            closed = await runner.state.audit_periods()
            return first, again, scores, open_periods, late, final, closed, chains

    first, again, scores, open_periods, late, final, closed, chains = run(body())
    assert first.audited == 2 and again.audited == 0  # both at once; no re-ask due yet
    assert first.audits_waiting == again.audits_waiting == 0
    assert scores[chains["honest"].hotkey].unique == 40  # the period counts for both
    assert scores[chains["staller"].hotkey].unique == 0  # its silent tweets: not found
    assert open_periods == [0]  # open: the silent tweets are asked again
    assert late.audited == 1 and late.audits_waiting == 0 and closed == []
    assert final[chains["staller"].hotkey].unique == 0  # nothing X would vouch for
    assert final[chains["honest"].hotkey].unique == 40


def test_deleted_tweets_within_the_allowance_cost_an_honest_miner_only_themselves(net, redis_url):
    """X loses tweets (deletions) between scrape and audit: an honest miner loses about
    their share of its credit and nothing of its credibility."""
    table = synthetic_table(100, seed=65)
    survivors = table.slice(10)  # the first 10 were deleted on X since the scrape

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            chains = await registered(client, net, ["validator", "miner"])
            published = write_dataset(
                net.data_dir / "m", net.wallet("miner").hotkey, NETUID, [table]
            )
            assert (await chains["miner"].commit(published.commitment)).ok
            runner = make_runner(
                chains["validator"],
                redis_url,
                TruthLookup(survivors),
                audit=AuditParams(
                    lookups_per_period=100,
                    min_per_miner=100,
                    candidates_per_commitment=100,
                    rank_delay_blocks=1,
                ),
            )
            net.dev.advance(1)
            await runner.process(await chains["validator"].metagraph())
            await audit_now(runner, net.dev)
            [score] = [
                s
                for s in await runner.scores(await chains["validator"].metagraph())
                if s.hotkey == chains["miner"].hotkey
            ]
            [result] = (await runner.state.audits())[chains["miner"].hotkey].values()
            return score, result

    score, result = run(body())
    assert (result.found, result.checked, result.altered) == (90, 100, 0)
    assert score.unique == 90  # its deletions, and no more
    assert score.credibility == INITIAL_CREDIBILITY  # within the allowance: no penalty


def test_allotment_never_exceeds_the_budget():
    """A full subnet of small miners plus one large one: every miner gets its minimum and
    the total stays within the period's look-ups (the daily budget covers it)."""
    params = AuditParams()
    credits = {f"m{i:03d}": 10 for i in range(255)} | {"big": 10_000_000}
    sizes = allot(credits, params)
    assert sum(sizes.values()) <= params.lookups_per_period
    assert min(sizes.values()) == params.min_per_miner
    assert sizes["big"] > params.lookups_per_period - 256 * params.min_per_miner - 1
    assert allot({"a": 0, "b": 5}, params) == {"b": params.lookups_per_period}


def test_two_deletions_in_the_smallest_sample_do_not_fail_the_audit():
    """At `min_per_miner` (8) picks, 2 not found are 25 %, above the 20 % allowance, and
    ordinary deletions do that to an honest miner now and then (as can a griefer who
    deletes bait tweets the draw picked): it costs those picks' share of the credit, not
    the period's credibility. 3 of 8 fail it; in large samples the share alone rules.
    The validator and the hub decide it the same way."""
    cases = {(8, 6): False, (8, 5): True, (8, 8): False, (100, 80): False, (100, 79): True}
    for (checked, found), failed in cases.items():
        result = AuditResult(checked, found, 0, "", checked)
        assert result.failed is failed, (checked, found)
        assert audit_passed(result) is not failed
    assert AuditResult(8, 6, 0, "").factor == (6, 8)  # the share still counts
