"""Tweet IDs are snowflakes: the creation time is in the ID, so a record's claimed
`created_at` can be checked against the ID itself without asking X."""

from datetime import UTC, datetime

TWITTER_EPOCH_MS = 1288834974657
# The ID embeds milliseconds; X reports created_at to the second, so allow slack.
MAX_CLOCK_SKEW_MS = 60_000


def id_to_ms(tweet_id: int) -> int:
    """Unix milliseconds at which the snowflake `tweet_id` was minted."""
    return (tweet_id >> 22) + TWITTER_EPOCH_MS


def id_to_datetime(tweet_id: int) -> datetime:
    return datetime.fromtimestamp(id_to_ms(tweet_id) / 1000, tz=UTC)


def ms_to_id(ms: int, sequence: int = 0) -> int:
    """The smallest snowflake minted at unix millisecond `ms` (plus a low-bits sequence).

    Used to build `since`/`until` bounds and realistic synthetic IDs.
    """
    if ms < TWITTER_EPOCH_MS:
        raise ValueError(f"{ms} ms is before the snowflake epoch")
    if not 0 <= sequence < (1 << 22):
        raise ValueError(f"sequence {sequence} does not fit in 22 bits")
    return ((ms - TWITTER_EPOCH_MS) << 22) | sequence


def datetime_to_id(when: datetime, sequence: int = 0) -> int:
    if when.tzinfo is None:
        raise ValueError("naive datetime: tweet times are UTC, pass an aware datetime")
    return ms_to_id(int(when.timestamp() * 1000), sequence)


def matches_created_at(tweet_id: int, created_at: datetime) -> bool:
    """Whether the ID's embedded time agrees with `created_at` within the allowed skew."""
    return abs(id_to_ms(tweet_id) - int(created_at.timestamp() * 1000)) <= MAX_CLOCK_SKEW_MS
