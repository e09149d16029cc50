"""Closing a day: once no commitment can add rows to a day, its files (one per credit
period that brought tweets created that day) are merged into the day's final layout.

**When a day is closed.** A commitment in period p earns credit only for tweets created
at or after the timestamp of block (p − FRESH_PERIODS) × PERIOD_BLOCKS (`fresh(t, c)` in
`docs/incentive-mechanism.md`; the hub applies the same bound, `rows.py`), and that bound
only moves forward with p. A row's `created_at` may lie up to MAX_CLOCK_SKEW_MS before the
time its id encodes (the record's structural check), and the bound is applied to the id.
So once this hub has decided every period up to P (published, discarded or withheld
each miner's rows: `HubBuilder._decided_through`), every row still to come belongs to a
commitment in period P + 1 or later and was created at or after

    open_from = ts(fresh_from_block((P + 1) × PERIOD_BLOCKS)) − MAX_CLOCK_SKEW_MS

and every UTC day that ends by `open_from` is *closed*: its rows are final. With no bound
yet (the first FRESH_PERIODS periods: a tweet of any age is fresh) no day is closed. On
finney (7,200-block periods of about a day, FRESH_PERIODS 2) a day closes two to three
days after it ends.

**What a closed day looks like.** All its rows sorted by id, cut into files of
FILE_ROWS rows (the last one shorter): `data/<day>/part-00000.parquet`, `part-00001`, ...
Each is encoded exactly as `encode_parquet` encodes those rows (ZSTD_LEVEL, row groups of
ROW_GROUP_ROWS). That is a function of the day's rows alone: not of how many period files
it was made of, nor of when the builder closed it, so two builders that closed the same
day at different moments (one after every period, one in a single catch-up pass) hold
the same bytes.

**Memory.** The day's files are each sorted by id, and they are merged a row group at a
time: at most one row group of each input file, plus one output row group, is in memory,
whatever the size of the day.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from d3.hub.layout import PART_PREFIX, sha256_file
from d3.hub.schema import HUB_SCHEMA, ROW_GROUP_ROWS, ZSTD_LEVEL, writer_options
from d3.snowflake import MAX_CLOCK_SKEW_MS

DAY_MS = 86_400_000
FILE_ROWS = 1_000_000  # ~90 MB of tweets at zstd 9: a size the Hub and its viewer take


def open_from_day(bound_ms: int | None) -> int | None:
    """The first UTC day (days since 1970-01-01) that can still gain rows, when every row
    still to come has an id minted at or after `bound_ms`; days before it are closed.
    None: no bound, every day can still gain rows."""
    if bound_ms is None:
        return None
    return (bound_ms - MAX_CLOCK_SKEW_MS) // DAY_MS


@dataclass(frozen=True)
class Part:
    name: str  # part-NNNNN.parquet
    sha256: str
    bytes: int
    rows: int


def merge_day(
    sources: Sequence[Path],
    target: Path,
    *,
    file_rows: int = FILE_ROWS,
    row_group_rows: int = ROW_GROUP_ROWS,
) -> list[Part]:
    """Merge Parquet files of hub rows, each sorted by id with ids distinct across them,
    into `target`/part-NNNNN.parquet (a fresh directory), streaming."""
    if file_rows % row_group_rows:
        raise ValueError("a file must hold whole row groups")
    target.mkdir(parents=True)
    out = _Parts(target, file_rows, row_group_rows)
    readers = [pq.ParquetFile(path) for path in sources]
    groups = [0] * len(readers)
    pending: list[pa.Table] = []
    tops: dict[int, int] = {}  # input -> the last (largest) id read from it so far

    def advance(i: int) -> None:
        """Read input i's next row group with rows; forget the input once it has none."""
        while groups[i] < readers[i].num_row_groups:
            table = readers[i].read_row_group(groups[i]).cast(HUB_SCHEMA)
            groups[i] += 1
            if table.num_rows:
                pending.append(table)
                tops[i] = table["id"][-1].as_py()
                return
        tops.pop(i, None)

    for i in range(len(readers)):
        advance(i)
    while tops:
        # Everything unread of input i is above tops[i]: every row up to the smallest of
        # them is final and can go out in order.
        limit, i = min((top, i) for i, top in tops.items())
        rows = pa.concat_tables(pending).sort_by("id")
        ids = rows["id"].to_numpy()
        ready = int(np.searchsorted(ids, limit, side="right"))
        out.add(rows.slice(0, ready))
        pending[:] = [rows.slice(ready)] if ready < rows.num_rows else []
        advance(i)
    if pending:  # inputs with no row groups leave nothing; anything else was written
        out.add(pa.concat_tables(pending).sort_by("id"))
    for reader in readers:
        reader.close()
    return out.finish()


class _Parts:
    """Rows in id order out to part files of whole row groups, each written as
    `encode_parquet` writes the same rows."""

    def __init__(self, target: Path, file_rows: int, row_group_rows: int):
        self.target = target
        self.file_rows = file_rows
        self.row_group_rows = row_group_rows
        self.buffer: list[pa.Table] = []
        self.buffered = 0
        self.writer: pq.ParquetWriter | None = None
        self.in_file = 0
        self.done: list[Part] = []

    def add(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self.buffer.append(table)
        self.buffered += table.num_rows
        while self.buffered >= self.row_group_rows:
            self._group(self.row_group_rows)

    def finish(self) -> list[Part]:
        if self.buffered:
            self._group(self.buffered)
        self._close()
        return self.done

    def _group(self, rows: int) -> None:
        table = pa.concat_tables(self.buffer)
        group, rest = table.slice(0, rows), table.slice(rows)
        self.buffer, self.buffered = ([rest] if rest.num_rows else []), rest.num_rows
        if self.writer is None:
            self.writer = pq.ParquetWriter(self._path(), HUB_SCHEMA, **writer_options(ZSTD_LEVEL))
        # One chunk per column, as encode_parquet writes: page boundaries follow chunks.
        self.writer.write_table(group.combine_chunks(), row_group_size=self.row_group_rows)
        self.in_file += rows
        if self.in_file >= self.file_rows:
            self._close()

    def _close(self) -> None:
        if self.writer is None:
            return
        self.writer.close()
        path = self._path()
        with open(path, "rb+") as handle:
            os.fsync(handle.fileno())
        self.done.append(Part(path.name, sha256_file(path), path.stat().st_size, self.in_file))
        self.writer = None
        self.in_file = 0

    def _path(self) -> Path:
        return self.target / f"{PART_PREFIX}{len(self.done):05d}.parquet"
