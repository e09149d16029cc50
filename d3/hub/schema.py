"""The hub's row: the tweet record exactly as its first committer published it, plus where
it came from. And the one Parquet encoding every hub file is written with.

Equal rows must give equal bytes on every machine (two validators' hubs are compared byte
for byte), so everything that could vary is fixed here: column order and types, row
order (by `id`), row-group size, compression and its level, statistics, and no
per-write metadata (no timestamps, no writer's host). What remains is the library that
writes: hubs are byte-identical for one pyarrow release, which `created_by` records.
"""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from d3.record import ARROW_SCHEMA

HUB_VERSION = "1"
PROVENANCE = (
    pa.field("miner_hotkey", pa.string(), nullable=False),  # the first committer
    pa.field("manifest_sha256", pa.string(), nullable=False),  # the manifest that listed it
    pa.field("commit_block", pa.int64(), nullable=False),  # the commitment it is credited to
)
HUB_SCHEMA = pa.schema(
    [*ARROW_SCHEMA, *PROVENANCE],
    metadata={
        "d3.record_version": ARROW_SCHEMA.metadata[b"d3.record_version"].decode(),
        "d3.hub_version": HUB_VERSION,
    },
)
HUB_COLUMNS = tuple(HUB_SCHEMA.names)
ROW_GROUP_ROWS = 100_000  # ~30 MB of tweets: DuckDB and `datasets` stream by row group
ZSTD_LEVEL = 9  # written once, read many times: spend CPU on size
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


def encode_parquet(table: pa.Table) -> bytes:
    """Hub rows as Parquet bytes: sorted by id, zstd, deterministic."""
    table = table.cast(HUB_SCHEMA).sort_by("id")
    sink = io.BytesIO()
    pq.write_table(
        table,
        sink,
        compression="zstd",
        compression_level=ZSTD_LEVEL,
        row_group_size=ROW_GROUP_ROWS,
        write_statistics=True,
        store_schema=True,
        sorting_columns=[pq.SortingColumn(0)],
    )
    return sink.getvalue()


def decode_parquet(data: bytes) -> pa.Table:
    """Bytes this module wrote (the hub's own files: trusted, unbounded)."""
    return pq.read_table(pa.BufferReader(data)).cast(HUB_SCHEMA)
