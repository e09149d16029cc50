"""Deterministic synthetic tweets with valid snowflake IDs, for tests, benches and dev nets.

Same seed, same tweets: two processes (a miner and a test, say) agree without sharing
files.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pyarrow as pa

from d3.record import ARROW_SCHEMA, TweetRecord, tweet_url
from d3.snowflake import datetime_to_id

_WORDS = (
    "bittensor",
    "subnet",
    "data",
    "model",
    "training",
    "open",
    "web",
    "decentralized",
    "validator",
    "miner",
    "tweet",
    "python",
    "rust",
    "inference",
    "dataset",
    "token",
    "stake",
    "emission",
    "research",
    "agents",
    "compute",
    "gpu",
)
_LANGS = ("en", "en", "en", "es", "ja", "de", "fr")


def synthetic_rows(
    n: int,
    seed: int = 0,
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC),
    source: str = "synthetic",
) -> dict[str, list]:
    """`n` tweets as columns in the record schema, one every ~second from `start`."""
    rng = random.Random(seed)
    cols: dict[str, list] = {name: [] for name in ARROW_SCHEMA.names}
    when = start
    for i in range(n):
        when += timedelta(milliseconds=rng.randint(1, 2000))
        created = when.replace(microsecond=when.microsecond // 1000 * 1000)
        tweet_id = datetime_to_id(created, sequence=rng.randrange(1 << 22))
        author = rng.randrange(1, 50_000)
        username = f"user_{author}"
        tags = rng.sample(_WORDS, rng.randint(0, 2))
        cols["id"].append(tweet_id)
        cols["text"].append(" ".join(rng.choices(_WORDS, k=rng.randint(4, 30))) + f" #{i}")
        cols["created_at"].append(created)
        cols["author_id"].append(author)
        cols["author_username"].append(username)
        cols["lang"].append(rng.choice(_LANGS))
        cols["conversation_id"].append(tweet_id)
        cols["in_reply_to_id"].append(None)
        cols["quoted_id"].append(None)
        cols["retweeted_id"].append(None)
        cols["like_count"].append(rng.randrange(1000))
        cols["retweet_count"].append(rng.randrange(100))
        cols["reply_count"].append(rng.randrange(50))
        cols["quote_count"].append(rng.randrange(20))
        cols["view_count"].append(rng.randrange(100_000))
        cols["hashtags"].append(tags)
        cols["urls"].append([])
        cols["media_urls"].append([])
        cols["url"].append(tweet_url(username, tweet_id))
        cols["source"].append(source)
        cols["scraped_at"].append(created + timedelta(minutes=5))
    return cols


def synthetic_table(n: int, seed: int = 0, **kwargs) -> pa.Table:
    return pa.Table.from_pydict(synthetic_rows(n, seed, **kwargs), schema=ARROW_SCHEMA)


def synthetic_records(n: int, seed: int = 0, **kwargs) -> list[TweetRecord]:
    return [TweetRecord.model_validate(r) for r in synthetic_table(n, seed, **kwargs).to_pylist()]
