"""The silence schedule and what a held audit keeps (d3/validator/silence.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from d3.record import TweetRecord
from d3.snowflake import datetime_to_id
from d3.validator.audit import AuditParams
from d3.validator.silence import KeptAnswers, Silence, reask_cap

PARAMS = AuditParams(max_wait_blocks=7_200, silence_confirm_blocks=300)
SEED = 10_000


def _asks(first: int, rounds_every: int, until: int) -> list[int]:
    """The blocks a validator polling every `rounds_every` blocks asks X at."""
    silence = Silence(first, first, tuple(range(20)))
    asked = [first]
    for block in range(first + rounds_every, until, rounds_every):
        ids = silence.to_ask(block, SEED, PARAMS, picks=200)
        if ids:
            assert ids == list(silence.ids)  # every silent one, and only those
            asked.append(block)
            if block >= silence.deadline(SEED, PARAMS):
                break
            silence = Silence(silence.first, block, silence.ids)
    return asked


def test_silent_tweets_are_asked_an_hour_later_and_at_the_deadline():
    assert [b - SEED for b in _asks(SEED, 1, SEED + 8_000)] == [0, 300, 7_200]
    # First seen within an hour of the deadline: the deadline waits for the hour.
    late = SEED + 7_000
    assert [b - SEED for b in _asks(late, 1, SEED + 8_000)] == [7_000, 7_300]


def test_the_deadline_is_the_same_for_any_first_sight_early_enough():
    """Two validators that first saw the silence at different blocks, and poll at
    different cadences, reach the same deadline block from the chain."""
    late = SEED + PARAMS.max_wait_blocks - PARAMS.silence_confirm_blocks
    for first in (SEED, SEED + 7, SEED + 1_000, late):
        assert Silence(first, first, (1,)).deadline(SEED, PARAMS) == SEED + 7_200
    # First seen later than that: asked again an hour after the first sight.
    assert Silence(late + 1, late + 1, (1,)).deadline(SEED, PARAMS) == late + 301
    for every in (1, 3, 10, 97):
        assert _asks(SEED + 5, every, SEED + 9_000)[-1] - SEED in range(7_200, 7_200 + every)


def test_the_earlier_layout_of_a_silence_still_reads():
    silence = Silence.from_json('{"17": 1200, "5": 1100}')
    assert silence == Silence(1100, 1200, (5, 17))
    assert Silence.from_json(silence.to_json()) == silence


def test_kept_answers_round_trip_whole_records():
    posted = datetime(2026, 1, 1, tzinfo=UTC)
    tweet_id = datetime_to_id(posted)
    record = TweetRecord(
        id=tweet_id,
        text="a &amp; b",
        created_at=posted,
        author_id=7,
        author_username="someone",
        hashtags=["ai"],
        url=f"https://x.com/someone/status/{tweet_id}",
        source="x_api",
        scraped_at=datetime(2026, 1, 2, tzinfo=UTC),
    )
    kept = KeptAnswers({record.id: record}, {5, 3})
    again = KeptAnswers.from_json(kept.to_json())
    assert again.found == {record.id: record} and again.missing == {3, 5}
    assert KeptAnswers.from_json(None) == KeptAnswers()


def test_a_mostly_silent_sample_is_asked_again_a_tenth_at_a_time_until_some_answer():
    """100 of 100 picks silent (on Apify: invented tweets): a re-ask asks 10; once one
    of them answers (a glitch ending), the rest are asked at once, all of them."""
    silence = Silence(SEED, SEED, tuple(range(100)))
    at = SEED + PARAMS.silence_confirm_blocks
    assert reask_cap(100, PARAMS) == 10 and reask_cap(20, PARAMS) == PARAMS.min_per_miner
    assert silence.to_ask(at, SEED, PARAMS, picks=100) == list(range(10))
    thawing = Silence(SEED, SEED, tuple(range(5, 100)), thawing=True)
    assert thawing.to_ask(at, SEED, PARAMS, picks=100) == list(range(5, 100))
    assert Silence.from_json(thawing.to_json()) == thawing
