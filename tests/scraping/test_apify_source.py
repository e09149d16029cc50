"""ApifySource: the item mapping on fixture items, and the real apify-client against a local
HTTP server that speaks the slice of the Apify REST API the client calls (start a run,
poll it, page through its dataset)."""

from __future__ import annotations

import asyncio
import gzip
import json
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from d3.snowflake import datetime_to_id
from scraping.source import SourceAuthError, SourceError, SourceUnavailable, TweetSource

apify_client = pytest.importorskip("apify_client")

from scraping.apify_source import (  # noqa: E402
    INSTALL_HINT,
    ApifySource,
    is_tweet_item,
    item_to_record,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TOKEN = "apify_api_local"
ACTOR = "apidojo/tweet-scraper"


def tid(minutes: float, seq: int = 1) -> int:
    return datetime_to_id(T0 + timedelta(minutes=minutes), sequence=seq)


def x_time(tweet_id: int) -> str:
    """createdAt as X (and apidojo) write it, to the second."""
    ms = (tweet_id >> 22) + 1288834974657
    return datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%a %b %d %H:%M:%S +0000 %Y")


def item(tweet_id: int, text: str = "hello #ai", username: str = "alice", **extra: Any) -> dict:
    """An output item shaped like apidojo/tweet-scraper's."""
    base = {
        "type": "tweet",
        "id": str(tweet_id),
        "url": f"https://x.com/{username}/status/{tweet_id}",
        "twitterUrl": f"https://twitter.com/{username}/status/{tweet_id}",
        "text": text,
        "retweetCount": 3,
        "replyCount": 2,
        "likeCount": 10,
        "quoteCount": 1,
        "viewCount": 500,
        "bookmarkCount": 4,
        "createdAt": x_time(tweet_id),
        "lang": "en",
        "isReply": False,
        "conversationId": str(tweet_id),
        "author": {"type": "user", "userName": username, "id": "1111", "name": "Alice"},
        "entities": {"hashtags": [{"text": "ai", "indices": [6, 9]}], "urls": [], "symbols": []},
        "extendedEntities": {},
        "isRetweet": False,
        "isQuote": False,
    }
    return base | extra


# -- mapping ----------------------------------------------------------------------------


def test_full_item_maps_field_by_field() -> None:
    parent, quoted, tweet_id = tid(0), tid(1), tid(5)
    raw = item(
        tweet_id,
        text="@bob agreed https://t.co/a https://t.co/m",
        username="carol_7",
        isReply=True,
        inReplyToId=str(parent),
        conversationId=str(parent),
        isQuote=True,
        quote=item(quoted, username="bob"),
        entities={
            "hashtags": [{"text": "AI"}, {"text": "python"}],
            "urls": [{"url": "https://t.co/a", "expanded_url": "https://arxiv.org/abs/1"}],
        },
        extendedEntities={
            "media": [
                {"type": "photo", "media_url_https": "https://pbs.twimg.com/media/a.jpg"},
                {
                    "type": "video",
                    "media_url_https": "https://pbs.twimg.com/ext_tw_video_thumb/v.jpg",
                },
            ]
        },
    )
    raw["author"]["id"] = 4242
    now = T0 + timedelta(hours=1)
    assert item_to_record(raw, "apify", now).model_dump() == {
        "id": tweet_id,
        "text": "@bob agreed https://t.co/a https://t.co/m",
        "created_at": T0 + timedelta(minutes=5),
        "author_id": 4242,
        "author_username": "carol_7",
        "lang": "en",
        "conversation_id": parent,
        "in_reply_to_id": parent,
        "quoted_id": quoted,
        "retweeted_id": None,
        "like_count": 10,
        "retweet_count": 3,
        "reply_count": 2,
        "quote_count": 1,
        "view_count": 500,
        "hashtags": ["AI", "python"],
        "urls": ["https://arxiv.org/abs/1"],
        "media_urls": [
            "https://pbs.twimg.com/media/a.jpg",
            "https://pbs.twimg.com/ext_tw_video_thumb/v.jpg",
        ],
        "url": f"https://x.com/carol_7/status/{tweet_id}",
        "source": "apify",
        "scraped_at": now,
    }


def test_other_actor_spellings_are_understood() -> None:
    tweet_id = tid(3)
    raw = item(tweet_id, fullText="the full long post", quoted_tweet={"id": str(tid(1))})
    raw |= {"createdAt": (T0 + timedelta(minutes=3)).isoformat().replace("+00:00", "Z")}
    raw["author"] = {"id": "9", "username": "dave"}
    del raw["viewCount"], raw["lang"]
    record = item_to_record(raw)
    assert (record.text, record.author_username, record.quoted_id) == (
        "the full long post",
        "dave",
        tid(1),
    )
    assert record.view_count is None and record.lang is None
    assert item_to_record(item(tweet_id, quoteId=str(tid(2)))).quoted_id == tid(2)
    assert item_to_record(item(tweet_id, retweeted_tweet={"id": tid(2)})).retweeted_id == tid(2)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"author": {"id": "1"}}, "no author"),
        ({"createdAt": "Sat Jan 01 00:00:00 +0000 2022"}, "encodes a time"),
        ({"text": "   "}, "blank"),
        ({"createdAt": None}, "no createdAt"),
    ],
)
def test_impossible_items_are_refused_with_a_reason(change: dict, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        item_to_record(item(tid(0)) | change)


def test_markers_are_not_tweets() -> None:
    assert is_tweet_item(item(tid(0)))
    assert not is_tweet_item({"noResults": True, "id": "5"})
    assert not is_tweet_item({"type": "user", "id": "5"})
    assert not is_tweet_item(None)


# -- a local Apify API ------------------------------------------------------------------

Actor = Callable[[dict], tuple[str, list[dict]]]  # run input -> (final status, items)


@dataclass
class LocalApify:
    """The Apify REST endpoints apify-client uses to run an Actor and read its dataset."""

    actors: dict[str, Actor]
    token: str = TOKEN
    fail_next: int = 0  # answer this many API requests with 500
    refuse_runs: int | None = None  # answer run starts with this status (402: unpaid)
    inputs: list[dict] = field(default_factory=list)
    requests: list[tuple[str, str, dict[str, list[str]]]] = field(default_factory=list)
    runs: dict[str, dict] = field(default_factory=dict)
    datasets: dict[str, list[dict]] = field(default_factory=dict)
    base_url: str = ""

    def handle(self, method: str, url: str, headers: Any, body: bytes) -> tuple[int, Any, dict]:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        self.requests.append((method, parts.path, query))
        if self.fail_next > 0:
            self.fail_next -= 1
            return 500, {"error": {"type": "internal-error", "message": "boom"}}, {}
        if headers.get("Authorization") != f"Bearer {self.token}":
            return 401, {"error": {"type": "token-not-valid", "message": "bad token"}}, {}
        path = parts.path.split("/")[1:]
        starts_run = path[:2] in (["v2", "acts"], ["v2", "actors"]) and path[3:] == ["runs"]
        if method == "POST" and starts_run:
            if self.refuse_runs is not None:
                error = {"type": "not-enough-usage-to-run-paid-actor", "message": "pay up"}
                return self.refuse_runs, {"error": error}, {}
            actor = self.actors.get(path[2].replace("~", "/"))
            if actor is None:
                return 404, {"error": {"type": "record-not-found", "message": "no actor"}}, {}
            if headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            run_input = json.loads(body)
            self.inputs.append(run_input)
            status, items = actor(run_input)
            run_id = f"run{len(self.runs)}"
            limit = int(query.get("maxItems", ["0"])[0]) or None
            self.datasets[f"ds{run_id}"] = items[:limit]
            self.runs[run_id] = _run(run_id, status)
            return 201, {"data": _run(run_id, "RUNNING")}, {}
        if method == "GET" and path[:2] == ["v2", "actor-runs"] and path[2] in self.runs:
            return 200, {"data": self.runs[path[2]]}, {}
        if method == "GET" and path[:2] == ["v2", "datasets"] and path[3:] == ["items"]:
            items = self.datasets[path[2]]
            offset = int(query.get("offset", ["0"])[0])
            limit = int(query.get("limit", [str(len(items))])[0])
            page = items[offset : offset + limit]
            pagination = {
                "x-apify-pagination-total": str(len(items)),
                "x-apify-pagination-offset": str(offset),
                "x-apify-pagination-count": str(len(page)),
                "x-apify-pagination-limit": str(limit),
                "x-apify-pagination-desc": "false",
            }
            return 200, page, pagination
        return 404, {"error": {"type": "page-not-found", "message": parts.path}}, {}


def _run(run_id: str, status: str) -> dict:
    return {
        "id": run_id,
        "actId": "actor1",
        "userId": "user1",
        "startedAt": "2026-03-01T12:00:00.000Z",
        "status": status,
        "statusMessage": "done" if status == "SUCCEEDED" else None,
        "meta": {"origin": "API"},
        "stats": {},
        "options": {"build": "latest", "timeoutSecs": 60, "memoryMbytes": 1024, "diskMbytes": 0},
        "buildId": "build1",
        "defaultKeyValueStoreId": f"kv{run_id}",
        "defaultDatasetId": f"ds{run_id}",
        "defaultRequestQueueId": f"rq{run_id}",
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def _serve(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, payload, headers = self.server.api.handle(
            self.command, self.path, self.headers, body
        )
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def local_apify() -> Iterator[LocalApify]:
    api = LocalApify(actors={})
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.api = api  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    host, port = server.server_address[:2]
    api.base_url = f"http://{host}:{port}"
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def source_for(api: LocalApify, **options: Any) -> ApifySource:
    options = {"api_url": api.base_url, "max_retries": 0, "retry_delay_s": 0.01} | options
    return ApifySource(options.pop("token", TOKEN), **options)


def test_search_runs_the_actor_and_reads_its_dataset(local_apify: LocalApify) -> None:
    since_id = tid(5)
    original = item(tid(7), username="bob")
    results = [
        item(tid(30), "newest #ai"),
        {"noResults": True},
        item(tid(20), "RT @bob: hello #ai", isRetweet=True, retweet=original),
        item(tid(10), "quote #ai", quote=item(tid(6), "quoted", username="bob")),
        item(tid(1), "older than since_id #ai"),
        item(tid(9), "bad", createdAt="Sat Jan 01 00:00:00 +0000 2022"),
    ]
    local_apify.actors[ACTOR] = lambda run_input: ("SUCCEEDED", results)
    source = source_for(local_apify)
    assert isinstance(source, TweetSource)

    result = asyncio.run(source.search("#ai", since_id=since_id, limit=50))
    assert [r.id for r in result.records] == [tid(30), tid(10)]
    assert all(r.source == "apify" for r in result.records)
    assert result.rejected == 2  # the retweet and the impossible item
    assert result.newest_id == tid(30)
    assert local_apify.inputs == [
        {"searchTerms": [f"#ai since_id:{since_id}"], "sort": "Latest", "maxItems": 50}
    ]
    starts = [q for m, p, q in local_apify.requests if m == "POST"]
    assert starts[0]["maxItems"] == ["50"]  # caps what a pay-per-result run can charge

    with_refs = source_for(local_apify, include_referenced=True, extra_input={"lang": "en"})
    result = asyncio.run(with_refs.search("#ai", since_id=since_id, limit=50))
    assert [r.id for r in result.records] == [tid(30), tid(10), tid(7), tid(6)]
    assert local_apify.inputs[-1]["lang"] == "en"


def test_search_limit_and_window(local_apify: LocalApify) -> None:
    results = [item(tid(m)) for m in (40, 30, 20, 10)]
    local_apify.actors[ACTOR] = lambda run_input: ("SUCCEEDED", results)
    source = source_for(local_apify)
    since, until = T0 + timedelta(minutes=15), T0 + timedelta(minutes=40)
    result = asyncio.run(source.search("q", since=since, until=until, limit=10))
    assert [r.id for r in result.records] == [tid(30), tid(20)]
    assert f"until_time:{int(until.timestamp())}" in local_apify.inputs[-1]["searchTerms"][0]
    result = asyncio.run(source.search("q", limit=2))
    assert [r.id for r in result.records] == [tid(40), tid(30)]


def test_a_run_that_did_not_succeed_fails_the_search(local_apify: LocalApify) -> None:
    local_apify.actors[ACTOR] = lambda run_input: ("TIMED-OUT", [item(tid(1))])
    with pytest.raises(SourceUnavailable, match="TIMED-OUT"):
        asyncio.run(source_for(local_apify).search("q"))


def test_lookup_sorts_ids(local_apify: LocalApify) -> None:
    found, absent, retweet = tid(1), tid(2), tid(3)

    def actor(run_input: dict) -> tuple[str, list[dict]]:
        return "SUCCEEDED", [
            item(found, "still here"),
            item(retweet, "RT @bob: x", isRetweet=True, retweet=item(tid(0), username="bob")),
            item(tid(9), "not asked for"),
        ]

    local_apify.actors[ACTOR] = actor
    result = asyncio.run(source_for(local_apify).lookup([found, absent, retweet, -5, found]))
    assert list(result.found) == [found, retweet] and result.found[found].text == "still here"
    # A retweet comes back as one, so a row that claims it is not one reads as altered.
    assert result.found[retweet].retweeted_id == tid(0)
    assert result.missing == {-5}
    assert result.failed == {absent}
    assert local_apify.inputs == [
        {
            "startUrls": [f"https://x.com/i/status/{i}" for i in (found, absent, retweet)],
            "maxItems": 3,
        }
    ]


def test_lookup_outage_is_no_signal(local_apify: LocalApify) -> None:
    local_apify.actors[ACTOR] = lambda run_input: ("FAILED", [])
    result = asyncio.run(source_for(local_apify).lookup([tid(1), tid(2)]))
    assert result.failed == {tid(1), tid(2)} and not result.found and not result.missing


def test_refused_token_unknown_actor_and_server_errors(local_apify: LocalApify) -> None:
    local_apify.actors[ACTOR] = lambda run_input: ("SUCCEEDED", [])
    with pytest.raises(SourceAuthError, match="refused the token"):
        asyncio.run(source_for(local_apify, token="wrong").search("q"))
    with pytest.raises(SourceAuthError, match="refused the token"):
        asyncio.run(source_for(local_apify, token="wrong").lookup([tid(1)]))
    with pytest.raises(SourceError, match="not found") as info:
        asyncio.run(source_for(local_apify, actor_id="someone/else").search("q"))
    assert not isinstance(info.value, SourceUnavailable | SourceAuthError)
    local_apify.fail_next = 1
    with pytest.raises(SourceUnavailable, match="500"):
        asyncio.run(source_for(local_apify).search("q"))
    local_apify.refuse_runs = 402
    with pytest.raises(SourceAuthError, match="cannot pay"):
        asyncio.run(source_for(local_apify).search("q"))
    local_apify.refuse_runs = None
    # The client's own retries ride over a transient 500.
    local_apify.fail_next = 1
    result = asyncio.run(source_for(local_apify, max_retries=2).search("q"))
    assert result.records == []


def test_no_token_is_refused_up_front() -> None:
    with pytest.raises(SourceAuthError, match="no Apify API token"):
        ApifySource("")


def test_missing_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "apify_client", None)  # makes the import fail
    with pytest.raises(ImportError) as info:
        ApifySource(TOKEN)
    assert INSTALL_HINT in str(info.value) and "\n" not in str(info.value)
