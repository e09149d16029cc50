"""Incentive bench: does inventing tweets pay, under the project's own audit and scoring?

The mechanism's claim (docs/incentive-mechanism.md, "The audit: no credit without
evidence") is that inventing a share f of one's new tweets removes, in expectation,
exactly that share of one's credit, so a cheater cannot out-earn an honest miner with the
same real tweets. Credit is only the input, though: weights come from *ranks* on an
exponential curve, and ranks are not linear in credit. This bench measures what the claim
is about, the weight, by driving the project's own code over simulated days:

- `allot` splits the default budget (`AuditParams()`: 8,000 look-ups a period, at least
  8 a miner) in proportion to each miner's credit of the period;
- every accepted commitment keeps `candidates_per_commitment` candidates, drawn uniformly
  from its new tweets (the real code ranks them by a keyed hash: uniform in effect), as a
  `CandidateSet` holding a small pyarrow table of IDs; `draw` picks the sample;
- X is simulated: a real tweet is found unless deleted (probability `--deletion`), an
  invented one never; the answer becomes an `AuditResult`, its `factor`, and the
  credibility verdict `RoundRunner._audit_period` makes of it (`AuditResult.failed`: above
  `MAX_MISSING_SHARE`; one verdict per audited miner-period);
- credit is `windowed_unique` with those factors, credibility the EMA of the window's
  miner-periods (`window_credibility`: each period's counts from prefix sums, through
  `period_outcome` and `update_credibility`), and weights `exponential_weights` of unique
  x credibility: exactly `score_miners` and `window_credibility`, which `--check` calls
  at every weight setting and compares.

`--miners` miners commit `--commits` times a day, `--tweets` new tweets each. All honest
miners are equal, so each of them is a comparator: the cheater's "equal honest miner" is
the honest mean, in the same run. A run (a seed) simulates the honest population once and
lets `--replicas` independent cheaters per config face it, each alone (the others do not
exist for it): common random numbers, so the configs differ only by their cheater.

- *inventor*: the same real tweets as an honest miner plus invented ones, a share f of
  what it commits (it commits R / (1 - f) where an honest miner commits R; f = 100 %:
  R invented tweets and nothing real);
- *withholder*: the same, but it withholds the upload of every commitment whose audit
  candidates include an invented tweet, taking a rejection (credibility) and no credit for
  that commitment. That needs the ranking key before the upload deadline: the key from the
  block just after the commit (3bbb3e7), or `AuditParams.rank_delay_blocks` below the grace
  period. With the default (the block after the grace period) it cannot know them.

f = 0 is the control: an honest miner with its own draws, whose ratio must be 1.0 within
noise. A ratio is a cheater's mean weight over the measured days / the honest mean
weight (without a spread, below); per seed the replicas' ratios are averaged, and the
interval is a 95 % Student-t over seeds (the independent units: days in a run share the
7-period window and replicas share the population). Seeds run in parallel (`--jobs`).

Equal miners are the worst case for rank noise, but they hide another effect. With
`--spread S` (S > 1) honest volumes differ: honest miner i commits round(tweets x v_i) new
tweets a commitment (the same number of commitments), v_i = S^(j / (n - 1)) for
j = 0 .. n - 1, evenly spaced in log space over [1, S] and assigned to hotkeys in an order
the seed shuffles (`Sim.honest_tweets`): every seed has the same field, and its deletion
draws are the same as without a spread. Credit and look-ups (`allot`) scale with volume.
In such a field the weight is steeply convex in score (a factor DECAY per place, and
(n - 1) / ln S places per unit of ln score), so an estimate that is noisier but unbiased, as
an inventor's is, could be worth more than its mean; this mode measures whether it is.
Each replica index r gets a *twin* per seed, the same in every config: an honest miner
drawn uniformly from stratum r of the field by volume (`twin_strata`, log-spaced so that
the top places, which get nearly all the emission, are sampled in every seed). Its
cheaters commit the twin's real tweets (inventors add R f / (1 - f) invented ones as
above), and the ratio is a cheater's weight / the weight of the f = 0 control replica with
the same index: an honest miner at the twin's volume with its own draws. Hence the f = 0
ratio is 1 by construction, and the sanity figure is the control's weight / its twin's in
the control's field (1 within noise). The control, not the twin, is the comparator:
  - it is what the cheater is, uid 0 added to the same population through the same code
    path, so anything that the extra miner's position does cancels;
  - the twin's weight depends on the cheater: they share a tolerance band, a cheater more
    than TIE_TOLERANCE above it costs it a place (half its weight), a cheater that earns
    nothing leaves it more of the normalised total, so W_cheater / W_twin would count part
    of the effect twice (or cancel it) and its denominator would change with the config;
  - the control's weight is one denominator for every config of that replica (common
    random numbers: between configs only the cheater differs), and its draws are, as the
    twin's, independent of the cheater's, so the variance is no worse.
The per-seed ratio averages the replicas (one per stratum: places weighed about
log-uniformly); `ratio_pooled` (JSON, and the last column of the by-stratum table) is a
seed's total cheater weight / total control weight, which weighs places by the emission
they get. Per-replica figures (twin place, volume, ratio) are in the JSON.

    python bench/incentive_bench.py [--seeds 12] [--days 30] [--replicas 4] [--spread 1] [--json]
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import math
import os
import random
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field

import pyarrow as pa

from d3.validator.audit import AuditParams, AuditResult, CandidateSet, allot, draw, seed_of
from d3.validator.pipeline import PipelineLimits
from d3.validator.scoring import (
    INITIAL_CREDIBILITY,
    ScoringParams,
    exponential_weights,
    miner_score,
    score_miners,
    update_credibility,
    windowed_noise,
    windowed_unique,
)
from d3.validator.state import Verdict, period_outcome, window_credibility

SHARES = (0.0, 0.01, 0.05, 0.10, 0.20, 0.50, 1.0)
FOUND, DELETED, INVENTED = 0, 1, 2  # the low bits of a simulated tweet ID: what X says
CHEATER = "m000"  # uid 0; honest miners are m001.. (allot and draw sort by hotkey/block)


@dataclass(frozen=True)
class Config:
    """One kind of cheater: its strategy and the share of its new tweets it invents."""

    kind: str  # "inventor" or "withholder"
    share: float

    @property
    def name(self) -> str:
        return f"{self.kind}@{self.share:g}"


CONTROL = Config("inventor", 0.0)  # f = 0: an honest miner with its own draws


@dataclass(frozen=True)
class Sim:
    """Everything a run needs; picklable, so worker processes get it whole."""

    miners: int = 256
    commits: int = 144  # per miner per period (day)
    tweets: int = 1000  # real new tweets per commitment
    deletion: float = 0.02
    days: int = 30  # measured periods, after the warm-up
    replicas: int = 4  # cheaters per config per run, each facing the population alone
    evals_per_day: int = 24  # every 300 blocks (--neuron.weights_interval is 100: 72)
    spread: float = 1.0  # honest volumes log-uniform over [1, spread] x tweets (1: all equal)
    check: bool = False  # also call score_miners / window_credibility and compare
    audit: AuditParams = field(default_factory=AuditParams)
    scoring: ScoringParams = field(default_factory=ScoringParams)
    grace_blocks: int = PipelineLimits().grace_blocks

    @property
    def warmup(self) -> int:
        """Periods before the window holds a full set of audited periods."""
        return self.scoring.window_periods - 1

    def seed_block(self, period: int) -> int:
        """The block whose hash seeds `period`'s audit, as `RoundRunner.audit_periods`."""
        last = (period + 1) * self.scoring.period_blocks - 1
        return last + self.grace_blocks + self.audit.delay_blocks

    def verdict_block(self, period: int) -> int:
        """Where an audit's verdict sorts among the verdicts: the period's own last block
        (`_audit_period`), although it only exists from the seed block on."""
        return (period + 1) * self.scoring.period_blocks - 1

    def honest_tweets(self, seed: int) -> list[int]:
        """New tweets a commitment of each honest miner (m001, m002, ...): `tweets` each,
        or with a spread S > 1, tweets x S^(j / (n - 1)) for j = 0 .. n - 1 (evenly spaced in
        log space, both ends included) in an order the seed shuffles. Every seed has the
        same field; which hotkey (hence which deletion draws) has which volume differs."""
        n = self.miners - 1
        if self.spread == 1:
            return [self.tweets] * n
        steps = [self.spread ** (j / max(1, n - 1)) for j in range(n)]
        random.Random(seed_of("volumes", seed)).shuffle(steps)
        return [round(self.tweets * v) for v in steps]

    def commit_blocks(self, period: int) -> list[int]:
        step = self.scoring.period_blocks // self.commits
        return [period * self.scoring.period_blocks + i * step for i in range(self.commits)]

    def eval_blocks(self, period: int) -> list[int]:
        """Evenly spaced weight settings inside `period` (mid-slot: none on a boundary)."""
        pb = self.scoring.period_blocks
        n = self.evals_per_day
        return [period * pb + int((j + 0.5) * pb / n) for j in range(n)]


class Ingest:
    """A hotkey's commitment verdicts in block order (one list may be shared: honest
    miners and inventors commit at the same blocks, all accepted), with prefix sums of
    what `period_outcomes` counts, so any block range's counts are two bisects away."""

    def __init__(self) -> None:
        self.verdicts: list[Verdict] = []
        self.blocks: list[int] = []
        self.judged = [0]  # prefix sums: judged on their merits, accepted, awaiting audit
        self.accepted = [0]
        self.awaiting = [0]

    def append(self, verdict: Verdict) -> None:
        judged = verdict.accepted or verdict.counts
        waits = verdict.accepted and not verdict.counts and verdict.new_unique > 0
        self.verdicts.append(verdict)
        self.blocks.append(verdict.block)
        self.judged.append(self.judged[-1] + judged)
        self.accepted.append(self.accepted[-1] + verdict.accepted)
        self.awaiting.append(self.awaiting[-1] + waits)


class Stream:
    """One hotkey's verdicts (its commitments', and its audits' by period) and its
    credibility by block.

    `ValidatorState.credibility` is `window_credibility` over the verdicts from the
    window's start on: one outcome per miner-period, in period order. Here each period's
    counts come from `Ingest`'s prefix sums and go through the same `period_outcome` and
    `update_credibility`, in the same order, hence the same float, in O(periods) a call;
    `--check` computes `window_credibility` from scratch and compares.
    """

    def __init__(self, ingest: Ingest, period_blocks: int):
        self.ingest = ingest
        self.period_blocks = period_blocks
        self.audits: dict[int, Verdict] = {}  # audited period -> its verdict

    def window(self, since: int, block: int) -> tuple[list[Verdict], dict[int, Verdict]]:
        """The verdicts `ValidatorState.credibility` reads at `block` for a window from
        `since`: commitments made and audits recorded by then."""
        lo = bisect.bisect_left(self.ingest.blocks, since)
        hi = bisect.bisect_right(self.ingest.blocks, block)
        audits = {p: v for p, v in self.audits.items() if since <= v.block <= block}
        return self.ingest.verdicts[lo:hi], audits

    def credibility(self, since: int, block: int, check: bool = False) -> float:
        ingest, pb = self.ingest, self.period_blocks
        cred = INITIAL_CREDIBILITY
        for period in range(since // pb, block // pb + 1):
            lo = bisect.bisect_left(ingest.blocks, max(since, period * pb))
            hi = bisect.bisect_right(ingest.blocks, min(block, (period + 1) * pb - 1))
            audit = self.audits.get(period)
            passed = audit.accepted if audit and since <= audit.block <= block else None
            outcome = period_outcome(
                ingest.accepted[hi] - ingest.accepted[lo],
                ingest.judged[hi] - ingest.judged[lo],
                passed,
                ingest.awaiting[hi] > ingest.awaiting[lo],
            )
            if outcome is not None:
                cred = update_credibility(cred, outcome)
        if check:
            expected = window_credibility(*self.window(since, block), pb)
            assert cred == expected, (cred, expected, since, block)
        return cred


@dataclass
class Cheater:
    """One cheater replica: what the validator holds about it, and what it earned."""

    config: Config
    replica: int
    rng: random.Random
    stream: Stream
    tweets: int  # real new tweets a commitment: its twin's (everyone's without a spread)
    twin: int | None = None  # with a spread: the index of its twin in `Run.honest`
    twin_position: int | None = None  # the twin's place by volume, 0 = the largest
    credits: dict[int, int] = field(default_factory=dict)
    pools: dict[int, list[CandidateSet]] = field(default_factory=dict)
    factors: dict[int, tuple[int, int]] = field(default_factory=dict)
    evidence: dict[int, int] = field(default_factory=dict)  # period -> distinct tweets
    # period -> the honest miners' allotment under this replica (`Run.allotment`): an
    # index into `Run.allotments[period]`, the same for replicas that leave it the same
    honest_allot: dict[int, int] = field(default_factory=dict)
    committed: int = 0
    withheld: int = 0
    audited: int = 0
    failed: int = 0
    found_share: float = 0.0  # sum over its audits of found / checked
    memo: tuple[tuple, dict[int, float]] | None = (
        None  # (inputs, weights): unchanged inputs, unchanged weights
    )
    evals: int = 0
    weight: float = 0.0
    honest_weight: float = 0.0  # sum over weight settings of the honest mean weight
    cred: float = 0.0
    unique: float = 0.0
    honest_unique: float = 0.0
    honest_score_cv: float = 0.0
    honest_by_miner: list[float] | None = None  # controls only: each honest miner's sum

    def summary(self, control: Cheater | None = None) -> dict:
        """Without a spread, the comparator is the honest mean in the same field; with
        one, `control`: the f = 0 replica with the same replica index (the same twin)."""
        n = self.evals
        if control is None:
            ratio = self.weight / self.honest_weight
            comparator, unique_ratio = self.honest_weight / n, self.unique / self.honest_unique
        else:
            ratio = self.weight / control.weight if control.weight else math.nan
            comparator = control.weight / n
            unique_ratio = self.unique / control.unique if control.unique else math.nan
        out = {
            "ratio": ratio,
            "cheater_weight": self.weight / n,
            "honest_weight": comparator,
            "cheater_credibility": self.cred / n,
            "unique_ratio": unique_ratio,
            "honest_score_cv": self.honest_score_cv / n,
            "audits": self.audited,
            "failed_audits": self.failed,
            "found_share": self.found_share / max(1, self.audited),
            "withheld_share": self.withheld / max(1, self.committed),
        }
        if self.honest_by_miner is not None:
            mean = self.honest_weight / n
            out["honest_relative"] = [w / n / mean for w in self.honest_by_miner]
        if self.twin is not None:
            out["twin_position"] = self.twin_position
            out["twin_tweets"] = self.tweets
            if self.honest_by_miner is not None:  # a control: its weight / its twin's
                twin = self.honest_by_miner[self.twin]
                out["control_vs_twin"] = self.weight / twin if twin else math.nan
        return out


def twin_strata(n: int, replicas: int) -> list[tuple[int, int]]:
    """Replica r's twin comes from positions [lo, hi) of the n honest miners by volume
    (0 = the largest), bounds n^(r / replicas) - 1 rounded: log-spaced, so the few places
    that get nearly all the emission have strata of their own (255 miners, 4 replicas:
    0-2, 3-14, 15-62, 63-254). Equal strata would leave the top to chance (a stratum of
    63 places, of which about the first 20 get any weight)."""
    bounds = [0]
    for r in range(1, replicas):
        bounds.append(min(n - (replicas - r), max(bounds[-1] + 1, round(n ** (r / replicas)) - 1)))
    bounds.append(n)
    return list(itertools.pairwise(bounds))


def candidate_table(statuses: Sequence[int], serial: int) -> pa.Table:
    """IDs whose low two bits say what X will answer for them (FOUND/DELETED/INVENTED)."""
    ids = [((serial + i) << 2) | s for i, s in enumerate(statuses)]
    return pa.table({"id": pa.array(ids, pa.int64())})


def ask_x(drawn: tuple[pa.Table | None, int]) -> AuditResult:
    """The simulated X on `draw`'s result, as `RoundRunner._audit_period` makes it an
    `AuditResult`: found unless deleted or invented, nothing ever altered, and a pick on
    credit without a candidate counted as checked and not found."""
    sample, unverifiable = drawn
    ids = [] if sample is None else sample["id"].to_pylist()
    found = sum(1 for i in ids if i & 3 == FOUND)
    return AuditResult(len(ids) + unverifiable, found, 0, "", len(set(ids)) + unverifiable)


def audit_verdict(result: AuditResult, block: int, period: int) -> Verdict:
    """The credibility verdict `RoundRunner._audit_period` records for an audit result,
    at `block` (`Sim.verdict_block`): one per audited miner-period."""
    return Verdict(block, not result.failed, f"audit of period {period}", True)


class Run:
    """One seed: the honest population once, every cheater replica against it alone.

    Honest miners' candidates and audit draws do not depend on the cheater except through
    their allotment size, so they are drawn once per (miner, period, size) and shared.
    A period's allotment is fixed by the cheater's credit in it (the honest credits are
    the run's), so it is computed once per (period, cheater credit), and replicas that
    leave every honest miner the same look-ups share an allotment index (without a
    spread, all of them do). Honest miners commit at the same blocks, so one whose
    audits in the window all passed has the same verdicts, hence the same credibility,
    as any other such miner, whatever its volume.
    """

    def __init__(self, sim: Sim, seed: int, configs: Sequence[Config]):
        self.sim = sim
        self.seed = seed
        self.rng = random.Random(seed_of("honest", seed))
        self.honest = [f"m{uid:03d}" for uid in range(1, sim.miners)]
        self.tweets_of = sim.honest_tweets(seed)  # per honest miner, new tweets a commitment
        self.serial = 0
        # tweets a commitment -> period -> credit; honest miners of equal volume share one
        self.volume_credit: dict[int, dict[int, int]] = {t: {} for t in set(self.tweets_of)}
        self.honest_credit = [self.volume_credit[t] for t in self.tweets_of]  # per miner
        self.honest_pools: dict[str, dict[int, list[CandidateSet]]] = {h: {} for h in self.honest}
        # (hotkey, period, size) -> the audit and its verdict
        self.honest_audits: dict[tuple[str, int, int], tuple[AuditResult, Verdict]] = {}
        # period -> the distinct honest allotments (look-ups per honest miner, in `honest`
        # order) and their indices; (period, cheater credit) -> index, the full allotment
        self.allotments: dict[int, list[tuple[int, ...]]] = {}
        self._allotment_index: dict[int, dict[tuple[int, ...], int]] = {}
        self._allotment_of: dict[tuple[int, int], tuple[int, dict[str, int]]] = {}
        # (period, allotment index) -> indices of the honest miners whose audit failed
        self.honest_failed: dict[tuple[int, int], list[int]] = {}
        self.shared_ingest = Ingest()
        self.clean = Stream(self.shared_ingest, sim.scoring.period_blocks)  # all audits passed
        self._clean_at: tuple[int, float] = (-1, 0.0)
        self._honest_view: dict[tuple, tuple[list[int], list[float], float, float]] = {}
        twins: list[int | None] = [None] * sim.replicas
        positions: list[int | None] = [None] * sim.replicas
        if sim.spread != 1:  # replica r's twin: a uniform pick from stratum r by volume
            order = sorted(range(len(self.honest)), key=lambda i: (-self.tweets_of[i], i))
            for replica, (lo, hi) in enumerate(twin_strata(len(self.honest), sim.replicas)):
                pos = random.Random(seed_of("twin", seed, replica)).randrange(lo, hi)
                twins[replica], positions[replica] = order[pos], pos
        self.cheaters: list[Cheater] = []
        for config in configs:
            for replica in range(sim.replicas):
                own = config.kind == "withholder"
                stream = Stream(Ingest() if own else self.shared_ingest, sim.scoring.period_blocks)
                rng = random.Random(seed_of("cheater", seed, config.name, replica))
                twin = twins[replica]
                tweets = sim.tweets if twin is None else self.tweets_of[twin]
                cheater = Cheater(config, replica, rng, stream, tweets, twin, positions[replica])
                if config.share == 0:
                    cheater.honest_by_miner = [0.0] * len(self.honest)
                self.cheaters.append(cheater)

    def next_ids(self, n: int) -> int:
        start = self.serial
        self.serial += n
        return start

    # -- commitments ---------------------------------------------------------------------

    def honest_period(self, period: int) -> None:
        """Every honest miner's commitments of `period`: R new tweets each (its own R with
        a spread), all real, so deletions are an honest audit's only noise. One table per
        miner, sliced per commitment (`CandidateSet`s), keeps 36,864 commitments a day
        affordable. The draws do not depend on R: a spread keeps each miner's deletions."""
        sim, k = self.sim, self.sim.audit.candidates_per_commitment
        blocks = sim.commit_blocks(period)
        for tweets, credit in self.volume_credit.items():
            credit[period] = sim.commits * tweets
        for h, tweets in zip(self.honest, self.tweets_of, strict=True):
            statuses = [
                DELETED if self.rng.random() < sim.deletion else FOUND
                for _ in range(sim.commits * k)
            ]
            table = candidate_table(statuses, self.next_ids(len(statuses)))
            self.honest_pools[h][period] = [
                CandidateSet(b, tweets, table.slice(i * k, k)) for i, b in enumerate(blocks)
            ]
        # As `RoundRunner._apply` with audits on: passing the structural checks is no
        # evidence on its own (`counts` False), and the credit (any positive count: every
        # honest volume's) makes the period wait for its audit.
        for b in blocks:
            self.shared_ingest.append(
                Verdict(b, True, "accepted", counts=False, new_unique=sim.tweets)
            )

    def cheater_period(self, cheater: Cheater, period: int) -> None:
        """One replica's commitments of `period`: its candidates are drawn without
        replacement from R real and R f / (1 - f) invented tweets, so the number of
        invented candidates is exactly what uniform ranking of that commitment gives
        (R: its twin's, with a spread)."""
        sim, k = self.sim, self.sim.audit.candidates_per_commitment
        rng, share = cheater.rng, cheater.config.share
        real = 0 if share >= 1 else cheater.tweets
        total = cheater.tweets if share >= 1 else round(cheater.tweets / (1 - share))
        withholder = cheater.config.kind == "withholder"
        kept: list[tuple[int, list[int]]] = []
        for block in sim.commit_blocks(period):
            picks = rng.sample(range(total), min(k, total))  # uniform over its new tweets
            statuses = [
                INVENTED if i >= real else DELETED if rng.random() < sim.deletion else FOUND
                for i in picks
            ]
            cheater.committed += 1
            if withholder:  # it sees its candidates before it uploads
                accepted = INVENTED not in statuses
                cheater.stream.ingest.append(  # a withheld upload is a counted rejection
                    Verdict(
                        block,
                        accepted,
                        "accepted" if accepted else "upload withheld",
                        counts=not accepted,
                        new_unique=total if accepted else 0,
                    )
                )
                if not accepted:
                    cheater.withheld += 1
                    continue
            kept.append((block, statuses))
        if not kept:
            return
        flat = [s for _, statuses in kept for s in statuses]
        table = candidate_table(flat, self.next_ids(len(flat)))
        cheater.pools[period] = [
            CandidateSet(block, total, table.slice(i * k, k)) for i, (block, _) in enumerate(kept)
        ]
        cheater.credits[period] = total * len(kept)

    # -- the audit of a closed period ----------------------------------------------------

    def honest_audit(self, hotkey: str, period: int, size: int) -> tuple[AuditResult, Verdict]:
        key = (hotkey, period, size)
        if key not in self.honest_audits:
            pool = self.honest_pools[hotkey][period]
            result = ask_x(draw(pool, size, seed_of(self.seed, "honest", hotkey, period)))
            verdict = audit_verdict(result, self.sim.verdict_block(period), period)
            self.honest_audits[key] = (result, verdict)
        return self.honest_audits[key]

    def allotment(self, period: int, credit: int) -> tuple[int, dict[str, int]]:
        """`allot` for `period` with the cheater at `credit`: the honest allotment's index
        and the whole allotment. A new honest allotment gets its audits drawn."""
        key = (period, credit)
        if key not in self._allotment_of:
            credits = {h: c[period] for h, c in zip(self.honest, self.honest_credit, strict=True)}
            credits[CHEATER] = credit
            sizes = allot(credits, self.sim.audit)
            honest = tuple(sizes[h] for h in self.honest)
            indices = self._allotment_index.setdefault(period, {})
            if honest not in indices:
                indices[honest] = len(indices)
                self.allotments.setdefault(period, []).append(honest)
                failed = [
                    i
                    for i, (h, size) in enumerate(zip(self.honest, honest, strict=True))
                    if not self.honest_audit(h, period, size)[1].accepted
                ]
                if failed:
                    self.honest_failed[(period, indices[honest])] = failed
            self._allotment_of[key] = (indices[honest], sizes)
        return self._allotment_of[key]

    def honest_result(self, i: int, period: int, index: int) -> tuple[AuditResult, Verdict]:
        """Honest miner i's audit of `period` under the allotment `index`."""
        size = self.allotments[period][index][i]
        return self.honest_audits[(self.honest[i], period, size)]

    def audit(self, period: int) -> None:
        """Every replica's audit of `period` at its seed block (`_audit_period`)."""
        block = self.sim.verdict_block(period)
        self.clean.audits[period] = Verdict(block, True, f"audit of period {period}", True)
        for cheater in self.cheaters:
            index, sizes = self.allotment(period, cheater.credits.get(period, 0))
            cheater.honest_allot[period] = index
            if CHEATER not in sizes:  # no credit this period: nothing to audit
                continue
            pool = cheater.pools.get(period, [])
            seed = seed_of(self.seed, cheater.config.name, cheater.replica, period)
            result = ask_x(draw(pool, sizes[CHEATER], seed))
            verdict = audit_verdict(result, block, period)
            cheater.factors[period] = result.factor
            cheater.evidence[period] = result.evidence
            cheater.stream.audits[period] = verdict
            cheater.audited += 1
            cheater.found_share += result.found / result.checked if result.checked else 0
            cheater.failed += not verdict.accepted
        for h in self.honest:
            self.honest_pools[h].pop(period, None)  # close_audit_period drops candidates
        for cheater in self.cheaters:
            cheater.pools.pop(period, None)

    # -- weights -------------------------------------------------------------------------

    def clean_credibility(self, since: int, block: int) -> float:
        """The credibility of every honest miner whose audits in the window passed."""
        if self._clean_at[0] != block:
            self._clean_at = (block, self.clean.credibility(since, block, self.sim.check))
        return self._clean_at[1]

    def honest_view(self, block: int, sig: tuple[tuple[int, int], ...]) -> tuple:
        """Honest miners' `windowed_unique` and `windowed_noise` (the same within a period
        for the same audits: `sig`, the window's (period, allotment index) pairs), their
        mean unique and its coefficient of variation (with a spread: of unique / the
        miner's audited credit before the found share, i.e. the audit's noise alone).
        Kept for every `sig` of the current period."""
        period = self.sim.scoring.period_of(block)
        key = (period, sig)
        if key not in self._honest_view:
            uniques, noises = [], []
            for i, credit in enumerate(self.honest_credit):
                results = {p: self.honest_result(i, p, a)[0] for p, a in sig}
                factors = {p: r.factor for p, r in results.items()}
                args = (credit, block, 0, self.sim.scoring, factors)
                uniques.append(windowed_unique(*args))
                noises.append(windowed_noise(*args, {p: r.evidence for p, r in results.items()}))
            if self.sim.spread == 1:
                rel = uniques
            else:
                totals = [sum(c[p] for p, _ in sig) for c in self.honest_credit]
                rel = [u / t if t else 0.0 for u, t in zip(uniques, totals, strict=True)]
            mean = sum(rel) / len(rel)
            var = sum((u - mean) ** 2 for u in rel) / len(rel)
            cv = math.sqrt(var) / mean if mean else 0.0
            mean_unique = mean if self.sim.spread == 1 else sum(uniques) / len(uniques)
            views = {k: v for k, v in self._honest_view.items() if k[0] == period}
            self._honest_view = views | {key: (uniques, noises, mean_unique, cv)}
        return self._honest_view[key]

    def honest_credibility(self, cheater: Cheater, since: int, block: int) -> list[float]:
        """Honest miners' credibility under this replica's allotments (an honest miner
        whose audit failed in the window, which deletions alone rarely cause, has its own)."""
        clean = self.clean_credibility(since, block)
        creds = [clean] * len(self.honest)
        dirty = {
            i
            for p, a in cheater.honest_allot.items()
            if since <= self.sim.verdict_block(p) <= block
            for i in self.honest_failed.get((p, a), ())
        }
        for i in dirty:  # an audit that failed in the window: its own EMA
            stream = Stream(self.shared_ingest, self.sim.scoring.period_blocks)
            stream.audits = {
                p: self.honest_result(i, p, a)[1] for p, a in cheater.honest_allot.items()
            }
            creds[i] = stream.credibility(since, block)
        return creds

    def evaluate(self, cheater: Cheater, block: int) -> None:
        """One weight setting at `block` as this replica's validator would make it, and
        what the replica and the honest miners got from it."""
        scoring = self.sim.scoring
        period, since = scoring.period_of(block), scoring.window_start(block)
        oldest = period - scoring.window_periods + 1
        sig = tuple(sorted((p, a) for p, a in cheater.honest_allot.items() if p >= oldest))
        uniques, noises, honest_mean_unique, cv = self.honest_view(block, sig)
        creds = self.honest_credibility(cheater, since, block)
        cred = cheater.stream.credibility(since, block, self.sim.check)
        args = (cheater.credits, block, 0, scoring, cheater.factors)
        unique, noise = windowed_unique(*args), windowed_noise(*args, cheater.evidence)
        key = (period, sig, unique, noise, cred, tuple(creds))
        if cheater.memo is not None and cheater.memo[0] == key:
            weights = cheater.memo[1]
        else:  # score_miners: credit's lower bound x credibility, on the exponential curve
            scores = {0: miner_score(unique, noise, cred, scoring)}
            for uid, (u, n, c) in enumerate(zip(uniques, noises, creds, strict=True), start=1):
                scores[uid] = miner_score(u, n, c, scoring)
            weights = exponential_weights(scores, scoring.decay, scoring.rank_step)
            cheater.memo = (key, weights)
        if self.sim.check:
            self.check(cheater, block, creds, cred, weights)
        honest_total = sum(weights.values()) - weights[0]
        cheater.evals += 1
        cheater.weight += weights[0]
        cheater.honest_weight += honest_total / len(self.honest)
        cheater.cred += cred
        cheater.unique += unique
        cheater.honest_unique += honest_mean_unique
        cheater.honest_score_cv += cv
        if cheater.honest_by_miner is not None:
            for i in range(len(self.honest)):
                cheater.honest_by_miner[i] += weights[i + 1]

    def check(
        self,
        cheater: Cheater,
        block: int,
        creds: list[float],
        cred: float,
        weights: dict[int, float],
    ) -> None:
        """`score_miners` on the whole state must give exactly the weights used."""
        neurons = [(0, CHEATER, 0)] + [(i, h, 0) for i, h in enumerate(self.honest, start=1)]
        credits = dict(zip(self.honest, self.honest_credit, strict=True))
        credits[CHEATER] = cheater.credits
        factors = {
            h: {p: self.honest_result(i, p, a)[0].factor for p, a in cheater.honest_allot.items()}
            for i, h in enumerate(self.honest)
        } | {CHEATER: cheater.factors}
        evidence = {
            h: {p: self.honest_result(i, p, a)[0].evidence for p, a in cheater.honest_allot.items()}
            for i, h in enumerate(self.honest)
        } | {CHEATER: cheater.evidence}
        credibility = dict(zip(self.honest, creds, strict=True)) | {CHEATER: cred}
        scored = score_miners(
            neurons, credits, credibility, block, self.sim.scoring, factors, evidence
        )
        assert [s.weight for s in scored] == [weights[uid] for uid in range(len(scored))]

    def run(self) -> dict[str, list[dict]]:
        """Periods in block order: a period's commitments, the weight settings before the
        previous period's audit (its seed block is `grace + 1` into this period), the
        audit, the settings after it. Weights are measured once the window is full."""
        sim = self.sim
        for period in range(sim.warmup + sim.days):
            self.honest_period(period)
            for cheater in self.cheaters:
                self.cheater_period(cheater, period)
            evals = sim.eval_blocks(period) if period >= sim.warmup else []
            seed = sim.seed_block(period - 1) if period else -1
            for block in [b for b in evals if b < seed]:  # before the last period's audit
                for cheater in self.cheaters:
                    self.evaluate(cheater, block)
            if period:
                self.audit(period - 1)
            for block in [b for b in evals if b >= seed]:
                for cheater in self.cheaters:
                    self.evaluate(cheater, block)
            self.forget(period - sim.scoring.window_periods - 1)
        controls = {c.replica: c for c in self.cheaters if c.config == CONTROL}
        out: dict[str, list[dict]] = {}
        for cheater in self.cheaters:
            control = None if sim.spread == 1 else controls[cheater.replica]
            out.setdefault(cheater.config.name, []).append(cheater.summary(control))
        return out

    def forget(self, oldest: int) -> None:
        """Drop periods no window can reach any more (the validator's history horizon)."""
        for credit in self.volume_credit.values():
            for period in [p for p in credit if p < oldest]:
                del credit[period]
        self.honest_audits = {k: v for k, v in self.honest_audits.items() if k[1] >= oldest}
        for ledger in (self.allotments, self._allotment_index):
            for period in [p for p in ledger if p < oldest]:
                del ledger[period]
        for keyed in (self._allotment_of, self.honest_failed):
            for key in [k for k in keyed if k[0] < oldest]:
                del keyed[key]
        for cheater in self.cheaters:
            for ledger in (
                cheater.credits,
                cheater.factors,
                cheater.evidence,
                cheater.honest_allot,
            ):
                for period in [p for p in ledger if p < oldest]:
                    del ledger[period]


def run_seed(sim: Sim, seed: int, configs: Sequence[Config]) -> dict[str, list[dict]]:
    return Run(sim, seed, configs).run()


# -- statistics ----------------------------------------------------------------------------

_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228)


def t975(df: int) -> float:
    """Student's t 97.5 % quantile: a table to 10 degrees of freedom, then the
    Cornish-Fisher expansion (error below 1e-3 from there on); there is no scipy here."""
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


def interval(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean and 95 % t-interval over seeds (the independent runs), the lower end clamped
    at 0: a weight ratio is never negative."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = t975(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, max(0.0, mean - half), mean + half


def quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def aggregate(per_seed: list[dict[str, list[dict]]], configs: Sequence[Config]) -> dict:
    """Per config: replicas averaged within a seed, then mean and interval over seeds."""
    out = {}
    for config in configs:
        seeds = [s[config.name] for s in per_seed]
        flat = [r for reps in seeds for r in reps]
        ratio, lo, hi = interval([statistics.fmean(r["ratio"] for r in reps) for reps in seeds])
        audits = sum(r["audits"] for r in flat)
        figures = {
            "kind": config.kind,
            "share": config.share,
            "ratio": ratio,
            "ratio_ci95": [lo, hi],
            "ratio_per_seed": [statistics.fmean(r["ratio"] for r in reps) for reps in seeds],
            "ratio_p05_p50_p95": [
                quantile([r["ratio"] for r in flat], q) for q in (0.05, 0.5, 0.95)
            ],
            "cheater_weight": statistics.fmean(r["cheater_weight"] for r in flat),
            "honest_weight": statistics.fmean(r["honest_weight"] for r in flat),
            "cheater_credibility": statistics.fmean(r["cheater_credibility"] for r in flat),
            "unique_ratio": statistics.fmean(r["unique_ratio"] for r in flat),
            "failed_audit_share": sum(r["failed_audits"] for r in flat) / max(1, audits),
            "found_share": statistics.fmean(r["found_share"] for r in flat),
            "withheld_share": statistics.fmean(r["withheld_share"] for r in flat),
            "honest_score_cv": statistics.fmean(r["honest_score_cv"] for r in flat),
        }
        if "twin_position" in flat[0]:  # a spread: by replica index, i.e. by twin stratum
            figures["ratio_by_replica"] = [
                statistics.fmean(reps[i]["ratio"] for reps in seeds) for i in range(len(seeds[0]))
            ]
            pooled = [  # per seed: all replicas' weight / all their controls' weight
                sum(r["cheater_weight"] for r in reps) / sum(r["honest_weight"] for r in reps)
                for reps in seeds
            ]
            mean, low, high = interval(pooled)
            figures["ratio_pooled"] = {"ratio": mean, "ci95": [low, high], "per_seed": pooled}
            figures["replicas"] = [
                {
                    "seed": n,
                    "replica": i,
                    "twin_position": r["twin_position"],
                    "twin_tweets": r["twin_tweets"],
                    "ratio": r["ratio"],
                    "cheater_weight": r["cheater_weight"],
                    "control_weight": r["honest_weight"],
                    "unique_ratio": r["unique_ratio"],
                    "failed_audits": r["failed_audits"],
                }
                for n, reps in enumerate(seeds)
                for i, r in enumerate(reps)
            ]
        if "control_vs_twin" in flat[0]:
            vs_twin = [statistics.fmean(r["control_vs_twin"] for r in reps) for reps in seeds]
            mean, low, high = interval(vs_twin)
            figures["control_vs_twin"] = {"ratio": mean, "ci95": [low, high], "per_seed": vs_twin}
        rel = [w for r in flat for w in r.get("honest_relative", ())]
        if rel:
            figures["honest_weight_rel"] = {
                "stdev": statistics.pstdev(rel),
                "p05_p50_p95": [quantile(rel, q) for q in (0.05, 0.5, 0.95)],
                "max": max(rel),
                "share_below_0.01": sum(1 for w in rel if w < 0.01) / len(rel),
                "miners": len(rel),
            }
        out[config.name] = figures
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=12, help="independent runs")
    parser.add_argument("--days", type=int, default=30, help="measured periods per run")
    parser.add_argument("--replicas", type=int, default=4, help="cheaters per config per run")
    parser.add_argument("--miners", type=int, default=256)
    parser.add_argument("--commits", type=int, default=144, help="per miner per period")
    parser.add_argument("--tweets", type=int, default=1000, help="real new tweets a commitment")
    parser.add_argument("--deletion", type=float, default=0.02, help="P(real tweet not found)")
    parser.add_argument("--evals-per-day", type=int, default=24, help="weight settings a day")
    parser.add_argument("--lookups", type=int, default=AuditParams().lookups_per_period)
    parser.add_argument(
        "--spread",
        type=float,
        default=1.0,
        help="honest volumes log-uniform over [1, S] x tweets; cheaters at a twin's volume",
    )
    parser.add_argument(
        "--shares", default=",".join(f"{s:g}" for s in SHARES), help="invented shares f"
    )
    parser.add_argument("--no-withholder", action="store_true", help="inventors only")
    parser.add_argument("--check", action="store_true", help="compare with score_miners (slow)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()

    sim = Sim(
        miners=args.miners,
        commits=args.commits,
        tweets=args.tweets,
        deletion=args.deletion,
        days=args.days,
        replicas=args.replicas,
        evals_per_day=args.evals_per_day,
        spread=args.spread,
        check=args.check,
        audit=AuditParams(lookups_per_period=args.lookups),
    )
    shares = [float(s) for s in args.shares.split(",")]
    if args.spread < 1:
        parser.error("--spread must be at least 1")
    if args.spread != 1 and 0 not in shares:
        parser.error("--spread compares with the f = 0 control: --shares must include 0")
    if args.spread != 1 and not 1 <= args.replicas < args.miners:
        parser.error("--spread needs 1 to --miners - 1 replicas (one twin stratum each)")
    configs = [Config("inventor", s) for s in shares]
    if not args.no_withholder:
        configs += [Config("withholder", s) for s in shares if s > 0]
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    started = time.perf_counter()
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            per_seed = list(pool.map(run_seed, [sim] * len(seeds), seeds, [configs] * len(seeds)))
    else:
        per_seed = [run_seed(sim, s, configs) for s in seeds]
    elapsed = time.perf_counter() - started
    figures = aggregate(per_seed, configs)
    report(sim, shares, configs, figures, len(seeds), args.jobs, elapsed)
    if args.json:
        params = {**asdict(sim), "seeds": seeds, "jobs": args.jobs}
        print(json.dumps({"params": params, "elapsed_s": round(elapsed, 1), "configs": figures}))


def report(
    sim: Sim,
    shares: Sequence[float],
    configs: Sequence[Config],
    figures: dict,
    seeds: int,
    jobs: int,
    elapsed: float,
) -> None:
    volumes = sim.honest_tweets(0)  # the same field in every seed, shuffled
    credits = {f"m{u:03d}": t for u, t in enumerate(volumes, start=1)} | {CHEATER: sim.tweets}
    sizes = [n for h, n in allot(credits, sim.audit).items() if h != CHEATER]
    if sim.spread == 1:
        tweets, honest_n = f"{sim.tweets}", f"an honest miner gets {sizes[0]}"
    else:
        tweets = f"{min(volumes)}..{max(volumes)} (log-uniform, spread {sim.spread:g})"
        honest_n = f"an honest miner gets {min(sizes)}..{max(sizes)}"
    print(
        f"{sim.miners} miners, {sim.commits} commitments a day x {tweets} new tweets, "
        f"deletion {sim.deletion:.0%}, {sim.audit.lookups_per_period} look-ups a period "
        f"({honest_n}), {sim.audit.candidates_per_commitment} candidates "
        f"a commitment; {seeds} seeds x {sim.replicas} cheaters a config x {sim.days} days "
        f"after a {sim.warmup}-day warm-up, {sim.evals_per_day} weight settings a day; "
        f"{elapsed:.0f} s on {jobs} job(s)"
    )
    if sim.spread == 1:
        print("ratio = cheater weight / honest mean weight (1 = as good as honest) [95% CI, seeds]")
    else:
        print(
            "ratio = cheater weight / weight of the f = 0 control replica with the same twin "
            "(an honest miner at the twin's volume; 1 = as good as honest) [95% CI, seeds]"
        )
    print(
        f"{'f':>5} | {'inventor':>23} | {'audits failed':>13} | {'cred':>5} | {'credit':>6} "
        f"| {'withholder':>23} | {'withheld':>8} | {'cred':>5} | {'credit':>6}"
    )
    for share in shares:
        inv = figures[Config("inventor", share).name]
        wh = figures.get(Config("withholder", share).name)
        left = (
            f"{share:>5.0%} | {inv['ratio']:>7.3f} "
            f"[{inv['ratio_ci95'][0]:>6.3f}, {inv['ratio_ci95'][1]:>6.3f}] | "
            f"{inv['failed_audit_share']:>13.1%} | {inv['cheater_credibility']:>5.3f} | "
            f"{inv['unique_ratio']:>6.3f}"
        )
        if wh is None:
            right = f"{'-':>23} | {'-':>8} | {'-':>5} | {'-':>6}"
        else:
            right = (
                f"{wh['ratio']:>7.3f} [{wh['ratio_ci95'][0]:>6.3f}, {wh['ratio_ci95'][1]:>6.3f}]"
                f" | {wh['withheld_share']:>8.1%} | {wh['cheater_credibility']:>5.3f} | "
                f"{wh['unique_ratio']:>6.3f}"
            )
        print(f"{left} | {right}")
    control = figures[configs[0].name]
    rel = control.get("honest_weight_rel")
    if rel:
        p05, p50, p95 = rel["p05_p50_p95"]
        print(
            f"honest miners (in the {configs[0].name} runs), each one's weight over {sim.days} "
            f"days / the honest mean: stdev {rel['stdev']:.2f}, 5/50/95% {p05:.2f} / {p50:.2f} "
            f"/ {p95:.2f}, max {rel['max']:.1f}, {rel['share_below_0.01']:.0%} below 0.01; "
            f"their credit differs by {control['honest_score_cv']:.2%} (coefficient of variation"
            + (", of credit / its volume)" if sim.spread != 1 else ")")
        )
    twin = control.get("control_vs_twin")
    if twin:
        print(
            f"sanity: the control's weight / its twin's (the honest miner at its volume, in the "
            f"control's field): {twin['ratio']:.3f} [{twin['ci95'][0]:.3f}, "
            f"{twin['ci95'][1]:.3f}] (1 within noise)"
        )
    if "ratio_by_replica" in control:
        strata = [f"{lo}-{hi - 1}" for lo, hi in twin_strata(sim.miners - 1, sim.replicas)]
        print(
            "ratio by the twin's stratum (replica r's twin: a position in stratum r of the "
            "honest volumes, 0 = the largest), mean over seeds:"
        )
        print(f"{'':>16} | " + " | ".join(f"{s:>9}" for s in strata) + " | pooled [95% CI]")
        for config in configs[1:]:
            by, pooled = (
                figures[config.name]["ratio_by_replica"],
                figures[config.name]["ratio_pooled"],
            )
            print(
                f"{config.name:>16} | "
                + " | ".join(f"{x:>9.3f}" for x in by)
                + f" | {pooled['ratio']:.3f} [{pooled['ci95'][0]:.3f}, {pooled['ci95'][1]:.3f}]"
            )
        print(
            "pooled = a seed's replicas' total weight / their controls' total weight (weighted "
            "by where the emission is: the top of the field), 95% CI over seeds"
        )


if __name__ == "__main__":
    main()
