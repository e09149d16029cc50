"""The look-up comparison: a miner's row against the record X returns, rule by rule.

X's side is always built the way a validator gets it, from an X API v2 payload through
scraping.normalize; a miner's side from the same record (an X API miner), from a scraper's
item (Apify, twscrape) or with one field changed. Each rule is tested both ways: the
difference an honest miner can have is accepted, the one only a forger has is rejected.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pytest

from d3.record import MAX_LIST_ITEMS, TweetRecord, records_to_table, tweet_url
from d3.snowflake import datetime_to_id
from d3.validator.verifier import (
    Difference,
    LookupAnswer,
    SampleVerdict,
    check_sample,
    compare_author_id,
    compare_author_username,
    compare_count,
    compare_created_at,
    compare_hashtags,
    compare_lang,
    compare_media_urls,
    compare_reference,
    compare_row,
    compare_text,
    compare_urls,
    count_slack,
    unescape_x,
)
from d3.validator.x_lookup import source_lookup
from scraping.apify_source import item_to_record
from scraping.normalize import normalize_tweet
from scraping.source import LookupResult, SourceUnavailable
from scraping.twscrape_source import tweet_to_record

CREATED = datetime(2026, 1, 19, 12, 34, 56, tzinfo=UTC)
TWEET_ID = datetime_to_id(CREATED.replace(microsecond=431_000), sequence=5)
PARENT_ID = datetime_to_id(datetime(2026, 1, 19, 12, tzinfo=UTC), sequence=1)
NOW = datetime(2026, 1, 20, tzinfo=UTC)
LONG_TAIL = " and then some more words about it" * 12  # pushes a post past 280 characters


def v2_tweet(tweet_id: int = TWEET_ID, **overrides: Any) -> dict[str, Any]:
    """An X API v2 tweet object, as X serves it (text HTML-escaped)."""
    created = f"{CREATED:%Y-%m-%dT%H:%M:%S}.000Z"
    base: dict[str, Any] = {
        "id": str(tweet_id),
        "text": "R&amp;D on evals &lt;3 #AI #LLM https://t.co/abc https://t.co/pic",
        "author_id": "42",
        "created_at": created,
        "lang": "en",
        "conversation_id": str(PARENT_ID),
        "referenced_tweets": [{"type": "replied_to", "id": str(PARENT_ID)}],
        "attachments": {"media_keys": ["3_1"]},
        "public_metrics": {
            "retweet_count": 3,
            "reply_count": 2,
            "like_count": 40,
            "quote_count": 1,
            "impression_count": 900,
        },
        "entities": {
            "hashtags": [{"tag": "AI"}, {"tag": "LLM"}],
            "urls": [
                {"url": "https://t.co/abc", "expanded_url": "https://arxiv.org/abs/1"},
                {
                    "url": "https://t.co/pic",
                    "expanded_url": f"https://x.com/bob_builds/status/{tweet_id}/photo/1",
                    "media_key": "3_1",
                },
            ],
        },
    }
    return base | overrides


def v2_includes(username: str = "bob_builds") -> dict[str, Any]:
    return {
        "users": [{"id": "42", "name": "Bob", "username": username}],
        "media": [{"media_key": "3_1", "type": "photo", "url": "https://pbs.twimg.com/m/a.jpg"}],
    }


def from_x(tweet: dict[str, Any] | None = None, username: str = "bob_builds") -> TweetRecord:
    """X's record of a tweet: what a validator's look-up returns."""
    return normalize_tweet(tweet or v2_tweet(), v2_includes(username), "x_api", now=NOW)


def row_of(record: TweetRecord, **changes: Any) -> dict[str, Any]:
    """A miner's row (as check_sample reads it from the sample table)."""
    row = record.to_row() | changes
    if {"id", "author_username"} & changes.keys():  # the structural check binds the URL
        row["url"] = tweet_url(row["author_username"], row["id"])
    return row


def apify_record(text: str, **extra: Any) -> TweetRecord:
    """What an Apify miner publishes for the tweet of v2_tweet(): the web API's fields."""
    item = {
        "type": "tweet",
        "id": str(TWEET_ID),
        "fullText": text,
        "createdAt": f"{CREATED:%a %b %d %H:%M:%S +0000 %Y}",
        "author": {"id": "42", "userName": "bob_builds"},
        "lang": "en",
        "conversationId": str(PARENT_ID),
        "inReplyToId": str(PARENT_ID),
        "likeCount": 38,
        "retweetCount": 3,
        "replyCount": 2,
        "quoteCount": 1,
        "viewCount": 850,
        "entities": {
            "hashtags": [{"text": "AI"}, {"text": "LLM"}],
            "urls": [{"expanded_url": "https://arxiv.org/abs/1"}],
        },
        "extendedEntities": {"media": [{"media_url_https": "https://pbs.twimg.com/m/a.jpg"}]},
    } | extra
    return item_to_record(item, now=NOW)


def twscrape_record(raw_content: str, hashtags: Sequence[str]) -> TweetRecord:
    """What a twscrape miner publishes (rawContent is a long post's full note text)."""
    tweet = SimpleNamespace(
        id=TWEET_ID,
        rawContent=raw_content,
        date=CREATED,
        user=SimpleNamespace(id=42, username="bob_builds"),
        lang="en",
        conversationId=PARENT_ID,
        inReplyToTweetId=PARENT_ID,
        quotedTweet=None,
        retweetedTweet=None,
        likeCount=40,
        retweetCount=3,
        replyCount=2,
        quoteCount=1,
        viewCount=900,
        hashtags=list(hashtags),
        links=[SimpleNamespace(url="https://arxiv.org/abs/1")],
        media=SimpleNamespace(
            photos=[SimpleNamespace(url="https://pbs.twimg.com/m/a.jpg")], videos=[], animated=[]
        ),
    )
    return tweet_to_record(tweet, "twscrape", now=NOW)


def fields_of(differences: list[Difference]) -> dict[str, bool]:
    return {d.field: d.fraud for d in differences}


def fraud(difference: Difference | None) -> bool:
    """Whether a rule found fraud; a rule that found nothing fails the test."""
    assert difference is not None
    return difference.fraud


# -- text -------------------------------------------------------------------------------


def test_unescape_undoes_x_escaping_once_and_nothing_else() -> None:
    assert unescape_x("R&amp;D &lt;3 &gt;_&lt;") == "R&D <3 >_<"
    assert unescape_x("&amp;amp;") == "&amp;"  # a user who typed "&amp;"
    assert unescape_x("AT&T &copy; &quot;x&quot; &#39;") == "AT&T &copy; &quot;x&quot; &#39;"


def test_plain_post_escaped_by_x_matches_a_scraper_that_unescapes() -> None:
    x = from_x()
    assert x.text.startswith("R&amp;D on evals &lt;3")
    miner = apify_record("R&D on evals <3 #AI #LLM https://t.co/abc https://t.co/pic")
    assert compare_text(miner.text, x.text) is None
    assert compare_row(row_of(miner), x) == [
        Difference("like_count", "38, X has 40", fraud=False),
        Difference("view_count", "850, X has 900", fraud=False),
    ]
    # And an X API miner's own escaped copy, of course.
    assert compare_row(row_of(x), x) == []


def test_long_post_from_note_tweet_matches_escaped_or_not() -> None:
    """X escapes `text` (the stub) but not always note_tweet.text; a scraper's long post
    may come either way."""
    full = "R&D on evals <3 #AI #LLM https://t.co/abc" + LONG_TAIL + " #evals"
    note = {
        "text": full,
        "entities": {
            "hashtags": [{"tag": "AI"}, {"tag": "LLM"}, {"tag": "evals"}],
            "urls": [{"url": "https://t.co/abc", "expanded_url": "https://arxiv.org/abs/1"}],
        },
    }
    x = from_x(v2_tweet(text="R&amp;D on evals &lt;3 #AI #LLM…", note_tweet=note))
    assert x.text == full and len(x.text) > 280
    escaped = full.replace("&", "&amp;").replace("<", "&lt;")
    for text in (full, escaped, "  " + full.replace(" ", "\n", 3) + "\t"):
        assert compare_text(text, x.text) is None, text
    # twscrape: the full note text, but the web API's legacy entities may cover only the
    # stub's part of it.
    miner = twscrape_record(full, hashtags=["AI", "LLM"])
    assert fields_of(compare_row(row_of(miner), x)) == {"hashtags": False}
    # X escaping the note text too changes nothing.
    x_escaped = from_x(v2_tweet(note_tweet={**note, "text": escaped}))
    assert compare_text(full, x_escaped.text) is None


def test_a_literal_entity_the_user_typed_survives() -> None:
    x = from_x(v2_tweet(text="write &amp;amp; in HTML, AT&amp;T &amp;copy"))
    assert compare_text("write &amp;amp; in HTML, AT&amp;T &amp;copy", x.text) is None
    assert compare_text("write &amp; in HTML, AT&T &copy", x.text) is None  # unescaped once
    # Unescaping twice is not what the user wrote: "&" for "&amp;" is an edit.
    assert fraud(compare_text("write & in HTML, AT&T &copy", x.text))


def test_unicode_form_and_whitespace_do_not_matter() -> None:
    assert compare_text("caf\u00e9  au\n\nlait ", "cafe\u0301 au lait") is None


def test_edited_text_is_fraud_and_the_reason_names_it() -> None:
    x = from_x()
    difference = compare_text(x.text.replace("evals", "benchmarks"), x.text)
    assert difference is not None and difference.fraud
    reason = difference.reason(TWEET_ID)
    assert reason.startswith(f"tweet {TWEET_ID} differs from X in text: ")
    assert "benchmarks" in reason and "evals" in reason and "\n" not in reason
    appended = compare_text(x.text + " (edited)", x.text)
    assert appended is not None and "(edited)" in appended.detail


# -- identity, time, language, references -------------------------------------------------


def test_author_id_is_exact() -> None:
    assert compare_author_id(42, 42) is None
    difference = compare_author_id(43, 42)
    assert difference == Difference("author_id", "43, X has 42", fraud=True)


def test_created_at_equals_the_second_x_reports() -> None:
    x = from_x()
    assert x.created_at == CREATED
    # Milliseconds within X's second (a scraper that read the snowflake) are the same time.
    assert compare_created_at(CREATED + timedelta(milliseconds=999), x.created_at) is None
    shifted = compare_created_at(CREATED + timedelta(seconds=59), x.created_at)
    assert shifted == Difference("created_at", "+59 s from X's 2026-01-19T12:34:56Z", fraud=True)
    assert fraud(compare_created_at(CREATED - timedelta(seconds=1), x.created_at))


def test_lang_is_exact_when_x_reports_one() -> None:
    assert compare_lang("en", "en") is None
    assert compare_lang("fr", None) is None  # X did not say: nothing to hold it to
    assert compare_lang(None, "und") is None  # both "undetermined"
    assert compare_lang("fr", "en") == Difference("lang", "'fr', X has 'en'", fraud=True)
    assert fraud(compare_lang(None, "en"))


@pytest.mark.parametrize("name", ["conversation_id", "in_reply_to_id", "quoted_id", "retweeted_id"])
def test_referenced_ids_are_exact_null_included(name: str) -> None:
    assert compare_reference(name, None, None) is None
    assert compare_reference(name, PARENT_ID, PARENT_ID) is None
    invented = compare_reference(name, PARENT_ID, None)
    assert invented == Difference(name, f"{PARENT_ID}, X has None", fraud=True)
    assert fraud(compare_reference(name, None, PARENT_ID))
    assert fraud(compare_reference(name, PARENT_ID + 1, PARENT_ID))


def test_invented_reply_in_a_row() -> None:
    x = from_x(v2_tweet(referenced_tweets=[], conversation_id=str(TWEET_ID)))
    assert x.in_reply_to_id is None
    differences = compare_row(row_of(x, in_reply_to_id=PARENT_ID), x)
    assert differences == [Difference("in_reply_to_id", f"{PARENT_ID}, X has None", fraud=True)]


# -- entities -------------------------------------------------------------------------------


def test_hashtags_are_a_case_insensitive_set() -> None:
    assert compare_hashtags(["llm", "#ai", "AI"], ["AI", "LLM"]) is None
    lacking = compare_hashtags(["AI"], ["AI", "LLM"])
    assert lacking == Difference("hashtags", "1 of X's 2 not recorded", fraud=False)
    added = compare_hashtags(["AI", "LLM", "FreeTAO"], ["AI", "LLM"])
    assert added == Difference("hashtags", "'freetao' is not on X (1 added)", fraud=True)


def test_hashtags_beyond_a_capped_list_prove_nothing() -> None:
    theirs = [f"t{i}" for i in range(MAX_LIST_ITEMS)]
    assert not fraud(compare_hashtags([*theirs[1:], "t100"], theirs))  # only lacking t0: stale
    assert fraud(compare_hashtags(["t100"], theirs[:-1]))  # a list below the cap is complete


def test_urls_are_a_set_without_the_tweets_own_media_links() -> None:
    own = f"https://x.com/bob_builds/status/{TWEET_ID}/photo/1"
    theirs = ["https://arxiv.org/abs/1", own, "https://github.com/d3"]
    assert (
        compare_urls(TWEET_ID, ["https://github.com/d3", "https://arxiv.org/abs/1"], theirs) is None
    )
    # A scraper that saw the handle before a rename, or lists the media link twice.
    old_handle = f"https://twitter.com/bob_old/status/{TWEET_ID}/video/1"
    mobile = f"https://mobile.twitter.com/Bob_Old/status/{TWEET_ID}/photo/2/"
    mine = ["https://arxiv.org/abs/1", "https://github.com/d3", old_handle, old_handle, mobile]
    assert compare_urls(TWEET_ID, mine, theirs) is None
    assert not fraud(compare_urls(TWEET_ID, ["https://arxiv.org/abs/1"], theirs))
    spam = compare_urls(TWEET_ID, [*theirs, "https://spam.example/win"], theirs)
    assert spam == Difference("urls", "'https://spam.example/win' is not on X (1 added)", True)
    another_tweets_media = f"https://x.com/a/status/{PARENT_ID}/photo/1"
    assert fraud(compare_urls(TWEET_ID, [*theirs, another_tweets_media], theirs))


def test_media_x_no_longer_has_make_a_pick_not_found_never_altered() -> None:
    """A copyright claim takes a photo down from a tweet that stays: the row a miner
    scraped before lists media X no longer has. Like a withdrawn count, that pick counts
    as not found (its share of the credit), never an alteration that zeroes the period
    (a griefer could file the claim against its own tweet a rival scraped)."""
    truth = _x_tweets(6)
    photo = "https://pbs.twimg.com/m/taken-down.jpg"
    miner: list = [row_of(truth[0], media_urls=[photo]), *truth[1:]]
    verdict = _check(miner, truth)
    assert verdict.altered == [] and verdict.inflated == [truth[0].id]
    assert verdict.rejected is None  # 1 of 6: within the allowance
    assert verdict.notes.startswith(
        "1 sampled tweets count as not found for counts above X's or media X no longer has "
        f"(tweet {truth[0].id} differs from X in media_urls: "
    )
    # Text X contradicts in the same row still makes it altered.
    both = _check([row_of(truth[0], media_urls=[photo], text="rewritten"), *truth[1:]], truth)
    assert both.altered == [truth[0].id]


def test_media_urls_are_a_set() -> None:
    photo, thumb = "https://pbs.twimg.com/m/a.jpg", "https://pbs.twimg.com/ext_tw_video_thumb/b.jpg"
    assert compare_media_urls([thumb, photo], [photo, thumb]) is None
    assert not fraud(compare_media_urls([photo], [photo, thumb]))
    assert fraud(compare_media_urls([photo, "https://pbs.twimg.com/m/fake.jpg"], [photo]))


# -- counts ---------------------------------------------------------------------------------


def test_count_slack_is_fifty_or_double() -> None:
    assert [count_slack(n) for n in (0, 49, 50, 51, 1000, 10**18)] == [50, 50, 50, 51, 1000, 10**18]


@pytest.mark.parametrize(
    "name", ["like_count", "retweet_count", "reply_count", "quote_count", "view_count"]
)
def test_counts_may_be_lower_or_a_little_higher_never_inflated(name: str) -> None:
    assert compare_count(name, 40, 40) is None
    assert compare_count(name, 12, 40) == Difference(name, "12, X has 40", fraud=False)
    assert not fraud(compare_count(name, 90, 40))  # within 50
    assert not fraud(compare_count(name, 2000, 1000))  # within double
    assert not fraud(compare_count(name, 6, 0))  # sock puppets withdrew their likes
    assert compare_count(name, 91, 40) == Difference(name, "91, X has 40 (at most 90)", True)
    assert fraud(compare_count(name, 2001, 1000))
    assert fraud(compare_count(name, 4000, 40))  # x100


def test_view_count_x_does_not_report_cannot_be_checked() -> None:
    assert compare_count("view_count", 10**6, None) is None
    assert compare_count("view_count", None, None) is None
    missing = compare_count("view_count", None, 900)
    assert missing == Difference("view_count", "not recorded, X has 900", fraud=False)


# -- handles --------------------------------------------------------------------------------


def test_renamed_handle_is_staleness() -> None:
    x = from_x(username="bob_ships")  # the author renamed after the miner scraped
    miner = from_x(username="bob_builds")
    assert miner.url != x.url
    assert compare_row(row_of(miner), x) == [
        Difference("author_username", "@bob_builds, X has @bob_ships", fraud=False)
    ]
    assert compare_author_username("Bob_Ships", "bob_ships") is None  # handles ignore case


# -- check_sample -----------------------------------------------------------------------------


def _x_tweets(count: int) -> list[TweetRecord]:
    """`count` tweets by `count` different authors, as X has them."""
    out = []
    for n in range(count):
        tweet_id = TWEET_ID + n
        tweet = v2_tweet(tweet_id, author_id=str(100 + n), entities={}, attachments={})
        users = {"users": [{"id": str(100 + n), "username": f"author{n}"}]}
        out.append(normalize_tweet(tweet, users, "x_api", now=NOW))
    return out


def _sample(rows: list[TweetRecord | dict[str, Any]]) -> pa.Table:
    return records_to_table([r if isinstance(r, TweetRecord) else TweetRecord(**r) for r in rows])


def _answering(truth: list[TweetRecord], missing: Sequence[int] = (), failed: Sequence[int] = ()):
    by_id = {r.id: r for r in truth}

    async def lookup(ids: Sequence[int]) -> LookupAnswer:
        wanted = [i for i in ids if i not in failed]
        return LookupAnswer(
            found={i: by_id[i] for i in wanted if i in by_id},
            missing={i for i in wanted if i in missing},
            failed={i for i in ids if i in failed},
        )

    return lookup


def _check(miner: list, truth: list[TweetRecord], **answer: Any) -> SampleVerdict:
    return asyncio.run(check_sample(_sample(miner), _answering(truth, **answer)))


def test_an_honest_stale_sample_is_accepted_and_counted() -> None:
    truth = _x_tweets(6)
    miner: list = [row_of(r, like_count=0, view_count=None) for r in truth[:3]]
    miner.append(row_of(truth[3], author_username="renamed_since"))
    miner += truth[4:]
    verdict = _check(miner, truth)
    assert verdict.rejected is None and not verdict.altered and verdict.checked == 6
    assert verdict.stale == {"like_count": 3, "view_count": 3, "author_username": 1}
    assert verdict.renamed == {103: ("renamed_since", "author3")} and verdict.authors == 6


@pytest.mark.parametrize(
    "change, field, detail",
    [
        ({"created_at": CREATED + timedelta(seconds=59)}, "created_at", "+59 s from X's"),
        ({"hashtags": ["airdrop"]}, "hashtags", "'airdrop' is not on X (1 added)"),
        ({"lang": "ja"}, "lang", "'ja', X has 'en'"),
        ({"in_reply_to_id": TWEET_ID - 1}, "in_reply_to_id", f"{TWEET_ID - 1}, X has"),
        ({"text": "something else entirely"}, "text", "'something else entirely'"),
        ({"author_id": 7}, "author_id", "7, X has 101"),
    ],
    ids=[
        "created-plus-59s",
        "spam-hashtag",
        "lang",
        "invented-reply",
        "text",
        "author-id",
    ],
)
def test_one_rewritten_field_rejects_naming_it(change, field, detail) -> None:
    truth = _x_tweets(4)
    miner: list = [truth[0], row_of(truth[1], **change), row_of(truth[2], **change), truth[3]]
    verdict = _check(miner, truth)
    assert verdict.altered == [truth[1].id, truth[2].id]
    reason = verdict.rejected
    assert reason is not None
    assert reason.startswith(f"tweet {truth[1].id} differs from X in {field}: "), reason
    assert detail in reason and reason.endswith(" (2 altered)")
    assert set(verdict.reasons) == {truth[1].id, truth[2].id}


@pytest.mark.parametrize(
    "change, detail",
    [
        ({"like_count": 4000}, "like_count: 4000, X has 40 (at most 90)"),
        ({"view_count": 90_000}, "view_count: 90000, X has 900 (at most 1800)"),
        ({"reply_count": 60}, "reply_count: 60, X has 2 (at most 52)"),
    ],
    ids=["likes-x100", "views-x100", "replies-withdrawn"],
)
def test_counts_x_refutes_make_a_pick_not_found_never_altered(change, detail) -> None:
    """Counts earn nothing and anyone can lower them (a griefer withdraws the replies it
    posted under a tweet it knows a miner scraped): a count far above X's makes that pick
    count as not found, and only its share of the sample, never an alteration that
    zeroes the period."""
    truth = _x_tweets(6)
    miner: list = [row_of(truth[0], **change), *truth[1:]]
    verdict = _check(miner, truth)
    assert verdict.altered == [] and verdict.inflated == [truth[0].id]
    assert (verdict.checked, verdict.not_found) == (6, 1)
    assert verdict.rejected is None  # 1 of 6: within the deletion allowance
    assert verdict.notes == (
        f"1 sampled tweets count as not found for counts above X's "
        f"(tweet {truth[0].id} differs from X in {detail})"
    )
    # On most of a sample it is a miner's own inflation: the allowance is spent, as for
    # invented tweets.
    many = _check([row_of(r, **change) for r in truth[:3]] + truth[3:5], truth)
    assert many.rejected == (
        f"3 of 5 sampled tweets count as not found for counts above X's "
        f"(tweet {truth[0].id} differs from X in {detail})"
    )
    # Two of four are above the share but below MIN_MISSING_TO_FAIL: only their share.
    assert _check([row_of(r, **change) for r in truth[:2]] + truth[2:4], truth).rejected is None
    # A content change in the same row still makes it altered.
    both = _check([row_of(truth[0], **change, lang="ja"), *truth[1:]], truth)
    assert both.altered == [truth[0].id] and not both.inflated


def test_fraud_is_named_before_staleness_in_the_same_row() -> None:
    [x] = _x_tweets(1)
    verdict = _check([row_of(x, like_count=0, lang="fr")], [x])
    assert verdict.rejected == f"tweet {x.id} differs from X in lang: 'fr', X has 'en' (1 altered)"


def test_most_authors_renamed_is_a_rewrite() -> None:
    truth = _x_tweets(5)
    miner = [row_of(r, author_username=f"famous{n}") for n, r in enumerate(truth[:3])]
    verdict = _check([*miner, *truth[3:]], truth)
    assert not verdict.altered
    assert verdict.rejected == (
        "author_username: 3 of 5 sampled authors carry a handle X does not "
        "(author 100: @famous0, X has @author0)"
    )
    # Two renamed authors are never enough, whatever the share.
    assert _check(miner[:2], truth).rejected is None


def test_missing_and_unanswered_tweets_keep_their_rules() -> None:
    truth = _x_tweets(7)
    invented = [TWEET_ID + 100 + i for i in range(3)]
    gone = [TweetRecord(**row_of(truth[i], id=invented[i])) for i in range(3)]
    verdict = _check([*gone, *truth[3:]], truth, missing=invented, failed=[truth[6].id])
    assert (verdict.checked, verdict.missing, verdict.unanswered) == (6, invented, 1)
    assert verdict.rejected == f"3 of 6 sampled tweets do not exist on X (first {invented[0]})"
    # One of four missing is within the allowance (and below MIN_MISSING_TO_FAIL).
    one = _check([gone[0], *truth[1:4]], truth, missing=invented[:1])
    assert (one.checked, one.rejected) == (4, None)


def test_legacy_verdict_without_reasons_still_names_the_tweet() -> None:
    verdict = SampleVerdict(checked=3, altered=[9], missing=[], unanswered=0)
    assert verdict.rejected == "tweet 9 differs from X (1 altered)"


# -- x_lookup -------------------------------------------------------------------------------


class _Source:
    name = "fake"

    def __init__(self, result: LookupResult | Exception) -> None:
        self.result = result

    async def search(self, query: str, **kwargs: Any) -> Any:
        raise NotImplementedError

    async def lookup(self, ids: Sequence[int]) -> LookupResult:
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def test_source_lookup_passes_x_records_through_whole() -> None:
    x = from_x()
    result = LookupResult(found={x.id: x}, missing={5}, failed={6})
    answer = asyncio.run(source_lookup(_Source(result))([x.id, 5, 6]))
    assert answer == LookupAnswer(found={x.id: x}, missing={5}, failed={6})
    down = asyncio.run(source_lookup(_Source(SourceUnavailable("503")))([x.id]))
    # A look-up that fails as a whole is an outage: the audit waits, no timer runs.
    assert down == LookupAnswer(found={}, failed={x.id}, outage=True)
