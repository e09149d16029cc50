import hashlib
import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from d3.dev.synthetic import synthetic_table
from d3.shards import ShardError, ShardLimits, decode_shard, encode_shard, shard_name


def test_round_trip_hash_and_bounds():
    table = synthetic_table(2000, seed=5)
    shard = encode_shard(table)
    assert shard.sha256 == hashlib.sha256(shard.data).hexdigest()
    assert shard.name == f"{shard.sha256}.parquet"
    assert shard.rows == 2000
    assert shard.min_id == min(table["id"].to_pylist())
    assert shard.max_id == max(table["id"].to_pylist())
    back = decode_shard(shard.data, ShardLimits(), expected_sha256=shard.sha256)
    assert back.equals(table.sort_by("id"))


def test_same_rows_in_any_order_make_the_same_shard():
    table = synthetic_table(300, seed=6)
    shuffled = table.take(list(reversed(range(table.num_rows))))
    assert encode_shard(table).sha256 == encode_shard(shuffled).sha256


def test_zstd_compressed():
    shard = encode_shard(synthetic_table(100, seed=1))
    meta = pq.ParquetFile(io.BytesIO(shard.data)).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"


def test_limits_and_hash_are_enforced():
    shard = encode_shard(synthetic_table(1000, seed=8))
    with pytest.raises(ShardError, match="do not match"):
        decode_shard(shard.data, ShardLimits(), expected_sha256="0" * 64)
    with pytest.raises(ShardError, match="bytes, limit"):
        decode_shard(shard.data, ShardLimits(max_bytes=1000))
    with pytest.raises(ShardError, match="1000 rows, limit 999"):
        decode_shard(shard.data, ShardLimits(max_rows=999))
    with pytest.raises(ShardError, match="decompresses to"):
        decode_shard(shard.data, ShardLimits(max_decompressed_bytes=10_000))


def test_garbage_and_wrong_schema_are_refused():
    with pytest.raises(ShardError, match="not a readable parquet"):
        decode_shard(b"PAR1 not really", ShardLimits())
    sink = io.BytesIO()
    pq.write_table(pa.table({"id": [1, 2]}), sink)
    with pytest.raises(ShardError, match="schema mismatch"):
        decode_shard(sink.getvalue(), ShardLimits())


def test_bad_names_and_empty_shards():
    with pytest.raises(ShardError, match="not a sha256"):
        shard_name("../../etc/passwd")
    with pytest.raises(ShardError, match="empty"):
        encode_shard(synthetic_table(0))


def test_list_element_bomb_is_refused_before_reading():
    """RLE lets a tiny file claim millions of list elements: refused from the footer."""
    from d3.record import ARROW_SCHEMA

    table = synthetic_table(1, seed=3)
    n = 1_000_000
    elements = pa.StringArray.from_buffers(n, pa.py_buffer(bytes(4 * (n + 1))), pa.py_buffer(b""))
    bomb = pa.ListArray.from_arrays(pa.array([0, n], pa.int32()), elements)
    columns = {name: table[name] for name in table.column_names}
    columns["hashtags"] = pa.chunked_array([bomb])
    sink = io.BytesIO()
    pq.write_table(pa.table(columns, schema=ARROW_SCHEMA), sink, compression="zstd")
    assert len(sink.getvalue()) < 100_000
    with pytest.raises(ShardError, match="claims 1000000 values for 1 rows"):
        decode_shard(sink.getvalue(), ShardLimits())
