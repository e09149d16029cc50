"""Attacks on the validator's memory: oversized shards (told and untold), decompression
bombs (in the Parquet file and in the HTTP transport), and manifests with huge shard
lists. Limits are lowered so the bombs stay cheap to build; the bound each test asserts is
generous for honest work but a fraction of what the attack would cost if it got through."""

from __future__ import annotations

import io
import os
import re
from functools import cache

import bittensor as bt
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from d3.dev.synthetic import synthetic_table
from d3.manifest import MANIFEST_SUFFIX, MAX_MANIFEST_BYTES, MAX_SHARDS
from d3.record import ARROW_SCHEMA
from d3.shards import SHARD_SUFFIX, ShardLimits, sha256_hex
from d3.validator.pipeline import PipelineLimits
from tests.support.net import run

from .hosts import HostileHost, zeros_gzip
from .support import (
    MB,
    Arena,
    commitment_text,
    forged_manifest,
    locator_of,
    peak_memory,
    raw_shard,
    tiny_refs,
)

HONEST_ROWS = 100
LIMIT = 4 * MB  # shard byte limit in these tests
DECOMPRESSED_LIMIT = 16 * MB
BOUND = 128 * MB  # peak memory a round may use while an attacker tries to blow it up


def _ref(sha256: str, size: int, rows: int = 100) -> dict:
    low = 2_000_000_000_000_000_000
    return {"bytes": size, "max_id": low + rows, "min_id": low, "rows": rows, "sha256": sha256}


async def _honest_and_round(arena, runner, x_world, net, trace_python=False):
    honest = await arena.publish("honest", [x_world.tweets.slice(0, HONEST_ROWS)])
    net.dev.advance(1)
    with peak_memory(trace_python) as memory:
        report, wall = await arena.round(runner)
    credited = await arena.credited(runner)
    assert honest.manifest_sha256 in report.accepted
    assert credited["honest"] == HONEST_ROWS
    return report, wall, memory, credited


@pytest.mark.parametrize(
    "lie",
    ["declares-true-size", "declares-small-sends-length", "declares-small-no-length", "file"],
)
def test_shard_ten_times_the_byte_limit_is_rejected_unread(net, redis_url, logs, x_world, lie):
    oversize = 10 * LIMIT
    shard_sha = sha256_hex(b"a shard far too large")
    shard_name = shard_sha + SHARD_SUFFIX
    declared = oversize if lie == "declares-true-size" else MB
    expected = {
        "declares-true-size": f"shard {shard_sha[:12]} is {oversize} bytes, limit {LIMIT}",
        "declares-small-sends-length": f"{oversize} bytes declared, limit {MB}",
        "declares-small-no-length": f"more than {MB} bytes",
        "file": f"larger than {MB} bytes",
    }[lie]

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client, HostileHost() as host:
            arena = await Arena.open(client, net, ["hog", "honest"])
            manifest = forged_manifest(arena.signer("hog"), [_ref(shard_sha, declared)])
            name = sha256_hex(manifest) + MANIFEST_SUFFIX
            if lie == "file":  # a sparse file: 40 MB to read, no disk to spend
                directory = arena.dir("hog")
                directory.mkdir(parents=True)
                (directory / name).write_bytes(manifest)
                (directory / shard_name).write_bytes(b"")
                os.truncate(directory / shard_name, oversize)
                locator = locator_of(directory)
            else:
                host.serve(name, manifest)
                with_length = lie != "declares-small-no-length"
                host.oversized(shard_name, oversize, declare_length=with_length)
                locator = host.base_url
            await arena.commit("hog", commitment_text(sha256_hex(manifest), locator))
            runner = arena.runner(
                redis_url,
                lookup=x_world.lookup(),
                limits=PipelineLimits(grace_blocks=5, shard=ShardLimits(max_bytes=LIMIT)),
            )
            report, _, memory, credited = await _honest_and_round(
                arena, runner, x_world, net, trace_python=True
            )
            asked = host.asked_for(shard_name)
            await arena.close()
            return arena, report, memory, credited, asked, sha256_hex(manifest)

    arena, report, memory, credited, asked, manifest_sha = run(body())
    reason = report.rejected[manifest_sha]
    assert expected in reason
    assert f"manifest rejected: {reason}" in logs.of(arena.hotkey("hog"))
    assert credited["hog"] == 0
    if lie == "declares-true-size":
        assert asked == 0  # refused from the manifest alone
    # Reading the 40 MB would cost 40 MB; honest work here peaks at ~5 MB.
    assert memory.python_peak < 3 * LIMIT, memory
    assert memory.rss_growth < 6 * LIMIT, memory


@cache
def _footer_bomb() -> bytes:
    """zstd Parquet of a text column of identical 1 MiB strings, plain-encoded: ~180 KB
    on the wire, 1.1 GB decompressed, and the footer says so."""
    rows = 33
    table = synthetic_table(rows, seed=77).sort_by("id")
    text = pa.array(["b" * MB] * rows)
    table = table.set_column(1, ARROW_SCHEMA.field("text"), text)
    sink = io.BytesIO()
    with pq.ParquetWriter(
        sink,
        ARROW_SCHEMA,
        compression="zstd",
        use_dictionary=False,
        write_statistics=False,  # min/max of 1 MiB strings only slows the build
        store_schema=True,
    ) as writer:
        for _ in range(32):  # small row groups: cheaper to build, same 1.1 GB
            writer.write_table(table)
    return sink.getvalue()


def _dictionary_bomb() -> tuple[bytes, int]:
    """zstd Parquet whose text column is dictionary-encoded: one 512 KiB string, 512
    indices. The footer honestly counts ~0.5 MB of pages; read back as a plain string
    column (the record schema) it materialises 256 MiB."""
    rows = 512
    table = synthetic_table(rows, seed=78).sort_by("id")
    text = pa.DictionaryArray.from_arrays(
        pa.array([0] * rows, pa.int32()), pa.array(["d" * (512 * 1024)])
    )
    schema = ARROW_SCHEMA.set(1, pa.field("text", text.type, nullable=False))
    table = pa.Table.from_arrays([table["id"], text, *table.columns[2:]], schema=schema)
    sink = io.BytesIO()
    # Without the stored Arrow schema the reader sees a plain UTF-8 column, as the record
    # schema wants, and passes the schema check.
    pq.write_table(table, sink, compression="zstd", store_schema=False)
    return sink.getvalue(), rows * 512 * 1024


def _bomb_round(net, redis_url, x_world, shard_bytes: bytes):
    meta = pq.ParquetFile(pa.BufferReader(shard_bytes)).metadata
    first = pq.ParquetFile(pa.BufferReader(shard_bytes)).read_row_group(0, columns=["id"])
    low = first["id"][0].as_py()
    last_group = pq.ParquetFile(pa.BufferReader(shard_bytes)).read_row_group(
        meta.num_row_groups - 1, columns=["id"]
    )
    shard = raw_shard(shard_bytes, meta.num_rows, low, last_group["id"][-1].as_py())

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            arena = await Arena.open(client, net, ["bomber", "honest"])
            bomb = await arena.publish_shards("bomber", [shard])
            runner = arena.runner(
                redis_url,
                lookup=x_world.lookup(),
                limits=PipelineLimits(
                    grace_blocks=5, shard=ShardLimits(max_decompressed_bytes=DECOMPRESSED_LIMIT)
                ),
            )
            report, _, memory, credited = await _honest_and_round(arena, runner, x_world, net)
            await arena.close()
            return arena, report, memory, credited, bomb

    return run(body())


def test_parquet_bomb_declared_in_the_footer_is_rejected_unread(net, redis_url, logs, x_world):
    data = _footer_bomb()
    meta = pq.ParquetFile(pa.BufferReader(data)).metadata
    inflated = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    assert len(data) < 1 * MB and inflated > 1024 * MB

    arena, report, memory, credited, bomb = _bomb_round(net, redis_url, x_world, data)
    reason = report.rejected[bomb.manifest_sha256]
    assert reason.endswith(f"shard decompresses to {inflated} bytes, limit {DECOMPRESSED_LIMIT}")
    assert f"manifest rejected: {reason}" in logs.of(arena.hotkey("bomber"))
    assert credited["bomber"] == 0
    assert memory.rss_growth < BOUND, memory


def test_dictionary_encoded_parquet_bomb_is_rejected_with_memory_bounded(
    net, redis_url, logs, x_world
):
    data, inflated = _dictionary_bomb()
    meta = pq.ParquetFile(pa.BufferReader(data)).metadata
    declared = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    assert len(data) < MB and declared < DECOMPRESSED_LIMIT < BOUND < inflated

    arena, report, memory, credited, bomb = _bomb_round(net, redis_url, x_world, data)
    reason = report.rejected[bomb.manifest_sha256]
    assert re.search("decompress|limit", reason), reason
    assert f"manifest rejected: {reason}" in logs.of(arena.hotkey("bomber"))
    assert credited["bomber"] == 0
    assert memory.rss_growth < BOUND, memory  # fails today: ~2x the 256 MiB it inflates to


@cache
def _gzip_bomb() -> bytes:
    return zeros_gzip(128 * MB)


def test_gzip_transport_bomb_is_never_inflated(net, redis_url, logs, x_world):
    body_bytes = _gzip_bomb()
    # Named and sized by its bytes on the wire, so only inflating it could hurt.
    shard = raw_shard(body_bytes, 20, 2_000_000_000_000_000_000, 2_000_000_000_000_000_019)

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client, HostileHost() as host:
            arena = await Arena.open(client, net, ["bomber", "honest"])
            host.gzip_encoded(shard.name, body_bytes)
            bomb = await arena.publish_shards("bomber", [shard], locator=host.base_url)
            host.serve(bomb.manifest_sha256 + MANIFEST_SUFFIX, bomb.manifest_bytes)
            runner = arena.runner(redis_url, lookup=x_world.lookup())
            report, _, memory, credited = await _honest_and_round(arena, runner, x_world, net)
            await arena.close()
            return arena, report, memory, credited, bomb

    arena, report, memory, credited, bomb = run(body())
    reason = report.rejected[bomb.manifest_sha256]
    # The validator reads the raw body (at most the declared size) and never inflates it.
    assert reason.startswith(f"shard {shard.sha256[:12]}: not a readable parquet file"), reason
    assert f"manifest rejected: {reason}" in logs.of(arena.hotkey("bomber"))
    assert credited["bomber"] == 0
    assert memory.rss_growth < 64 * MB, memory


@pytest.mark.parametrize(
    "shards, expected",
    [
        (100_000, f"larger than {MAX_MANIFEST_BYTES} bytes"),
        (MAX_SHARDS + 1, f"List should have at most {MAX_SHARDS} items"),
        (5_000, "5000 shards, limit 1000"),
    ],
    ids=["100k-shards", "one-over-the-manifest-limit", "over-the-pipeline-limit"],
)
def test_manifest_with_a_huge_number_of_tiny_shards_is_rejected_quickly(
    net, redis_url, logs, x_world, shards, expected
):
    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            arena = await Arena.open(client, net, ["swarm", "honest"])
            manifest = forged_manifest(arena.signer("swarm"), tiny_refs(shards))
            directory = arena.dir("swarm")
            directory.mkdir(parents=True)
            (directory / f"{sha256_hex(manifest)}{MANIFEST_SUFFIX}").write_bytes(manifest)
            # No shard is uploaded: fetching even one would leave the manifest pending.
            text = commitment_text(sha256_hex(manifest), locator_of(directory))
            await arena.commit("swarm", text)
            runner = arena.runner(redis_url, lookup=x_world.lookup())
            report, wall, memory, credited = await _honest_and_round(arena, runner, x_world, net)
            await arena.close()
            return arena, report, wall, memory, credited, sha256_hex(manifest), len(manifest)

    arena, report, wall, memory, credited, manifest_sha, size = run(body())
    reason = report.rejected[manifest_sha]
    assert expected in reason
    assert f"manifest rejected: {reason}" in logs.of(arena.hotkey("swarm"))
    assert not report.pending and credited["swarm"] == 0
    assert wall < 5.0
    assert memory.rss_growth < 64 * MB, (memory, size)
