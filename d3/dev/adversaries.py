"""Dishonest tweet sources, for local networks only: they show the mechanism punishing them.

- `CopySource` re-publishes tweets another miner already published (read from that
  miner's dataset directory): a copier. The index credits them to whoever committed first,
  so the copier earns nothing.
- `FabricatingSource` invents tweets with perfectly consistent snowflake IDs, URLs and
  times: they pass every structural check, and fail the sampled look-ups on X.
- `DilutingSource` scrapes real tweets through another source and mixes a share of
  invented ones in: the audit discounts its credit by the share X does not find, so the
  invented tweets earn nothing in expectation and cost credibility beyond the allowance.

A miner runs one with `--source.adversary copier|fabricator|diluter` (`adversary_source`),
which it refuses outside a dev chain: these are dev roles, never `--source.kind` choices.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq

from d3.dev.synthetic import synthetic_table
from d3.record import TweetRecord, table_to_records
from scraping.source import LookupResult, SearchResult, TweetSource


class CopySource:
    name = "copier"

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self._copied: set[str] = set()

    async def search(self, query: str, *, since=None, until=None, since_id=None, limit=100):
        records: list[TweetRecord] = []
        for path in sorted(self.directory.glob("*.parquet")):
            if path.name in self._copied or len(records) >= limit:
                continue
            self._copied.add(path.name)
            records += table_to_records(pq.read_table(path))
        newest = max((r.id for r in records), default=None)
        return SearchResult(records=records, newest_id=newest)

    async def lookup(self, ids: Sequence[int]) -> LookupResult:
        return LookupResult(failed=set(ids))


class DilutingSource:
    name = "diluter"

    def __init__(self, inner, share: float = 0.1, seed: int = 667):
        if not 0 <= share < 1:
            raise ValueError(f"share must be in [0, 1), got {share}")
        self.inner, self.share = inner, share
        self._fake = FabricatingSource(seed)

    async def search(self, query: str, *, since=None, until=None, since_id=None, limit=100):
        real = await self.inner.search(
            query, since=since, until=until, since_id=since_id, limit=limit
        )
        extra = round(len(real.records) * self.share / (1 - self.share))
        invented = (await self._fake.search(query, limit=extra)).records if extra else []
        # The cursor follows the real tweets only, so the real scrape resumes where it was.
        return SearchResult(records=[*real.records, *invented], newest_id=real.newest_id)

    async def lookup(self, ids: Sequence[int]) -> LookupResult:
        return await self.inner.lookup(ids)


class FabricatingSource:
    name = "fabricator"

    def __init__(self, seed: int = 666):
        self._rng = random.Random(seed)

    async def search(self, query: str, *, since=None, until=None, since_id=None, limit=100):
        start = datetime.now(UTC) - timedelta(hours=1)
        table = synthetic_table(
            limit, seed=self._rng.randrange(1 << 30), start=start, source="x_api"
        )
        now = datetime.now(UTC)
        records = [r for r in table_to_records(table) if r.scraped_at <= now]
        return SearchResult(records=records, newest_id=max((r.id for r in records), default=None))

    async def lookup(self, ids: Sequence[int]) -> LookupResult:
        return LookupResult(failed=set(ids))


def adversary_source(
    role: str, real: Callable[[], TweetSource], copy_from: Path | None = None
) -> TweetSource:
    """The dishonest source a miner's `--source.adversary` names. `real` builds the honest
    source a diluter scrapes through (only the diluter needs one); `copy_from` is the
    directory the copier re-publishes."""
    if role == "fabricator":
        return FabricatingSource()
    if role == "diluter":  # 10% invented tweets mixed into real ones
        return DilutingSource(real())
    if role == "copier":
        if copy_from is None:
            raise ValueError("the copier needs a dataset directory to copy from")
        return CopySource(copy_from)
    raise ValueError(f"no adversary {role!r}: copier, fabricator or diluter")
