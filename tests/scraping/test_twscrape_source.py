"""TwscrapeSource: twscrape's own parser and account pool, with only X's network replaced.

Tweets are built as X web GraphQL JSON and parsed by twscrape itself, so a change in
twscrape's model shows up here. The account pool is twscrape's real AccountsPool on a
temporary SQLite file; only the API object that would talk to X is a stand-in.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from d3.snowflake import datetime_to_id
from scraping.common import bounded_query
from scraping.source import SourceAuthError, TweetSource
from scraping.twscrape_source import (
    ACCOUNTS_ENV,
    INSTALL_HINT,
    TwscrapeSource,
    import_twscrape,
    parse_accounts,
    tweet_to_record,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
COOKIES = "auth_token=aaa; ct0=bbb"
COOKIE_ACCOUNT = f"alice_bot:pw:alice@example.com:mailpw:{COOKIES}"


@pytest.fixture(scope="module")
def tw() -> ModuleType:
    """twscrape, imported through the source's sink-keeping import (importorskip would
    import it bare and drop pytest's loguru sinks); skipped when not installed."""
    try:
        return import_twscrape()
    except ImportError:
        pytest.skip("twscrape is not installed")


# -- X web GraphQL JSON, the shape twscrape parses --------------------------------------


def tweet_id(minutes: float, seq: int = 1) -> int:
    return datetime_to_id(T0 + timedelta(minutes=minutes), sequence=seq)


def gql_user(user_id: int, name: str) -> dict[str, Any]:
    return {
        "__typename": "User",
        "rest_id": str(user_id),
        "legacy": {"screen_name": name, "name": name.title()},
    }


def gql_tweet(
    tid: int,
    user: dict[str, Any],
    text: str,
    *,
    lang: str = "en",
    reply_to: int | None = None,
    quoted: dict[str, Any] | None = None,
    retweeted: dict[str, Any] | None = None,
    hashtags: tuple[str, ...] = (),
    urls: tuple[str, ...] = (),
    media: tuple[dict[str, Any], ...] = (),
    views: int | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    created = datetime.fromtimestamp(((tid >> 22) + 1288834974657) // 1000, tz=UTC)
    legacy: dict[str, Any] = {
        "full_text": text,
        "created_at": email.utils.format_datetime(created),
        "lang": lang,
        "user_id_str": user["rest_id"],
        "conversation_id_str": str(reply_to or tid),
        "favorite_count": 7,
        "retweet_count": 3,
        "reply_count": 2,
        "quote_count": 1,
        "entities": {
            "hashtags": [{"text": h} for h in hashtags],
            "urls": [
                {"url": f"https://t.co/{i}", "expanded_url": u, "display_url": u[8:]}
                for i, u in enumerate(urls)
            ],
        },
    }
    if media:
        legacy["extended_entities"] = {"media": list(media)}
    if reply_to is not None:
        legacy["in_reply_to_status_id_str"] = str(reply_to)
    obj: dict[str, Any] = {
        "__typename": "Tweet",
        "rest_id": str(tid),
        "core": {"user_results": {"result": user}},
        "legacy": legacy,
    }
    if quoted is not None:
        legacy["quoted_status_id_str"] = quoted["rest_id"]
        obj["quoted_status_result"] = {"result": quoted}
    if retweeted is not None:
        legacy["retweeted_status_result"] = {"result": retweeted}
    if views is not None:
        obj["views"] = {"count": str(views)}
    if note is not None:
        obj["note_tweet"] = {"note_tweet_results": {"result": {"text": note}}}
    return obj


def timeline(*tweets: dict[str, Any]) -> dict[str, Any]:
    entries = [
        {
            "entryId": f"tweet-{t.get('rest_id') or t['tweet']['rest_id']}",
            "content": {"itemContent": {"tweet_results": {"result": t}}},
        }
        for t in tweets
    ]
    return {"data": {"timeline": {"instructions": [{"entries": entries}]}}}


def parse_one(tw: ModuleType, obj: dict[str, Any]) -> Any:
    [tweet] = [t for t in tw.parse_tweets(timeline(obj)) if t.id == int(obj["rest_id"])]
    return tweet


ALICE = gql_user(1111, "alice")
BOB = gql_user(2222, "bob_42")
PHOTO = {"type": "photo", "media_url_https": "https://pbs.twimg.com/media/p1.jpg"}
VIDEO = {
    "type": "video",
    "media_url_https": "https://pbs.twimg.com/ext_tw_video_thumb/1/pu/img/v.jpg",
    "video_info": {"duration_millis": 5000, "variants": []},
}


# -- accounts ---------------------------------------------------------------------------


def test_parse_accounts_reads_cookies_with_colons_and_skips_comments() -> None:
    text = "\n# a comment\n" + COOKIE_ACCOUNT + "\nbob:pw2:bob@example.com:mail2\n"
    text += 'carol:pw3:c@example.com:mail3:{"auth_token":"x","ct0":"y"}\n'
    alice, bob, carol = parse_accounts(text)
    assert (alice.username, alice.password, alice.cookies) == ("alice_bot", "pw", COOKIES)
    assert bob.cookies is None and bob.email_password == "mail2"
    assert carol.cookies == '{"auth_token":"x","ct0":"y"}'
    assert "pw" not in repr(alice) and "aaa" not in repr(alice)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("ok:pw:e:m\nbroken:secretpw:only_three", "line 2"),
        ("a:pw::m", "line 1"),
        ("a:pw:e:m\nA:pw:e:m", "listed twice"),
    ],
)
def test_parse_accounts_names_the_bad_line_not_its_secrets(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as info:
        parse_accounts(text)
    assert "secretpw" not in str(info.value)


def test_bounded_query_adds_x_operators() -> None:
    since, until = T0, T0 + timedelta(hours=1)
    start, end = int(since.timestamp()), int(until.timestamp())
    expected = f"(#ai OR #ml) since_id:42 since_time:{start} until_time:{end}"
    assert bounded_query("#ai OR #ml", since, until, 42) == expected
    assert bounded_query("bittensor", None, None, None) == "bittensor"


# -- normalisation ----------------------------------------------------------------------


def test_reply_with_entities_media_and_views(tw: ModuleType) -> None:
    parent = tweet_id(0)
    tid = tweet_id(5)
    obj = gql_tweet(
        tid,
        BOB,
        "@alice agreed &amp; shipped #AI #python https://t.co/0",
        reply_to=parent,
        hashtags=("AI", "python"),
        urls=("https://github.com/x/y",),
        media=(PHOTO, VIDEO),
        views=1234,
    )
    now = T0 + timedelta(hours=1)
    record = tweet_to_record(parse_one(tw, obj), "twscrape", now)
    assert record.model_dump() == {
        "id": tid,
        "text": "@alice agreed &amp; shipped #AI #python https://t.co/0",
        "created_at": T0 + timedelta(minutes=5),
        "author_id": 2222,
        "author_username": "bob_42",
        "lang": "en",
        "conversation_id": parent,
        "in_reply_to_id": parent,
        "quoted_id": None,
        "retweeted_id": None,
        "like_count": 7,
        "retweet_count": 3,
        "reply_count": 2,
        "quote_count": 1,
        "view_count": 1234,
        "hashtags": ["AI", "python"],
        "urls": ["https://github.com/x/y"],
        "media_urls": [PHOTO["media_url_https"], VIDEO["media_url_https"]],
        "url": f"https://x.com/bob_42/status/{tid}",
        "source": "twscrape",
        "scraped_at": now,
    }


def test_quote_long_post_and_undetermined_language(tw: ModuleType) -> None:
    original = gql_tweet(tweet_id(1), ALICE, "original take")
    stub = "a long post, cut at 280 characters…"
    obj = gql_tweet(tweet_id(2), BOB, stub, quoted=original, note="the whole long post", lang="")
    record = tweet_to_record(parse_one(tw, obj), "twscrape")
    assert record.quoted_id == tweet_id(1)
    assert record.text == "the whole long post"
    assert record.lang is None
    assert record.view_count is None
    assert record.url == f"https://x.com/bob_42/status/{tweet_id(2)}"


def test_tweet_whose_id_contradicts_its_time_is_refused(tw: ModuleType) -> None:
    tweet = parse_one(tw, gql_tweet(tweet_id(0), ALICE, "hi"))
    tweet.date = tweet.date - timedelta(hours=3)
    with pytest.raises(ValueError, match="encodes a time"):
        tweet_to_record(tweet, "twscrape")
    with pytest.raises(ValueError, match="not a twscrape tweet"):
        tweet_to_record(object(), "twscrape")


# -- the source over a real pool --------------------------------------------------------


class FakeApi:
    """twscrape.API's surface as TwscrapeSource uses it, answering from GraphQL bodies.

    `search_raw` yields one HTTP response per page, as twscrape's does; `search` is
    twscrape's own composition of it (`parse_tweets` over every page)."""

    def __init__(self, tw: ModuleType, pool: Any) -> None:
        self.tw = tw
        self.pool = pool
        self.pages: list[dict[str, Any]] = []
        self.details: dict[int, Any] = {}
        self.queries: list[tuple[str, int]] = []

    async def search_raw(self, q: str, limit: int = -1) -> AsyncIterator[httpx.Response]:
        self.queries.append((q, limit))
        for body in self.pages:
            yield httpx.Response(200, json=body)

    async def search(self, q: str, limit: int = -1) -> AsyncIterator[Any]:
        async for response in self.search_raw(q, limit):
            for tweet in self.tw.parse_tweets(response.json(), limit):
                yield tweet

    async def tweet_details_raw(self, twid: int) -> Any:
        answer = self.details.get(twid)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def make_source(
    tw: ModuleType, tmp_path: Path, accounts: str = COOKIE_ACCOUNT, **options: Any
) -> tuple[TwscrapeSource, FakeApi]:
    db = tmp_path / "accounts.db"
    pool = tw.AccountsPool(db_file=str(db), raise_when_no_account=True, wait_timeout=0)
    api = FakeApi(tw, pool)
    source = TwscrapeSource(accounts=accounts, db_path=db, api=api, **options)
    return source, api


def test_cookie_accounts_become_active_without_logging_in(tw: ModuleType, tmp_path: Path) -> None:
    source, api = make_source(tw, tmp_path)
    assert isinstance(source, TweetSource)
    asyncio.run(source.ensure_ready())
    [account] = asyncio.run(api.pool.get_all())
    assert account.username == "alice_bot" and account.active
    assert account.cookies == {"auth_token": "aaa", "ct0": "bbb"}


def test_no_active_account_is_an_operator_problem(tw: ModuleType, tmp_path: Path) -> None:
    source, _ = make_source(tw, tmp_path, accounts="bob:pw:bob@example.com:mailpw", login=False)
    with pytest.raises(SourceAuthError, match="no active twscrape account"):
        asyncio.run(source.search("x"))


def test_accounts_come_from_the_environment(
    tw: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ACCOUNTS_ENV, COOKIE_ACCOUNT)
    pool = tw.AccountsPool(db_file=str(tmp_path / "a.db"))
    source = TwscrapeSource(db_path=tmp_path / "a.db", api=FakeApi(tw, pool))
    asyncio.run(source.ensure_ready())
    assert [a.username for a in asyncio.run(pool.get_all())] == ["alice_bot"]


def test_telemetry_is_switched_off(
    tw: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TWS_TELEMETRY", raising=False)
    monkeypatch.delenv("DO_NOT_TRACK", raising=False)
    from twscrape import telemetry

    telemetry.reset()
    make_source(tw, tmp_path)
    telemetry.capture("gql_request", {"operation": "SearchTimeline"})
    assert os.environ["TWS_TELEMETRY"] == "0"
    assert telemetry.snapshot() == []


def test_search_bounds_retweets_and_referenced(tw: ModuleType, tmp_path: Path) -> None:
    old = gql_tweet(tweet_id(1), ALICE, "old original #ai")
    quoted = gql_tweet(tweet_id(2), ALICE, "old quoted #ai")
    hit_a = gql_tweet(tweet_id(10), BOB, "newer #ai", quoted=quoted)
    hit_b = gql_tweet(tweet_id(12), ALICE, "newest #ai")
    rt = gql_tweet(tweet_id(11), BOB, "RT @alice: old original #ai", retweeted=old)
    since_id = tweet_id(5)

    source, api = make_source(tw, tmp_path)
    api.pages = [timeline(hit_b, rt, hit_a)]
    result = asyncio.run(source.search("#ai", since_id=since_id, limit=10))
    assert [r.id for r in result.records] == [tweet_id(12), tweet_id(10)]
    assert result.rejected == 1  # the retweet
    assert result.newest_id == tweet_id(12)
    assert api.queries == [(f"#ai since_id:{since_id}", 10)]

    source, api = make_source(tw, tmp_path / "2", include_referenced=True)
    api.pages = [timeline(hit_b, rt, hit_a)]
    result = asyncio.run(source.search("#ai", since_id=since_id, limit=10))
    assert {r.id for r in result.records} == {tweet_id(12), tweet_id(10), tweet_id(2), tweet_id(1)}
    assert result.newest_id == tweet_id(12)


def visible(tweet: dict[str, Any]) -> dict[str, Any]:
    """A tweet as X wraps it when it carries visibility notes (twscrape issue #53); the
    wrapped tweet has no `__typename` of its own."""
    inner = {k: v for k, v in tweet.items() if k != "__typename"}
    return {"__typename": "TweetWithVisibilityResults", "tweet": inner}


def test_search_stores_only_the_tweets_the_search_returned(tw: ModuleType, tmp_path: Path) -> None:
    """twscrape's parser yields every tweet object in a page, the quoted tweets nested in
    the hits included. Those are not results: stored as rows they would be tweets the query
    never matched, and they took the places of real hits under `limit`. Bounds do not catch
    them (a quote is older than its quoter but usually inside the window)."""
    quoted = gql_tweet(tweet_id(2), ALICE, "quoted, not matching")
    quoting = gql_tweet(tweet_id(20), BOB, "quoting it #ai", quoted=quoted)
    older_hit = gql_tweet(tweet_id(10), ALICE, "older hit #ai")

    source, api = make_source(tw, tmp_path)
    api.pages = [timeline(quoting, older_hit)]
    result = asyncio.run(source.search("#ai", limit=10))
    assert [r.id for r in result.records] == [tweet_id(20), tweet_id(10)]
    assert result.records[0].quoted_id == tweet_id(2)  # referenced, not stored
    assert result.newest_id == tweet_id(20)
    # The nested quote must not use up the limit either.
    result = asyncio.run(source.search("#ai", limit=2))
    assert [r.id for r in result.records] == [tweet_id(20), tweet_id(10)]

    # Wrapped hits are hits; what they quote still is not.
    api.pages = [timeline(visible(quoting), older_hit)]
    result = asyncio.run(source.search("#ai", limit=10))
    assert [r.id for r in result.records] == [tweet_id(20), tweet_id(10)]


def test_a_quoted_or_retweeted_tweet_that_is_itself_a_hit_is_kept(
    tw: ModuleType, tmp_path: Path
) -> None:
    """twscrape parses a tweet once per page, wherever it first appears, and drops every
    tweet some retweet in the page points at; a tweet the search returned must be kept
    all the same."""
    quoted = gql_tweet(tweet_id(2), ALICE, "quoted and matching #ai")
    quoting = gql_tweet(tweet_id(20), BOB, "quoting it #ai", quoted=quoted)
    original = gql_tweet(tweet_id(5), ALICE, "original #ai")
    rt = gql_tweet(tweet_id(15), BOB, "RT @alice: original #ai", retweeted=original)

    source, api = make_source(tw, tmp_path)
    api.pages = [timeline(quoting, rt, original, quoted)]
    result = asyncio.run(source.search("#ai", limit=10))
    assert [r.id for r in result.records] == [tweet_id(20), tweet_id(5), tweet_id(2)]
    assert result.records[1].text == "original #ai"
    assert result.rejected == 1  # the retweet
    # On a later page too.
    api.pages = [timeline(quoting), timeline(quoted)]
    result = asyncio.run(source.search("#ai", limit=10))
    assert [r.id for r in result.records] == [tweet_id(20), tweet_id(2)]


def test_search_stops_at_limit_and_respects_time_window(tw: ModuleType, tmp_path: Path) -> None:
    tweets = [gql_tweet(tweet_id(m), ALICE, f"tweet {m}") for m in (30, 20, 10, 0)]
    source, api = make_source(tw, tmp_path)
    api.pages = [timeline(*tweets)]
    since, until = T0 + timedelta(minutes=5), T0 + timedelta(minutes=30)
    result = asyncio.run(source.search("q", since=since, until=until, limit=5))
    assert [r.id for r in result.records] == [tweet_id(20), tweet_id(10)]
    result = asyncio.run(source.search("q", limit=2))
    assert [r.id for r in result.records] == [tweet_id(30), tweet_id(20)]
    with pytest.raises(ValueError, match="timezone-aware"):
        asyncio.run(source.search("q", since=datetime(2026, 1, 1)))


def test_lookup_sorts_every_id_into_one_set(tw: ModuleType, tmp_path: Path) -> None:
    found_id, gone_id, silent_id, rt_id, locked_id, odd_id = (tweet_id(m) for m in range(6))
    original = gql_tweet(tweet_id(0, seq=9), ALICE, "the original")
    source, api = make_source(tw, tmp_path)
    api.details = {
        found_id: timeline(gql_tweet(found_id, ALICE, "still here")),
        gone_id: {"data": {}, "errors": [{"message": "_Missing: No status found with that ID."}]},
        silent_id: None,
        rt_id: timeline(gql_tweet(rt_id, BOB, "RT @alice: the original", retweeted=original)),
        locked_id: tw.NoAccountError("No account available for queue TweetDetail"),
        odd_id: {"data": {"something": "else"}},
    }
    asked = [found_id, gone_id, silent_id, rt_id, locked_id, odd_id, 0, found_id]
    result = asyncio.run(source.lookup(asked))
    assert sorted(result.found) == [found_id, rt_id]
    assert result.found[found_id].text == "still here"
    # A retweet comes back as one, so a row that claims it is not one reads as altered.
    assert result.found[rt_id].retweeted_id == tweet_id(0, seq=9)
    assert result.missing == {gone_id, 0}
    assert result.failed == {silent_id, locked_id, odd_id}


def test_lookup_with_every_account_banned_raises(tw: ModuleType, tmp_path: Path) -> None:
    source, api = make_source(tw, tmp_path)
    asyncio.run(source.ensure_ready())
    asyncio.run(api.pool.set_active("alice_bot", False))
    api.details = {tweet_id(1): tw.NoAccountError("none")}
    with pytest.raises(SourceAuthError, match="no account left"):
        asyncio.run(source.lookup([tweet_id(1)]))


# -- without twscrape ---------------------------------------------------------------------


def test_missing_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "twscrape", None)  # makes `import twscrape` fail
    with pytest.raises(ImportError) as info:
        TwscrapeSource(accounts=COOKIE_ACCOUNT)
    message = str(info.value)
    assert INSTALL_HINT in message and "\n" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_importing_twscrape_keeps_our_log_sinks(tw: ModuleType, tmp_path: Path) -> None:
    """twscrape's import calls loguru's logger.remove(); a miner's log file must survive."""
    log = tmp_path / "miner.log"
    script = textwrap.dedent(
        f"""
        from loguru import logger
        logger.remove()
        logger.add({str(log)!r}, format="{{name}} {{message}}")
        from scraping.twscrape_source import import_twscrape
        tw = import_twscrape()
        logger.info("after import")
        from twscrape.logger import logger as tw_logger
        tw_logger.warning("from twscrape")
        """
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script], check=True, cwd=root, timeout=60, capture_output=True
    )
    assert b"from twscrape" not in done.stderr  # no sink of twscrape's own
    lines = log.read_text().splitlines()
    assert "__main__ after import" in lines
    assert "__main__ from twscrape" in lines
