"""Miner tweet store: bulk ingest and batch publishing vs one transaction per tweet.

Synthetic tweets are generated a chunk at a time outside the timed regions and stored with
`add_table`; then every row is claimed in shard-sized batches, encoded as shards and marked
published. The baseline, in the same process and on the same disk, stores a smaller sample
the naive way (one `add([record])`, so one fsync'd transaction, per tweet); the ratio is
what matters on a noisy machine, not the absolute numbers.

    python bench/store_bench.py [--rows 1000000] [--chunk 100000] [--batch-rows 100000]
                                [--baseline-rows 1000] [--max-rows N] [--dir DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
from loguru import logger

from d3.dev.synthetic import synthetic_records, synthetic_table
from d3.miner.store import TweetStore
from d3.shards import encode_shard

BASE = datetime(2026, 1, 1, tzinfo=UTC)


def chunk_table(rows: int, index: int) -> pa.Table:
    # synthetic tweets are at most 2 s apart, so chunks this far apart never share an ID
    return synthetic_table(rows, seed=index, start=BASE + timedelta(seconds=2 * rows * index))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def disk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def ingest(store: TweetStore, rows: int, chunk: int) -> tuple[float, pa.Table]:
    elapsed, last = 0.0, None
    for index, start in enumerate(range(0, rows, chunk)):
        last = chunk_table(min(chunk, rows - start), index)
        began = time.perf_counter()
        assert store.add_table(last) == last.num_rows
        elapsed += time.perf_counter() - began
    assert last is not None
    return elapsed, last


def publish(store: TweetStore, batch_rows: int) -> dict[str, float]:
    claim = encode = mark = 0.0
    rows = 0
    while True:
        began = time.perf_counter()
        batch = store.claim_batch(batch_rows)
        claimed = time.perf_counter()
        if batch is None:
            break
        shard = encode_shard(batch.table)
        encoded = time.perf_counter()
        store.mark_published(batch.batch_id, shard.sha256)
        claim += claimed - began
        encode += encoded - claimed
        mark += time.perf_counter() - encoded
        rows += batch.rows
    return {"rows": rows, "claim_s": claim, "encode_s": encode, "mark_s": mark}


def naive(path: Path, rows: int) -> float:
    records = synthetic_records(rows, seed=10_000)
    with TweetStore(path) as store:
        began = time.perf_counter()
        for record in records:
            store.add([record])
        return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=100_000, help="rows per add_table call")
    parser.add_argument("--batch-rows", type=int, default=100_000, help="rows per shard")
    parser.add_argument("--baseline-rows", type=int, default=1000)
    parser.add_argument("--max-rows", type=int, default=None, help="prune while publishing")
    parser.add_argument("--dir", type=Path, default=None, help="where the stores go")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="WARNING")

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "bench.db"
        with TweetStore(path, max_rows=args.max_rows) as store:
            ingest_s, last = ingest(store, args.rows, args.chunk)
            began = time.perf_counter()
            assert store.add_table(last) == 0
            dup_s = time.perf_counter() - began
            ingest_rss = peak_rss_mb()
            stored_bytes = disk_bytes(path)
            pub = publish(store, args.batch_rows)
            assert pub["rows"] == args.rows
        naive_s = naive(Path(tmp) / "naive.db", args.baseline_rows)

    publish_s = pub["claim_s"] + pub["encode_s"] + pub["mark_s"]
    figures = {
        "rows": args.rows,
        "add_table_tweets_per_s": round(args.rows / ingest_s),
        "duplicate_tweets_per_s": round(last.num_rows / dup_s),
        "claim_tweets_per_s": round(args.rows / pub["claim_s"]),
        "encode_tweets_per_s": round(args.rows / pub["encode_s"]),
        "publish_tweets_per_s": round(args.rows / publish_s),
        "naive_tweets_per_s": round(args.baseline_rows / naive_s),
        "disk_bytes_per_tweet": round(stored_bytes / args.rows, 1),
        "peak_rss_mb_after_ingest": round(ingest_rss),
        "peak_rss_mb": round(peak_rss_mb()),
        "ingest_s": round(ingest_s, 2),
        "publish_s": round(publish_s, 2),
    }
    figures["speedup_vs_naive"] = round(
        figures["add_table_tweets_per_s"] / figures["naive_tweets_per_s"], 1
    )
    fig = figures
    lines = [
        ("rows", args.rows, f"(chunks of {args.chunk:,})"),
        ("add_table", fig["add_table_tweets_per_s"], f"tweets/s ({ingest_s:.1f}s)"),
        ("re-add duplicates", fig["duplicate_tweets_per_s"], "tweets/s"),
        ("claim_batch", fig["claim_tweets_per_s"], f"tweets/s ({args.batch_rows:,}/batch)"),
        ("encode_shard", fig["encode_tweets_per_s"], "tweets/s"),
        ("claim+encode+mark", fig["publish_tweets_per_s"], f"tweets/s ({publish_s:.1f}s)"),
        ("naive add per tweet", fig["naive_tweets_per_s"], f"tweets/s ({args.baseline_rows:,})"),
        ("on disk", fig["disk_bytes_per_tweet"], "bytes/tweet (db + wal)"),
        ("peak RSS", fig["peak_rss_mb"], f"MB ({ingest_rss:.0f} MB after ingest)"),
    ]
    for label, value, unit in lines:
        print(f"{label:<20} {value:>12,} {unit}")
    print(f"add_table is {figures['speedup_vs_naive']}x the naive one-transaction-per-tweet path")
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
