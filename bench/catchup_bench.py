"""Audit catch-up bench: how long a validator with an empty Redis needs before it counts
the same periods as one that ran from the start, at a given look-up budget.

A period counts for nobody until every miner's audit of it is done, and audits are paid
from the `--verify.daily_budget` token bucket. A validator that starts from an empty
Redis replays the history horizon (`WINDOW_PERIODS + FRESH_PERIODS` periods) and then owes
the audits of every closed period in it at once; it works them off with whatever the
budget leaves over after the periods that keep closing. Until then its weights count
fewer periods than a veteran's.

What is the project's code and what is modelled:

- real: `LookupBudget` (the bucket: `daily_budget` a day, capacity an hour's worth, an
  audit larger than the capacity runs on a full bucket into debt), `allot` (look-ups per
  miner per period), `AuditParams` and `ScoringParams` (the seed block, the window, the
  horizon);
- modelled: the order of `RoundRunner.audit_periods`, every `--neuron.poll_blocks` blocks:
  closed periods newest first (`--order oldest`: the order before, oldest first), miners
  in allotment order, a miner whose audit the bucket cannot pay waits and the next one is
  tried; every miner has the same credit in every
  period, and a sample of n picks asks n distinct tweets (a commitment keeps 4 candidates
  and a pick that lands on it again takes the next one); X answers at once; the replay
  itself takes no time (bench/README.md, "Bootstrap", has its cost).

    python bench/catchup_bench.py [--budgets 10000,12000,15000,20000] [--miners 256] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from d3.validator.audit import SECONDS_PER_BLOCK, AuditParams, allot
from d3.validator.pipeline import PipelineLimits
from d3.validator.scoring import ScoringParams
from d3.validator.verifier import LookupBudget

DAY_S = 86_400


@dataclass
class Outcome:
    budget: int
    per_period: int  # look-ups one period's audit asks for
    backlog: int  # look-ups owed at the start (every closed period since the horizon)
    first_days: float | None  # until it counts one period (before: no miner has a score)
    window_days: float | None  # until it first counts as many periods as the veteran
    backlog_days: float | None  # until nothing is owed but the newest period's audit
    behind_h_per_day: float  # between the two: hours a day it counts one period fewer
    veteran_lag_h: float  # a veteran's audit of a period, hours after the period closes
    counted: list[tuple[float, int, int]]  # (day, periods counted: bootstrapper, veteran)


def simulate(
    budget: int,
    miners: int,
    days: float,
    poll_blocks: int = 5,
    start_fraction: float = 0.5,
    order_by: str = "newest",
) -> Outcome:
    """`order_by` "newest" is the code's order; "oldest" the order before it."""
    params, scoring = AuditParams(), ScoringParams()
    period_blocks = scoring.period_blocks
    delay = PipelineLimits().grace_blocks + params.delay_blocks  # seed: last block + delay
    sizes = allot({f"m{i:03d}": 1 for i in range(miners)}, params)
    order = list(sizes)
    per_period = sum(sizes.values())
    start = int((40 + start_fraction) * period_blocks)  # any block far from genesis
    first = scoring.period_of(scoring.history_horizon(start))

    def closed(period: int, block: int) -> bool:
        return block >= (period + 1) * period_blocks - 1 + delay

    def run(from_period: int, from_block: int, until_block: int):
        """Audit passes from `from_block`; yields (block, fully audited periods) per pass."""
        bucket = LookupBudget(budget)
        done: dict[int, set[str]] = {}
        finished: set[int] = set()
        newest = from_period
        block = from_block
        while block <= until_block:
            now = block * SECONDS_PER_BLOCK
            while closed(newest, block):
                done[newest] = set()
                newest += 1
            for period in sorted(done, reverse=order_by == "newest"):
                left = done[period]
                short = None  # the bucket cannot pay this size now, nor any larger one
                for hotkey in order:
                    size = sizes[hotkey]
                    if hotkey in left or (short is not None and size >= short):
                        continue
                    if bucket.spend(size, now):
                        left.add(hotkey)
                    else:
                        short = size if short is None else min(short, size)
                if len(left) == miners:
                    finished.add(period)
                    del done[period]
            yield block, finished
            block += poll_blocks

    def window_closed(block: int) -> list[int]:
        oldest, newest = scoring.counted_periods(block, 0)
        return [p for p in range(oldest, newest + 1) if closed(p, block)]

    end = start + int(days * DAY_S / SECONDS_PER_BLOCK)
    # The veteran: running since long before, in its steady state by `start`.
    veteran_from = start - 10 * period_blocks
    veteran: dict[int, set[int]] = {}
    first_audit: dict[int, int] = {}
    for block, audited in run(scoring.period_of(veteran_from), veteran_from, end):
        veteran[block] = set(audited)
        for period in audited:
            first_audit.setdefault(period, block)
    lags = [
        first_audit[p] - ((p + 1) * period_blocks - 1)
        for p in first_audit
        if start <= (p + 1) * period_blocks - 1 <= end - 2 * period_blocks
    ]
    first_days = window_days = backlog_days = None
    counted = []
    behind_after = 0  # passes behind the veteran after first counting as many periods
    passes_after = 0
    for block, audited in run(first, start, end):
        window = window_closed(block)
        mine = sum(1 for p in window if p in audited)
        theirs = sum(1 for p in window if p in veteran.get(block, set()))
        day = (block - start) * SECONDS_PER_BLOCK / DAY_S
        if (block - start) % (period_blocks // 4) < poll_blocks:
            counted.append((round(day, 2), mine, theirs))
        if first_days is None and mine:
            first_days = round(day, 2)
        if window_days is None and mine >= theirs:
            window_days = round(day, 2)
        if window_days is not None and backlog_days is None:
            passes_after += 1
            behind_after += mine < theirs
        owed = [p for p in range(first, scoring.period_of(block)) if closed(p, block)]
        if backlog_days is None and all(p in audited for p in owed[:-1]):
            backlog_days = round(day, 2)
    backlog = per_period * sum(
        1 for p in range(first, scoring.period_of(start)) if closed(p, start)
    )
    return Outcome(
        budget,
        per_period,
        backlog,
        first_days,
        window_days,
        backlog_days,
        round(24 * behind_after / passes_after, 1) if passes_after else 0.0,
        round(sum(lags) / len(lags) * SECONDS_PER_BLOCK / 3600, 1) if lags else float("nan"),
        counted,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budgets", default="10000,12000,15000,20000,30000")
    parser.add_argument("--miners", type=int, default=256)
    parser.add_argument("--days", type=float, default=60)
    parser.add_argument("--order", choices=("newest", "oldest"), default="newest")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    outcomes = [
        simulate(int(b), args.miners, args.days, order_by=args.order)
        for b in args.budgets.split(",")
        if b.strip()
    ]
    print(f"{args.miners} equal miners, default AuditParams, start mid-period, {args.order} first")
    print(
        "budget/day  per period  backlog  veteran lag  first period  counts the veteran's"
        "  backlog cleared  behind, meanwhile"
    )
    for o in outcomes:
        print(
            f"{o.budget:>10,}  {o.per_period:>10,}  {o.backlog:>7,}  {o.veteran_lag_h:>9.1f} h"
            f"  {_days(o.first_days):>12}  {_days(o.window_days):>19}"
            f"  {_days(o.backlog_days):>15}"
            f"  {o.behind_h_per_day:>8.1f} h a day"
        )
    first = outcomes[0]
    print(f"\nperiods of the window counted at budget {first.budget:,} (bootstrapper / veteran):")
    print("  ".join(f"d{d:g}: {m}/{t}" for d, m, t in first.counted[::4]))
    if args.json:
        figures = {"miners": args.miners, "order": args.order}
        print(json.dumps(figures | {"outcomes": [o.__dict__ for o in outcomes]}))


def _days(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} d"


if __name__ == "__main__":
    main()
