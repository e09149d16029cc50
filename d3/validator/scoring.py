"""The incentive mechanism: from credited unique tweets to weights.

    score(h)   = max(0, unique(h) − CONFIDENCE_Z × noise(h)) × credibility(h)
    unique(h)  = Σ over the audited periods p of the window at block b, periods
                 ⌊b / PERIOD_BLOCKS⌋ − WINDOW_PERIODS + 1 to ⌊b / PERIOD_BLOCKS⌋ (the
                 open one included, which counts nothing until it is closed and
                 audited), from the period of h's registration on, of
                 ⌊new unique tweets credited to h in p × found(h, p) / checked(h, p)⌋:
                 the share of h's sampled tweets X found (0 if one was altered; a
                 count X refutes makes only that pick not found); a period counts only
                 once audited; credit belongs to a hotkey, so a replaced uid's
                 successor starts at zero
    noise(h)   = √(Σ over the same periods of credit(h, p)² × share × (1 − share) / n),
                 share = found / checked, n = the distinct tweets checked (a tweet picked
                 twice is one check): the standard error of unique(h) that sampling X
                 leaves, so a score is
                 credit at a lower confidence bound; a miner that adds noise (a share of
                 invented tweets) loses more than it can win from a lucky draw
    rank(h)    = log(top score / score(h)) / log(1 + RANK_STEP): how many RANK_STEP
                 steps (10 %) h's score is below the best one; fractional, 0 at the top
    weight(h)  = DECAY^rank(h) / Σ DECAY^rank, for score > 0; 0 otherwise: a miner
                 with 10 % less score than another gets half its weight, equal scores get
                 equal weights, and since DECAY^rank = (score / top)^(log 2 / log 1.1), about
                 score^7.3, one hotkey's data split over k hotkeys earns k^-6.3 as much

    credibility ← (1 − CREDIBILITY_ALPHA) × credibility + CREDIBILITY_ALPHA × outcome(h, p)
                 once per period p of the window, in period order, from
                 INITIAL_CREDIBILITY: outcome = 0 if h's audit of p failed, else
                 accepted / judged over h's commitments of p (by commit block) judged
                 on their merits, accepted or rejected (the validator's own failures
                 and other neutral verdicts are left out), 1 for a passed audit with
                 none; a period with credit counts once its audit is done. So an outage
                 costs the share of one period's commitments it hit, whatever the
                 commit cadence, and never more than a failed audit
    fresh(t, c)  a tweet t earns credit in commitment c only if it was created at or after
                 the timestamp of block (period(c) − FRESH_PERIODS) × PERIOD_BLOCKS

With DECAY = 0.5 the top miner takes about half the emission, the next a quarter, and so
on: the exponential curve the original D3 roadmap promised. docs/incentive-mechanism.md
is generated from these constants and checked against them by a test.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

PERIOD_BLOCKS = 7200  # one day of 12 s blocks
WINDOW_PERIODS = 7
FRESH_PERIODS = 2
DECAY = 0.5
CREDIBILITY_ALPHA = 0.2
INITIAL_CREDIBILITY = 1.0
# One rank is this much score: weight halves (DECAY) for each 10 % less verified credit.
# Ranks are measured in score, not counted in miners: counting miners lets one operator
# push everyone else down a rank per extra hotkey, and turns the audit's sampling noise
# between equal miners into a lottery for the top rank.
RANK_STEP = 0.10
# Scores count credit CONFIDENCE_Z standard errors below its estimate: on a rank curve a
# noisier estimate is worth more than its mean (a lottery ticket), and this is its price.
CONFIDENCE_Z = 2.0


@dataclass(frozen=True)
class ScoringParams:
    period_blocks: int = PERIOD_BLOCKS
    window_periods: int = WINDOW_PERIODS
    decay: float = DECAY
    fresh_periods: int = FRESH_PERIODS
    rank_step: float = RANK_STEP
    confidence_z: float = CONFIDENCE_Z

    def __post_init__(self) -> None:
        if not 0 < self.decay < 1:
            raise ValueError(f"decay must be in (0, 1), got {self.decay}")
        if self.period_blocks <= 0 or self.window_periods <= 0:
            raise ValueError("period_blocks and window_periods must be positive")
        if self.fresh_periods < 0:
            raise ValueError("fresh_periods cannot be negative")
        if not 0 < self.rank_step <= 1:
            raise ValueError(f"rank_step must be in (0, 1], got {self.rank_step}")
        if self.confidence_z < 0:
            raise ValueError(f"confidence_z cannot be negative, got {self.confidence_z}")

    def period_of(self, block: int) -> int:
        return block // self.period_blocks

    def window_start(self, block: int) -> int:
        """The first block whose credit and verdicts count at `block`."""
        return max(0, (self.period_of(block) - self.window_periods + 1) * self.period_blocks)

    def fresh_from_block(self, commit_block: int) -> int:
        """Tweets created before this block's timestamp earn nothing in a commitment at
        `commit_block`; 0 (genesis) means no bound."""
        return max(0, (self.period_of(commit_block) - self.fresh_periods) * self.period_blocks)

    def counted_periods(self, current_block: int, registered_block: int) -> tuple[int, int]:
        """(oldest, newest) period whose credit counts at `current_block` for a hotkey
        registered at `registered_block`: the window, and nothing before registration."""
        newest = self.period_of(current_block)
        return max(newest - self.window_periods + 1, self.period_of(registered_block)), newest

    def history_horizon(self, block: int) -> int:
        """The oldest commitment block that can still change credit or weights at `block`.

        Credit counts from the window's start, and a tweet is fresh for a commitment in
        the window only if it is newer than `fresh_from_block` of that commitment, which
        is never before this horizon: so a tweet first committed before it cannot be fresh
        for anyone in the window, and a validator that reads history only back to here
        reaches the same credit as one that saw everything.
        """
        return self.fresh_from_block(self.window_start(block))


@dataclass(frozen=True)
class MinerScore:
    uid: int
    hotkey: str
    unique: int
    noise: float  # the standard error of `unique` from sampling X
    credibility: float
    score: float
    weight: float


def update_credibility(current: float, outcome: float, alpha: float = CREDIBILITY_ALPHA) -> float:
    """One EMA step towards `outcome`, in [0, 1]: a miner-period's share of verdicts that
    went the miner's way (`d3.validator.state.window_credibility`)."""
    return (1 - alpha) * current + alpha * float(outcome)


def windowed_unique(
    per_period: Mapping[int, int],
    current_block: int,
    registered_block: int,
    params: ScoringParams,
    factors: Mapping[int, tuple[int, int]] | None = None,
) -> int:
    """Credit inside the rolling window and not older than the hotkey's registration.

    With `factors` (period -> found, checked: the audits), a period counts only once
    audited, and only for the share of its sampled tweets X found. Without, every period
    counts in full (structure-only validation)."""
    oldest, newest = params.counted_periods(current_block, registered_block)
    total = 0
    for period, count in per_period.items():
        if not oldest <= period <= newest:
            continue
        if factors is None:
            total += count
        elif period in factors:
            found, checked = factors[period]
            total += count * found // checked
    return total


def windowed_noise(
    per_period: Mapping[int, int],
    current_block: int,
    registered_block: int,
    params: ScoringParams,
    factors: Mapping[int, tuple[int, int]] | None = None,
    evidence: Mapping[int, int] | None = None,
) -> float:
    """The standard error of `windowed_unique`: each audited period's credit is its count
    times a sampled found share, whose binomial variance is share × (1 − share) / n per
    unit of count², n the distinct tweets checked (`evidence`; the picks when absent).
    Zero without audits. Summed in period order, so every validator gets the same float."""
    if factors is None:
        return 0.0
    oldest, newest = params.counted_periods(current_block, registered_block)
    variance = 0.0
    for period in sorted(per_period):
        if oldest <= period <= newest and period in factors:
            found, checked = factors[period]
            n = min(checked, (evidence or {}).get(period, checked)) or checked
            variance += per_period[period] ** 2 * found * (checked - found) / (checked**2 * n)
    return math.sqrt(variance)


def miner_score(unique: int, noise: float, credibility: float, params: ScoringParams) -> float:
    """Credit at its lower confidence bound, times credibility."""
    return max(0.0, unique - params.confidence_z * noise) * credibility


def exponential_weights(
    scores: Mapping[int, float], decay: float, rank_step: float = RANK_STEP
) -> dict[int, float]:
    """uid -> weight on the exponential curve; zero scores get zero; sums to 1 (or empty).

    The rank is measured in steps of score below the best, so it is continuous: two
    near-equal miners get near-equal weights whatever the audit's sampling noise does, a
    noisier credit (a share of invented tweets) buys almost nothing (the curve's convexity
    is worth about 23 σ², the confidence bound costs about 15 σ), and no operator gains by
    spreading its data over more hotkeys (docs/incentive-mechanism.md, "Why ranks are
    measured in score")."""
    positive = [s for s in scores.values() if s > 0]
    if not positive:
        return dict.fromkeys(scores, 0.0)
    top = max(positive)
    exponent = math.log(1 / decay) / math.log(1 + rank_step)  # DECAY^rank = (s/top)^exponent
    raw = {uid: (s / top) ** exponent if s > 0 else 0.0 for uid, s in scores.items()}
    total = sum(raw[uid] for uid in sorted(raw))  # a fixed order: the same float everywhere
    return {uid: w / total for uid, w in raw.items()}


def score_miners(
    neurons: list[tuple[int, str, int]],
    credits: Mapping[str, Mapping[int, int]],
    credibility: Mapping[str, float],
    current_block: int,
    params: ScoringParams,
    factors: Mapping[str, Mapping[int, tuple[int, int]]] | None = None,
    evidence: Mapping[str, Mapping[int, int]] | None = None,
) -> list[MinerScore]:
    """Scores for the registered neurons `(uid, hotkey, registered_block)`, by uid.

    Credits of hotkeys that are no longer registered are ignored: their uid now belongs to
    someone else, who starts from zero. `factors` (hotkey -> period -> found, checked)
    are the audits; None means structure-only validation (no audits).
    """
    rows = []
    for uid, hotkey, registered in neurons:
        mine = None if factors is None else factors.get(hotkey, {})
        own = credits.get(hotkey, {})
        unique = windowed_unique(own, current_block, registered, params, mine)
        seen = None if evidence is None else evidence.get(hotkey, {})
        noise = windowed_noise(own, current_block, registered, params, mine, seen)
        cred = credibility.get(hotkey, INITIAL_CREDIBILITY)
        rows.append((uid, hotkey, unique, noise, cred, miner_score(unique, noise, cred, params)))
    weights = exponential_weights({r[0]: r[5] for r in rows}, params.decay, params.rank_step)
    return [MinerScore(*row, weights[row[0]]) for row in sorted(rows)]
