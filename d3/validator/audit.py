"""The audit: X look-ups spent where credit is at stake, per miner per period.

Look-ups are scarce (10,000 a day against tens of thousands of commitments), so they are
not spent per manifest. Instead:

1. **Candidates at ingest.** Each accepted commitment keeps a few of its *new* rows (the
   ones that earn credit; invented tweets are always new), chosen by a keyed hash of the
   tweet ID whose key is the hash of the finalized block after the commit: the miner fixed
   its data before that block existed, and withholding the upload to dodge a bad draw is
   a rejection that costs credibility.
2. **The audit at period close.** When a period's commitments are all judged and its
   seed block (`delay_blocks` after the grace period that follows the period's last
   block) is final, every miner with credit in it gets look-ups in proportion to its
   credit (at least `min_per_miner`), drawn from its candidates with probability
   proportional to each commitment's new rows, seeded by that block's hash. Every
   validator draws the same rows.
3. **Credit = evidence.** A period's credit counts only once audited, times the share of
   sampled tweets X found: inventing a share f of one's new tweets removes, in
   expectation, exactly that share of one's credit, and deletions cost an honest miner
   only its deletions. One altered tweet (content X contradicts) zeroes the period; a
   count X refutes only makes that pick not found. A missing share beyond
   `MAX_MISSING_SHARE` (and at least `MIN_MISSING_TO_FAIL` picks), or an alteration,
   also counts against credibility, once for the miner's period, however many
   commitments the sample touched.
4. **Silence is not an outage.** When X answers nothing (an outage, refused credentials,
   the usage cap, the look-up budget), the audit waits as long as it takes and nothing
   counts against anyone. Only a tweet X stays silent about while it answers the
   validator's other look-ups counts as not found: at once, provisionally, and for good
   if still silent `max_wait_blocks` after the seed block (silence.py).
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from d3.validator.verifier import too_many_missing

_U64 = pa.uint64()
_GOLDEN = pa.scalar(0x9E3779B97F4A7C15, _U64)
_MIX1 = pa.scalar(0xBF58476D1CE4E5B9, _U64)
_MIX2 = pa.scalar(0x94D049BB133111EB, _U64)
_S30, _S27, _S31 = (pa.scalar(n, _U64) for n in (30, 27, 31))


@dataclass(frozen=True)
class AuditParams:
    """Mechanism constants: every validator of a subnet must use the same values."""

    lookups_per_period: int = 8_000  # look-ups per audited period, over all miners
    min_per_miner: int = 8  # the fewest look-ups a miner with credit gets
    candidates_per_commitment: int = 4  # the fewest new rows a commitment keeps for its audit
    rows_per_candidate: int = 1_000  # and one more per this many rows: big ones keep more
    scan_rows: int = 256  # the fewest rows ranked per commitment to find them among
    delay_blocks: int = 1  # the seed block: this many blocks after the grace period
    # A sampled tweet X stays silent about while it answers this validator's other
    # look-ups (in the same call, or a probe of tweets it answered before) counts as not
    # found at once, provisionally, and for good when still silent at an ask this many
    # blocks after the period's seed block. A look-up X answers nothing of (an outage)
    # ends no wait: the audit waits, however long.
    max_wait_blocks: int = 7_200
    # Silent picks are asked again this many blocks after this validator first saw them,
    # and stay not found for good only at an ask this long after it, at the earliest (one
    # that audits late still asks twice, an hour apart; d3/validator/silence.py).
    silence_confirm_blocks: int = 300
    # The key that ranks a commitment's rows comes from the block this many blocks after
    # the commit; None (production) means just after its grace period, when the miner can
    # no longer upload or withhold anything: it cannot see the key before it decides.
    rank_delay_blocks: int | None = None

    def candidates_for(self, rows: int) -> int:
        """How many new rows a commitment of `rows` fresh rows keeps as candidates: picks
        fall on it in proportion to its credit, so its candidates grow with it (a 200,000-row
        commitment keeps 200), and the audit rarely has to ask about one tweet twice."""
        return max(self.candidates_per_commitment, -(-rows // self.rows_per_candidate))

    def scan_for(self, rows: int) -> int:
        """How many lowest-key rows are ranked to find those candidates among the new ones
        (copies of others' tweets are not new, and are skipped)."""
        return max(self.scan_rows, 8 * self.candidates_for(rows))

    def rank_block(self, commit_block: int, grace_blocks: int) -> int:
        delay = grace_blocks + 1 if self.rank_delay_blocks is None else self.rank_delay_blocks
        return commit_block + delay

    def __post_init__(self) -> None:
        if min(self.lookups_per_period, self.min_per_miner, self.candidates_per_commitment) < 1:
            raise ValueError("audit sizes must be positive")
        if self.scan_rows < self.candidates_per_commitment:
            raise ValueError("scan_rows must be at least candidates_per_commitment")


@dataclass(frozen=True)
class AuditResult:
    """What X said about one miner's sample for one period."""

    checked: int  # picks answered: found + missing (a tweet picked twice counts twice)
    found: int
    altered: int
    reason: str = ""
    distinct: int = 0  # distinct tweets behind those picks (0: as many as picks)

    @property
    def evidence(self) -> int:
        """How many independent checks the found share rests on, for its noise: repeated
        picks of one tweet estimate the share without bias but add no information."""
        return min(self.checked, self.distinct) if self.distinct else self.checked

    @property
    def factor(self) -> tuple[int, int]:
        """The share of the period's credit that counts, as an exact fraction."""
        if self.altered or not self.checked:
            return (0, 1)
        return (self.found, self.checked)

    @property
    def failed(self) -> bool:
        """The credibility outcome: an altered tweet, nothing checkable, or more not found
        than deletions explain (`too_many_missing`)."""
        missing = self.checked - self.found
        return bool(self.altered) or not self.checked or too_many_missing(missing, self.checked)


SECONDS_PER_BLOCK = 12


# A quarter to spare for catching up (5/4, kept as integers so the check is exact).
BUDGET_HEADROOM_NUM, BUDGET_HEADROOM_DEN = 5, 4


def budget_shortfall(
    daily_budget: int, params: AuditParams, period_blocks: int, max_miners: int = 256
) -> str | None:
    """Why `daily_budget` look-ups a day can never keep up with the audits, or None.

    A period counts for nobody until its audit is done, so a validator whose budget
    cannot cover one period's look-ups per period falls further behind every period and
    its window empties. A period asks for `lookups_per_period` look-ups, or
    `min_per_miner` for each of up to `max_miners` miners with credit if that is more."""
    period_s = period_blocks * SECONDS_PER_BLOCK
    supply = daily_budget * period_s / 86_400
    demand = max(params.lookups_per_period, params.min_per_miner * max_miners)
    # Exactly enough is not enough: a one-day X outage takes demand / (supply - demand)
    # days to repay, never with nothing to spare, 4 days with a quarter to spare.
    if supply * BUDGET_HEADROOM_DEN >= demand * BUDGET_HEADROOM_NUM:
        return None
    need = -(-demand * BUDGET_HEADROOM_NUM * 86_400 // (period_s * BUDGET_HEADROOM_DEN))
    return (
        f"--verify.daily_budget {daily_budget:,} gives {supply:,.0f} look-ups per period "
        f"({period_blocks} blocks of {SECONDS_PER_BLOCK} s), less than 1.25 x the {demand:,} "
        f"a period's audit asks for (--verify.audit_lookups {params.lookups_per_period:,}, "
        f"--verify.audit_min {params.min_per_miner} x {max_miners} miners): this validator "
        f"could not finish its audits and catch up after an outage, and a period counts "
        f"only once audited; set --verify.daily_budget to at least {need:,} "
        f"(docs/validator.md, Requirements)"
    )


def seed_of(*parts: object) -> int:
    text = ":".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def rank_keys(ids: pa.Array, seed: int) -> pa.Array:
    """A keyed hash of each tweet ID (splitmix64 of id xor seed), vectorised: the order
    in which a commitment's rows become audit candidates. Unknowable before the seed."""
    x = pc.bit_wise_xor(pc.cast(ids, _U64), pa.scalar(seed, _U64))
    z = pc.add(x, _GOLDEN)  # unsigned arithmetic wraps, as the mix wants
    z = pc.multiply(pc.bit_wise_xor(z, pc.shift_right(z, _S30)), _MIX1)
    z = pc.multiply(pc.bit_wise_xor(z, pc.shift_right(z, _S27)), _MIX2)
    return pc.bit_wise_xor(z, pc.shift_right(z, _S31))


def lowest_keys(table: pa.Table, seed: int, count: int) -> pa.Table:
    """The `count` rows of `table` with the lowest keys, lowest first."""
    if table.num_rows == 0:
        return table
    keys = rank_keys(table["id"].combine_chunks(), seed)
    order = pc.sort_indices(keys)[: min(count, table.num_rows)]
    return table.take(order)


def allot(credits: Mapping[str, int], params: AuditParams) -> dict[str, int]:
    """Look-ups per hotkey for one period: `min_per_miner` each, and the rest of
    `lookups_per_period` in proportion to the credit at stake. The total never exceeds
    `lookups_per_period` while the minimums fit in it (256 uids × 8 = 2,048 of 8,000)."""
    staked = {hotkey: credit for hotkey, credit in sorted(credits.items()) if credit > 0}
    total = sum(staked.values())
    spare = max(0, params.lookups_per_period - params.min_per_miner * len(staked))
    return {
        hotkey: params.min_per_miner + spare * credit // total for hotkey, credit in staked.items()
    }


@dataclass(frozen=True)
class CandidateSet:
    """One accepted commitment's audit candidates (lowest keys first) and its new rows."""

    block: int
    new: int
    rows: pa.Table | None  # None: credit, but no candidate was found among its rows
    part: str = ""  # which application of the commitment (a long ancestry comes in parts)


def draw(pool: Sequence[CandidateSet], size: int, seed: int) -> tuple[pa.Table | None, int]:
    """`size` picks, each choosing a commitment with probability proportional to its new
    rows, with replacement, then its next candidate (cycling through them when a
    commitment is picked more often than it has candidates). A commitment's share of the
    picks is therefore its share of the credit, however few candidates it kept: the share
    of picks X finds estimates the miner's found share without bias whatever the sizes of
    its commitments (a small pool of real commitments cannot vouch for one huge invented
    one). Returns the picked rows (a tweet picked twice appears twice) and how many picks
    fell on a commitment with credit but no candidate to show for it: credit that cannot
    be checked counts as not found, so padding a commitment until none of its credited rows
    is ranked (copies, stale rows) cannot shield that credit."""
    pool = sorted(pool, key=lambda c: (c.block, c.part))
    weights = [max(0, c.new) for c in pool]
    if not any(weights):
        return None, 0
    cumulative = list(itertools.accumulate(weights))
    taken = [0] * len(pool)
    rng = random.Random(seed)
    picks: list[pa.Table] = []
    unverifiable = 0
    for _ in range(size):
        i = rng.choices(range(len(pool)), cum_weights=cumulative)[0]
        rows = pool[i].rows
        if rows is None or rows.num_rows == 0:
            unverifiable += 1
        else:
            picks.append(rows.slice(taken[i] % rows.num_rows, 1))
        taken[i] += 1
    return (pa.concat_tables(picks) if picks else None), unverifiable


def table_to_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def table_from_bytes(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()
