"""The pydantic model and the columnar check are one set of rules (d3.record.RULES and
ROW_RULES): every case below goes through both, and both must accept it, or both refuse
it on the same field."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from pydantic import ValidationError

from d3.dev.synthetic import synthetic_table
from d3.record import (
    INT64_MAX,
    MAX_LIST_ITEMS,
    MAX_TEXT_CHARS,
    ROW_RULES,
    RULES,
    RecordError,
    TweetRecord,
    check_table,
    tweet_url,
)
from d3.snowflake import MAX_CLOCK_SKEW_MS, TWITTER_EPOCH_MS, datetime_to_id

NOW = datetime(2026, 6, 1, tzinfo=UTC)
ROW = 5  # the row each case changes, in a table of good ones
EPOCH = datetime.fromtimestamp(TWITTER_EPOCH_MS / 1000, tz=UTC)
Change = dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]


def _minted_at(when: datetime, **more: Any) -> Change:
    """A tweet minted at `when`: its id, created_at and url agree; `more` on top."""

    def change(row: dict[str, Any]) -> dict[str, Any]:
        tweet_id = datetime_to_id(when, sequence=7) if when >= EPOCH else 1 << 22
        return {
            "id": tweet_id,
            "created_at": when,
            "url": tweet_url(row["author_username"], tweet_id),
            "scraped_at": max(when, row["scraped_at"]),
            **more,
        }

    return change


def _renamed(username: str) -> Change:
    return lambda row: {"author_username": username, "url": tweet_url(username, row["id"])}


def _created(delta: timedelta) -> Change:
    return lambda row: {"created_at": row["created_at"] + delta, "scraped_at": NOW}


# name -> (change to one row, the field both must name; None: both accept)
CASES: dict[str, tuple[Change, str | None]] = {
    "id zero": ({"id": 0}, "id"),
    "id negative": ({"id": -1}, "id"),
    "id null": ({"id": None}, "id"),
    "text empty": ({"text": ""}, "text"),
    "text blank": ({"text": " \n\t "}, "text"),
    "text of no-break and ideographic spaces": ({"text": "\u00a0\u3000"}, "text"),
    "text of separators": ({"text": "\x1c\x85\u2028\u205f"}, "text"),
    "text one over the limit": ({"text": "x" * (MAX_TEXT_CHARS + 1)}, "text"),
    "text of emoji one over the limit": ({"text": "😀" * (MAX_TEXT_CHARS + 1)}, "text"),
    "text null": ({"text": None}, "text"),
    "created_at five minutes from its id": (_created(timedelta(minutes=5)), "created_at"),
    "created_at before snowflakes": (_minted_at(EPOCH - timedelta(seconds=30)), "created_at"),
    "created_at in the future": (_minted_at(NOW + timedelta(days=1)), "created_at"),
    "created_at null": ({"created_at": None}, "created_at"),
    "author_id zero": ({"author_id": 0}, "author_id"),
    "author_id negative": ({"author_id": -7}, "author_id"),
    "author_username with a space": (_renamed("bad name"), "author_username"),
    "author_username empty": (_renamed(""), "author_username"),
    "author_username too long": (_renamed("a" * 51), "author_username"),
    "author_username with a newline": (_renamed("handle\n"), "author_username"),
    "author_username not ASCII": (_renamed("ünï"), "author_username"),
    "lang too long": ({"lang": "x" * 17}, "lang"),
    "conversation_id zero": ({"conversation_id": 0}, "conversation_id"),
    "in_reply_to_id negative": ({"in_reply_to_id": -1}, "in_reply_to_id"),
    "quoted_id zero": ({"quoted_id": 0}, "quoted_id"),
    "retweeted_id negative": ({"retweeted_id": -5}, "retweeted_id"),
    "like_count negative": ({"like_count": -1}, "like_count"),
    "retweet_count negative": ({"retweet_count": -1}, "retweet_count"),
    "reply_count negative": ({"reply_count": -1}, "reply_count"),
    "quote_count negative": ({"quote_count": -1}, "quote_count"),
    "view_count negative": ({"view_count": -1}, "view_count"),
    "like_count null": ({"like_count": None}, "like_count"),
    "hashtags one too many": ({"hashtags": ["t"] * (MAX_LIST_ITEMS + 1)}, "hashtags"),
    "hashtags with a null item": ({"hashtags": ["a", None]}, "hashtags"),
    "hashtags null": ({"hashtags": None}, "hashtags"),
    "urls one too many": ({"urls": ["https://a.b"] * (MAX_LIST_ITEMS + 1)}, "urls"),
    "urls with a null item": ({"urls": [None]}, "urls"),
    "media_urls one too many": ({"media_urls": ["m"] * (MAX_LIST_ITEMS + 1)}, "media_urls"),
    "url of another tweet": ({"url": "https://x.com/someone/status/1"}, "url"),
    "url on twitter.com": (
        lambda row: {"url": tweet_url(row["author_username"], row["id"]).replace("x.", "twitter.")},
        "url",
    ),
    "url empty": ({"url": ""}, "url"),
    "source empty": ({"source": ""}, "source"),
    "source too long": ({"source": "s" * 33}, "source"),
    "scraped_at before created_at": (
        lambda row: {"scraped_at": row["created_at"] - timedelta(milliseconds=1)},
        "scraped_at",
    ),
    "scraped_at in the future": ({"scraped_at": NOW + timedelta(seconds=1)}, "scraped_at"),
    "scraped_at null": ({"scraped_at": None}, "scraped_at"),
    # At the limits, and the values a rule allows: both accept.
    "text at the limit": ({"text": "x" * MAX_TEXT_CHARS}, None),
    "text of emoji at the limit": ({"text": "😀" * MAX_TEXT_CHARS}, None),
    "text padded with spaces": ({"text": "  hello  "}, None),
    "text of a zero-width space": ({"text": "\u200b"}, None),  # not whitespace to either
    "created_at at the skew limit": (
        _created(timedelta(milliseconds=MAX_CLOCK_SKEW_MS)),
        None,
    ),
    "created_at now": (_minted_at(NOW), None),
    "author_username at the limit": (_renamed("a" * 50), None),
    "author_username one underscore": (_renamed("_"), None),
    "lang at the limit": ({"lang": "x" * 16}, None),
    "lang null": ({"lang": None}, None),
    "references null": ({"conversation_id": None, "quoted_id": None}, None),
    "references at int64's top": ({"quoted_id": INT64_MAX, "like_count": INT64_MAX}, None),
    "counts zero": ({"like_count": 0, "view_count": 0}, None),
    "view_count null": ({"view_count": None}, None),
    "lists at the limit": (
        {"hashtags": ["t"] * MAX_LIST_ITEMS, "media_urls": ["m"] * MAX_LIST_ITEMS},
        None,
    ),
    "lists with empty strings": ({"hashtags": [""], "urls": [""]}, None),
    "source at the limit": ({"source": "s" * 32}, None),
    "scraped_at equal to created_at": (lambda row: {"scraped_at": row["created_at"]}, None),
    "scraped_at now": ({"scraped_at": NOW}, None),
}


def _table_with(change: Change) -> tuple[pa.Table, dict[str, Any]]:
    table = synthetic_table(20, seed=11)
    rows = table.to_pylist()
    rows[ROW] |= change(rows[ROW]) if callable(change) else change
    columns = {f.name: [row[f.name] for row in rows] for f in table.schema}
    # Built without the schema's nullability, so a null reaches the checks to be refused.
    arrays = [pa.array(columns[f.name], f.type) for f in table.schema]
    return pa.Table.from_arrays(arrays, names=table.schema.names), rows[ROW]


def _model_verdict(row: dict[str, Any]) -> str | None:
    try:
        TweetRecord.model_validate(row, context={"now": NOW})
    except ValidationError as exc:
        return str(exc.errors()[0]["loc"][0])
    return None


def _columnar_verdict(table: pa.Table) -> tuple[str | None, str]:
    try:
        check_table(table, NOW)
    except RecordError as exc:
        return exc.field, str(exc)
    return None, ""


@pytest.mark.parametrize("case", CASES)
def test_the_model_and_the_columnar_check_agree(case: str) -> None:
    change, field = CASES[case]
    table, row = _table_with(change)
    model = _model_verdict(row)
    columnar, message = _columnar_verdict(table)
    assert (model, columnar) == (field, field), message
    if field is not None:
        assert f"row {ROW}," in message


@pytest.mark.parametrize(
    ("shape", "field"),
    [
        (lambda t: t.drop_columns(["text"]), "text"),
        (lambda t: t.append_column("extra", pa.array([1] * t.num_rows)), "extra"),
    ],
)
def test_a_missing_or_extra_column_is_refused_by_both(shape, field) -> None:
    table = shape(synthetic_table(3, seed=11))
    with pytest.raises(ValidationError) as model:
        TweetRecord.model_validate(table.to_pylist()[0])
    assert model.value.errors()[0]["loc"][0] == field
    with pytest.raises(RecordError) as columnar:
        check_table(table, NOW)
    assert columnar.value.field == field


def test_the_model_judges_the_present_only_when_given_one() -> None:
    _, row = _table_with(_minted_at(NOW + timedelta(days=1)))
    TweetRecord.model_validate(row)  # a scraper's record: no present to judge it by
    with pytest.raises(ValidationError, match="created_at is in the future"):
        TweetRecord.model_validate(row, context={"now": NOW})


# Each row rule, and the case above that breaks it.
ROW_RULE_CASES = {
    "created_at is before snowflake IDs existed": "created_at before snowflakes",
    "id does not encode created_at": "created_at five minutes from its id",
    "created_at is in the future": "created_at in the future",
    "url does not match id and author": "url of another tweet",
    "scraped_at is before created_at": "scraped_at before created_at",
    "scraped_at is in the future": "scraped_at in the future",
}


@pytest.mark.parametrize("reason", ROW_RULE_CASES)
def test_both_checks_give_a_row_rule_the_same_reason(reason: str) -> None:
    table, row = _table_with(CASES[ROW_RULE_CASES[reason]][0])
    assert reason in _columnar_verdict(table)[1]
    with pytest.raises(ValidationError, match=reason):
        TweetRecord.model_validate(row, context={"now": NOW})


def test_every_rule_has_a_bad_case() -> None:
    refused = {field for _, field in CASES.values() if field is not None}
    constrained = {
        rule.name
        for rule in RULES
        if not rule.nullable
        or rule.min_value is not None
        or rule.max_chars is not None
        or rule.pattern is not None
        or rule.max_items is not None
    }
    assert constrained <= refused
    assert set(ROW_RULE_CASES) == {rule.reason for rule in ROW_RULES}
