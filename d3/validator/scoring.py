"""The incentive mechanism: from credited unique tweets to weights.

    score(h)   = unique(h) × credibility(h)
    unique(h)  = Σ over the audited periods p of the last WINDOW_PERIODS periods (a period is
                 PERIOD_BLOCKS blocks), from the period of h's registration on, of
                 ⌊new unique tweets credited to h in p × found(h, p) / checked(h, p)⌋:
                 the share of h's sampled tweets X found (0 if one was altered); a
                 period counts only once audited; credit belongs to a hotkey, so a
                 replaced uid's successor starts at zero
    rank       = position in descending score; equal scores share the better rank and
                 the next score skips past them (1, 1, 3)
    weight(h)  = DECAY^rank(h) / Σ DECAY^rank, for score > 0; 0 otherwise

    credibility ← (1 − CREDIBILITY_ALPHA) × credibility + CREDIBILITY_ALPHA × outcome
                 over h's verdicts in the window, in block order, from
                 INITIAL_CREDIBILITY; outcome = 0 for a rejected commitment, and for each
                 audit 1 (passed) or 0 (failed), once per commitment it audited; passing
                 the structural checks counts only when no audits run; the validator's
                 own failures never count
    fresh(t, c)  a tweet t earns credit in commitment c only if it was created at or after
                 the timestamp of block (period(c) − FRESH_PERIODS) × PERIOD_BLOCKS

With FRESH_PERIODS = 2
DECAY = 0.5 the top miner takes about half the emission, the next a quarter, and so
on: the exponential curve the original D3 roadmap promised. docs/incentive-mechanism.md
is generated from these constants and checked against them by a test.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

PERIOD_BLOCKS = 7200  # one day of 12 s blocks
WINDOW_PERIODS = 7
FRESH_PERIODS = 2
DECAY = 0.5
CREDIBILITY_ALPHA = 0.2
INITIAL_CREDIBILITY = 1.0


@dataclass(frozen=True)
class ScoringParams:
    period_blocks: int = PERIOD_BLOCKS
    window_periods: int = WINDOW_PERIODS
    decay: float = DECAY
    fresh_periods: int = FRESH_PERIODS

    def __post_init__(self) -> None:
        if not 0 < self.decay < 1:
            raise ValueError(f"decay must be in (0, 1), got {self.decay}")
        if self.period_blocks <= 0 or self.window_periods <= 0:
            raise ValueError("period_blocks and window_periods must be positive")
        if self.fresh_periods < 0:
            raise ValueError("fresh_periods cannot be negative")

    def period_of(self, block: int) -> int:
        return block // self.period_blocks

    def window_start(self, block: int) -> int:
        """The first block whose credit and verdicts count at `block`."""
        return max(0, (self.period_of(block) - self.window_periods + 1) * self.period_blocks)

    def fresh_from_block(self, commit_block: int) -> int:
        """Tweets created before this block's timestamp earn nothing in a commitment at
        `commit_block`; 0 (genesis) means no bound."""
        return max(0, (self.period_of(commit_block) - self.fresh_periods) * self.period_blocks)

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
    credibility: float
    score: float
    weight: float


def update_credibility(current: float, verified: bool, alpha: float = CREDIBILITY_ALPHA) -> float:
    return (1 - alpha) * current + alpha * (1.0 if verified else 0.0)


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
    newest = params.period_of(current_block)
    oldest = max(newest - params.window_periods + 1, params.period_of(registered_block))
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


def exponential_weights(scores: Mapping[int, float], decay: float) -> dict[int, float]:
    """uid -> weight on the exponential curve; zero scores get zero; sums to 1 (or empty)."""
    positive = sorted((s for s in scores.values() if s > 0), reverse=True)
    rank_of: dict[float, int] = {}
    for rank, score in enumerate(positive):
        rank_of.setdefault(score, rank)
    raw = {uid: decay ** rank_of[s] if s > 0 else 0.0 for uid, s in scores.items()}
    total = sum(raw.values())
    return {uid: (w / total if total else 0.0) for uid, w in raw.items()}


def score_miners(
    neurons: list[tuple[int, str, int]],
    credits: Mapping[str, Mapping[int, int]],
    credibility: Mapping[str, float],
    current_block: int,
    params: ScoringParams,
    factors: Mapping[str, Mapping[int, tuple[int, int]]] | None = None,
) -> list[MinerScore]:
    """Scores for the registered neurons `(uid, hotkey, registered_block)`, by uid.

    Credits of hotkeys that are no longer registered are ignored: their uid now belongs to
    someone else, who starts from zero. `factors` (hotkey -> period -> found, checked)
    are the audits; None means structure-only validation (no audits).
    """
    rows = []
    for uid, hotkey, registered in neurons:
        mine = None if factors is None else factors.get(hotkey, {})
        unique = windowed_unique(credits.get(hotkey, {}), current_block, registered, params, mine)
        cred = credibility.get(hotkey, INITIAL_CREDIBILITY)
        rows.append((uid, hotkey, unique, cred, unique * cred))
    weights = exponential_weights({r[0]: r[4] for r in rows}, params.decay)
    return [MinerScore(u, h, n, c, s, weights[u]) for u, h, n, c, s in sorted(rows)]
