"""The one backoff policy and retry loop (d3/retry.py) every retrying loop uses."""

from __future__ import annotations

import asyncio
import random

import pytest

from d3.retry import Backoff, retry


def test_the_wait_doubles_from_the_base_up_to_the_cap() -> None:
    policy = Backoff(0.5, cap_s=3.0)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert Backoff(0.2).delay(4) == pytest.approx(1.6)  # no cap
    assert Backoff(1.0, cap_s=60.0).delay(10_000) == 60.0  # no overflow however long


def test_jitter_spreads_each_wait_around_its_nominal_value() -> None:
    policy = Backoff(2.0, cap_s=300.0, jitter=0.5, rng=random.Random(5))
    waits = [policy.delay(3) for _ in range(200)]
    assert all(4.0 <= wait < 12.0 for wait in waits)  # 8 s, from half to one and a half
    assert len(set(waits)) > 100
    again = Backoff(2.0, cap_s=300.0, jitter=0.5, rng=random.Random(5))
    assert [again.delay(3) for _ in range(200)] == waits  # a seeded rng: reproducible


@pytest.mark.parametrize(
    "policy", [dict(base_s=0), dict(base_s=2, cap_s=1), dict(base_s=1, jitter=1.0)]
)
def test_a_policy_that_cannot_work_is_refused(policy) -> None:
    with pytest.raises(ValueError, match="not a backoff policy"):
        Backoff(**policy)


class Flaky:
    def __init__(self, failures: int, error: Exception):
        self.failures, self.error, self.calls = failures, error, 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


def _retry(call, attempts: int, retryable=lambda e: isinstance(e, ConnectionError)):
    slept: list[float] = []
    told: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def body():
        return await retry(
            call,
            Backoff(1.0, cap_s=4.0),
            attempts=attempts,
            retryable=retryable,
            on_retry=lambda error, wait: told.append(wait),
            sleep=sleep,
        )

    return asyncio.run(body()), slept, told


def test_retry_waits_between_tries_until_one_succeeds() -> None:
    call = Flaky(3, ConnectionError("reset"))
    result, slept, told = _retry(call, attempts=5)
    assert (result, call.calls) == ("ok", 4)
    assert slept == told == [1.0, 2.0, 4.0]


def test_retry_gives_up_after_its_attempts_with_the_last_error() -> None:
    call = Flaky(10, ConnectionError("reset"))
    with pytest.raises(ConnectionError, match="reset"):
        _retry(call, attempts=3)
    assert call.calls == 3


def test_an_error_not_worth_retrying_is_raised_at_once() -> None:
    call = Flaky(1, PermissionError("denied"))
    with pytest.raises(PermissionError):
        _retry(call, attempts=5)
    assert call.calls == 1
