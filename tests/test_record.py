from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from pydantic import ValidationError

from d3.dev.synthetic import synthetic_records, synthetic_table
from d3.record import (
    ARROW_SCHEMA,
    RecordError,
    TweetRecord,
    check_table,
    records_to_table,
    tweet_url,
)
from d3.snowflake import datetime_to_id, id_to_datetime, id_to_ms

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def good() -> dict:
    return synthetic_records(1, seed=7)[0].model_dump()


def test_snowflake_round_trip_known_id():
    assert id_to_ms(0) == 1288834974657
    assert id_to_ms((1 << 22) + 5) == 1288834974658
    when = datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)
    tweet_id = datetime_to_id(when, sequence=12345)
    assert id_to_datetime(tweet_id) == when
    assert tweet_id & ((1 << 22) - 1) == 12345


def test_snowflake_rejects_naive_and_pre_epoch():
    with pytest.raises(ValueError, match="naive"):
        datetime_to_id(datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="epoch"):
        datetime_to_id(datetime(2009, 1, 1, tzinfo=UTC))


def test_good_record_validates_and_round_trips_through_arrow():
    record = TweetRecord.model_validate(good())
    table = records_to_table([record])
    assert table.schema == ARROW_SCHEMA
    assert TweetRecord.model_validate(table.to_pylist()[0]) == record


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"text": "   "}, "text is blank"),
        ({"text": ""}, "at least 1 character"),
        ({"id": -5}, "greater than or equal to 1"),
        ({"author_username": "not a handle!"}, "not an X handle"),
        ({"like_count": -1}, "greater than or equal to 0"),
        ({"url": "https://x.com/someone/status/1"}, "does not match id"),
        ({"created_at": datetime(2026, 1, 1)}, "no timezone"),
        ({"unknown_field": 1}, "Extra inputs"),
    ],
)
def test_bad_records_are_rejected_with_a_reason(change, reason):
    with pytest.raises(ValidationError, match=reason):
        TweetRecord.model_validate(good() | change)


def test_created_at_must_match_snowflake():
    row = good()
    row["created_at"] = row["created_at"] + timedelta(minutes=5)
    row["scraped_at"] = row["created_at"] + timedelta(minutes=5)
    with pytest.raises(ValidationError, match="encodes a time 300s away"):
        TweetRecord.model_validate(row)


def test_scraped_before_created_is_rejected():
    row = good()
    row["scraped_at"] = row["created_at"] - timedelta(seconds=1)
    with pytest.raises(ValidationError, match="scraped_at is before created_at"):
        TweetRecord.model_validate(row)


def test_check_table_accepts_synthetic_data():
    check_table(synthetic_table(500, seed=1), NOW)


def _with(table: pa.Table, column: str, index: int, value) -> pa.Table:
    values = table[column].to_pylist()
    values[index] = value
    return table.set_column(
        table.schema.get_field_index(column),
        column,
        pa.array(values, table.schema.field(column).type),
    )


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("text", " \n ", "text is blank"),
        ("url", "https://x.com/a/status/1", "url does not match id"),
        ("created_at", datetime(2026, 3, 1, tzinfo=UTC), "id does not encode created_at"),
        ("like_count", -3, "negative like_count"),
        ("author_username", "bad name", "not an X handle"),
    ],
)
def test_check_table_names_rule_and_row(column, value, reason):
    table = _with(synthetic_table(50, seed=2), column, 17, value)
    with pytest.raises(RecordError, match=reason) as info:
        check_table(table, NOW)
    assert "row 17" in str(info.value)


def test_check_table_rejects_future_and_duplicates_and_schema():
    future = synthetic_table(10, seed=3, start=NOW + timedelta(days=1))
    with pytest.raises(RecordError, match="in the future"):
        check_table(future, NOW)
    table = synthetic_table(10, seed=3)
    doubled = pa.concat_tables([table, table.slice(4, 1)])
    with pytest.raises(RecordError, match="duplicate id"):
        check_table(doubled, NOW)
    with pytest.raises(RecordError, match="missing=\\['text'\\]"):
        check_table(table.drop_columns(["text"]), NOW)
    with pytest.raises(RecordError, match="wrong_type=\\['id'\\]"):
        check_table(
            table.set_column(0, "id", pa.array([str(i) for i in table["id"].to_pylist()])), NOW
        )


def test_url_helper_matches_records():
    record = TweetRecord.model_validate(good())
    assert record.url == tweet_url(record.author_username, record.id)
