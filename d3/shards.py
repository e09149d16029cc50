"""Shards: Parquet files of tweet records, named by the SHA-256 of their bytes.

Content addressing is what lets any static host serve D3 data safely: a validator that
knows the hash from a signed manifest needs to trust neither the host nor the transport.
Reading is bounded at every step a hostile file could inflate (bytes, rows, decompressed
size), and the bounds are checked before the memory is spent, not after.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from d3.record import ARROW_SCHEMA, MAX_LIST_ITEMS, RecordError, check_schema

SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
SHARD_SUFFIX = ".parquet"
# Rows per Parquet row group: large enough for zstd to compress well, small enough that
# a reader can stop early on a hostile file.
ROW_GROUP_ROWS = 64_000


class ShardError(ValueError):
    """A shard is unusable; the message says which limit or check it failed."""


@dataclass(frozen=True)
class ShardLimits:
    """Hard ceilings for reading one shard from an untrusted host."""

    max_bytes: int = 256 * 1024 * 1024
    max_rows: int = 2_000_000
    max_decompressed_bytes: int = 1024 * 1024 * 1024


@dataclass(frozen=True)
class EncodedShard:
    """A shard's bytes with the facts a manifest records about it."""

    sha256: str
    data: bytes
    rows: int
    min_id: int
    max_id: int

    @property
    def name(self) -> str:
        return shard_name(self.sha256)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def shard_name(sha256: str) -> str:
    if not SHA256_HEX.match(sha256):
        raise ShardError(f"not a sha256 hex digest: {sha256[:80]!r}")
    return sha256 + SHARD_SUFFIX


def encode_shard(table: pa.Table) -> EncodedShard:
    """Serialise a table of records (already validated) as a zstd Parquet shard.

    Rows are sorted by ID so equal data always makes equal bytes and equal hashes.
    """
    if table.num_rows == 0:
        raise ShardError("refusing to write an empty shard")
    check_schema(table.schema)
    table = table.sort_by("id")
    sink = io.BytesIO()
    pq.write_table(
        table,
        sink,
        compression="zstd",
        row_group_size=ROW_GROUP_ROWS,
        write_statistics=["id"],
        store_schema=True,
    )
    data = sink.getvalue()
    bounds = pc.min_max(table["id"])
    return EncodedShard(
        sha256=sha256_hex(data),
        data=data,
        rows=table.num_rows,
        min_id=bounds["min"].as_py(),
        max_id=bounds["max"].as_py(),
    )


# Every variable-length (BYTE_ARRAY) leaf of the record schema. They are read as
# dictionaries first, so a column that repeats one huge string a million times costs its
# dictionary and its indices, not the strings it would expand to, until that size is known.
_BYTE_ARRAY_LEAVES = [
    f.name if pa.types.is_string(f.type) else f"{f.name}.list.element"
    for f in ARROW_SCHEMA
    if pa.types.is_string(f.type) or pa.types.is_list(f.type)
]


def decode_shard(data: bytes, limits: ShardLimits, expected_sha256: str | None = None) -> pa.Table:
    """Parse untrusted shard bytes into a table, enforcing `limits` and the expected hash.

    The footer's row count and sizes are checked before any column is read. Row groups are
    then read one at a time with text columns still dictionary-encoded, and the size they
    would expand to is counted before they are expanded, so neither a lying footer nor a
    dictionary bomb can make the reader allocate much past the limit. Anything malformed
    (bad UTF-8, nulls in required columns, corrupt pages) is a ShardError.
    """
    if len(data) > limits.max_bytes:
        raise ShardError(f"shard is {len(data)} bytes, limit {limits.max_bytes}")
    if expected_sha256 is not None and sha256_hex(data) != expected_sha256:
        raise ShardError("shard bytes do not match their sha256")
    try:
        footer = pq.ParquetFile(pa.BufferReader(data))
        check_schema(footer.schema_arrow)
        parquet = pq.ParquetFile(pa.BufferReader(data), read_dictionary=_BYTE_ARRAY_LEAVES)
    except RecordError as exc:
        raise ShardError(str(exc)) from None
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise ShardError(f"not a readable parquet file: {_short(exc)}") from None
    meta = footer.metadata
    if meta.num_rows > limits.max_rows:
        raise ShardError(f"shard has {meta.num_rows} rows, limit {limits.max_rows}")
    declared = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if declared > limits.max_decompressed_bytes:
        raise ShardError(
            f"shard decompresses to {declared} bytes, limit {limits.max_decompressed_bytes}"
        )
    _check_value_counts(meta)
    groups: list[pa.Table] = []
    decoded = rows = 0
    try:
        for i in range(meta.num_row_groups):
            encoded = parquet.read_row_group(i)
            rows += encoded.num_rows
            if rows > limits.max_rows:
                raise ShardError(f"shard has more than {limits.max_rows} rows")
            decoded += _expanded_bytes(encoded)
            if decoded > limits.max_decompressed_bytes:
                raise ShardError(f"shard decompresses past {limits.max_decompressed_bytes} bytes")
            group = encoded.cast(ARROW_SCHEMA)
            group.validate(full=True)  # e.g. invalid UTF-8 in a string column
            groups.append(group)
    except (pa.ArrowException, OSError, ValueError) as exc:
        if isinstance(exc, ShardError):
            raise
        raise ShardError(f"malformed parquet data: {_short(exc)}") from None
    if not groups:
        raise ShardError("shard has no rows")
    return pa.concat_tables(groups)


def _check_value_counts(meta: pq.FileMetaData) -> None:
    """Refuse before reading if any column chunk claims more values than its rows allow.

    Run-length encoding lets a few kilobytes declare hundreds of millions of (empty) list
    elements, which Arrow would allocate offsets for before any size check could run.
    """
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        for j in range(group.num_columns):
            column = group.column(j)
            is_list = column.path_in_schema.endswith(".list.element")
            allowed = group.num_rows * (MAX_LIST_ITEMS if is_list else 1)
            if column.num_values > max(allowed, group.num_rows):
                raise ShardError(
                    f"column {column.path_in_schema} claims {column.num_values} values "
                    f"for {group.num_rows} rows"
                )


def _expanded_bytes(table: pa.Table) -> int:
    """The Arrow size of `table` once its dictionary columns are decoded."""
    total = 0
    for column in table.columns:
        for chunk in column.chunks:
            values = chunk.flatten() if pa.types.is_list(chunk.type) else chunk
            if pa.types.is_dictionary(values.type):
                lengths = pc.take(pc.binary_length(values.dictionary), values.indices)
                total += (pc.sum(lengths).as_py() or 0) + 4 * len(values)
                total += chunk.nbytes - values.nbytes if values is not chunk else 0
            else:
                total += chunk.nbytes
    return total


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
