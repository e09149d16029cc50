"""Which rows of an accepted commitment can earn credit: one rule, read by the
validator's ingest and by the hub, so the hub's rows always add up to the index's credit.

- **Fresh:** not older than the commitment's freshness bound (`ScoringParams.fresh_from_block`):
  an older tweet could never be first-committed by anyone inside the window.
- **Not a retweet** (`retweeted_id` set): its text is its original's, so it adds no data,
  and one viral tweet's retweets would give a miner as many "unique" IDs as it has
  retweets. The original is what earns (scrapers keep it through `include_referenced`).
  It also keeps validators agreeing: twscrape cannot check a retweet against X, so a
  twscrape validator would judge one differently from an X API validator.

Rows that earn nothing are still verified (schema, hashes, snowflake time) and still
count towards a commitment's limits; they are never indexed, audited or published.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from d3.snowflake import TWITTER_EPOCH_MS, ms_to_id


def first_fresh_id(fresh_ms: int | None) -> pa.Scalar | None:
    """The smallest tweet ID that is fresh for a freshness bound of `fresh_ms` (unix ms;
    None: no bound yet, every tweet is fresh)."""
    if fresh_ms is None:
        return None
    return pa.scalar(ms_to_id(max(fresh_ms, TWITTER_EPOCH_MS)), pa.int64())


def earning_rows(table: pa.Table, first_fresh: pa.Scalar | None) -> pa.Table:
    """The rows of `table` that can earn credit, in their order."""
    keep = pc.is_null(table["retweeted_id"])
    if first_fresh is not None:
        keep = pc.and_(keep, pc.greater_equal(table["id"], first_fresh))
    return table.filter(keep)


@dataclass(frozen=True)
class NotEarning:
    """How many rows earn nothing, by reason (summed over a commitment's shards)."""

    stale: int = 0
    retweets: int = 0

    @classmethod
    def of(cls, table: pa.Table, first_fresh: pa.Scalar | None) -> NotEarning:
        stale = 0
        if first_fresh is not None:
            stale = pc.sum(pc.less(table["id"], first_fresh)).as_py() or 0
        return cls(stale, table.num_rows - table["retweeted_id"].null_count)

    def __add__(self, other: NotEarning) -> NotEarning:
        return NotEarning(self.stale + other.stale, self.retweets + other.retweets)

    def notes(self) -> list[str]:
        """One line per reason, for the commitment's verdict."""
        notes = []
        if self.stale:
            notes.append(f"{self.stale} tweets older than the freshness bound earn nothing")
        if self.retweets:
            notes.append(f"{self.retweets} retweets earn nothing (their originals do)")
        return notes
