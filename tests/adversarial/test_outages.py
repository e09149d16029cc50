"""An honest miner's host fails for an hour; a griefer slows it past the per-hotkey fetch
allowance; a cheater fails an audit. Credibility is one outcome per miner-period, so an
outage costs the share of that period's commitments it hit, whatever the commit cadence,
and never more than a failed audit (which is 0 for its period). Before, every rejected
commitment was its own 0: six rejections at one commitment every 50 blocks took a miner
to 0.8^6 = 0.26 (weight ~6e-5 of an equal peer's) for days, and a caught cheater to 0.8.
`window_credibility` is the function the validator and bench/incentive_bench.py share;
the last test runs it through `ValidatorState` on Redis.
"""

from __future__ import annotations

import asyncio
import random

import redis.asyncio as aioredis

from d3.chain.interface import CommitmentRecord
from d3.validator.audit import AuditResult
from d3.validator.scoring import CREDIBILITY_ALPHA, INITIAL_CREDIBILITY, PERIOD_BLOCKS
from d3.validator.state import ValidatorState, Verdict, window_credibility

UNAVAILABLE = "not available 50 blocks after commit: the host answered 503"


def _period(
    period: int, commitments: int, rejected: set[int], neutral: frozenset[int] = frozenset()
) -> list[Verdict]:
    """One miner's commitments of `period`, evenly spaced, as `RoundRunner._apply` records
    them with audits on: accepted ones count for nothing on their own, the miner's
    rejections count, the validator's own failures (`neutral`) do not."""
    step = PERIOD_BLOCKS // commitments
    out = []
    for i in range(commitments):
        block = period * PERIOD_BLOCKS + i * step
        if i in rejected:
            out.append(Verdict(block, False, UNAVAILABLE, True))
        elif i in neutral:
            out.append(Verdict(block, False, "unexpected validator error", False))
        else:
            out.append(Verdict(block, True, "", False, new_unique=1000))
    return out


def _audit(period: int, passed: bool) -> dict[int, Verdict]:
    return {period: Verdict((period + 1) * PERIOD_BLOCKS - 1, passed, "audit", True)}


def _after_one_period(share: float) -> float:
    return (1 - CREDIBILITY_ALPHA) * INITIAL_CREDIBILITY + CREDIBILITY_ALPHA * share


def test_an_hours_outage_costs_its_share_of_one_period_whatever_the_cadence():
    """144 commitments a period (one every 50 blocks), 6 of them not served for an hour,
    and the period's audit passes: credibility 0.99, not 0.26; and a miner committing 24
    times a period with one rejected (the same share) ends at exactly the same float."""
    frequent = _period(0, 144, set(range(60, 66)))
    rare = _period(0, 24, {10})
    audits = _audit(0, passed=True)
    cred = window_credibility(frequent, audits, PERIOD_BLOCKS)
    assert cred >= 0.95
    assert cred == window_credibility(rare, audits, PERIOD_BLOCKS) == _after_one_period(138 / 144)
    # A validator-side failure in the same period is left out of the share.
    frequent = _period(0, 144, set(range(60, 66)), neutral=frozenset({100}))
    assert window_credibility(frequent, audits, PERIOD_BLOCKS) == _after_one_period(137 / 143)


def test_a_spent_hotkey_allowance_costs_a_share_not_a_cascade():
    """Past the per-hotkey fetch allowance every later commitment of the period is
    rejected as the miner's fault: spent at half the period, that is half of one period
    (credibility 0.9), not 72 zeros (1e-7)."""
    verdicts = _period(0, 144, set(range(72, 144)))
    assert window_credibility(verdicts, _audit(0, True), PERIOD_BLOCKS) == _after_one_period(0.5)


def test_a_failed_audit_is_still_zero_for_its_period_and_not_washed_out():
    """A cheater whose commitments all passed the structural checks fails the audit: 0 for
    the period (0.8), less than the honest outage above; the next period, with credit its
    audit has not judged yet, does not count before that audit."""
    cheater = _period(0, 144, set()) + _period(1, 144, set())
    audits = _audit(0, passed=False)
    assert window_credibility(cheater, audits, PERIOD_BLOCKS) == _after_one_period(0.0)
    audits |= _audit(1, passed=True)
    expected = (1 - CREDIBILITY_ALPHA) * _after_one_period(0.0) + CREDIBILITY_ALPHA
    assert window_credibility(cheater, audits, PERIOD_BLOCKS) == expected
    # A period whose every commitment was rejected has no credit and no audit: it counts.
    assert window_credibility(_period(2, 6, set(range(6))), {}, PERIOD_BLOCKS) == 0.8


def _history() -> tuple[list[Verdict], dict[int, Verdict]]:
    """Five periods of mixed verdicts: outages, a failed audit, neutral failures."""
    rng = random.Random(5)
    verdicts: list[Verdict] = []
    audits: dict[int, Verdict] = {}
    for period in range(5):
        n = rng.choice((7, 24, 144))
        verdicts += _period(period, n, set(rng.sample(range(n), rng.randrange(n // 2))), {3})
        audits |= _audit(period, passed=period != 2)
    return verdicts, audits


def test_the_same_verdicts_in_any_order_give_the_same_float():
    verdicts, audits = _history()
    expected = window_credibility(verdicts, audits, PERIOD_BLOCKS)
    rng = random.Random(11)
    for _ in range(20):
        shuffled = rng.sample(verdicts, len(verdicts))
        periods = rng.sample(sorted(audits), len(audits))
        assert window_credibility(shuffled, {p: audits[p] for p in periods}, PERIOD_BLOCKS) == (
            expected
        )


def test_validators_that_stored_the_verdicts_in_other_orders_agree(redis_url):
    """Two validators' Redis hashes hold the same verdicts written in other orders (hash
    field order is insertion order): `ValidatorState.credibility` gives the same float."""
    verdicts, audits = _history()
    result = AuditResult(8, 8, 0, "")

    async def stored(prefix: str, order: random.Random) -> dict[str, float]:
        redis = aioredis.from_url(redis_url)
        state = ValidatorState(redis, prefix)
        for verdict in order.sample(verdicts, len(verdicts)):
            record = CommitmentRecord("miner", verdict.block, "d3.1:x", None)
            await state.judge(record, [], verdict)
        for period in order.sample(sorted(audits), len(audits)):
            await state.record_audit("miner", period, result, audits[period])
        out = await state.credibility(PERIOD_BLOCKS)
        await redis.aclose()
        return out

    first = asyncio.run(stored("a", random.Random(1)))
    second = asyncio.run(stored("b", random.Random(2)))
    assert first == second == {"miner": window_credibility(verdicts, audits, PERIOD_BLOCKS)}
