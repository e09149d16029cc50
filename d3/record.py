"""The tweet record: one pydantic model for the edges, one Arrow schema for bulk paths.

Both describe the same row (docs/protocol.md). The model validates one tweet as it enters
a miner (from a scraper) and gives a clear reason when a tweet is impossible; the columnar
`check_table` applies the same rules to a whole shard at once on the validator, where a
per-row Python loop over millions of tweets would be the bottleneck.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from d3.snowflake import MAX_CLOCK_SKEW_MS, TWITTER_EPOCH_MS, id_to_ms

MAX_TEXT_CHARS = 25_000  # X long posts are capped at 25k characters
MAX_LIST_ITEMS = 100
# Snowflake IDs fit in a signed int64; anything outside cannot be a tweet.
INT64_MAX = (1 << 63) - 1

_USERNAME = re.compile(r"^[A-Za-z0-9_]{1,50}$")
URL_PREFIX = "https://x.com/"

PositiveId = Annotated[int, Field(gt=0, le=INT64_MAX)]
Count = Annotated[int, Field(ge=0, le=INT64_MAX)]

ARROW_SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("created_at", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("author_id", pa.int64(), nullable=False),
        pa.field("author_username", pa.string(), nullable=False),
        pa.field("lang", pa.string()),
        pa.field("conversation_id", pa.int64()),
        pa.field("in_reply_to_id", pa.int64()),
        pa.field("quoted_id", pa.int64()),
        pa.field("retweeted_id", pa.int64()),
        pa.field("like_count", pa.int64(), nullable=False),
        pa.field("retweet_count", pa.int64(), nullable=False),
        pa.field("reply_count", pa.int64(), nullable=False),
        pa.field("quote_count", pa.int64(), nullable=False),
        pa.field("view_count", pa.int64()),
        pa.field("hashtags", pa.list_(pa.string()), nullable=False),
        pa.field("urls", pa.list_(pa.string()), nullable=False),
        pa.field("media_urls", pa.list_(pa.string()), nullable=False),
        pa.field("url", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("scraped_at", pa.timestamp("ms", tz="UTC"), nullable=False),
    ],
    metadata={"d3.record_version": "1"},
)
COLUMNS = tuple(ARROW_SCHEMA.names)


def tweet_url(username: str, tweet_id: int) -> str:
    """The canonical URL of a tweet; records must carry exactly this."""
    return f"{URL_PREFIX}{username}/status/{tweet_id}"


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp has no timezone; tweet times must be UTC")
    value = value.astimezone(UTC)
    # Arrow stores milliseconds: truncate here so a round trip is exact.
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


class TweetRecord(BaseModel):
    """One tweet as D3 stores and publishes it."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)

    id: PositiveId
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    created_at: datetime
    author_id: PositiveId
    author_username: str
    lang: str | None = Field(default=None, max_length=16)
    conversation_id: PositiveId | None = None
    in_reply_to_id: PositiveId | None = None
    quoted_id: PositiveId | None = None
    retweeted_id: PositiveId | None = None
    like_count: Count = 0
    retweet_count: Count = 0
    reply_count: Count = 0
    quote_count: Count = 0
    view_count: Count | None = None
    hashtags: list[str] = Field(default_factory=list, max_length=MAX_LIST_ITEMS)
    urls: list[str] = Field(default_factory=list, max_length=MAX_LIST_ITEMS)
    media_urls: list[str] = Field(default_factory=list, max_length=MAX_LIST_ITEMS)
    url: str
    source: str = Field(min_length=1, max_length=32)
    scraped_at: datetime

    @field_validator("created_at", "scraped_at")
    @classmethod
    def _aware_utc(cls, value: datetime) -> datetime:
        return _utc(value)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text is blank")
        return value

    @field_validator("author_username")
    @classmethod
    def _username(cls, value: str) -> str:
        if not _USERNAME.match(value):
            raise ValueError(f"author_username {value!r} is not an X handle")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TweetRecord:
        created_ms = int(self.created_at.timestamp() * 1000)
        if created_ms < TWITTER_EPOCH_MS:
            raise ValueError("created_at is before snowflake IDs existed")
        skew = abs(id_to_ms(self.id) - created_ms)
        if skew > MAX_CLOCK_SKEW_MS:
            raise ValueError(f"id {self.id} encodes a time {skew // 1000}s away from created_at")
        if self.scraped_at < self.created_at:
            raise ValueError("scraped_at is before created_at")
        if self.url != tweet_url(self.author_username, self.id):
            raise ValueError(f"url {self.url!r} does not match id and author")
        return self

    def to_row(self) -> dict[str, Any]:
        return self.model_dump()


def records_to_table(records: list[TweetRecord]) -> pa.Table:
    """Validated records as a table in the canonical schema (column order included)."""
    columns = {name: [getattr(r, name) for r in records] for name in COLUMNS}
    return pa.Table.from_pydict(columns, schema=ARROW_SCHEMA)


def table_to_records(table: pa.Table) -> list[TweetRecord]:
    return [TweetRecord.model_validate(row) for row in table.to_pylist()]


class RecordError(ValueError):
    """A table breaks a record rule; the message names the rule and the first bad row."""


def check_schema(schema: pa.Schema) -> None:
    """The exact column names and types, in order; extra or missing columns are refused."""
    got = [(f.name, f.type) for f in schema]
    want = [(f.name, f.type) for f in ARROW_SCHEMA]
    if got != want:
        missing = [n for n, _ in want if n not in {g for g, _ in got}]
        extra = [n for n, _ in got if n not in set(COLUMNS)]
        wrong = [n for (n, t) in got if n in COLUMNS and ARROW_SCHEMA.field(n).type != t]
        raise RecordError(
            f"schema mismatch: missing={missing} extra={extra} wrong_type={wrong}"
            if missing or extra or wrong
            else "schema mismatch: columns out of order"
        )


def _first_bad(mask: pa.ChunkedArray | pa.Array, table: pa.Table, rule: str) -> None:
    """Raise naming `rule` and the first offending tweet ID when `mask` has a true value."""
    mask = pc.fill_null(mask, True)
    if pc.any(mask).as_py():
        index = pc.index(mask, True).as_py()
        raise RecordError(f"{rule} (row {index}, id {table['id'][index].as_py()})")


def check_table(table: pa.Table, now: datetime) -> None:
    """Every record rule over a whole table, vectorised; raises RecordError on the first.

    `now` is the validator's notion of the present (e.g. the commit block's time plus
    grace), so "from the future" is judged against something the miner could not move.
    """
    check_schema(table.schema)
    for name in COLUMNS:
        if not ARROW_SCHEMA.field(name).nullable and table[name].null_count:
            raise RecordError(f"column {name} has nulls")
    ids = table["id"]
    _first_bad(pc.less_equal(ids, 0), table, "non-positive id")
    if pc.count_distinct(ids).as_py() != len(ids):
        counts = pc.value_counts(ids)
        dup = pc.filter(counts, pc.greater(counts.field("counts"), 1))[0]["values"].as_py()
        raise RecordError(f"duplicate id {dup} within the data")
    created_ms = pc.cast(table["created_at"], pa.int64())
    encoded_ms = pc.add(pc.shift_right(ids, 22), TWITTER_EPOCH_MS)
    skew = pc.abs(pc.subtract(encoded_ms, created_ms))
    _first_bad(pc.greater(skew, MAX_CLOCK_SKEW_MS), table, "id does not encode created_at")
    now_ms = int(now.timestamp() * 1000)
    _first_bad(pc.greater(created_ms, now_ms), table, "created_at in the future")
    scraped_ms = pc.cast(table["scraped_at"], pa.int64())
    _first_bad(pc.greater(scraped_ms, now_ms), table, "scraped_at in the future")
    _first_bad(pc.less(scraped_ms, created_ms), table, "scraped_at before created_at")
    blank = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(table["text"])), 0)
    _first_bad(blank, table, "blank text")
    _first_bad(pc.greater(pc.utf8_length(table["text"]), MAX_TEXT_CHARS), table, "text too long")
    bad_name = pc.invert(pc.match_substring_regex(table["author_username"], _USERNAME.pattern))
    _first_bad(bad_name, table, "author_username is not an X handle")
    expected_url = pc.binary_join_element_wise(
        URL_PREFIX,
        table["author_username"],
        "/status/",
        pc.cast(ids, pa.string()),
        "",
    )
    _first_bad(pc.not_equal(table["url"], expected_url), table, "url does not match id")
    for name in ("hashtags", "urls", "media_urls"):
        too_many = pc.greater(pc.list_value_length(table[name]), MAX_LIST_ITEMS)
        _first_bad(too_many, table, f"{name} has more than {MAX_LIST_ITEMS} items")
    for name, limit in (("lang", 16), ("source", 32), ("author_username", 50)):
        too_long = pc.fill_null(pc.greater(pc.utf8_length(table[name]), limit), False)
        _first_bad(too_long, table, f"{name} longer than {limit} characters")
    for name in ("like_count", "retweet_count", "reply_count", "quote_count", "view_count"):
        _first_bad(pc.fill_null(pc.less(table[name], 0), False), table, f"negative {name}")
