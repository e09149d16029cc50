"""Render docs/incentive-mechanism.md from the code, so the document cannot drift.

    python -m d3.validator.mechanism_doc > docs/incentive-mechanism.md

A test compares the committed file with this output.
"""

from __future__ import annotations

import inspect

from d3.validator import index, pipeline, scoring, verifier


def _example() -> str:
    scores = {0: 90_000.0, 1: 60_000.0, 2: 60_000.0, 3: 10_000.0, 4: 0.0}
    weights = scoring.exponential_weights(scores, scoring.DECAY)
    rows = ["| uid | score | weight |", "| --- | ---: | ---: |"]
    rows += [f"| {uid} | {int(s):,} | {weights[uid]:.4f} |" for uid, s in scores.items()]
    return "\n".join(rows)


def _constants() -> str:
    limits = pipeline.PipelineLimits()
    rows = [
        ("`PERIOD_BLOCKS`", scoring.PERIOD_BLOCKS, "`--scoring.period_blocks`: blocks per period"),
        ("`WINDOW_PERIODS`", scoring.WINDOW_PERIODS, "`--scoring.window_periods`"),
        ("`DECAY`", scoring.DECAY, "`--scoring.decay`: weight ratio of adjacent ranks"),
        ("`CREDIBILITY_ALPHA`", scoring.CREDIBILITY_ALPHA, "`d3/validator/scoring.py`"),
        ("`INITIAL_CREDIBILITY`", scoring.INITIAL_CREDIBILITY, "`d3/validator/scoring.py`"),
        (
            "`MAX_MISSING_SHARE`",
            verifier.MAX_MISSING_SHARE,
            "`d3/validator/verifier.py`: share of sampled tweets X may not find (deletions) "
            "before a manifest counts as fabricated",
        ),
        (
            "grace period",
            f"{limits.grace_blocks} blocks",
            "`--neuron.grace_blocks`: time to upload after committing",
        ),
        ("manifest chain depth", limits.max_chain_depth, "manifests walked back per commitment"),
        ("rows per commitment", f"{limits.max_rows:,}", "`--fetch.max_rows`"),
        ("shards per commitment", f"{limits.max_shards:,}", ""),
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

Miners are paid for **new, unique, real** tweets. Each validator keeps an index of every
tweet ID it has ever accepted; the first miner to commit a tweet (by commit block, then
hotkey) is credited with it, and nobody after. Credit turns into weights like this:

```
{formulas}
```

## Constants

{_constants()}

## Example

With `DECAY = {scoring.DECAY}` (equal scores share a rank; the next rank skips past them):

{_example()}

## What earns nothing

- **Copies.** Tweets already in the index earn nothing, whoever committed them second.
  Committing first and uploading later is the protocol: the hash on chain fixes
  priority before the data is visible, so copying from a miner's host is always late.
- **Fabrication and alteration.** A sample of every manifest is looked up on X, seeded by
  the manifest hash and the hash of the block after the commit (unknown to the miner
  when it committed). One altered tweet, or more missing tweets than `MAX_MISSING_SHARE`
  allows, rejects the whole manifest and lowers credibility, which multiplies all of the
  miner's score.
- **Broken data.** Wrong schema, bad hashes or signatures, impossible snowflake times,
  future dates, duplicate IDs, oversized files, uploads that never appear: the manifest
  is rejected with a logged reason, and credibility drops.
- **Replaced hotkeys.** Credit belongs to a hotkey; a uid's new owner starts at zero.

An X outage or a validator-side error is never counted against a miner: the manifest is
judged on structure alone, or retried in a later round.
"""


if __name__ == "__main__":
    print(render(), end="")
