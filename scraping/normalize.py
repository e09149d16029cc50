"""X API v2 JSON → TweetRecord.

Miners and validators both go through here, so a tweet scraped by a miner and the same
tweet looked up by a validator become equal records unless X itself changed. Each tweet
is validated once, by constructing its TweetRecord; a bad tweet is counted, never raised,
because one odd tweet must not cost the rest of the page. IDs and lists follow the rules
every source shares (scraping/common.py).

`urls` are the links a tweet's author wrote. X API v2 also lists the t.co link it appends
for attached media in `entities.urls` (marked with `media_key`, expanded to the tweet's
own `/photo/1` or `/video/1` page), where X's web API and the scrapers built on it keep it
in `entities.media`; it is left out here, as those media are in `media_urls` already, so
every source gives the same record for the same tweet.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from loguru import logger
from pydantic import ValidationError

from d3.errors import first_error
from d3.record import TweetRecord, tweet_url
from scraping.common import capped, is_media_page, optional_id, parse_id

Json = Mapping[str, Any]

# The fields normalisation reads; a source must request at least these from X.
TWEET_FIELDS = (
    "author_id",
    "conversation_id",
    "created_at",
    "entities",
    "lang",
    "note_tweet",
    "public_metrics",
    "referenced_tweets",
    "attachments",
)
USER_FIELDS = ("username",)
MEDIA_FIELDS = ("url", "preview_image_url", "type")
EXPANSIONS = ("author_id", "referenced_tweets.id", "attachments.media_keys")
# What makes the referenced tweets in includes.tweets complete enough to keep as records.
REFERENCED_EXPANSIONS = (
    "referenced_tweets.id.author_id",
    "referenced_tweets.id.attachments.media_keys",
)

_REFERENCE_FIELD = {
    "replied_to": "in_reply_to_id",
    "quoted": "quoted_id",
    "retweeted": "retweeted_id",
}


@dataclass(slots=True)
class Normalized:
    records: list[TweetRecord] = field(default_factory=list)
    rejected: int = 0
    # IDs of rejected tweets whose ID itself was readable: a look-up reports them as failed.
    rejected_ids: set[int] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class _Includes:
    """Expansion tables, indexed once per response rather than searched once per tweet."""

    usernames: dict[str, str]
    media_urls: dict[str, str]

    @classmethod
    def of(cls, includes: Json | None) -> _Includes:
        includes = includes or {}
        usernames = {
            str(u["id"]): u["username"]
            for u in includes.get("users") or ()
            if "id" in u and "username" in u
        }
        media_urls: dict[str, str] = {}
        for m in includes.get("media") or ():
            link = m.get("url") or m.get("preview_image_url")
            if link and "media_key" in m:
                media_urls[m["media_key"]] = link
        return cls(usernames, media_urls)

    def complete(self, tweet: Json) -> bool:
        """Whether the author and every media item of `tweet` are in the includes: a
        referenced tweet missing either would become a record that differs from X's."""
        keys = (tweet.get("attachments") or {}).get("media_keys") or ()
        return str(tweet.get("author_id")) in self.usernames and all(
            k in self.media_urls for k in keys
        )


class _Reject(ValueError):
    """A tweet that cannot become a record, with the reason for the log."""


def _written_links(entries: Iterable[Json], tweet_id: int) -> Iterator[str]:
    """The expanded links of `entities.urls`, less the attached media's link."""
    for entry in entries:
        if entry.get("media_key"):
            continue
        link = entry.get("expanded_url") or entry.get("url")
        if link and not is_media_page(link, tweet_id):
            yield link


def _record_fields(tweet: Json, inc: _Includes, source: str, now: datetime) -> dict[str, Any]:
    if not isinstance(tweet, Mapping):
        raise _Reject(f"not a tweet object: {type(tweet).__name__}")
    tweet_id = parse_id(tweet.get("id"))
    if tweet_id is None:
        raise _Reject(f"id {tweet.get('id')!r} is not a tweet ID")
    author_id = str(tweet.get("author_id") or "")
    username = inc.usernames.get(author_id)
    if not author_id or username is None:
        raise _Reject("author missing from includes.users (author_id expansion requested?)")
    created_raw = tweet.get("created_at")
    if not created_raw:
        raise _Reject("no created_at (tweet.fields=created_at requested?)")
    # A long post's full text and its entities live in note_tweet; the top level is a stub.
    note = tweet.get("note_tweet") or {}
    text = note.get("text") or tweet.get("text") or ""
    entities = note.get("entities") or tweet.get("entities") or {}
    metrics = tweet.get("public_metrics") or {}
    refs: dict[str, int] = {}
    for ref in tweet.get("referenced_tweets") or ():
        name = _REFERENCE_FIELD.get(ref.get("type"))
        if name is not None:
            refs[name] = int(ref["id"])
    media_keys = (tweet.get("attachments") or {}).get("media_keys") or ()
    return {
        "id": tweet_id,
        "text": text,
        "created_at": datetime.fromisoformat(created_raw),
        "author_id": int(author_id),
        "author_username": username,
        "lang": tweet.get("lang"),
        "conversation_id": optional_id(tweet.get("conversation_id")),
        "in_reply_to_id": refs.get("in_reply_to_id"),
        "quoted_id": refs.get("quoted_id"),
        "retweeted_id": refs.get("retweeted_id"),
        "like_count": metrics.get("like_count", 0),
        "retweet_count": metrics.get("retweet_count", 0),
        "reply_count": metrics.get("reply_count", 0),
        "quote_count": metrics.get("quote_count", 0),
        "view_count": metrics.get("impression_count"),
        "hashtags": capped(h.get("tag") for h in entities.get("hashtags") or ()),
        "urls": capped(_written_links(entities.get("urls") or (), tweet_id)),
        "media_urls": capped(inc.media_urls.get(k) for k in media_keys),
        "url": tweet_url(username, tweet_id),
        "source": source,
        "scraped_at": now,
    }


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return str(first_error(exc))
    return f"{type(exc).__name__}: {exc}"


def normalize_tweet(
    tweet: Json, includes: Json | None, source: str, now: datetime | None = None
) -> TweetRecord:
    """One tweet object (plus its response's includes) as a record; raises ValueError."""
    try:
        inc = _Includes.of(includes)
        return TweetRecord(**_record_fields(tweet, inc, source, now or datetime.now(UTC)))
    except (ValidationError, _Reject, KeyError, TypeError, ValueError) as exc:
        raise ValueError(_reason(exc)) from None


def normalize_payload(
    payload: Json,
    source: str,
    *,
    now: datetime | None = None,
    include_referenced: bool = False,
) -> Normalized:
    """Every tweet in `payload["data"]` as a record, invalid ones counted as rejected.

    `include_referenced` also keeps the replied-to/quoted/retweeted tweets from
    `includes.tweets` whose author and media are in the includes: real tweets the response
    paid for anyway.
    """
    now = now or datetime.now(UTC)
    inc = _Includes.of(payload.get("includes"))
    out = Normalized()
    tweets: list[Any] = list(payload.get("data") or ())
    if include_referenced:
        seen = {str(t.get("id")) for t in tweets if isinstance(t, Mapping)}
        for extra in (payload.get("includes") or {}).get("tweets") or ():
            if str(extra.get("id")) not in seen and inc.complete(extra):
                seen.add(str(extra.get("id")))
                tweets.append(extra)
    for tweet in tweets:
        try:
            out.records.append(TweetRecord(**_record_fields(tweet, inc, source, now)))
        except (ValidationError, _Reject, KeyError, TypeError, ValueError) as exc:
            out.rejected += 1
            raw_id = tweet.get("id") if isinstance(tweet, Mapping) else None
            if (readable := parse_id(raw_id)) is not None:
                out.rejected_ids.add(readable)
            logger.debug("rejected tweet {}: {}", raw_id, _reason(exc))
    return out
