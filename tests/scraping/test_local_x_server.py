"""The local X server over plain HTTP: its corpus, its X-shaped answers and its switches."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
import requests

from d3.dev.x_corpus import Corpus
from d3.dev.x_query import QueryError, compile_query, index_tweet
from d3.dev.x_server import LocalXServer
from d3.snowflake import id_to_ms, matches_created_at
from tests.scraping.support import matching_ids

END = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def get(
    server: LocalXServer, path: str, token: str | None = None, **params: str
) -> requests.Response:
    headers = {"Authorization": f"Bearer {token or server.token}"}
    return requests.get(server.base_url + path, params=params, headers=headers, timeout=5)


# -- corpus -----------------------------------------------------------------------------


def test_corpus_is_deterministic_and_seeded() -> None:
    a = Corpus.generate(300, seed=1, end=END)
    b = Corpus.generate(300, seed=1, end=END)
    c = Corpus.generate(300, seed=2, end=END)
    assert a.tweets == b.tweets and a.users == b.users and a.media == b.media
    assert a.ids != c.ids


def test_corpus_is_truthful(server: LocalXServer) -> None:
    corpus = server.corpus
    assert len(corpus.tweets) >= 5000
    assert corpus.ids == sorted(set(corpus.ids))
    kinds: set[str] = set()
    for tweet in corpus.tweets:
        tweet_id = int(tweet["id"])
        created = datetime.fromisoformat(tweet["created_at"])
        assert matches_created_at(tweet_id, created)
        assert id_to_ms(tweet_id) // 1000 == int(created.timestamp())
        assert tweet["author_id"] in corpus.users
        for ref in tweet.get("referenced_tweets", []):
            kinds.add(ref["type"])
            assert int(ref["id"]) in corpus.by_id and int(ref["id"]) < tweet_id
        for key in tweet.get("attachments", {}).get("media_keys", []):
            assert key in corpus.media
        for tag in tweet.get("entities", {}).get("hashtags", []):
            assert tweet["text"][tag["start"] : tag["end"]] == "#" + tag["tag"]
    assert kinds == {"replied_to", "quoted", "retweeted"}
    assert any("note_tweet" in t for t in corpus.tweets)
    assert len({t["lang"] for t in corpus.tweets}) >= 4


def test_corpus_generation_is_fast() -> None:
    started = time.perf_counter()
    Corpus.generate(5000, seed=3, end=END)
    assert time.perf_counter() - started < 3.0


def test_publish_adds_newer_tweets_not_from_the_future(small_server: LocalXServer) -> None:
    newest = small_server.corpus.ids[-1]
    ids = small_server.publish(50)
    assert len(ids) == 50 and min(ids) > newest and ids == sorted(ids)
    assert id_to_ms(ids[-1]) <= time.time() * 1000
    response = requests.post(
        small_server.base_url + "/_admin/publish", json={"count": 3}, timeout=5
    )
    assert [int(i) for i in response.json()["ids"]] == small_server.corpus.ids[-3:]


# -- X API shapes -----------------------------------------------------------------------


def test_requires_the_bearer_token(server: LocalXServer) -> None:
    response = get(server, "/2/tweets/search/recent", token="wrong", query="#AI")
    assert response.status_code == 401
    assert response.json()["title"] == "Unauthorized"
    response = requests.get(server.base_url + "/2/tweets", params={"ids": "1"}, timeout=5)
    assert response.status_code == 401


def test_search_pages_cover_exactly_the_matches(server: LocalXServer) -> None:
    query = "#AI OR from:" + server.corpus.username(server.corpus.tweets[-1]["author_id"])
    expected = matching_ids(server.corpus, query)
    assert len(expected) > 100
    got: list[int] = []
    params = {"query": query, "max_results": "37"}
    while True:
        body = get(server, "/2/tweets/search/recent", **params).json()
        ids = [int(t["id"]) for t in body.get("data", [])]
        assert body["meta"]["result_count"] == len(ids)
        if ids:
            assert body["meta"]["newest_id"] == str(ids[0])
            assert body["meta"]["oldest_id"] == str(ids[-1])
        got += ids
        if "next_token" not in body["meta"]:
            break
        params["next_token"] = body["meta"]["next_token"]
    assert got == expected


def test_only_requested_fields_and_expansions(server: LocalXServer) -> None:
    bare = get(server, "/2/tweets/search/recent", query="#AI").json()
    assert set(bare) == {"data", "meta"}
    assert all(set(t) == {"id", "text", "edit_history_tweet_ids"} for t in bare["data"])
    assert len(bare["data"]) == 10  # X's default page size

    full = get(
        server,
        "/2/tweets/search/recent",
        query="(#AI OR #LLM OR #python OR #science OR #coffee OR #TAO) is:reply",
        max_results="100",
        expansions="author_id,attachments.media_keys,referenced_tweets.id",
        **{"tweet.fields": "created_at,author_id,attachments", "media.fields": "url"},
    ).json()
    users = {u["id"] for u in full["includes"]["users"]}
    assert {t["author_id"] for t in full["data"]} == users
    assert all(set(u) == {"id", "name", "username"} for u in full["includes"]["users"])
    assert full["includes"]["media"]
    assert all(set(m) <= {"type", "media_key", "url"} for m in full["includes"]["media"])
    assert "referenced_tweets" not in full["data"][0]  # not in tweet.fields
    assert full["includes"]["tweets"]


def test_invalid_parameters_are_400(server: LocalXServer) -> None:
    cases = [
        {"query": "#AI", "max_results": "5"},
        {"query": "#AI", "max_results": "101"},
        {"query": "#AI", "next_token": "garbage"},
        {"query": "#AI", "tweet.fields": "bogus"},
        {"query": "#AI", "expansions": "bogus"},
        {"query": "lang:en"},
        {"query": "#AI", "start_time": "yesterday"},
        {"query": "nonsense:operator"},
    ]
    for params in cases:
        response = get(server, "/2/tweets/search/recent", **params)
        assert response.status_code == 400, params
        assert response.json()["title"] == "Invalid Request"
    assert get(server, "/2/tweets/search/all", query="#AI", max_results="500").status_code == 200
    assert get(server, "/2/tweets", ids="1,x").status_code == 400
    assert get(server, "/2/tweets", ids=",".join(["1"] * 101)).status_code == 400
    assert get(server, "/2/users/me").status_code == 404


def test_lookup_reports_unknown_ids_as_errors(server: LocalXServer) -> None:
    known = server.corpus.ids[:2]
    body = get(server, "/2/tweets", ids=f"{known[0]},{known[1]},999").json()
    assert [int(t["id"]) for t in body["data"]] == known
    [error] = body["errors"]
    assert error["resource_id"] == "999" and error["title"] == "Not Found Error"
    assert error["type"] == "https://api.twitter.com/2/problems/resource-not-found"
    only_unknown = get(server, "/2/tweets", ids="999").json()
    assert "data" not in only_unknown and len(only_unknown["errors"]) == 1


# -- faults -----------------------------------------------------------------------------


def test_admin_faults_over_http(server: LocalXServer) -> None:
    admin = server.base_url + "/_admin/faults"
    set_ = requests.post(
        admin, json={"rate_limited": 1, "reset_in_s": 5, "server_errors": 1}, timeout=5
    )
    assert set_.json()["rate_limited"] == 1
    limited = get(server, "/2/tweets", ids="1")
    assert limited.status_code == 429
    assert abs(int(limited.headers["x-rate-limit-reset"]) - (time.time() + 5)) <= 2
    assert get(server, "/2/tweets", ids="1").status_code == 503
    assert get(server, "/2/tweets", ids="1").status_code == 200
    assert requests.post(admin, json={"bogus": 1}, timeout=5).status_code == 400
    requests.post(admin, json={"empty_pages": 3}, timeout=5)
    assert requests.get(admin, timeout=5).json()["empty_pages"] == 3
    requests.delete(admin, timeout=5)
    assert server.faults.empty_pages == 0
    stats = requests.get(server.base_url + "/_admin/stats", timeout=5).json()
    assert stats["by_status"]["429"] >= 1 and stats["tweets"] == len(server.corpus.ids)


def test_faults_are_counted_per_request(server: LocalXServer) -> None:
    server.inject_faults(empty_pages=1)
    server.inject_faults(empty_pages=1)
    for _ in range(2):
        assert get(server, "/2/tweets/search/recent", query="#AI").json() == {
            "meta": {"result_count": 0}
        }
    assert get(server, "/2/tweets/search/recent", query="#AI").json()["meta"]["result_count"] == 10
    with pytest.raises(ValueError, match="unknown faults"):
        server.inject_faults(nonsense=1)


def test_partial_errors_withhold_referenced_tweets(server: LocalXServer) -> None:
    with_refs = [t for t in server.corpus.tweets if t.get("referenced_tweets")][:5]
    ids = ",".join(t["id"] for t in with_refs)
    server.inject_faults(partial_errors=1)
    body = get(server, "/2/tweets", ids=ids, expansions="referenced_tweets.id").json()
    assert len(body["data"]) == 5
    assert "tweets" not in body.get("includes", {})
    refs = {r["id"] for t in with_refs for r in t["referenced_tweets"]} - {
        t["id"] for t in with_refs
    }
    assert {e["resource_id"] for e in body["errors"]} == refs
    assert {e["title"] for e in body["errors"]} == {"Authorization Error"}
    normal = get(server, "/2/tweets", ids=ids, expansions="referenced_tweets.id").json()
    assert "errors" not in normal and normal["includes"]["tweets"]


def test_usage_cap_is_a_429_with_xs_problem_and_healthy_rate_headers(
    server: LocalXServer,
) -> None:
    server.inject_faults(usage_capped=2, reset_in_s=30)
    for path, params in (
        ("/2/tweets/search/recent", {"query": "#AI"}),
        ("/2/tweets", {"ids": "1"}),
    ):
        response = get(server, path, **params)
        assert response.status_code == 429
        body = response.json()
        assert body["title"] == "UsageCapExceeded"
        assert body["type"] == "https://api.twitter.com/2/problems/usage-capped"
        assert body["detail"] == "Usage cap exceeded: Monthly product cap"
        # What makes it a trap: the headers read like an ordinary, soon-reset window.
        assert response.headers["x-rate-limit-remaining"] != "0"
        assert abs(int(response.headers["x-rate-limit-reset"]) - (time.time() + 30)) <= 2
    assert get(server, "/2/tweets", ids="1").status_code == 200


def test_not_found_by_value_leaves_out_resource_id(server: LocalXServer) -> None:
    known = server.corpus.ids[0]
    server.inject_faults(not_found_by_value=1)
    body = get(server, "/2/tweets", ids=f"{known},999").json()
    assert [t["id"] for t in body["data"]] == [str(known)]
    assert body["errors"] == [
        {
            "value": "999",
            "detail": "Could not find tweet with ids: [999].",
            "title": "Not Found Error",
            "resource_type": "tweet",
            "parameter": "ids",
            "type": "https://api.twitter.com/2/problems/resource-not-found",
        }
    ]
    assert get(server, "/2/tweets", ids="999").json()["errors"][0]["resource_id"] == "999"


def test_forbidden_full_archive(small_server: LocalXServer) -> None:
    small_server.full_archive = False
    response = get(small_server, "/2/tweets/search/all", query="#AI")
    assert response.status_code == 403
    assert response.json()["reason"] == "client-not-enrolled"


def test_cli_serves_until_terminated() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "d3.dev.x_server",
            "--size",
            "60",
            "--seed",
            "4",
            "--token",
            "t0k",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        response = requests.get(
            base_url + "/_admin/stats", headers={"Authorization": "Bearer t0k"}, timeout=5
        )
        assert response.json()["tweets"] == 60
        denied = requests.get(base_url + "/2/tweets", params={"ids": "1"}, timeout=5)
        assert denied.status_code == 401
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


# -- query language ---------------------------------------------------------------------


def keys(text: str, *, author: str = "bob", lang: str = "en", **extra: object):
    tweet = {"id": "1", "text": text, "author_id": "1", "lang": lang, **extra}
    return index_tweet(tweet, {"1": author, "2": "alice"})


TWEETS = {
    "ai": keys("New LLM release", entities={"hashtags": [{"tag": "AI"}]}),
    "rt": keys("RT @alice: hi", referenced_tweets=[{"type": "retweeted", "id": "2"}]),
    "es": keys("hola mundo inteligencia artificial", lang="es", author="carla"),
    "reply": keys(
        "@alice gpt-4 is fine",
        in_reply_to_user_id="2",
        referenced_tweets=[{"type": "replied_to", "id": "2"}],
        entities={"mentions": [{"username": "alice"}]},
    ),
}


@pytest.mark.parametrize(
    ("query", "matches"),
    [
        ("#ai", {"ai"}),
        ("llm", {"ai"}),
        ("LLM -#AI", set()),
        ("#AI OR hola", {"ai", "es"}),
        ("hola OR #AI lang:en", {"ai", "es"}),  # AND binds tighter than OR
        ("(hola OR #AI) lang:en", {"ai"}),
        ('"inteligencia artificial"', {"es"}),
        ("from:CARLA", {"es"}),
        ("to:alice", {"reply"}),
        ("@alice -is:retweet", {"reply"}),
        ("@alice OR hi is:retweet", {"rt", "reply"}),
        ("gpt-4", {"reply"}),
        ("-(#AI OR is:reply) (hi OR hola)", {"rt", "es"}),
        ("fine is:reply has:mentions", {"reply"}),
    ],
)
def test_query_language(query: str, matches: set[str]) -> None:
    predicate = compile_query(query)
    assert {name for name, k in TWEETS.items() if predicate(k)} == matches


@pytest.mark.parametrize(
    "query",
    [
        "",
        "lang:en",
        "-#AI",
        "(#AI",
        "#AI)",
        '"open',
        "#AI OR",
        "color:red",
        "is:cool #AI",
        "x" * 513,
    ],
)
def test_query_language_errors(query: str) -> None:
    with pytest.raises(QueryError):
        compile_query(query)


def test_a_restarted_server_still_has_every_tweet_it_served(tmp_path):
    """A pm2 local network restarts its X server: with the same seed, end and journal it
    serves the same corpus, minted tweets included, so honest miners' tweets still exist."""
    end = datetime(2026, 6, 1, tzinfo=UTC)
    journal = tmp_path / "x-journal"
    first = LocalXServer(seed=4, size=200, end=end, journal=journal)
    minted = first.publish(5) + first.publish(3)
    before = {t["id"]: t for t in first.corpus.tweets}
    again = LocalXServer(seed=4, size=200, end=end, journal=journal)
    after = {t["id"]: t for t in again.corpus.tweets}
    assert after == before and {int(k) for k in after} >= set(minted)
    assert len(after) == 208
    fresh = LocalXServer(seed=4, size=200, end=end)  # no journal: the minted ones are gone
    assert len(fresh.corpus.tweets) == 200
