"""X API v2 JSON → TweetRecord, on hand-written payloads shaped like X's."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from d3.record import MAX_LIST_ITEMS
from d3.snowflake import datetime_to_id
from scraping.common import is_media_page
from scraping.normalize import normalize_payload, normalize_tweet

CREATED = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)
TWEET_ID = datetime_to_id(CREATED.replace(microsecond=431_000), sequence=77)
PARENT_ID = datetime_to_id(datetime(2026, 2, 3, 4, 0, tzinfo=UTC), sequence=1)
QUOTED_ID = datetime_to_id(datetime(2026, 2, 2, tzinfo=UTC), sequence=2)
NOW = datetime(2026, 2, 4, tzinfo=UTC)


def tweet(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": str(TWEET_ID),
        "text": "@alice training run done #AI #LLM https://t.co/abc https://t.co/pic",
        "edit_history_tweet_ids": [str(TWEET_ID)],
        "author_id": "42",
        "created_at": "2026-02-03T04:05:06.000Z",
        "lang": "en",
        "conversation_id": str(PARENT_ID),
        "referenced_tweets": [
            {"type": "replied_to", "id": str(PARENT_ID)},
            {"type": "quoted", "id": str(QUOTED_ID)},
        ],
        "attachments": {"media_keys": ["3_1", "7_2"]},
        "public_metrics": {
            "retweet_count": 3,
            "reply_count": 2,
            "like_count": 40,
            "quote_count": 1,
            "bookmark_count": 5,
            "impression_count": 999,
        },
        "entities": {
            "hashtags": [
                {"start": 25, "end": 28, "tag": "AI"},
                {"start": 29, "end": 33, "tag": "LLM"},
            ],
            "mentions": [{"start": 0, "end": 6, "username": "alice", "id": "7"}],
            "urls": [
                {
                    "start": 34,
                    "end": 53,
                    "url": "https://t.co/abc",
                    "expanded_url": "https://arxiv.org/abs/1",
                },
                {  # X API v2's entry for the attached media: not a link the author wrote
                    "start": 54,
                    "end": 77,
                    "url": "https://t.co/pic",
                    "expanded_url": f"https://x.com/bob_builds/status/{TWEET_ID}/photo/1",
                    "display_url": "pic.x.com/pic",
                    "media_key": "3_1",
                },
            ],
        },
    }
    base.update(overrides)
    return base


def includes() -> dict[str, Any]:
    return {
        "users": [
            {"id": "42", "name": "Bob", "username": "bob_builds"},
            {"id": "7", "name": "Alice", "username": "alice"},
        ],
        "media": [
            {"media_key": "3_1", "type": "photo", "url": "https://pbs.twimg.com/media/a.jpg"},
            {
                "media_key": "7_2",
                "type": "video",
                "preview_image_url": "https://pbs.twimg.com/ext_tw_video_thumb/2/pu/img/b.jpg",
            },
        ],
        "tweets": [
            {
                "id": str(PARENT_ID),
                "text": "what are you training?",
                "author_id": "7",
                "created_at": "2026-02-03T04:00:00.000Z",
                "conversation_id": str(PARENT_ID),
            },
            {
                "id": str(QUOTED_ID),
                "text": "quoted by someone we know nothing about",
                "author_id": "999",
                "created_at": "2026-02-02T00:00:00.000Z",
            },
        ],
    }


def payload(*tweets: dict[str, Any]) -> dict[str, Any]:
    return {"data": list(tweets), "includes": includes(), "meta": {"result_count": len(tweets)}}


def test_every_field_is_mapped() -> None:
    out = normalize_payload(payload(tweet()), "x_api", now=NOW)
    assert out.rejected == 0
    [record] = out.records
    assert record.model_dump() == {
        "id": TWEET_ID,
        "text": "@alice training run done #AI #LLM https://t.co/abc https://t.co/pic",
        "created_at": CREATED,
        "author_id": 42,
        "author_username": "bob_builds",
        "lang": "en",
        "conversation_id": PARENT_ID,
        "in_reply_to_id": PARENT_ID,
        "quoted_id": QUOTED_ID,
        "retweeted_id": None,
        "like_count": 40,
        "retweet_count": 3,
        "reply_count": 2,
        "quote_count": 1,
        "view_count": 999,
        "hashtags": ["AI", "LLM"],
        "urls": ["https://arxiv.org/abs/1"],
        "media_urls": [
            "https://pbs.twimg.com/media/a.jpg",
            "https://pbs.twimg.com/ext_tw_video_thumb/2/pu/img/b.jpg",
        ],
        "url": f"https://x.com/bob_builds/status/{TWEET_ID}",
        "source": "x_api",
        "scraped_at": NOW,
    }


def test_only_written_links_are_urls() -> None:
    """The media's link goes whether X marks it with media_key or only its expansion shows
    it; another tweet's media page, and a bare t.co link, are links like any other."""
    own = f"https://twitter.com/Bob_Builds/status/{TWEET_ID}/video/1"
    other = f"https://x.com/alice/status/{QUOTED_ID}/photo/2"
    urls = [
        {"url": "https://t.co/m", "media_key": "7_2"},
        {"url": "https://t.co/v", "expanded_url": own},
        {"url": "https://t.co/o", "expanded_url": other},
        {"url": "https://t.co/bare"},
    ]
    [record] = normalize_payload(payload(tweet(entities={"urls": urls})), "x_api", now=NOW).records
    assert record.urls == [other, "https://t.co/bare"]
    assert record.media_urls  # the media themselves stay, in media_urls


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"https://x.com/bob/status/{TWEET_ID}/photo/1", True),
        (f"https://www.twitter.com/bob/status/{TWEET_ID}/video/1/", True),
        (f"https://mobile.x.com/bob/status/{TWEET_ID}/photo/4", True),
        (f"https://x.com/bob/status/{TWEET_ID}", False),
        (f"https://x.com/bob/status/{TWEET_ID + 1}/photo/1", False),
        (f"https://x.com/bob/status/{TWEET_ID}/photo/1/extra", False),
        (f"https://evil.example/x.com/bob/status/{TWEET_ID}/photo/1", False),
        (None, False),
    ],
)
def test_is_media_page(url: str | None, expected: bool) -> None:
    assert is_media_page(url, TWEET_ID) is expected


def test_long_post_uses_note_tweet_text_and_entities() -> None:
    full = "a long post " * 40 + "#AI #Deep"
    note = {
        "text": full,
        "entities": {"hashtags": [{"start": 480, "end": 483, "tag": "AI"}, {"tag": "Deep"}]},
    }
    out = normalize_payload(
        payload(tweet(text=full[:279] + "…", note_tweet=note)), "x_api", now=NOW
    )
    [record] = out.records
    assert record.text == full
    assert record.hashtags == ["AI", "Deep"]


def test_retweet_and_minimal_tweet() -> None:
    minimal = {
        "id": str(TWEET_ID),
        "text": "RT @alice: hello",
        "author_id": "42",
        "created_at": "2026-02-03T04:05:06.000Z",
        "referenced_tweets": [{"type": "retweeted", "id": str(PARENT_ID)}],
    }
    [record] = normalize_payload(payload(minimal), "x_api", now=NOW).records
    assert record.retweeted_id == PARENT_ID
    assert (record.in_reply_to_id, record.quoted_id) == (None, None)
    assert (record.like_count, record.view_count, record.lang) == (0, None, None)
    assert (record.hashtags, record.urls, record.media_urls) == ([], [], [])


BAD_TWEETS = {
    "author not in includes": tweet(author_id="404"),
    "no author_id": {k: v for k, v in tweet().items() if k != "author_id"},
    "no created_at": {k: v for k, v in tweet().items() if k != "created_at"},
    "id does not encode created_at": tweet(created_at="2026-02-03T05:05:06.000Z"),
    "blank text": tweet(text="   "),
    "non-numeric id": tweet(id="12ab"),
    "negative count": tweet(public_metrics={"like_count": -1}),
    "unparseable time": tweet(created_at="yesterday"),
    "non-numeric reference": tweet(referenced_tweets=[{"type": "quoted", "id": "x"}]),
    "not an object": "just a string",  # type: ignore[dict-item]
}


@pytest.mark.parametrize("case", BAD_TWEETS)
def test_bad_tweets_are_counted_not_raised(case: str) -> None:
    good = tweet(id=str(TWEET_ID + 1))
    out = normalize_payload(payload(BAD_TWEETS[case], good), "x_api", now=NOW)
    assert out.rejected == 1
    assert [r.id for r in out.records] == [TWEET_ID + 1]
    bad_id = BAD_TWEETS[case].get("id") if isinstance(BAD_TWEETS[case], dict) else None
    expected_ids = {int(bad_id)} if bad_id and bad_id.isdigit() else set()
    assert out.rejected_ids == expected_ids


def test_bad_username_is_rejected() -> None:
    bad = payload(tweet())
    bad["includes"]["users"][0]["username"] = "not a handle"
    out = normalize_payload(bad, "x_api", now=NOW)
    assert (out.records, out.rejected, out.rejected_ids) == ([], 1, {TWEET_ID})


def test_scraped_before_created_is_rejected() -> None:
    out = normalize_payload(payload(tweet()), "x_api", now=datetime(2026, 1, 1, tzinfo=UTC))
    assert out.rejected == 1


def test_normalize_tweet_raises_with_the_reason() -> None:
    with pytest.raises(ValueError, match=r"includes\.users"):
        normalize_tweet(tweet(author_id="404"), includes(), "x_api", NOW)
    record = normalize_tweet(tweet(), includes(), "x_api", NOW)
    assert record.author_username == "bob_builds"


def test_empty_and_error_only_payloads() -> None:
    assert normalize_payload({"meta": {"result_count": 0}}, "x_api").records == []
    errors_only = {"errors": [{"resource_id": "1", "title": "Not Found Error"}]}
    out = normalize_payload(errors_only, "x_api")
    assert (out.records, out.rejected) == ([], 0)


def test_lists_are_capped_not_rejected() -> None:
    many = {"hashtags": [{"tag": f"t{i}"} for i in range(MAX_LIST_ITEMS + 20)]}
    [record] = normalize_payload(payload(tweet(entities=many)), "x_api", now=NOW).records
    assert record.hashtags == [f"t{i}" for i in range(MAX_LIST_ITEMS)]


def test_missing_media_is_skipped() -> None:
    data = payload(tweet(attachments={"media_keys": ["3_1", "3_gone"]}))
    [record] = normalize_payload(data, "x_api", now=NOW).records
    assert record.media_urls == ["https://pbs.twimg.com/media/a.jpg"]


def test_include_referenced_keeps_only_complete_referenced_tweets() -> None:
    out = normalize_payload(payload(tweet()), "x_api", now=NOW, include_referenced=True)
    # The parent's author is in includes; the quoted tweet's author is not.
    assert [r.id for r in out.records] == [TWEET_ID, PARENT_ID]
    assert out.records[1].author_username == "alice"
    assert out.rejected == 0
    without = normalize_payload(payload(tweet()), "x_api", now=NOW)
    assert [r.id for r in without.records] == [TWEET_ID]


def test_input_is_not_mutated() -> None:
    data = payload(tweet())
    before = copy.deepcopy(data)
    normalize_payload(data, "x_api", now=NOW, include_referenced=True)
    assert data == before
