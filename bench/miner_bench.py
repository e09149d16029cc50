"""Miner pipeline: X API v2 JSON pages → records → durable store → Parquet shards.

The path a miner runs for every tweet it earns credit for, stage by stage:

1. decode     `json.loads` of a search page, as tweepy hands it over
2. normalize  `scraping.normalize.normalize_payload` (one pydantic TweetRecord per tweet)
3. store      `TweetStore.add` once per page, as the scrape loop does (one fsync'd
              transaction per page)
4. publish    `claim_batch` + `encode_shard` (+ `mark_published`) in shard-sized batches

Pages are built from `d3.dev.x_corpus.Corpus` (the local X server's corpus: replies,
quotes, retweets, media, long posts), shaped as a search response with the fields and
expansions XApiSource requests, and JSON-encoded a chunk at a time outside the timed
regions, so generation never counts and never holds all tweets in memory at once.

The baseline, in the same process and on the same disk, is the naive per-tweet path on a
sample: `normalize_tweet` (expansion tables rebuilt per tweet) and `TweetStore.add([one])`
(one fsync'd transaction per tweet). The ratio is the figure to trust on a noisy machine.

    python bench/miner_bench.py [--tweets 1000000] [--chunk 10000] [--page 100]
                                [--shard-rows 100000] [--baseline-tweets 2000]
                                [--dir DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from loguru import logger

from d3.dev.x_corpus import Corpus
from d3.miner.store import TweetStore
from d3.shards import encode_shard
from scraping.normalize import TWEET_FIELDS, normalize_payload, normalize_tweet

BASE = datetime(2026, 1, 1, tzinfo=UTC)
# Each chunk gets its own hour, so chunks never share a tweet ID.
CHUNK_SPAN = timedelta(hours=1)
SOURCE = "x_api"
_TWEET_KEYS = ("id", "text", "edit_history_tweet_ids", *TWEET_FIELDS)
_MEDIA_KEYS = ("media_key", "type", "url", "preview_image_url")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def search_page(corpus: Corpus, tweets: list[dict[str, Any]]) -> dict[str, Any]:
    """A /2/tweets/search response over `tweets` with XApiSource's fields and expansions."""
    authors = dict.fromkeys(t["author_id"] for t in tweets)
    keys = dict.fromkeys(
        k for t in tweets for k in (t.get("attachments") or {}).get("media_keys", ())
    )
    includes: dict[str, Any] = {
        "users": [{k: corpus.users[u][k] for k in ("id", "name", "username")} for u in authors]
    }
    if keys:
        includes["media"] = [
            {k: corpus.media[m][k] for k in _MEDIA_KEYS if k in corpus.media[m]} for m in keys
        ]
    return {
        "data": [{k: t[k] for k in _TWEET_KEYS if k in t} for t in tweets],
        "includes": includes,
        "meta": {
            "result_count": len(tweets),
            "newest_id": tweets[0]["id"],
            "oldest_id": tweets[-1]["id"],
        },
    }


def chunk_pages(index: int, size: int, page: int) -> list[bytes]:
    """`size` tweets as JSON search pages of `page` tweets, newest first."""
    corpus = Corpus.generate(size, seed=index, end=BASE + CHUNK_SPAN * (index + 1), span=CHUNK_SPAN)
    newest_first = corpus.tweets[::-1]
    return [
        json.dumps(search_page(corpus, newest_first[i : i + page])).encode()
        for i in range(0, len(newest_first), page)
    ]


def chunks(tweets: int, chunk: int, page: int) -> Iterator[tuple[list[bytes], float]]:
    """Chunks of pages, with the seconds spent generating each (not part of the pipeline)."""
    for index, start in enumerate(range(0, tweets, chunk)):
        began = time.perf_counter()
        pages = chunk_pages(index, min(chunk, tweets - start), page)
        yield pages, time.perf_counter() - began


@dataclass
class Timings:
    tweets: int = 0
    records: int = 0
    rejected: int = 0
    stored: int = 0
    seconds: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(
            ("generate", "decode", "normalize", "store", "claim", "encode", "mark"), 0.0
        )
    )


def ingest(store: TweetStore, pages: list[bytes], now: datetime, t: Timings) -> None:
    """Decode, normalise and store one chunk, page by page, as the scrape loop does."""
    clock = time.perf_counter
    for raw in pages:
        t0 = clock()
        payload = json.loads(raw)
        t1 = clock()
        page = normalize_payload(payload, SOURCE, now=now)
        t2 = clock()
        t.stored += store.add(page.records)
        t3 = clock()
        t.seconds["decode"] += t1 - t0
        t.seconds["normalize"] += t2 - t1
        t.seconds["store"] += t3 - t2
        t.tweets += len(payload["data"])
        t.records += len(page.records)
        t.rejected += page.rejected


def publish(store: TweetStore, shard_rows: int, t: Timings) -> int:
    """Claim, encode and mark every stored row in shard-sized batches; returns the rows."""
    rows = 0
    clock = time.perf_counter
    while True:
        t0 = clock()
        batch = store.claim_batch(shard_rows)
        t1 = clock()
        if batch is None:
            t.seconds["claim"] += t1 - t0
            return rows
        shard = encode_shard(batch.table)
        t2 = clock()
        store.mark_published(batch.batch_id, shard.sha256)
        t3 = clock()
        t.seconds["claim"] += t1 - t0
        t.seconds["encode"] += t2 - t1
        t.seconds["mark"] += t3 - t2
        rows += batch.rows


def naive(path: Path, tweets: int, now: datetime) -> tuple[float, float, int]:
    """The per-tweet path on a sample: seconds normalising, seconds storing, tweets."""
    pages = [json.loads(p) for p in chunk_pages(0, tweets, 100)]  # its own store
    normalize_s = store_s = 0.0
    count = 0
    with TweetStore(path) as store:
        for payload in pages:
            for tweet in payload["data"]:
                t0 = time.perf_counter()
                record = normalize_tweet(tweet, payload["includes"], SOURCE, now)
                t1 = time.perf_counter()
                store.add([record])
                normalize_s += t1 - t0
                store_s += time.perf_counter() - t1
                count += 1
    return normalize_s, store_s, count


def per_s(count: int, seconds: float) -> int:
    return round(count / seconds) if seconds > 0 else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tweets", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=10_000, help="tweets generated at a time")
    parser.add_argument("--page", type=int, default=100, help="tweets per search page")
    parser.add_argument("--shard-rows", type=int, default=100_000, help="rows per shard")
    parser.add_argument("--baseline-tweets", type=int, default=2000)
    parser.add_argument("--dir", type=Path, default=None, help="where the stores go")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    # Tweets must not be "from the future" relative to scraped_at.
    now = BASE + CHUNK_SPAN * (args.tweets // args.chunk + 2)
    t = Timings()

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        with TweetStore(Path(tmp) / "miner.db") as store:
            for pages, generate_s in chunks(args.tweets, args.chunk, args.page):
                t.seconds["generate"] += generate_s
                ingest(store, pages, now, t)
            ingest_rss = peak_rss_mb()
            published = publish(store, args.shard_rows, t)
        naive_norm_s, naive_store_s, naive_n = naive(
            Path(tmp) / "naive.db", args.baseline_tweets, now
        )
    assert t.tweets == args.tweets, t.tweets
    assert t.stored == t.records == published, (t.stored, t.records, published)

    s = t.seconds
    pipeline_s = sum(v for k, v in s.items() if k != "generate")
    naive_s = naive_norm_s + naive_store_s
    figures: dict[str, Any] = {
        "tweets": t.tweets,
        "records": t.records,
        "rejected": t.rejected,
        "decode_tweets_per_s": per_s(t.tweets, s["decode"]),
        "normalize_tweets_per_s": per_s(t.tweets, s["normalize"]),
        "store_tweets_per_s": per_s(t.records, s["store"]),
        "claim_tweets_per_s": per_s(published, s["claim"]),
        "encode_tweets_per_s": per_s(published, s["encode"]),
        "mark_tweets_per_s": per_s(published, s["mark"]),
        "overall_tweets_per_s": per_s(t.tweets, pipeline_s),
        "naive_normalize_tweets_per_s": per_s(naive_n, naive_norm_s),
        "naive_store_tweets_per_s": per_s(naive_n, naive_store_s),
        "naive_tweets_per_s": per_s(naive_n, naive_s),
        "pipeline_s": round(pipeline_s, 2),
        "generate_s": round(s["generate"], 2),
        "peak_rss_mb_after_ingest": round(ingest_rss),
        "peak_rss_mb": round(peak_rss_mb()),
    }
    figures["speedup_vs_naive"] = round(
        figures["overall_tweets_per_s"] / max(1, figures["naive_tweets_per_s"]), 1
    )
    fig = figures
    rows = [
        ("tweets", t.tweets, f"({t.records:,} records, {t.rejected:,} rejected)"),
        ("decode", fig["decode_tweets_per_s"], f"tweets/s ({s['decode']:.1f}s)"),
        ("normalize", fig["normalize_tweets_per_s"], f"tweets/s ({s['normalize']:.1f}s)"),
        ("store.add", fig["store_tweets_per_s"], f"tweets/s ({s['store']:.1f}s, per page)"),
        ("claim_batch", fig["claim_tweets_per_s"], f"tweets/s ({s['claim']:.1f}s)"),
        ("encode_shard", fig["encode_tweets_per_s"], f"tweets/s ({s['encode']:.1f}s)"),
        ("mark_published", fig["mark_tweets_per_s"], f"tweets/s ({s['mark']:.1f}s)"),
        ("overall", fig["overall_tweets_per_s"], f"tweets/s ({pipeline_s:.1f}s)"),
        ("naive per tweet", fig["naive_tweets_per_s"], f"tweets/s ({naive_n:,} sampled)"),
        ("  normalize_tweet", fig["naive_normalize_tweets_per_s"], "tweets/s"),
        ("  add([one])", fig["naive_store_tweets_per_s"], "tweets/s"),
        ("peak RSS", fig["peak_rss_mb"], f"MB ({ingest_rss:.0f} MB after ingest)"),
    ]
    for label, value, unit in rows:
        print(f"{label:<18} {value:>12,} {unit}")
    print(f"(generating the pages took {s['generate']:.1f}s, not counted)")
    print(f"the pipeline is {fig['speedup_vs_naive']}x the naive per-tweet path")
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
