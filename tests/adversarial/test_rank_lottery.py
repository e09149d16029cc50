"""The rank lottery: a miner that invents a share of its tweets adds no expected credit
(the audit discounts it by the sampled found share) but makes its credit *noisier*, and
on a rank curve where the top takes half the emission, noise among near-equal miners is a
lottery ticket. The tie tolerance and the confidence bound must make the ticket worthless.

Seeded windows through the real `allot`, `draw`, `AuditResult` and `score_miners`; a
cheater that fails an audit's allowance would also lose credibility, which is left out
here so that only the lottery is measured.
"""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from d3.validator.audit import AuditParams, AuditResult, CandidateSet, allot, draw, seed_of
from d3.validator.scoring import ScoringParams, score_miners

SCORING = ScoringParams(period_blocks=100, window_periods=3)
AUDIT = AuditParams(lookups_per_period=30 * 16, min_per_miner=8, candidates_per_commitment=4)
HONEST = 29
COMMITS = 10
TWEETS = 1000  # real new tweets per commitment
DELETION = 0.02
WINDOWS = 60


def _pool(rng: random.Random, period: int, total: int, real: int) -> list[CandidateSet]:
    """COMMITS commitments of `total` new tweets of which `real` are real; each keeps 4
    candidates drawn uniformly from its new tweets. An ID's low bit says X finds it."""
    pool = []
    for i in range(COMMITS):
        picks = rng.sample(range(total), AUDIT.candidates_per_commitment)
        found = [p < real and rng.random() >= DELETION for p in picks]
        ids = [(rng.getrandbits(40) << 1) | int(f) for f in found]
        rows = pa.table({"id": pa.array(ids, pa.int64())})
        pool.append(CandidateSet(period * SCORING.period_blocks + i, total, rows))
    return pool


def _window_weights(seed: int, share: float, scoring: ScoringParams) -> tuple[float, float]:
    """One window of 3 audited periods: the cheater's weight and the honest mean weight."""
    rng = random.Random(seed)
    hotkeys = ["cheater"] + [f"honest-{i:02d}" for i in range(HONEST)]
    total = round(TWEETS / (1 - share))  # the honest miner's R real tweets, plus invented
    credits: dict[str, dict[int, int]] = {h: {} for h in hotkeys}
    factors: dict[str, dict[int, tuple[int, int]]] = {h: {} for h in hotkeys}
    for period in range(SCORING.window_periods):
        pools = {
            h: _pool(rng, period, total if h == "cheater" else TWEETS, TWEETS) for h in hotkeys
        }
        for h, pool in pools.items():
            credits[h][period] = sum(c.new for c in pool)
        sizes = allot({h: credits[h][period] for h in hotkeys}, AUDIT)
        for h, size in sizes.items():
            sample, unverifiable = draw(pools[h], size, seed_of(seed, h, period))
            ids = sample["id"].to_pylist() if sample is not None else []
            result = AuditResult(len(ids) + unverifiable, sum(i & 1 for i in ids), 0)
            factors[h][period] = result.factor
    block = SCORING.window_periods * SCORING.period_blocks - 1
    neurons = [(uid, h, 0) for uid, h in enumerate(hotkeys)]
    scores = score_miners(neurons, credits, {}, block, scoring, factors)
    return scores[0].weight, sum(s.weight for s in scores[1:]) / HONEST


def _ratio(share: float, scoring: ScoringParams) -> float:
    cheater = honest = 0.0
    for window in range(WINDOWS):
        c, h = _window_weights(seed_of("lottery", window), share, scoring)
        cheater, honest = cheater + c, honest + h
    return cheater / honest


@pytest.mark.parametrize("share", [0.05, 0.2])
def test_inventing_a_share_buys_no_weight(share: float):
    assert _ratio(share, SCORING) <= 1.0


def test_without_the_tolerance_and_the_bound_the_lottery_pays():
    """The same windows on a bare rank curve: the attack works, so the test above can fail."""
    bare = ScoringParams(period_blocks=100, window_periods=3, rank_step=0.001, confidence_z=0)
    assert _ratio(0.05, bare) > 1.5
