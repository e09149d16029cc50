"""One tweet, three sources: X API v2, twscrape and Apify must give the same record.

A validator checks a miner's tweet with whichever source it runs, so a field that one
source fills differently from another is a difference D3 made, not X. The X API v2 record
comes through XApiSource from the local X server; the same corpus tweet is then written
the way X's web GraphQL API serves it (what twscrape parses, with twscrape's own parser)
and the way apidojo/tweet-scraper passes it on (legacy v1.1 entities). There, attached
media sit in `entities.media` / `extended_entities.media`; X API v2 instead lists the
media's t.co link, expanded to the tweet's own `/photo/1` page, in `entities.urls`.

A long post with more hashtags and links than a record keeps (and mentions, which no
record keeps) goes through all three sources' look-ups: X API v2 from the local X server,
twscrape from a TweetDetail body through its real account pool, Apify from an Actor run's
dataset. X's web API gives such a post's `legacy` entities for its first 280 characters
only and the whole post's in `note_tweet`; the Actor item is taken to carry the whole
post's entities with its `fullText`. Every list keeps the same first 100 distinct items.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from d3.dev.x_corpus import Corpus
from d3.dev.x_server import LocalXServer
from d3.record import MAX_LIST_ITEMS, TweetRecord
from scraping.apify_source import ApifySource, item_to_record
from scraping.common import capped
from scraping.twscrape_source import TwscrapeSource, import_twscrape, tweet_to_record
from tests.scraping.support import SourceFactory, record_fields, run


@pytest.fixture(scope="module")
def tw() -> ModuleType:
    try:
        return import_twscrape()
    except ImportError:
        pytest.skip("twscrape is not installed")


def photo_tweet(corpus: Corpus) -> dict[str, Any]:
    """A plain post with photos and a link of its own: the case where the sources differed."""
    for tweet in corpus.tweets:
        keys = tweet.get("attachments", {}).get("media_keys", [])
        urls = tweet.get("entities", {}).get("urls", [])
        if (
            keys
            and all(corpus.media[k]["type"] == "photo" for k in keys)
            and any("media_key" not in u for u in urls)
            and not tweet.get("referenced_tweets")
            and "note_tweet" not in tweet
        ):
            return tweet
    raise AssertionError("the corpus has no plain post with photos and a link")


def media_of(corpus: Corpus, tweet: dict[str, Any]) -> list[dict[str, Any]]:
    """The tweet's attached media as v1.1 media entities (none: an empty list)."""
    keys = tweet.get("attachments", {}).get("media_keys", [])
    if not keys:
        return []
    [media_link] = [u for u in tweet["entities"]["urls"] if "media_key" in u]
    return [
        {
            "id_str": key.split("_", 1)[1],
            "media_key": key,
            "type": corpus.media[key]["type"],
            # Every media item of a tweet shares the one t.co link at the end of its text.
            "url": media_link["url"],
            "expanded_url": media_link["expanded_url"],
            "display_url": media_link["display_url"],
            "indices": [media_link["start"], media_link["end"]],
            "media_url_https": corpus.media[key]["url"],
        }
        for key in keys
    ]


def v1_entities(corpus: Corpus, entities: dict[str, Any]) -> dict[str, Any]:
    """X API v2 entities under their v1.1 names, as X's web API and the Actor write them
    (the media's link is not among v1.1 `urls`: it is the media entities' `url`)."""
    return {
        "hashtags": [
            {"text": h["tag"], "indices": [h["start"], h["end"]]}
            for h in entities.get("hashtags", [])
        ],
        "urls": [
            {
                "url": u["url"],
                "expanded_url": u["expanded_url"],
                "display_url": u["display_url"],
                "indices": [u["start"], u["end"]],
            }
            for u in entities.get("urls", [])
            if "media_key" not in u
        ],
        "user_mentions": [
            {
                "id_str": m["id"],
                "screen_name": m["username"],
                "name": corpus.users[m["id"]]["name"],
                "indices": [m["start"], m["end"]],
            }
            for m in entities.get("mentions", [])
        ],
        "symbols": [],
    }


def legacy_of(corpus: Corpus, tweet: dict[str, Any]) -> dict[str, Any]:
    """The tweet's v1.1 `legacy` object, as X's web API nests it in GraphQL: a long post's
    text and entities are those of its first 280 characters (the stub)."""
    media = media_of(corpus, tweet)
    metrics = tweet["public_metrics"]
    created = datetime.fromisoformat(tweet["created_at"])
    legacy = {
        "full_text": tweet["text"],
        "created_at": created.strftime("%a %b %d %H:%M:%S +0000 %Y"),
        "lang": tweet["lang"],
        "user_id_str": tweet["author_id"],
        "conversation_id_str": tweet["conversation_id"],
        "favorite_count": metrics["like_count"],
        "retweet_count": metrics["retweet_count"],
        "reply_count": metrics["reply_count"],
        "quote_count": metrics["quote_count"],
        "entities": v1_entities(corpus, tweet.get("entities", {})),
    }
    if media:
        legacy["entities"]["media"] = media
        legacy["extended_entities"] = {"media": media}
    return legacy


def graphql_page(corpus: Corpus, tweet: dict[str, Any]) -> dict[str, Any]:
    """A TweetDetail-like body holding the tweet, in the shape twscrape parses."""
    user = corpus.users[tweet["author_id"]]
    obj = {
        "__typename": "Tweet",
        "rest_id": tweet["id"],
        "core": {
            "user_results": {
                "result": {
                    "__typename": "User",
                    "rest_id": user["id"],
                    "legacy": {"screen_name": user["username"], "name": user["name"]},
                }
            }
        },
        "legacy": legacy_of(corpus, tweet),
        "views": {"count": str(tweet["public_metrics"]["impression_count"])},
    }
    if "note_tweet" in tweet:  # the whole long post, entities under their v1.1 names
        note = tweet["note_tweet"]
        entity_set = v1_entities(corpus, note.get("entities", {}))
        result = {"id": "Tm90ZVR3ZWV0OjE=", "text": note["text"], "entity_set": entity_set}
        obj["note_tweet"] = {"is_expandable": True, "note_tweet_results": {"result": result}}
    entry = {
        "entryId": f"tweet-{tweet['id']}",
        "content": {"itemContent": {"tweet_results": {"result": obj}}},
    }
    return {"data": {"timeline": {"instructions": [{"entries": [entry]}]}}}


def apify_item(corpus: Corpus, tweet: dict[str, Any]) -> dict[str, Any]:
    """The tweet as apidojo/tweet-scraper outputs it: legacy entities, camelCase fields."""
    user = corpus.users[tweet["author_id"]]
    legacy = legacy_of(corpus, tweet)
    whole = tweet.get("note_tweet") or tweet  # fullText and its entities: the whole post
    entities = v1_entities(corpus, whole.get("entities", {}))
    if media := media_of(corpus, tweet):
        entities["media"] = media
    metrics = tweet["public_metrics"]
    return {
        "type": "tweet",
        "id": tweet["id"],
        "url": f"https://x.com/{user['username']}/status/{tweet['id']}",
        "twitterUrl": f"https://twitter.com/{user['username']}/status/{tweet['id']}",
        "text": tweet["text"],
        "fullText": whole["text"],
        "retweetCount": metrics["retweet_count"],
        "replyCount": metrics["reply_count"],
        "likeCount": metrics["like_count"],
        "quoteCount": metrics["quote_count"],
        "viewCount": metrics["impression_count"],
        "bookmarkCount": metrics["bookmark_count"],
        "createdAt": legacy["created_at"],
        "lang": tweet["lang"],
        "isReply": False,
        "conversationId": tweet["conversation_id"],
        "author": {"type": "user", "userName": user["username"], "id": user["id"]},
        "entities": entities,
        "extendedEntities": {"media": media} if media else {},
        "isRetweet": False,
        "isQuote": False,
    }


def test_the_three_sources_agree_on_a_tweet_with_photos(
    server: LocalXServer, make_source: SourceFactory, tw: ModuleType
) -> None:
    corpus = server.corpus
    tweet = photo_tweet(corpus)
    tweet_id = int(tweet["id"])
    own_links = [u["expanded_url"] for u in tweet["entities"]["urls"] if "media_key" not in u]
    photos = [corpus.media[k]["url"] for k in tweet["attachments"]["media_keys"]]

    x_api = run(make_source().lookup([tweet_id])).found[tweet_id]
    twscrape = tweet_to_record(tw.parse_tweet(graphql_page(corpus, tweet), tweet_id), "twscrape")
    apify = item_to_record(apify_item(corpus, tweet), "apify")

    assert x_api.urls == own_links  # not the tweet's own .../photo/1 page
    assert x_api.media_urls == photos
    for other in (twscrape, apify):
        assert (other.urls, other.media_urls) == (x_api.urls, x_api.media_urls)
        assert record_fields(other) == record_fields(x_api)


def test_x_api_v2_media_links_are_not_urls_in_search_either(
    server: LocalXServer, make_source: SourceFactory
) -> None:
    """Every record a search returns, retweets of media tweets included: X marks the
    media's link with `media_key`, and a retweet carries the original's."""
    result = run(make_source().search("#photography OR #AI OR #coffee", limit=400))
    with_media = [r for r in result.records if r.media_urls]
    assert with_media  # the sample must hold media, or this proves nothing
    for record in result.records:
        assert not [u for u in record.urls if "/photo/" in u or "/video/" in u], record.id


def test_legacy_media_links_listed_as_urls_are_dropped_too(tw: ModuleType) -> None:
    """Defensive: should a GraphQL page or an Actor's item list the media link among
    `urls` the way X API v2 does (on x.com or twitter.com), twscrape and Apify records must
    still match the X API v2 one."""
    corpus = Corpus.generate(600, seed=4)
    tweet = photo_tweet(corpus)
    tweet_id = int(tweet["id"])
    [media_link] = [u for u in tweet["entities"]["urls"] if "media_key" in u]
    listed = {k: media_link[k] for k in ("url", "expanded_url", "display_url")}

    page = graphql_page(corpus, tweet)
    obj = page["data"]["timeline"]["instructions"][0]["entries"][0]["content"]
    obj["itemContent"]["tweet_results"]["result"]["legacy"]["entities"]["urls"].append(listed)
    item = apify_item(corpus, tweet)
    item["entities"] = {**item["entities"], "urls": [*item["entities"]["urls"], listed]}
    twitter_com = dict(listed, url="https://t.co/other")
    twitter_com["expanded_url"] = media_link["expanded_url"].replace("x.com", "twitter.com")
    item["entities"]["urls"].append(twitter_com)

    expected = [u["expanded_url"] for u in tweet["entities"]["urls"] if "media_key" not in u]
    assert tweet_to_record(tw.parse_tweet(page, tweet_id), "twscrape").urls == expected
    assert item_to_record(item, "apify").urls == expected


# -- more than a record keeps, through every source's look-up ----------------------------

COOKIE_ACCOUNT = "alice_bot:pw:alice@example.com:mailpw:auth_token=aaa; ct0=bbb"
OVER = 20  # items beyond the record's cap


def overfull_post(corpus: Corpus) -> dict[str, Any]:
    """A long post with more links, hashtags and mentions than a record keeps, its first
    link and hashtag written twice up front: a list that kept the repeat would keep one
    item fewer under the cap, so the sources agree only if they drop repeats first."""
    links = [f"https://example.org/page/{i}" for i in range(MAX_LIST_ITEMS + OVER)]
    tags = [f"#tag{i}" for i in range(MAX_LIST_ITEMS + OVER)]
    handles = [f"@{user['username']}" for user in corpus.users.values()]
    mentions = [handles[i % len(handles)] for i in range(MAX_LIST_ITEMS + OVER)]
    words = [links[0], links[0], links[1], tags[0], tags[0], *tags[1:], *mentions, *links[2:]]
    return corpus.post(words, at=datetime(2026, 3, 1, 12, 30, tzinfo=UTC))


class _TweetDetails:
    """twscrape.API's surface for look-ups: a real account pool, bodies from a dict."""

    def __init__(self, pool: Any, bodies: dict[int, dict[str, Any]]) -> None:
        self.pool = pool
        self.bodies = bodies

    async def tweet_details_raw(self, twid: int) -> dict[str, Any] | None:
        return self.bodies.get(twid)


class _ActorRuns:
    """apify-client's surface for one Actor run that succeeds with `items`."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    def actor(self, actor_id: str) -> _ActorRuns:
        return self

    async def call(self, **options: Any) -> SimpleNamespace:
        return SimpleNamespace(
            id="run1", status="SUCCEEDED", status_message=None, default_dataset_id="ds1"
        )

    def dataset(self, dataset_id: str) -> _ActorRuns:
        return self

    async def iterate_items(self, limit: int | None = None) -> AsyncIterator[dict[str, Any]]:
        for item in self.items[:limit]:
            yield item


def test_the_one_list_rule() -> None:
    """As strings, in order, no empty ones, no repeats, then at most MAX_LIST_ITEMS."""
    assert capped(["a", "", None, "b", "a", 7]) == ["a", "b", "7"]
    many = ["x", "x", *(f"t{i}" for i in range(MAX_LIST_ITEMS + 5))]
    assert capped(many) == ["x", *(f"t{i}" for i in range(MAX_LIST_ITEMS - 1))]


def test_the_three_sources_agree_beyond_the_caps(
    make_source: SourceFactory, tw: ModuleType, tmp_path: Path
) -> None:
    pytest.importorskip("apify_client")
    with LocalXServer(seed=8, size=200, end=datetime(2026, 3, 1, 12, tzinfo=UTC)) as server:
        tweet = overfull_post(server.corpus)
        tweet_id = int(tweet["id"])
        assert "note_tweet" in tweet and len(tweet["note_tweet"]["entities"]["urls"]) > 100
        x_api = run(make_source(target=server).lookup([tweet_id])).found[tweet_id]
        [searched] = run(make_source(target=server).search("#tag7", limit=10)).records
        corpus = server.corpus

    db = tmp_path / "accounts.db"
    pool = tw.AccountsPool(db_file=str(db), raise_when_no_account=True, wait_timeout=0)
    details = _TweetDetails(pool, {tweet_id: graphql_page(corpus, tweet)})
    twscrape = TwscrapeSource(accounts=COOKIE_ACCOUNT, db_path=db, api=details)
    apify = ApifySource("token", client=_ActorRuns([apify_item(corpus, tweet)]))
    records: dict[str, TweetRecord] = {
        "x_api search": searched,
        "twscrape": run(twscrape.lookup([tweet_id])).found[tweet_id],
        "apify": run(apify.lookup([tweet_id])).found[tweet_id],
    }

    written = [u["expanded_url"] for u in tweet["note_tweet"]["entities"]["urls"]]
    assert x_api.urls == list(dict.fromkeys(written))[:MAX_LIST_ITEMS]
    assert x_api.hashtags == [f"tag{i}" for i in range(MAX_LIST_ITEMS)]
    assert x_api.text == tweet["note_tweet"]["text"]
    for name, record in records.items():
        assert (record.urls, record.hashtags) == (x_api.urls, x_api.hashtags), name
        assert record_fields(record) == record_fields(x_api), name
