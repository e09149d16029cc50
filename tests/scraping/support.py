"""Helpers shared by the scraping tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any, TypeVar

from d3.dev.x_corpus import Corpus
from d3.dev.x_query import compile_query
from d3.record import TweetRecord
from scraping.x_api import XApiSource

T = TypeVar("T")
# make_source(target_server=None, **XApiSource options) -> XApiSource
SourceFactory = Callable[..., XApiSource]


class FakeSleep:
    """Records the waits a source asks for instead of waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def matching_ids(corpus: Corpus, query: str) -> list[int]:
    """Brute force over the corpus, newest first: what a search should return."""
    matches = compile_query(query)
    return [i for i in reversed(corpus.ids) if matches(corpus.keys[i])]


def expected_fields(corpus: Corpus, tweet_id: int) -> dict[str, Any]:
    """The record fields for a corpus tweet, read straight from the raw X objects
    (independently of scraping.normalize)."""
    tweet = corpus.by_id[tweet_id]
    full = tweet.get("note_tweet") or tweet
    entities = full.get("entities", {})
    refs = {r["type"]: int(r["id"]) for r in tweet.get("referenced_tweets", [])}
    media = [corpus.media[k] for k in tweet.get("attachments", {}).get("media_keys", [])]
    metrics = tweet["public_metrics"]
    username = corpus.users[tweet["author_id"]]["username"]
    return {
        "id": tweet_id,
        "text": full["text"],
        "created_at": datetime.fromisoformat(tweet["created_at"]),
        "author_id": int(tweet["author_id"]),
        "author_username": username,
        "lang": tweet["lang"],
        "conversation_id": int(tweet["conversation_id"]),
        "in_reply_to_id": refs.get("replied_to"),
        "quoted_id": refs.get("quoted"),
        "retweeted_id": refs.get("retweeted"),
        "like_count": metrics["like_count"],
        "retweet_count": metrics["retweet_count"],
        "reply_count": metrics["reply_count"],
        "quote_count": metrics["quote_count"],
        "view_count": metrics["impression_count"],
        "hashtags": [h["tag"] for h in entities.get("hashtags", [])],
        # X marks the link it appends for attached media with media_key: not a written link.
        "urls": [u["expanded_url"] for u in entities.get("urls", []) if "media_key" not in u],
        "media_urls": [m.get("url") or m["preview_image_url"] for m in media],
        "url": f"https://x.com/{username}/status/{tweet_id}",
    }


def record_fields(record: TweetRecord) -> dict[str, Any]:
    """A record without the fields that depend on who scraped it and when."""
    return record.model_dump(exclude={"source", "scraped_at"})
