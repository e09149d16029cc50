"""The hub's row: the tweet record exactly as its first committer published it, plus where
it came from. And the one Parquet encoding every hub file is written with.

Equal rows must give equal bytes on every machine (two validators' hubs are compared byte
for byte), so everything that could vary is fixed here: column order and types, row
order (by `id`), row-group size, compression and its level, statistics, and no
per-write metadata (no timestamps, no writer's host). What remains is the library that
writes: hubs are byte-identical for one pyarrow release, which `created_by` records.

**Engagement counts are as scraped.** `like_count`, `retweet_count`, `reply_count`,
`quote_count` and `view_count` are the miner's reading at `scraped_at`. Nobody verifies
them row by row: an audit looks up a sample of each miner's tweets and fails only a
count above X's current one by more than max(50, 100 %) (`compare_count` in
`d3/validator/verifier.py`), and the validator keeps no X counts the hub could publish.
The schema says so on each of those fields (metadata `d3.note`), and so does the card.
"""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from d3.record import ARROW_SCHEMA
from d3.validator.verifier import COUNT_FIELDS

HUB_VERSION = "2"  # 2: counts marked as scraped; closed days compacted
NOTE = "d3.note"  # field metadata: what a column means beyond the record's definition
COUNTS_NOTE = (
    "as scraped by the miner at scraped_at, not verified: an audit checks a sample of "
    "each miner's tweets and fails only counts above X's by more than max(50, 100%)"
)
PROVENANCE = (
    pa.field("miner_hotkey", pa.string(), nullable=False).with_metadata(
        {NOTE: "the first committer: the miner credited with the tweet"}
    ),
    pa.field("manifest_sha256", pa.string(), nullable=False).with_metadata(
        {NOTE: "the signed manifest that listed it"}
    ),
    pa.field("commit_block", pa.int64(), nullable=False).with_metadata(
        {NOTE: "the block of the commitment it is credited to"}
    ),
)
HUB_SCHEMA = pa.schema(
    [
        *(
            f.with_metadata({NOTE: COUNTS_NOTE}) if f.name in COUNT_FIELDS else f
            for f in ARROW_SCHEMA
        ),
        *PROVENANCE,
    ],
    metadata={
        "d3.record_version": ARROW_SCHEMA.metadata[b"d3.record_version"].decode(),
        "d3.hub_version": HUB_VERSION,
    },
)
HUB_COLUMNS = tuple(HUB_SCHEMA.names)
ROW_GROUP_ROWS = 100_000  # ~30 MB of tweets: DuckDB and `datasets` stream by row group
ZSTD_LEVEL = 9  # a closed day's files: written once, read many times, so spend CPU on size
OPEN_ZSTD_LEVEL = 3  # an open day's period files, replaced when the day closes
STAGING_ZSTD_LEVEL = 1  # the builder's private staged rows: read once, by itself
_DAY_MS = 86_400_000


def with_provenance(table: pa.Table, hotkey: str, manifest_sha256: str, block: int) -> pa.Table:
    """Record rows (the record schema) with the provenance columns appended."""
    n = table.num_rows
    table = table.cast(ARROW_SCHEMA)
    columns = [
        *table.columns,
        pa.array([hotkey] * n, pa.string()),
        pa.array([manifest_sha256] * n, pa.string()),
        pa.array([block] * n, pa.int64()),
    ]
    return pa.Table.from_arrays(columns, schema=HUB_SCHEMA)


def day_numbers(table: pa.Table) -> pa.Array:
    """Each row's UTC day (days since 1970-01-01) of `created_at`."""
    ms = pc.cast(table["created_at"], pa.int64())
    return pc.cast(pc.floor(pc.divide(pc.cast(ms, pa.float64()), float(_DAY_MS))), pa.int64())


def day_label(day: int) -> str:
    """Days since 1970-01-01 as YYYY-MM-DD."""
    ts = pa.scalar(day * _DAY_MS, pa.timestamp("ms", tz="UTC"))
    return ts.as_py().strftime("%Y-%m-%d")


def writer_options(level: int = ZSTD_LEVEL) -> dict:
    """Every `pyarrow.parquet` writer option a hub file is written with."""
    return {
        "compression": "zstd",
        "compression_level": level,
        "write_statistics": True,
        "store_schema": True,
        "sorting_columns": [pq.SortingColumn(0)],
    }


def encode_parquet(
    table: pa.Table, level: int = ZSTD_LEVEL, row_group_rows: int = ROW_GROUP_ROWS
) -> bytes:
    """Hub rows as Parquet bytes: sorted by id, zstd, deterministic. One chunk per column,
    so the bytes do not depend on how the rows were assembled (`compaction.py` streams a
    day's rows into files identical to what this gives for the same rows)."""
    table = table.cast(HUB_SCHEMA).sort_by("id").combine_chunks()
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=row_group_rows, **writer_options(level))
    return sink.getvalue()


def encode_staging(table: pa.Table) -> bytes:
    """Staged rows (private, read back once by the builder): fast, in the given order."""
    sink = io.BytesIO()
    pq.write_table(
        table.cast(HUB_SCHEMA),
        sink,
        compression="zstd",
        compression_level=STAGING_ZSTD_LEVEL,
        row_group_size=ROW_GROUP_ROWS,
    )
    return sink.getvalue()


def decode_parquet(data: bytes) -> pa.Table:
    """Bytes this module wrote (the hub's own files: trusted, unbounded)."""
    return pq.read_table(pa.BufferReader(data)).cast(HUB_SCHEMA)
