"""Render docs/incentive-mechanism.md from the code, so the document cannot drift.

    python -m d3.validator.mechanism_doc > docs/incentive-mechanism.md

A test compares the committed file with this output.
"""

from __future__ import annotations

import inspect

from d3.validator import audit, fetcher, index, pipeline, scoring, verifier


def _example() -> str:
    scores = {0: 90_000.0, 1: 85_000.0, 2: 60_000.0, 3: 60_000.0, 4: 10_000.0, 5: 0.0}
    weights = scoring.exponential_weights(scores, scoring.DECAY, scoring.RANK_STEP)
    rows = ["| uid | score | weight |", "| --- | ---: | ---: |"]
    rows += [f"| {uid} | {int(s):,} | {weights[uid]:.4f} |" for uid, s in scores.items()]
    return "\n".join(rows)


def _detection() -> str:
    """Binomial tail probabilities, computed here so the table cannot drift."""
    from math import comb

    def at_least(n: int, k: int, p: float) -> float:
        return sum(comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))

    sizes = (audit.AuditParams.min_per_miner, 31, 100)
    shares = (0.01, 0.05, 0.1, 0.2, 0.5, 1.0)
    head = "| f | " + " | ".join(f"n = {n}: found ≥ 1 / over allowance" for n in sizes) + " |"
    rows = [head, "| ---: |" + " ---: |" * len(sizes)]
    for f in shares:
        cells = []
        for n in sizes:
            over = max(verifier.MIN_MISSING_TO_FAIL, int(verifier.MAX_MISSING_SHARE * n) + 1)
            cells.append(f"{at_least(n, 1, f):.0%} / {at_least(n, over, f):.0%}")
        rows.append(f"| {f:.0%} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _constants() -> str:
    limits = pipeline.PipelineLimits()
    params = audit.AuditParams()
    rows = [
        ("`PERIOD_BLOCKS`", scoring.PERIOD_BLOCKS, "`--scoring.period_blocks`: blocks per period"),
        ("`WINDOW_PERIODS`", scoring.WINDOW_PERIODS, "`--scoring.window_periods`"),
        ("`DECAY`", scoring.DECAY, "`--scoring.decay`: weight ratio of adjacent ranks"),
        (
            "`RANK_STEP`",
            scoring.RANK_STEP,
            "`--scoring.rank_step`: one rank of score (10 % less score, half the weight)",
        ),
        (
            "`CONFIDENCE_Z`",
            scoring.CONFIDENCE_Z,
            "`--scoring.confidence_z`: standard errors of audit noise a score gives up",
        ),
        (
            "`FRESH_PERIODS`",
            scoring.FRESH_PERIODS,
            "`--scoring.fresh_periods`: how many periods before its commitment's a tweet may be",
        ),
        ("`CREDIBILITY_ALPHA`", scoring.CREDIBILITY_ALPHA, "`d3/validator/scoring.py`"),
        ("`INITIAL_CREDIBILITY`", scoring.INITIAL_CREDIBILITY, "`d3/validator/scoring.py`"),
        (
            "`MAX_MISSING_SHARE`",
            verifier.MAX_MISSING_SHARE,
            "`d3/validator/verifier.py`: share of sampled tweets X may not find (deletions) "
            "before the audit fails and costs credibility",
        ),
        (
            "`MIN_MISSING_TO_FAIL`",
            verifier.MIN_MISSING_TO_FAIL,
            "`d3/validator/verifier.py`: and the fewest not found that fail it (at 8 "
            "picks, 2 deletions are 25 %)",
        ),
        (
            "audit look-ups",
            f"{params.lookups_per_period:,} per period",
            "`--verify.audit_lookups`: over all miners, in proportion to credit",
        ),
        ("audit minimum", f"{params.min_per_miner} per miner", "`--verify.audit_min`"),
        (
            "audit candidates",
            f"{params.candidates_per_commitment} per commitment, and one per "
            f"{params.rows_per_candidate:,} rows",
            "`d3/validator/audit.py`: new rows each commitment keeps for the audit",
        ),
        (
            "audit seed",
            "block (p + 1) × PERIOD_BLOCKS − 1 + grace + `delay_blocks` for period p: "
            f"{scoring.PERIOD_BLOCKS} × (p + 1) + "
            f"{limits.grace_blocks + params.delay_blocks - 1} with the defaults",
            f"`d3/validator/audit.py`: `delay_blocks` ({params.delay_blocks}) after the grace "
            "period that follows the period's last block",
        ),
        (
            "audit ranking key",
            "splitmix64(tweet ID xor seed), seed = the first 8 bytes (big-endian) of "
            "SHA-256(`<manifest sha256>:<hash of block commit + grace + 1>`)",
            "`rank_keys`, `seed_of` in `d3/validator/audit.py`: which rows become candidates",
        ),
        (
            "audit draw",
            "Python's `random.Random(seed_of(<seed block hash>, <hotkey>, <period>))`, "
            "`choices` weighted by new rows, commitments in (block, part) order",
            "`draw` in `d3/validator/audit.py`: which candidates are looked up",
        ),
        (
            "silence deadline",
            f"the seed block + {params.max_wait_blocks:,} blocks, or "
            f"{params.silence_confirm_blocks:,} blocks after the first sight if later",
            "`d3/validator/silence.py`: a sampled tweet X stays silent about while it "
            "answers other look-ups counts as not found at once, provisionally, and for "
            "good if still silent at the deadline's ask; an outage never expires",
        ),
        (
            "silence re-asks",
            f"{params.silence_confirm_blocks:,} blocks after the first sight, and at the "
            "deadline; only silent IDs, at most max(`min_per_miner`, a tenth of the "
            "sample's tweets), all of them once some answer",
            "`d3/validator/silence.py`: when a provisional result is revised",
        ),
        (
            "count tolerance",
            f"max({verifier.COUNT_SLACK}, {verifier.COUNT_SLACK_PERCENT} %)",
            "`d3/validator/verifier.py`: how far a row's counts may exceed X's current ones; "
            "beyond it the pick counts as not found (never altered)",
        ),
        (
            "look-up budget",
            "10,000 a day; a token bucket holding an hour's worth, full at start",
            "`--verify.daily_budget`: an audit larger than the bucket runs on a full bucket "
            "into debt; a budget below 1.25 x one period's audit per period (no room to "
            "catch up after an outage) is refused at start-up",
        ),
        (
            "renamed handles",
            f"≤ {verifier.MAX_RENAMED_SHARE} of a sample's authors (fraud from "
            f"{verifier.MIN_RENAMED_AUTHORS} up)",
            "`d3/validator/verifier.py`: handles change (staleness); most of them is a rewrite",
        ),
        (
            "grace period",
            f"{limits.grace_blocks} blocks",
            "`--neuron.grace_blocks`: time to upload after committing",
        ),
        (
            "history horizon",
            f"{scoring.WINDOW_PERIODS + scoring.FRESH_PERIODS - 1}–"
            f"{scoring.WINDOW_PERIODS + scoring.FRESH_PERIODS} periods",
            "how far back validators read commitments: `WINDOW_PERIODS + FRESH_PERIODS` "
            "periods, to a period boundary",
        ),
        (
            "parent walk",
            f"{limits.max_walk:,}",
            "never-judged ancestors one commitment may reach through `parent`; older links are "
            "ignored with a logged reason",
        ),
        ("rows per commitment", f"{limits.max_rows:,}", "`--fetch.max_rows`"),
        ("shards per commitment", f"{limits.max_shards:,}", ""),
        (
            "fetch time",
            f"{fetcher.FetchLimits.deadline_s:.0f} s a file; an item 1.25 × that plus its "
            f"declared bytes at {limits.min_fetch_rate / 1e6:.0f} MB/s, at most "
            f"{limits.max_item_s:,.0f} s; a commitment with its ancestry "
            f"{limits.max_commitment_s:,.0f} s; a hotkey's commitments of a period "
            f"{limits.max_hotkey_period_s:,.0f} s",
            "`--fetch.deadline_s`, `PipelineLimits`: past the last two the commitment is "
            "rejected as the miner's fault (the judging order is global)",
        ),
        (
            "index window",
            f"2^{index.WINDOW_BITS} IDs (~{(1 << index.WINDOW_BITS) >> 22} ms)",
            "`d3/validator/index.py`",
        ),
        ("index group", f"2^{index.GROUP_BITS} windows", "one Redis Cluster slot, one transaction"),
    ]
    lines = ["| name | value | where |", "| --- | --- | --- |"]
    return "\n".join(lines + [f"| {n} | {v} | {w} |" for n, v, w in rows])


def render() -> str:
    formulas = inspect.getdoc(scoring).split("\n\n", 1)[1].split("\n\nWith", 1)[0]
    return f"""# Incentive mechanism

*Generated from the code by `python -m d3.validator.mechanism_doc`; a test keeps it in step.*

Miners are paid for **new, unique, real, fresh** tweets. Each validator reads every
commitment from chain history and keeps an index of every tweet ID it has accepted; the
first miner to commit a tweet (by commit block, then hotkey) is credited with it, and
nobody after. Credit turns into weights like this (b is the block at which weights are
computed):

```
{formulas}
```

## Constants

{_constants()}

## Example

With `DECAY = {scoring.DECAY}` and `RANK_STEP = {scoring.RANK_STEP}`: 85,000 is 0.6 ranks below
90,000 (90/85 = 1.1^0.6), so it gets 0.67 of the top's weight; 60,000 is 4.3 ranks below
(a twentieth), and 10,000 is 23 ranks below, next to nothing:

{_example()}

## Attribution: the same on every validator

- **Every commitment counts, at its own block.** The chain keeps each hotkey's latest
  commitment with the block it was written in; reading it at `block - 1` gives the one
  before. Validators walk that history back to the *history horizon* (below), so a
  commitment replaced a block later, or made while a validator was down, is read and
  judged like any other.
- **One global order.** Commitments are judged in `(commit block, hotkey)` order, each
  once; within a block, hotkeys compare as their SS58 address strings, byte by byte
  (ASCII: digits before capitals before small letters), which is how the validator's
  queue (a Redis sorted set, members `<block>|<hotkey>|…`) and the hub order them. A
  manifest reached only through `parent` (never committed itself) takes the block of the
  earliest commitment whose chain contains it.
- **Every commitment is judged.** Accepted, rejected with a reason (which lowers its
  period's credibility outcome by its share), or neutral: text that is not a D3
  commitment, a manifest already judged with an earlier commitment, or a validator-side
  failure. A commitment whose data is not there yet holds back every later one for at
  most the grace period; then it is rejected.
- **The horizon.** Credit counts for `WINDOW_PERIODS` periods, and a tweet earns credit in a
  commitment only if it was created after the timestamp of the block `FRESH_PERIODS`
  periods before that commitment's period. A tweet first committed before the horizon
  (`FRESH_PERIODS` periods before the window) is therefore stale for every commitment in
  the window, and a validator that starts with an empty Redis and reads history back to
  the horizon reaches exactly the credit of one that ran from the start, and its
  credibility and weights once it has audited the same periods. Credibility is computed
  over the verdicts in the window (blocks from `(⌊b / PERIOD_BLOCKS⌋ − WINDOW_PERIODS +
  1) × PERIOD_BLOCKS` on), one outcome per miner-period in period order, from integer
  counts: every validator with the same verdicts computes the same float, whatever
  order it read them in.
- **Catching up on audits takes days.** That validator owes the audit of every closed
  period since the horizon at once (8 periods: about 63,500 look-ups with 256 miners)
  and pays for it with what its budget leaves over, newest period first. At the default
  budget (10,000 a day against about 7,940 a period asks) its window counts as many
  periods as a veteran's after about 4.5 days (and lags it by an hour a day until its
  whole backlog is paid, after about 29); with 20,000 a day, after about 2.3 and 5 days
  (`bench/catchup_bench.py`, table in `bench/README.md`). Until then its weights come
  from the periods it has audited only: for about the first 1.3 days none (it sets no
  weights: no miner has a score yet), then fewer periods than a veteran counts, so its
  weights differ from the veteran's.
- **Weights wait for the replay, not for audits.** A validator that is still replaying
  history does not set weights. Once it has caught up it sets weights on schedule from
  the periods audited so far; a period whose audit waits simply does not count yet.
- **What this does not cover (yet).** Two things are judged from what a validator sees,
  not from the chain, and can still differ: *availability* (data uploaded after its grace
  period, or served to some validators and not others, is rejected by the validators
  that looked in time and may be accepted by one that bootstraps later; upload within
  the grace period) and *X's answers* (a tweet deleted between two validators' audits
  is found by one and missing for the other). Which tweets are audited is the same on
  every validator.

## The audit: no credit without evidence

Look-ups on X are scarce (`--verify.daily_budget`, 10,000 a day by default, against tens
of thousands of commitments), so they are spent per miner per period, where credit is
at stake (`d3/validator/audit.py`):

1. Each accepted commitment keeps `candidates_per_commitment` of its **new**, fresh rows,
   and one more per `rows_per_candidate` rows
   (the ones that earn credit; copies of other miners' tweets earn nothing and are never
   audited; invented tweets are always new), ranked by a keyed hash of the tweet ID (the
   "audit ranking key" above: splitmix64, keyed by the manifest hash and the hash of the
   finalized block just after its grace period): that block did not exist while the
   miner could still upload or withhold anything, so the miner cannot choose what to
   show after seeing the ranking. A long ancestry applied in parts keeps candidates for
   each part.
2. When period p is closed (all its commitments judged, and its seed block final: the
   block `delay_blocks` (1) after the grace period that follows p's last block, so
   (p + 1) × PERIOD_BLOCKS + 50 with the defaults), each miner with credit in it gets
   `min_per_miner` look-ups plus the rest of `lookups_per_period` in proportion to its
   share of the period's credit (never more than `lookups_per_period` in all, unless the
   minimums alone are more: `min_per_miner` × the miners with credit),
   drawn from its candidates with probability proportional to each commitment's new
   rows (with replacement: a commitment picked more often than it has candidates shows
   them again), seeded by the seed block's hash (the "audit draw" above): every
   validator asks X about the same tweets. A pick that falls on a commitment with credit
   but no candidate (padded until none of its credited rows was ranked) counts as not
   found. Closed periods are audited newest first, so a validator that owes several
   spends its look-ups on the ones that will count longest.
3. The period's credit counts only once audited, times `found / checked`. An altered
   tweet (what its author wrote, as X fixed it when it was posted, differs: text,
   author, time, language, references, hashtags and links; `docs/protocol.md` has the
   table) makes the factor 0. A count far above X's (beyond the count tolerance) is not an
   alteration: counts earn nothing, and anyone can withdraw likes, replies, quotes or
   retweets after a miner scraped them, so that pick only counts as not found, which
   costs the miner that pick's share; so do media X no longer has (a copyright
   takedown removes a photo from a tweet that stays). A not-found share above
   `MAX_MISSING_SHARE` (and at least `MIN_MISSING_TO_FAIL` tweets not found), or an
   alteration, also counts against credibility: one outcome for the miner's period,
   however many of its commitments the sample touched, so a failed audit costs the same
   whatever a miner's commit cadence.
4. **Waiting.** When the look-up budget is spent, or X answers nothing (an outage:
   HTTP errors or timeouts after the retries, refused credentials, the plan's usage cap),
   that miner's audit waits, as long as it takes, and nothing counts against anyone. The
   period counts for every miner only once every miner's audit of it is done (for
   nobody before): a waiting audit never puts one miner behind the others, and no
   weights come from a half-audited period. Only *per-ID silence* ever ends in "not
   found": X answers other tweets of the same look-up (or, when nothing of this pass
   was answered yet, a probe of up to 8 tweets X answered before, of miners this
   validator draws at random) but neither returns this one nor says it does not exist.
   Apify says nothing about deleted or invented tweets, so a miner can cause that on
   purpose, and so can anyone who deletes a tweet a rival scraped. So it holds
   nothing back: the miner's audit is recorded at once with its silent picks as not
   found (*provisional*: what an X API validator concludes for a deleted or invented
   tweet), and the period counts for every miner. What X answered is kept, and the
   silent tweets alone are asked again twice, at most a tenth of the sample's tweets
   each time (never fewer than `min_per_miner`; once some of those answer, a glitch
   ending, the rest are asked at once): `silence_confirm_blocks`
   ({audit.AuditParams.silence_confirm_blocks:,}) blocks after this validator first saw
   them, which clears a passing glitch, and at the *deadline*, the seed block plus
   `max_wait_blocks` ({audit.AuditParams.max_wait_blocks:,}), or
   `silence_confirm_blocks` after the first sight if that is later. An answer revises
   the result (found, not found, or altered); still silent at the deadline's ask while
   X answers, the picks stay not found for good, and the period closes (the hub
   publishes it then). The deadline comes from the chain, so validators that first saw
   the silence before the deadline less `silence_confirm_blocks` make it final at the
   same block. An altered tweet in the sample fails the audit at once, whatever the
   silent picks would say. No outage, however long, expires into "not found". What
   each source's answers mean is in `docs/protocol.md`, "What a look-up compares": X's
   per-ID errors (deleted, protected or suspended author, withheld) are answers, not
   found at once.

Inventing a share `f` of one's new tweets therefore removes, in expectation, exactly that
share of one's credit (so it cannot raise the expected credit above the real tweets'),
and deletions cost an honest miner only its deletions; beyond the deletion allowance it
also costs credibility, which multiplies everything. A miner that invents everything is
credited nothing once its first period is audited. The ranking exists only after the
upload window closes, so there is nothing to dodge by withholding.

### Why ranks are measured in score, and credit at a confidence bound

Expected credit is not what pays: weights come from ranks, and on a curve where the top
rank takes half the emission a rank is worth more than the score behind it. Two things
follow, and both were measured (`bench/incentive_bench.py`, 256 miners at the default
budget, and a docs-only attack review):

- **Counting miners above you is a lottery and a Sybil door.** With rank = the number of
  miners with a higher score, equal miners (their credit differs by about 1 %, from
  deletions alone) were ranked by the audit's sampling noise, and a cheater whose credit
  is noisier (invented tweets: the same expected credit, a wider spread) won the top rank
  often enough to earn up to 20 times an equal honest miner's weight. And every extra
  hotkey an operator puts above the others pushes all of them one rank, half their
  weight, down: the same data split over 7 hotkeys took 78 % of the emission instead of
  under 1 %.
- **So the rank is measured in score:** `rank(h)` is how many `RANK_STEP` (10 %) steps
  `h` is below the best score, fractional. Weight still halves per rank, so the curve is
  the exponential one and the best miner takes most, but it is continuous (equal scores
  get equal weights; 1 % of noise moves a weight by about 7 %) and it is a power of the
  score, `score^7.3`: spreading one's data over k hotkeys earns `k^-6.3` as much, and
  more miners above you cost nothing by their number.
- **Credit at a lower confidence bound.** A score counts credit `CONFIDENCE_Z` standard
  errors below its estimate (`noise(h)` above: the binomial error of the sampled found
  shares). The curve's convexity makes a noisier score worth about `23 σ²` more; the
  bound costs it about `15 (σ − σ_honest)`, which is larger for any spread an audit
  leaves. An honest miner's bound is close to its credit (its found share varies only
  through deletions, and its look-ups grow with its credit); inventing a share f of one's
  tweets widens the spread and lowers the bound by more than a lucky draw can win back.
- **Samples are proportional to credit, whatever the commitments' sizes.** Each pick
  chooses a commitment in proportion to its new rows (with replacement), and a commitment
  keeps one candidate per `rows_per_candidate` rows (at least `candidates_per_commitment`),
  so one huge commitment of invented tweets next to many small real ones gets its share
  of the picks, not four.

**What the curve rewards, and what it does not.** It is convex (top takes most, as the
original roadmap asks), so size pays: data pooled into one hotkey earns more than the same
data spread over several (two equal miners merged take about 38 % of a field of 256, not
0.8 %), and no operator gains by splitting. Convexity also pays for bursts: within the
`WINDOW_PERIODS` window a miner whose credit comes in bursts earns more than a steady one
with the same total, and holding scraped tweets back is limited only by the freshness
bound (`FRESH_PERIODS` periods). Neither buys credit a miner did not bring; both are the
price of a winner-takes-most curve, and a flatter one (`--scoring.rank_step 1` is
proportional) removes them.

Measured with the project's own code at the default budget and 256 miners
(`bench/incentive_bench.py`; the table and commands are in `bench/README.md`), a cheater's
weight relative to an equal honest miner is 0.97 at f = 1 %, 0.86 at 5 %, 0.61 at 10 %,
0.07 at 20 %, and 0 from 50 % on; in a field whose volumes differ tenfold it is 0.98,
0.88, 0.76, 0.07 and 0. Equal honest miners get near-equal weights (their spread is 0.05
of the mean weight; it was 1.8 times the mean on a curve that counted miners).

Chance that an audit of `n` look-ups finds at least one invented tweet, and that the
missing share exceeds `MAX_MISSING_SHARE`, with at least `MIN_MISSING_TO_FAIL` missing
(costing credibility), for an invented share
`f` (binomial, ignoring deletions):

{_detection()}

## What earns nothing

- **Copies.** Tweets already in the index earn nothing, whoever committed them second.
  Committing first and uploading later is the protocol: the hash on chain fixes
  priority before the data is visible, so copying from a miner's host is always late.
- **Fabrication and alteration.** The period's audit (above) discounts credit by the
  sampled share X does not find (counts X refutes included) and zeroes it for one
  altered tweet; a not-found share beyond the deletion allowance, or an alteration,
  lowers credibility, which multiplies all of the miner's score.
- **Broken data.** Wrong schema, bad hashes or signatures, impossible snowflake times,
  future dates, duplicate IDs, oversized files, uploads that never appear: the manifest
  is rejected with a logged reason, and credibility drops.
- **Stale tweets.** A tweet created before the freshness bound of its commitment is
  neither indexed nor credited for it.
- **Retweets.** A row with `retweeted_id` set is neither indexed, audited nor credited
  (`d3/earning.py`): its text is its original's, so it adds no data, and one viral
  tweet's retweets would otherwise be as many "unique" tweets. Its original earns.
- **Replaced hotkeys.** Credit belongs to a hotkey; a uid's new owner starts at zero.

An X outage or a validator-side error is never counted against a miner: an audit waits
for X however long it is down, and a commitment the validator could not judge for its own
reasons is retried in a later round, or judged without touching credibility.

## Known limitations

What this mechanism does not stop yet, and what is planned (the numbers are from a
docs-only attack review of the mechanism):

- **Self-made real tweets.** An operator that runs its own X accounts and "scrapes" what
  they post brings real, unique, fresh tweets made to order: the audit finds every one.
  Nothing here tells them from organic posts, and on a convex curve out-producing the
  field takes most of the emission. Planned: cap credit per author per period across
  the subnet, weigh it by author signals X returns (account age, followers), and
  discount near-duplicate text across authors.
- **The same-block tie-break can be ground.** Ties within a block go to the hotkey whose
  SS58 string sorts first, and a hotkey can be generated to sort low; a miner that sees a
  rival's commitment in the mempool and lands its own in the same block wins every tweet
  they share. Planned: break ties per tweet by a hash of (the seed block's hash, tweet ID,
  hotkey), so that no hotkey wins ties systematically.
- **Mechanism constants are per-validator flags.** `--scoring.*`, `--verify.audit_lookups`,
  `--verify.audit_min` and `--neuron.grace_blocks` (it places the seed and ranking blocks)
  must be equal on every validator, and nothing enforces it: a validator with other
  values draws other samples and sets other weights. Planned: the subnet owner commits
  the constants on chain, and a validator whose flags differ refuses to set weights.
- **Validators see X at different times.** A tweet deleted (or whose engagement is
  withdrawn) between two validators' audits is found by one and not by the other, and
  the look-up sources (X API v2, twscrape, Apify) do not see exactly the same tweets.
  The sample is public once its seed block is final, so a griefer knows which of its own
  tweets to delete; that costs a victim only those picks, so it is bounded, not zero.
  (X's media takedowns, a copyright claim against a tweet's photo, make a miner's
  `media_urls` list media X no longer has: like a withdrawn count, that pick counts as
  not found, never altered.) Planned: one outcome table every source's answers are
  normalised to and tested against.
- **A bootstrapping validator's weights differ for days** (above). Planned: import audit
  results other validators signed, or set no weights until the window is audited.
- **Fetch time is wall-clock.** The per-commitment and per-hotkey allowances bound how
  long one hotkey holds the global order (about an hour a period), but each hotkey has
  its own: k hotkeys with slow hosts hold it for about k hours a period, and a validator
  with a slow network could reject a slow honest host that another accepts. Past the
  hotkey's allowance every later commitment of the period is rejected; that costs the
  share of the period's commitments it hits (spent at half the period: credibility 0.9
  after the period), not a 0 each. Fetches share the validator's link, so a griefer's
  large commitments fetched alongside a victim's slow the victim's clock too. Planned:
  count transfer time only (not waits for a slot), treat the allowance as neutral when
  the validator's own throughput that round is degraded, and a per-hotkey byte quota per
  period that grows with the hotkey's audited track record.
- **Small samples.** A miner with few picks (`min_per_miner`, 8) loses a larger share of
  its credit to each deletion (one of 8 is an eighth, and the noise term grows), so a
  griefer that posts bait tweets a small miner scrapes, then deletes the ones the public
  draw picked, costs it more than a large miner; failing its credibility takes 3 of them
  (`MIN_MISSING_TO_FAIL`). Planned: judge the missing share with a binomial test against
  the subnet-wide not-found rate, and a larger `min_per_miner`.
- **Protected accounts.** X answers "not found" for a tweet whose author made the
  account protected, at once and for good, where Apify is silent (asked again, and
  revised if the account is public again). An operator that alters tweets of its own
  accounts and protects the ones the draw picked, while X API validators ask, loses one
  not-found share per pick instead of the period. Planned: treat author-state errors as
  silence on every source, asked again at the chain-fixed blocks.
- **Free commitments dilute a rejection.** An acceptance that earned nothing (copies,
  retweets) counts as accepted for credibility, as it must for an honest miner whose
  scrapes others committed first; so a miner can pad a period that had a rejection with
  commitments that cost it nothing (nine of them take the outcome from 0 to 0.9). It
  cannot pad a failed audit, which makes the period 0. Planned: weigh the outcome by
  rows.
- **Floods and bursts.** A throwaway hotkey can commit up to the row limits with every
  commitment: its IDs stay claimed, and its unaudited credit takes most of the
  proportional look-ups of that period (on an Apify validator, where its invented tweets
  are silent, up to a fifth more for the re-asks). Holding scraped tweets back and
  releasing them in bursts pays on a convex curve (up to the freshness bound). Planned:
  allot look-ups by the previous audited period's credit, cap rows per hotkey per period
  by track record, and score a smoothed credit rate.
- **Availability after acceptance.** Data a host serves to some validators only, or
  deletes after the audit, is judged differently by a validator that bootstraps later.
  Planned: validators and the hub mirror accepted manifests and shards by hash.
- **Look-up sources differ.** Apify leaves out tweets it cannot show, real ones
  included, and twscrape marks age-restricted tweets gone: each validator counts its
  own source's answers, so validators on different sources can reach different results
  for the same picks (and an Apify validator makes a silent pick final a day after an
  X API one, which says "not found" at once). A twscrape request that fails twice in a
  row makes its tweet silent, not found until the re-ask an hour later. Prefer
  `--verify.lookup_kind x_api` (the outcome table planned above would close this).
"""


if __name__ == "__main__":
    print(render(), end="")
