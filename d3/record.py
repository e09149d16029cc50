"""The tweet record: one table of rules, read by a pydantic model and by a columnar check.

`RULES` says what each column holds (Arrow type, nulls, bounds, pattern) and `ROW_RULES`
what holds between the columns of one row (the ID encodes `created_at`, the URL is the
canonical one, ...). Everything else is read from them:

- `ARROW_SCHEMA`, the columns of every shard, in order (docs/protocol.md);
- `TweetRecord`, the pydantic model that validates one tweet as it enters a miner (from a
  scraper) and names the field of the first rule it breaks;
- `check_table`, the same rules over a whole table at once, vectorised, on the validator,
  where a per-row Python loop over millions of tweets would be the bottleneck.

A new rule is one entry in one of the two tables, and `tests/test_record_parity.py` holds
the model and the columnar check to the same verdict on the same field for every bad
case. Two rules only the columnar check applies: IDs are unique within a table, and rules
judged against the present (`now_ms` rules) run in the model only when its caller passes
the present, `TweetRecord.model_validate(row, context={"now": now})`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from d3.snowflake import MAX_CLOCK_SKEW_MS, TWITTER_EPOCH_MS, id_to_ms

MAX_TEXT_CHARS = 25_000  # X long posts are capped at 25k characters
MAX_LIST_ITEMS = 100
# Snowflake IDs fit in a signed int64; anything outside cannot be a tweet.
INT64_MAX = (1 << 63) - 1
URL_PREFIX = "https://x.com/"

_INT, _STR, _LIST = pa.int64(), pa.string(), pa.list_(pa.string())
_TIME = pa.timestamp("ms", tz="UTC")


@dataclass(frozen=True)
class Rule:
    """What one column holds. Integers are at least `min_value` (int64 bounds the top);
    strings have `min_chars` to `max_chars` characters, are not all whitespace unless
    `blank`, and match `pattern` whole (`pattern_is` says what a match is); lists have at
    most `max_items` items, none of them null."""

    name: str
    type: pa.DataType
    nullable: bool = False
    min_value: int | None = None
    min_chars: int = 0
    max_chars: int | None = None
    blank: bool = True
    pattern: str | None = None
    pattern_is: str = ""
    max_items: int | None = None


def _id(name: str, nullable: bool = False) -> Rule:
    return Rule(name, _INT, nullable, min_value=1)


def _count(name: str, nullable: bool = False) -> Rule:
    return Rule(name, _INT, nullable, min_value=0)


def _list(name: str) -> Rule:
    return Rule(name, _LIST, max_items=MAX_LIST_ITEMS)


RULES: tuple[Rule, ...] = (
    _id("id"),
    Rule("text", _STR, min_chars=1, max_chars=MAX_TEXT_CHARS, blank=False),
    Rule("created_at", _TIME),
    _id("author_id"),
    Rule("author_username", _STR, pattern=r"[A-Za-z0-9_]{1,50}", pattern_is="an X handle"),
    Rule("lang", _STR, nullable=True, max_chars=16),
    _id("conversation_id", nullable=True),
    _id("in_reply_to_id", nullable=True),
    _id("quoted_id", nullable=True),
    _id("retweeted_id", nullable=True),
    _count("like_count"),
    _count("retweet_count"),
    _count("reply_count"),
    _count("quote_count"),
    _count("view_count", nullable=True),
    _list("hashtags"),
    _list("urls"),
    _list("media_urls"),
    Rule("url", _STR),  # the canonical URL: a row rule
    Rule("source", _STR, min_chars=1, max_chars=32),
    Rule("scraped_at", _TIME),
)
RULE = {rule.name: rule for rule in RULES}

ARROW_SCHEMA = pa.schema(
    [pa.field(rule.name, rule.type, nullable=rule.nullable) for rule in RULES],
    metadata={"d3.record_version": "1"},
)
COLUMNS = tuple(ARROW_SCHEMA.names)


def tweet_url(username: str, tweet_id: int) -> str:
    """The canonical URL of a tweet; records must carry exactly this."""
    return f"{URL_PREFIX}{username}/status/{tweet_id}"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def _ms(value: datetime) -> int:
    return (value - _EPOCH) // _MS


def _ms_column(table: pa.Table, name: str) -> pa.ChunkedArray:
    return pc.cast(table[name], pa.int64())


Row = Mapping[str, Any]


@dataclass(frozen=True)
class RowRule:
    """A rule on `field` that reads other fields of its row (`needs`) or the present
    (`now`); both checks report it on `field` with `reason`.

    `broken(value, row, now_ms)` judges one value of `field` given the fields of its row
    (the model), `broken_in(table, now_ms)` every row at once (a boolean mask, the
    columnar check); `detail(value, row)` adds the values to the model's message."""

    field: str
    reason: str
    needs: frozenset[str]
    broken: Callable[[Any, Row, int], bool]
    broken_in: Callable[[pa.Table, int], Any]
    now: bool = False
    detail: Callable[[Any, Row], str] | None = None


def _skew_ms(created_at: datetime, row: Row) -> int:
    return abs(id_to_ms(row["id"]) - _ms(created_at))


def _table_skew_ms(table: pa.Table) -> Any:
    encoded = pc.add(pc.shift_right(table["id"], 22), TWITTER_EPOCH_MS)
    return pc.abs(pc.subtract(encoded, _ms_column(table, "created_at")))


def _table_urls(table: pa.Table) -> Any:
    ids = pc.cast(table["id"], pa.string())
    return pc.binary_join_element_wise(URL_PREFIX, table["author_username"], "/status/", ids, "")


def _not_in_the_future(name: str) -> RowRule:
    return RowRule(
        name,
        f"{name} is in the future",
        frozenset(),
        lambda value, _, now_ms: _ms(value) > now_ms,
        lambda table, now_ms: pc.greater(_ms_column(table, name), now_ms),
        now=True,
    )


ROW_RULES: tuple[RowRule, ...] = (
    RowRule(
        "created_at",
        "created_at is before snowflake IDs existed",
        frozenset(),
        lambda created_at, _, __: _ms(created_at) < TWITTER_EPOCH_MS,
        lambda table, _: pc.less(_ms_column(table, "created_at"), TWITTER_EPOCH_MS),
    ),
    RowRule(
        "created_at",
        "id does not encode created_at",
        frozenset({"id"}),
        lambda created_at, row, _: _skew_ms(created_at, row) > MAX_CLOCK_SKEW_MS,
        lambda table, _: pc.greater(_table_skew_ms(table), MAX_CLOCK_SKEW_MS),
        detail=lambda created_at, row: (
            f"id {row['id']} encodes a time {_skew_ms(created_at, row) // 1000}s away"
        ),
    ),
    _not_in_the_future("created_at"),
    RowRule(
        "url",
        "url does not match id and author",
        frozenset({"id", "author_username"}),
        lambda url, row, _: url != tweet_url(row["author_username"], row["id"]),
        lambda table, _: pc.not_equal(table["url"], _table_urls(table)),
        detail=lambda url, _: repr(url),
    ),
    RowRule(
        "scraped_at",
        "scraped_at is before created_at",
        frozenset({"created_at"}),
        lambda scraped_at, row, _: scraped_at < row["created_at"],
        lambda table, _: pc.less(_ms_column(table, "scraped_at"), _ms_column(table, "created_at")),
    ),
    _not_in_the_future("scraped_at"),
)
_ROW_RULES_ON = {name: [r for r in ROW_RULES if r.field == name] for name in COLUMNS}


def _below(rule: Rule) -> str:
    if rule.min_value == 0:
        return f"negative {rule.name}"
    if rule.min_value == 1:
        return f"non-positive {rule.name}"
    return f"{rule.name} below {rule.min_value}"


_PATTERNS = {r.name: re.compile(r.pattern) for r in RULES if r.pattern is not None}


def _string_problem(rule: Rule, value: str) -> str | None:
    """The rules of `rule` pydantic's own constraints do not cover."""
    if not rule.blank and not value.strip():
        return f"{rule.name} is blank"
    if rule.pattern is not None and not _PATTERNS[rule.name].fullmatch(value):
        return f"{rule.name} {value!r} is not {rule.pattern_is}"
    return None


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp has no timezone; tweet times must be UTC")
    value = value.astimezone(UTC)
    # Arrow stores milliseconds: truncate here so a round trip is exact.
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _field(name: str, default: Any = ..., **extra: Any) -> Any:
    """A model field with the bounds of its rule."""
    rule = RULE[name]
    bounds: dict[str, Any] = {}
    if rule.min_value is not None:
        bounds.update(ge=rule.min_value, le=INT64_MAX)
    if rule.min_chars:
        bounds["min_length"] = rule.min_chars
    if rule.max_chars is not None:
        bounds["max_length"] = rule.max_chars
    if rule.max_items is not None:
        bounds["max_length"] = rule.max_items
    if "default_factory" in extra:
        return Field(**bounds, **extra)
    return Field(default, **bounds, **extra)


# Fields the model checks in Python, beyond pydantic's own constraints.
_STRINGS_CHECKED = tuple(r.name for r in RULES if not r.blank or r.pattern is not None)
_ROW_RULE_FIELDS = tuple(name for name in COLUMNS if _ROW_RULES_ON[name])


class TweetRecord(BaseModel):
    """One tweet as D3 stores and publishes it; the rules are `RULES` and `ROW_RULES`."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)

    id: int = _field("id")
    text: str = _field("text")
    created_at: datetime = _field("created_at")
    author_id: int = _field("author_id")
    author_username: str = _field("author_username")
    lang: str | None = _field("lang", None)
    conversation_id: int | None = _field("conversation_id", None)
    in_reply_to_id: int | None = _field("in_reply_to_id", None)
    quoted_id: int | None = _field("quoted_id", None)
    retweeted_id: int | None = _field("retweeted_id", None)
    like_count: int = _field("like_count", 0)
    retweet_count: int = _field("retweet_count", 0)
    reply_count: int = _field("reply_count", 0)
    quote_count: int = _field("quote_count", 0)
    view_count: int | None = _field("view_count", None)
    hashtags: list[str] = _field("hashtags", default_factory=list)
    urls: list[str] = _field("urls", default_factory=list)
    media_urls: list[str] = _field("media_urls", default_factory=list)
    url: str = _field("url")
    source: str = _field("source")
    scraped_at: datetime = _field("scraped_at")

    @field_validator(*(r.name for r in RULES if r.type == _TIME))
    @classmethod
    def _aware_utc(cls, value: datetime) -> datetime:
        return _utc(value)

    @field_validator(*_STRINGS_CHECKED)
    @classmethod
    def _string_rules(cls, value: str, info: ValidationInfo) -> str:
        if problem := _string_problem(RULE[info.field_name or ""], value):
            raise ValueError(problem)
        return value

    @field_validator(*_ROW_RULE_FIELDS)
    @classmethod
    def _row_rules(cls, value: Any, info: ValidationInfo) -> Any:
        row = info.data  # the fields before this one that passed
        now = info.context.get("now") if info.context else None
        for rule in _ROW_RULES_ON[info.field_name or ""]:
            if (rule.now and now is None) or not rule.needs <= row.keys():
                continue  # no present given, or a field it reads failed (and is reported)
            if rule.broken(value, row, _ms(now) if rule.now else 0):
                detail = f" ({rule.detail(value, row)})" if rule.detail else ""
                raise ValueError(rule.reason + detail)
        return value

    def to_row(self) -> dict[str, Any]:
        return self.model_dump()


def _model_follows_rules() -> None:
    """The model's fields are the rules' columns, in order, nullable where they are."""
    fields = TweetRecord.model_fields
    if tuple(fields) != COLUMNS:
        raise AssertionError("TweetRecord's fields are not the columns of RULES")
    for name, info in fields.items():
        if (type(None) in get_args(info.annotation)) != RULE[name].nullable:
            raise AssertionError(f"TweetRecord.{name} is nullable where its rule is not")


_model_follows_rules()


def records_to_table(records: list[TweetRecord]) -> pa.Table:
    """Validated records as a table in the canonical schema (column order included)."""
    columns = {name: [getattr(r, name) for r in records] for name in COLUMNS}
    return pa.Table.from_pydict(columns, schema=ARROW_SCHEMA)


def table_to_records(table: pa.Table) -> list[TweetRecord]:
    return [TweetRecord.model_validate(row) for row in table.to_pylist()]


class RecordError(ValueError):
    """A table breaks a record rule; the message names the rule and the first bad row,
    `field` the column (None when it is the table's shape as a whole)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


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
            else "schema mismatch: columns out of order",
            next(iter(missing + extra + wrong), None),
        )


def check_nulls(table: pa.Table) -> None:
    """No null in a column whose rule does not allow one."""
    for rule in RULES:
        if not rule.nullable and table[rule.name].null_count:
            _first_bad(table[rule.name].is_null(), table, rule.name, f"{rule.name} has nulls")


def _first_bad(mask: Any, table: pa.Table, field: str, reason: str) -> None:
    """Raise naming `reason` and the first offending row when `mask` has a true value
    (a null in `mask` is a value a rule could not judge, so it is refused too)."""
    mask = pc.fill_null(mask, True)
    if pc.any(mask).as_py():
        index = pc.index(mask, True).as_py()
        raise RecordError(f"{reason} (row {index}, id {table['id'][index].as_py()})", field)


def _column_problems(rule: Rule, column: pa.ChunkedArray) -> Iterator[tuple[Any, str]]:
    """(mask of rows breaking it, reason) for each part of `rule`; nulls pass (a null in
    a nullable column breaks nothing, in another one check_nulls has refused it)."""
    if rule.min_value is not None:
        yield pc.less(column, rule.min_value), _below(rule)
    if rule.type == _STR:
        length = pc.utf8_length(column)
        if rule.min_chars:
            short = f"shorter than {rule.min_chars} characters" if rule.min_chars > 1 else "empty"
            yield pc.less(length, rule.min_chars), f"{rule.name} is {short}"
        if rule.max_chars is not None:
            too_long = pc.greater(length, rule.max_chars)
            yield too_long, f"{rule.name} is longer than {rule.max_chars} characters"
        if not rule.blank:
            blank = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(column)), 0)
            yield blank, f"{rule.name} is blank"
        if rule.pattern is not None:
            matches = pc.match_substring_regex(column, f"^(?:{rule.pattern})$")
            yield pc.invert(matches), f"{rule.name} is not {rule.pattern_is}"
    if rule.type == _LIST:
        if rule.max_items is not None:
            too_many = pc.greater(pc.list_value_length(column), rule.max_items)
            yield too_many, f"{rule.name} has more than {rule.max_items} items"
        if pc.list_flatten(column).null_count:
            yield _null_items(column), f"{rule.name} has a null item"


def _null_items(column: pa.ChunkedArray) -> pa.Array:
    """Per row of a list column: whether any of its items is null."""
    column = column.combine_chunks()
    parents = pc.filter(pc.list_parent_indices(column), pc.is_null(pc.list_flatten(column)))
    rows = np.zeros(len(column), dtype=bool)
    rows[parents.to_numpy()] = True
    return pa.array(rows)


def check_table(table: pa.Table, now: datetime) -> None:
    """Every record rule over a whole table, vectorised; raises RecordError on the first.

    `now` is the validator's notion of the present (e.g. the commit block's time plus
    grace), so "from the future" is judged against something the miner could not move.
    """
    check_schema(table.schema)
    check_nulls(table)
    for rule in RULES:
        for mask, reason in _column_problems(rule, table[rule.name]):
            _first_bad(pc.fill_null(mask, False), table, rule.name, reason)
    ids = table["id"]
    if pc.count_distinct(ids).as_py() != len(ids):
        counts = pc.value_counts(ids)
        dup = pc.filter(counts, pc.greater(counts.field("counts"), 1))[0]["values"].as_py()
        raise RecordError(f"duplicate id {dup} within the data", "id")
    now_ms = _ms(now)
    for rule in ROW_RULES:
        _first_bad(rule.broken_in(table, now_ms), table, rule.field, rule.reason)
