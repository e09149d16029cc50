"""Query plans: files in, X search strings and a schedule out."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from d3.dev.x_query import compile_query
from d3.dev.x_server import LocalXServer
from scraping.query_plan import QueryPlanError, default_plan, load_plan, parse_plan
from tests.scraping.support import SourceFactory, run

GOOD_TOML = """
[defaults]
languages = ["en", "es"]
interval_s = 600

[[queries]]
name = "bittensor"
keywords = ["bittensor", "decentralized   AI"]
hashtags = ["#bittensor", "TAO"]
accounts = ["@opentensor"]
interval_s = 120
limit = 500

[[queries]]
hashtags = ["rustlang"]
languages = []
exclude_retweets = false
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_good_toml(tmp_path: Path) -> None:
    plan = load_plan(write(tmp_path, "plan.toml", GOOD_TOML))
    assert list(plan.queries()) == [
        '(bittensor OR "decentralized AI" OR #bittensor OR #TAO OR from:opentensor) '
        "(lang:en OR lang:es) -is:retweet",
        "#rustlang",
    ]
    first, second = plan.planned()
    assert (first.name, first.interval_s, first.limit) == ("bittensor", 120, 500)
    assert (second.name, second.interval_s, second.limit) == ("#rustlang", 600, 100)


def test_good_json_matches_toml(tmp_path: Path) -> None:
    data = tomllib.loads(GOOD_TOML)
    from_json = load_plan(write(tmp_path, "plan.json", json.dumps(data)))
    from_toml = load_plan(write(tmp_path, "plan.toml", GOOD_TOML))
    assert from_json.planned() == from_toml.planned()


BAD_PLANS = {
    "bad hashtag": ('[[queries]]\nhashtags = ["a b"]', "queries[0].hashtags: hashtag 'a b'"),
    "bad account": (
        '[[queries]]\naccounts = ["way_too_long_for_x"]',
        "queries[0].accounts: account 'way_too_long_for_x' is not an X handle",
    ),
    "bad language": (
        '[defaults]\nlanguages = ["english"]\n[[queries]]\nhashtags = ["ai"]',
        "defaults.languages: language 'english'",
    ),
    "syntax in keyword": (
        '[[queries]]\nkeywords = ["ai OR"]\n[[queries]]\nkeywords = ["from:me"]',
        "queries[1].keywords: keyword 'from:me' holds search syntax",
    ),
    "interval too short": (
        '[[queries]]\nhashtags = ["ai"]\ninterval_s = 1',
        "queries[0].interval_s: Input should be greater than or equal to 10",
    ),
    "unknown key": ('[[queries]]\nhashtags = ["ai"]\nhashtag = "x"', "queries[0].hashtag: Extra"),
    "no terms": ('[[queries]]\nlanguages = ["en"]', "queries[0]: a query needs at least one"),
    "no queries": ("[defaults]\ninterval_s = 60", "queries: Field required"),
    "duplicate names": (
        '[[queries]]\nname = "a"\nhashtags = ["x"]\n[[queries]]\nname = "a"\nhashtags = ["y"]',
        "queries[1]: duplicate query name 'a'",
    ),
    "too long": (
        "[[queries]]\nkeywords = [" + ", ".join(f'"keyword{i}"' for i in range(60)) + "]",
        "queries[0]: query is",
    ),
    "not toml": ("[[queries]\nhashtags = 1", "not valid TOML"),
}


@pytest.mark.parametrize("case", BAD_PLANS)
def test_bad_plans_fail_with_one_line(tmp_path: Path, case: str) -> None:
    text, expected = BAD_PLANS[case]
    path = write(tmp_path, "plan.toml", text)
    with pytest.raises(QueryPlanError) as info:
        load_plan(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "\n" not in message


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(QueryPlanError, match="cannot read"):
        load_plan(tmp_path / "absent.toml")
    with pytest.raises(QueryPlanError, match=r"use \.toml or \.json"):
        load_plan(write(tmp_path, "plan.yaml", "queries: []"))
    with pytest.raises(QueryPlanError, match="not valid JSON"):
        load_plan(write(tmp_path, "plan.json", "{"))


def test_default_plan_is_broad_and_valid() -> None:
    plan = default_plan()
    queries = list(plan.queries())
    assert len(queries) >= 3 and len(set(queries)) == len(queries)
    for query in queries:
        compile_query(query)  # accepted by the X query syntax the local server implements
        assert "lang:en" in query and "-is:retweet" in query
    terms = [set(spec.keywords + spec.hashtags) for spec in plan.specs]
    assert all(len(t) >= 2 for t in terms)


def test_default_plan_finds_tweets_on_the_local_server(
    server: LocalXServer, make_source: SourceFactory
) -> None:
    source = make_source()
    for planned in default_plan().planned():
        assert run(source.search(planned.query, limit=10)).records, planned.name


def test_schedule() -> None:
    plan = parse_plan(
        {
            "queries": [
                {"name": "fast", "hashtags": ["a"], "interval_s": 60},
                {"name": "slow", "hashtags": ["b"], "interval_s": 600},
                {"name": "new", "hashtags": ["c"], "interval_s": 600},
            ]
        }
    )
    assert [p.name for p in plan.due({}, now=0)] == ["fast", "slow", "new"]
    last = {"fast": 1000.0, "slow": 1000.0, "new": 1000.0}
    assert plan.due(last, now=1059) == []
    assert plan.seconds_until_due(last, now=1059) == pytest.approx(1)
    assert [p.name for p in plan.due(last, now=1060)] == ["fast"]
    # Never-run first, then the most overdue.
    last = {"fast": 0.0, "slow": 500.0}
    assert [p.name for p in plan.due(last, now=1200)] == ["new", "fast", "slow"]
    assert plan.seconds_until_due(last, now=1200) == 0
