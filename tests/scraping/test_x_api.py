"""XApiSource against the real local X server, through tweepy's own request path."""

from __future__ import annotations

import asyncio
import random
import socket
import time
from datetime import timedelta

import pytest
import requests
import tweepy

from d3.dev.x_server import LocalXServer
from d3.snowflake import id_to_datetime
from scraping.source import (
    LookupResult,
    SourceAuthError,
    SourceError,
    SourceUnavailable,
    SourceUsageCapped,
    TweetSource,
)
from scraping.x_api import XApiSource, redirect_session
from tests.scraping.support import (
    FakeSleep,
    SourceFactory,
    expected_fields,
    matching_ids,
    record_fields,
    run,
)

TAGS = "(#AI OR #LLM OR #bittensor OR #python OR #science OR #coffee)"


def api_requests(server: LocalXServer, since: int) -> list:
    return [r for r in server.requests[since:] if r.path.startswith("/2/")]


def test_is_a_tweet_source(make_source: SourceFactory) -> None:
    assert isinstance(make_source(), TweetSource)


def test_search_paginates_newest_first(server: LocalXServer, make_source: SourceFactory) -> None:
    expected = matching_ids(server.corpus, TAGS)
    assert len(expected) > 250
    before = len(server.requests)

    result = run(make_source().search(TAGS, limit=250))

    assert [r.id for r in result.records] == expected[:250]
    assert result.newest_id == expected[0]
    assert result.rejected == 0
    pages = api_requests(server, before)
    assert [p.params["max_results"] for p in pages] == ["100", "100", "50"]
    assert "next_token" not in pages[0].params
    assert all("next_token" in p.params for p in pages[1:])


def test_search_small_limit_asks_for_x_minimum(
    server: LocalXServer, make_source: SourceFactory
) -> None:
    before = len(server.requests)
    result = run(make_source().search(TAGS, limit=3))
    assert [r.id for r in result.records] == matching_ids(server.corpus, TAGS)[:3]
    assert [p.params["max_results"] for p in api_requests(server, before)] == ["10"]


def test_search_stops_at_the_end_of_results(
    server: LocalXServer, make_source: SourceFactory
) -> None:
    query = "#coffee lang:de"
    expected = matching_ids(server.corpus, query)
    assert 0 < len(expected) < 100
    result = run(make_source().search(query, limit=1000))
    assert [r.id for r in result.records] == expected


def test_search_joins_expansions_like_the_corpus(
    server: LocalXServer, make_source: SourceFactory
) -> None:
    result = run(make_source().search(TAGS, limit=400))
    corpus = server.corpus
    for record in result.records:
        assert record_fields(record) == expected_fields(corpus, record.id)
        assert record.source == "x_api"
    # The sample must exercise the joins, or this test proves nothing.
    assert any(r.media_urls for r in result.records)
    assert any(r.in_reply_to_id for r in result.records)
    assert any(r.quoted_id for r in result.records)
    assert any(r.retweeted_id for r in result.records)


def test_lookup_joins_every_kind_of_tweet(server: LocalXServer, make_source: SourceFactory) -> None:
    corpus = server.corpus

    def first(predicate) -> int:
        return next(int(t["id"]) for t in corpus.tweets if predicate(t))

    def ref(kind: str):
        return lambda t: any(r["type"] == kind for r in t.get("referenced_tweets", []))

    def media(kind: str):
        keys = lambda t: t.get("attachments", {}).get("media_keys", [])  # noqa: E731
        return lambda t: any(corpus.media[k]["type"] == kind for k in keys(t))

    ids = [
        first(ref("replied_to")),
        first(ref("quoted")),
        first(ref("retweeted")),
        first(lambda t: "note_tweet" in t),
        first(media("photo")),
        first(media("video")),
        first(lambda t: len(t.get("attachments", {}).get("media_keys", [])) > 1),
    ]
    result = run(make_source().lookup(ids))
    assert set(result.found) == set(ids)
    assert not result.missing and not result.failed
    for tweet_id in ids:
        assert record_fields(result.found[tweet_id]) == expected_fields(corpus, tweet_id)
    long_post = result.found[ids[3]]
    assert (
        len(long_post.text) > 280 and long_post.text == corpus.by_id[ids[3]]["note_tweet"]["text"]
    )


def test_since_id_resume_returns_only_newer(
    small_server: LocalXServer, make_source: SourceFactory
) -> None:
    source = make_source(small_server)
    first = run(source.search(TAGS, limit=1000))
    assert first.records and first.newest_id == max(r.id for r in first.records)

    new_ids = small_server.publish(300)
    expected_new = [i for i in matching_ids(small_server.corpus, TAGS) if i in set(new_ids)]
    assert expected_new

    second = run(source.search(TAGS, since_id=first.newest_id, limit=1000))
    assert [r.id for r in second.records] == expected_new
    assert second.newest_id == expected_new[0]

    third = run(source.search(TAGS, since_id=second.newest_id, limit=1000))
    assert third.records == [] and third.newest_id is None


def test_search_time_window(server: LocalXServer, make_source: SourceFactory) -> None:
    newest = id_to_datetime(server.corpus.ids[-1])
    since, until = newest - timedelta(hours=10), newest - timedelta(hours=2)
    result = run(make_source().search(TAGS, since=since, until=until, limit=1000))
    expected = [
        i
        for i in matching_ids(server.corpus, TAGS)
        if since <= expected_fields(server.corpus, i)["created_at"] < until
    ]
    assert expected
    assert [r.id for r in result.records] == expected


def test_naive_times_are_refused(make_source: SourceFactory) -> None:
    with pytest.raises(ValueError, match="timezone"):
        run(make_source().search(TAGS, since=id_to_datetime(1 << 40).replace(tzinfo=None)))


@pytest.mark.parametrize("backoff_s", [0.01, 1.0, 20.0])
def test_rate_limit_waits_until_reset_then_succeeds(
    server: LocalXServer, make_source: SourceFactory, sleep: FakeSleep, backoff_s: float
) -> None:
    """The reset time in X's header wins over the backoff, whatever the backoff: the one
    wait ends past the reset (never before it, where X would refuse again), and only a
    moment past it, however small or large the source's backoff is."""
    frozen = time.time()
    source = make_source(clock=lambda: frozen, backoff_s=backoff_s)
    server.inject_faults(rate_limited=1, reset_in_s=30)
    before = len(server.requests)

    result = run(source.search(TAGS, limit=20))

    limited, retried = api_requests(server, before)
    assert (limited.status, retried.status) == (429, 200)
    until_reset = int(limited.headers["x-rate-limit-reset"]) - frozen
    assert len(sleep.calls) == 1
    assert until_reset < sleep.calls[0] < until_reset + 2
    assert [r.id for r in result.records] == matching_ids(server.corpus, TAGS)[:20]


def test_rate_limited_clients_do_not_return_at_the_same_instant(
    server: LocalXServer, make_source: SourceFactory, sleep: FakeSleep
) -> None:
    frozen = time.time()
    for seed in range(5):
        server.inject_faults(rate_limited=1, reset_in_s=30)
        run(make_source(clock=lambda: frozen, rng=random.Random(seed)).search(TAGS, limit=10))
    assert len(sleep.calls) == 5 and len(set(sleep.calls)) == 5


def test_rate_limit_beyond_cap_is_unavailable(
    server: LocalXServer, make_source: SourceFactory, sleep: FakeSleep
) -> None:
    server.inject_faults(rate_limited=1, reset_in_s=3600)
    before = len(server.requests)
    with pytest.raises(SourceUnavailable, match="max_wait_s"):
        run(make_source(max_wait_s=60).search(TAGS))
    assert sleep.calls == []
    assert len(api_requests(server, before)) == 1


def test_rate_limit_without_end_is_bounded(
    server: LocalXServer, make_source: SourceFactory, sleep: FakeSleep
) -> None:
    server.inject_faults(rate_limited=50, reset_in_s=1)
    with pytest.raises(SourceUnavailable):
        run(make_source(max_retries=2).search(TAGS))
    assert len(sleep.calls) == 2


def test_usage_cap_fails_fast_instead_of_waiting_for_the_window(
    server: LocalXServer, make_source: SourceFactory, sleep: FakeSleep
) -> None:
    """The cap's 429 carries a reset 30 s ahead, well under max_wait_s: a client that took
    it for a rate limit would sleep and retry until it gave up, burning its retries (and
    up to max_retries x max_wait_s of a miner's time) on a cap that lasts until next month."""
    server.inject_faults(usage_capped=10, reset_in_s=30)
    source = make_source(max_wait_s=600)
    before = len(server.requests)

    with pytest.raises(SourceUsageCapped, match="Monthly product cap") as info:
        run(source.search(TAGS))
    assert not isinstance(info.value, SourceUnavailable)
    assert sleep.calls == []
    assert [r.status for r in api_requests(server, before)] == [429]

    # A look-up stops at the first capped batch: one request and one error, not one
    # failed batch (and a warning) per 100 IDs.
    with pytest.raises(SourceUsageCapped):
        run(source.lookup(server.corpus.ids[:250]))
    assert sleep.calls == []
    assert len(api_requests(server, before)) == 2
    assert server.faults.usage_capped == 8


def test_server_errors_are_retried_with_backoff(
    server: LocalXServer, make_source: SourceFactory, sleep: FakeSleep
) -> None:
    server.inject_faults(server_errors=2, error_status=503)
    before = len(server.requests)
    result = run(make_source(backoff_s=1.0).search(TAGS, limit=10))
    assert [r.status for r in api_requests(server, before)] == [503, 503, 200]
    assert len(result.records) == 10
    assert len(sleep.calls) == 2 and all(0 < wait < 10 for wait in sleep.calls)


def test_backoff_grows_with_each_failure_up_to_max_wait(
    server: LocalXServer, make_source: SourceFactory, sleep: FakeSleep
) -> None:
    """Server errors in a row on a 1 s backoff: the waits grow from about a second until
    `max_wait_s` holds every later one, which bounds any single wait."""
    server.inject_faults(server_errors=100, error_status=500)
    with pytest.raises(SourceUnavailable, match="gave up after 11 tries"):
        run(make_source(backoff_s=1.0, max_retries=10, max_wait_s=30.0).search(TAGS))
    waits = sleep.calls
    assert len(waits) == 10
    assert waits[0] < 2 and waits[4] > waits[0] * 4
    assert max(waits) == 30.0 and waits[-3:] == [30.0, 30.0, 30.0]


def test_backoff_scales_with_backoff_s(
    server: LocalXServer, make_source: SourceFactory, sleep: FakeSleep
) -> None:
    for backoff_s in (0.01, 5.0):
        server.inject_faults(server_errors=1, error_status=503)
        assert run(make_source(backoff_s=backoff_s).search(TAGS, limit=10)).records
    short, long = sleep.calls
    assert short < 0.1 < 1 < long


def test_backed_off_clients_do_not_retry_in_step(
    server: LocalXServer, make_source: SourceFactory, sleep: FakeSleep
) -> None:
    for seed in range(5):
        server.inject_faults(server_errors=1, error_status=503)
        run(make_source(rng=random.Random(seed)).search(TAGS, limit=10))
    assert len(sleep.calls) == 5 and len(set(sleep.calls)) == 5


def test_server_errors_forever_are_unavailable(
    server: LocalXServer, make_source: SourceFactory, sleep: FakeSleep
) -> None:
    server.inject_faults(server_errors=100, error_status=500)
    before = len(server.requests)
    with pytest.raises(SourceUnavailable, match="server error 500"):
        run(make_source(max_retries=3).search(TAGS))
    assert len(api_requests(server, before)) == 4
    assert len(sleep.calls) == 3


def test_bad_token_is_an_auth_error_without_retries(
    server: LocalXServer, make_source: SourceFactory, sleep: FakeSleep
) -> None:
    before = len(server.requests)
    with pytest.raises(SourceAuthError, match="bearer token"):
        run(make_source(token="not-the-token").search(TAGS))
    assert [r.status for r in api_requests(server, before)] == [401]
    assert sleep.calls == []
    with pytest.raises(SourceAuthError):
        run(make_source(token="not-the-token").lookup([server.corpus.ids[0]]))


def test_forbidden_endpoint_is_an_auth_error(
    small_server: LocalXServer, make_source: SourceFactory
) -> None:
    small_server.full_archive = False
    source = make_source(small_server, search_endpoint="all")
    with pytest.raises(SourceAuthError, match="403"):
        run(source.search(TAGS))
    assert run(make_source(small_server).search(TAGS, limit=10)).records


def test_full_archive_endpoint(server: LocalXServer, make_source: SourceFactory) -> None:
    before = len(server.requests)
    result = run(make_source(search_endpoint="all").search(TAGS, limit=20))
    assert [r.id for r in result.records] == matching_ids(server.corpus, TAGS)[:20]
    assert {r.path for r in api_requests(server, before)} == {"/2/tweets/search/all"}


def test_invalid_query_is_a_source_error_not_retried(
    server: LocalXServer, make_source: SourceFactory, sleep: FakeSleep
) -> None:
    before = len(server.requests)
    with pytest.raises(SourceError, match="400") as info:
        run(make_source().search("lang:en -is:retweet"))
    assert not isinstance(info.value, SourceUnavailable | SourceAuthError)
    assert len(api_requests(server, before)) == 1 and sleep.calls == []


def test_empty_page(server: LocalXServer, make_source: SourceFactory) -> None:
    server.inject_faults(empty_pages=1)
    source = make_source()
    empty = run(source.search(TAGS))
    assert (empty.records, empty.newest_id, empty.rejected) == ([], None, 0)
    assert len(run(source.search(TAGS, limit=10)).records) == 10


def test_no_matches(make_source: SourceFactory) -> None:
    result = run(make_source().search("zzzneverwritten"))
    assert (result.records, result.newest_id) == ([], None)


def test_lookup_found_and_missing(server: LocalXServer, make_source: SourceFactory) -> None:
    real = server.corpus.ids[100:105]
    unknown = [real[0] + 1, server.corpus.ids[-1] + 10, 12345]
    result = run(make_source().lookup([*real, *unknown, real[0], 0, -5]))
    assert set(result.found) == set(real)
    assert result.missing == {*unknown, 0, -5}
    assert result.failed == set()
    for tweet_id in real:
        assert record_fields(result.found[tweet_id]) == expected_fields(server.corpus, tweet_id)


def test_lookup_batches_by_100(server: LocalXServer, make_source: SourceFactory) -> None:
    ids = server.corpus.ids[:250]
    before = len(server.requests)
    result = run(make_source().lookup(ids))
    assert set(result.found) == set(ids)
    sizes = [len(r.params["ids"].split(",")) for r in api_requests(server, before)]
    assert sizes == [100, 100, 50]


def test_lookup_partial_errors_only_blame_asked_ids(
    server: LocalXServer, make_source: SourceFactory
) -> None:
    corpus = server.corpus
    with_refs = [int(t["id"]) for t in corpus.tweets if t.get("referenced_tweets")][:20]
    referenced = {int(r["id"]) for i in with_refs for r in corpus.by_id[i]["referenced_tweets"]}
    withheld = referenced - set(with_refs)
    assert withheld
    server.inject_faults(partial_errors=1)
    unknown = corpus.ids[-1] + 99
    result = run(make_source().lookup([*with_refs, unknown]))
    assert server.faults.partial_errors == 0  # the fault was served
    assert set(result.found) == set(with_refs)
    assert result.missing == {unknown}
    assert result.failed == set()
    for tweet_id in with_refs:
        assert record_fields(result.found[tweet_id]) == expected_fields(corpus, tweet_id)


def test_lookup_errors_naming_the_id_only_in_value_are_missing(
    server: LocalXServer, make_source: SourceFactory
) -> None:
    """X's not-found entries do not always carry `resource_id`; the ID is in `value` (with
    `parameter: "ids"`). Reading only `resource_id` made deleted tweets "failed", so a
    validator never learned that a miner's tweet does not exist."""
    real = server.corpus.ids[200:203]
    unknown = [real[0] + 1, server.corpus.ids[-1] + 77]
    server.inject_faults(not_found_by_value=1)
    result = run(make_source().lookup([*real, *unknown]))
    assert server.faults.not_found_by_value == 0  # the fault was served
    assert set(result.found) == set(real)
    assert result.missing == set(unknown)
    assert result.failed == set()


def test_sort_lookup_reads_only_errors_about_asked_ids(make_source: SourceFactory) -> None:
    """Real payload shapes: value-only and resource_id entries for asked IDs count; entries
    about referenced tweets (parameter referenced_tweets.id) or other IDs do not."""
    asked, by_value, by_resource, silent = 1 << 40, (1 << 40) + 1, (1 << 40) + 2, (1 << 40) + 3
    payload = {
        "errors": [
            {
                "value": str(by_value),
                "detail": f"Could not find tweet with ids: [{by_value}].",
                "title": "Not Found Error",
                "resource_type": "tweet",
                "parameter": "ids",
                "type": "https://api.twitter.com/2/problems/resource-not-found",
            },
            {
                "value": str(by_resource),
                "resource_id": str(by_resource),
                "title": "Authorization Error",
                "resource_type": "tweet",
                "parameter": "ids",
                "type": "https://api.twitter.com/2/problems/not-authorized-for-resource",
            },
            {  # a referenced tweet that happens to share nothing with what we asked
                "value": "77",
                "resource_id": "77",
                "title": "Authorization Error",
                "resource_type": "tweet",
                "parameter": "referenced_tweets.id",
                "type": "https://api.twitter.com/2/problems/not-authorized-for-resource",
            },
            {"value": str(silent), "parameter": "expansions", "title": "Invalid Request"},
        ]
    }
    result = LookupResult()
    make_source()._sort_lookup([asked, by_value, by_resource, silent], payload, result)
    assert result.missing == {by_value, by_resource}
    assert result.failed == {asked, silent}
    assert 77 not in result.missing | result.failed


def test_lookup_outage_is_failed_not_missing(
    server: LocalXServer, make_source: SourceFactory
) -> None:
    ids = server.corpus.ids[:150]
    server.inject_faults(server_errors=2)  # the first batch exhausts its retries
    result = run(make_source(max_retries=1).lookup(ids))
    assert result.failed == set(ids[:100])
    assert set(result.found) == set(ids[100:])
    assert result.missing == set()


def test_network_down_is_unavailable(make_source: SourceFactory, sleep: FakeSleep) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    source = make_source(api_base_url=f"http://127.0.0.1:{port}", max_retries=2)
    with pytest.raises(SourceUnavailable, match="network error"):
        run(source.search(TAGS))
    assert len(sleep.calls) == 2
    result = run(source.lookup([1 << 40]))
    assert result.failed == {1 << 40}


def test_slow_server_times_out(small_server: LocalXServer, make_source: SourceFactory) -> None:
    small_server.inject_faults(latency_s=0.5)
    source = make_source(small_server, timeout_s=0.1, max_retries=1)
    with pytest.raises(SourceUnavailable, match="ReadTimeout"):
        run(source.search(TAGS))


def test_event_loop_keeps_running_during_calls(
    small_server: LocalXServer, make_source: SourceFactory
) -> None:
    small_server.inject_faults(latency_s=0.3)
    source = make_source(small_server)

    async def main() -> int:
        ticks = 0
        search = asyncio.create_task(source.search(TAGS, limit=10))
        while not search.done():
            await asyncio.sleep(0.01)
            ticks += 1
        assert (await search).records
        return ticks

    assert run(main()) >= 10


def test_include_referenced_adds_real_referenced_tweets(
    server: LocalXServer, make_source: SourceFactory
) -> None:
    query = "is:reply #AI"
    result = run(make_source(include_referenced=True).search(query, limit=50))
    matched = set(matching_ids(server.corpus, query)[:50])
    extra = [r for r in result.records if r.id not in matched]
    assert extra
    parents = {r.in_reply_to_id for r in result.records if r.id in matched}
    assert {r.id for r in extra} <= parents
    for record in extra:
        assert record_fields(record) == expected_fields(server.corpus, record.id)
    assert result.newest_id == max(matched)


def test_redirect_session_only_rewrites_x_host(server: LocalXServer) -> None:
    client = tweepy.Client(bearer_token=server.token, return_type=dict)
    session = redirect_session(client, server.base_url)
    assert session is client.session
    payload = client.get_tweets(ids=[server.corpus.ids[0]])
    assert payload["data"][0]["id"] == str(server.corpus.ids[0])
    # Other hosts keep the stock adapter.
    assert type(session.get_adapter("https://example.com/")) is requests.adapters.HTTPAdapter


def test_constructor_checks(server: LocalXServer) -> None:
    with pytest.raises(SourceAuthError):
        XApiSource("")
    with pytest.raises(ValueError, match="search_endpoint"):
        XApiSource("t", search_endpoint="archive")  # type: ignore[arg-type]
