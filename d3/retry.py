"""One backoff policy for every retry loop, and one loop for retries with a bounded count.

The wait after the n-th failure in a row (n >= 1) is

    min(cap_s, base_s * 2 ** (n - 1)) * (1 - jitter + 2 * jitter * u),   u uniform in [0, 1)

so `jitter=0.5` spreads each wait over half to one and a half times its nominal value
(clients retrying one outage do not retry in step) and `jitter=0` is deterministic. The
jitter applies after the cap: a capped wait is at most `cap_s * (1 + jitter)`. `rng`
makes a jittered policy reproducible in a test; without it the `random` module is used.

Each loop that retries names its policy as a constant next to it (`READ_BACKOFF`,
`UPLOAD_BACKOFF`, ...), so the formula is here and the numbers are where they apply.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")
_MAX_DOUBLINGS = 64  # past this any base is over any sane cap; 2.0**n would overflow


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: `base_s` after the first failure, doubling up to `cap_s`."""

    base_s: float
    cap_s: float = math.inf
    jitter: float = 0.0
    rng: random.Random | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.cap_s < self.base_s or not 0 <= self.jitter < 1:
            raise ValueError(f"not a backoff policy: {self!r}")

    def nominal(self, failures: int) -> float:
        """The wait after `failures` failures in a row, before jitter."""
        doublings = min(max(failures, 1) - 1, _MAX_DOUBLINGS)
        return min(self.cap_s, self.base_s * 2.0**doublings)

    def delay(self, failures: int) -> float:
        """The wait after `failures` failures in a row (1 for the first)."""
        wait = self.nominal(failures)
        if not self.jitter:
            return wait
        u = (self.rng or random).random()
        return wait * (1 - self.jitter + 2 * self.jitter * u)


async def retry(
    call: Callable[[], Awaitable[T]],
    policy: Backoff,
    *,
    attempts: int,
    retryable: Callable[[Exception], bool],
    on_retry: Callable[[Exception, float], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """`call()`, tried up to `attempts` times while its error is `retryable`, waiting
    `policy.delay` between tries; the last error (or the first one not retryable) is
    raised as it was. `on_retry(error, wait)` is told before each wait (for the log)."""
    failures = 0
    while True:
        try:
            return await call()
        except Exception as error:
            failures += 1
            if failures >= attempts or not retryable(error):
                raise
            wait = policy.delay(failures)
            if on_retry is not None:
                on_retry(error, wait)
            await sleep(wait)
