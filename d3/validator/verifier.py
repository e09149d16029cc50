"""Verification of a miner's data: structure on every row, X look-ups on a sample.

Structure is cheap and total (schema, hashes, snowflakes, URLs, duplicates). Look-ups are
expensive and budgeted, so they are sampled, with a seed the miner could not know when it
committed (the manifest hash and the hash of the block after the commit). One altered
tweet, or more missing tweets than deletions explain, rejects the whole manifest. An X
outage gives no signal either way: the manifest is judged on structure alone.
"""

from __future__ import annotations

import hashlib
import random
import re
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from d3.manifest import ShardRef
from d3.record import RecordError, check_table
from d3.shards import ShardError, ShardLimits, decode_shard

# Tweets get deleted between scrape and check; this share of "not found" is tolerated.
MAX_MISSING_SHARE = 0.2


class VerificationError(ValueError):
    """The data is not acceptable; the message is the one-line reason that gets logged."""


@dataclass(frozen=True)
class LookupAnswer:
    """What X said about sampled IDs (the shape of a source's look-up result)."""

    found: dict[int, tuple[str, int]]  # id -> (text, author_id)
    missing: set[int] = field(default_factory=set)  # X says: no such tweet
    failed: set[int] = field(default_factory=set)  # no answer (outage): no signal


Lookup = Callable[[Sequence[int]], Awaitable[LookupAnswer]]


@dataclass(frozen=True)
class SampleVerdict:
    checked: int  # IDs X answered for
    altered: list[int]
    missing: list[int]
    unanswered: int

    @property
    def rejected(self) -> str | None:
        if self.altered:
            return f"tweet {self.altered[0]} differs from X ({len(self.altered)} altered)"
        if self.checked and len(self.missing) > MAX_MISSING_SHARE * self.checked:
            return (
                f"{len(self.missing)} of {self.checked} sampled tweets do not exist on X "
                f"(first {self.missing[0]})"
            )
        return None


def verify_shard(data: bytes, ref: ShardRef, limits: ShardLimits, now: datetime) -> pa.Table:
    """Decode a shard and check it against its manifest entry and every record rule."""
    if len(data) != ref.bytes:  # the declared size sets the fetch deadline: it must be true
        raise VerificationError(
            f"shard {ref.sha256[:12]}: {len(data)} bytes, manifest says {ref.bytes}"
        )
    try:
        table = decode_shard(data, limits, expected_sha256=ref.sha256)
        check_table(table, now)
    except (ShardError, RecordError) as exc:
        raise VerificationError(f"shard {ref.sha256[:12]}: {exc}") from None
    except (pa.ArrowException, ValueError) as exc:  # a kernel choking on malformed values
        raise VerificationError(f"shard {ref.sha256[:12]}: malformed values: {exc}") from None
    if table.num_rows != ref.rows:
        raise VerificationError(
            f"shard {ref.sha256[:12]}: {table.num_rows} rows, manifest says {ref.rows}"
        )
    ids = table["id"]
    if (
        table.num_rows > 1
        and not pc.all(pc.greater(ids.slice(1), ids.slice(0, len(ids) - 1))).as_py()
    ):
        raise VerificationError(f"shard {ref.sha256[:12]}: rows are not sorted by id")
    low, high = ids[0].as_py(), ids[-1].as_py()
    if (low, high) != (ref.min_id, ref.max_id):
        raise VerificationError(f"shard {ref.sha256[:12]}: id range differs from the manifest")
    return table


def sample_seed(manifest_sha256: str, block_hash: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{manifest_sha256}:{block_hash}".encode()).digest()[:8])


def sample_rows(table: pa.Table, size: int, seed: int) -> pa.Table:
    """A deterministic sample: every validator with the same seed checks the same tweets."""
    if size >= table.num_rows:
        return table
    indices = sorted(random.Random(seed).sample(range(table.num_rows), size))
    return table.take(pa.array(indices, pa.int64()))


_SPACE = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """Whitespace and Unicode form differ between X's endpoints and scrapers; meaning
    does not."""
    return _SPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


async def check_sample(sample: pa.Table, lookup: Lookup) -> SampleVerdict:
    """Compare sampled rows with X: text after normalisation, and the author's ID."""
    rows = sample.select(["id", "text", "author_id"]).to_pylist()
    answer = await lookup([r["id"] for r in rows])
    altered, missing = [], []
    for row in rows:
        if row["id"] in answer.found:
            text, author_id = answer.found[row["id"]]
            same_text = normalise_text(text) == normalise_text(row["text"])
            if not same_text or author_id != row["author_id"]:
                altered.append(row["id"])
        elif row["id"] in answer.missing:
            missing.append(row["id"])
    return SampleVerdict(
        checked=len(answer.found) + len(missing),
        altered=altered,
        missing=missing,
        unanswered=len(rows) - len(answer.found) - len(missing),
    )


class LookupBudget:
    """A daily allowance of X look-ups, spent per manifest.

    A token bucket: it refills continuously (daily_budget per 24 h) up to `burst` (an
    hour's worth by default), so a burst of manifests cannot spend a whole day at once.
    Each manifest gets between `minimum` and `maximum` look-ups while the allowance lasts,
    and none after that (structure only, said in the log).
    """

    def __init__(
        self, daily_budget: int, minimum: int = 5, maximum: int = 50, burst: int | None = None
    ):
        self.daily = max(0, daily_budget)
        self.minimum, self.maximum = minimum, maximum
        self.burst = float(burst if burst is not None else self.daily / 24)
        self.available = self.burst
        self._last: float | None = None

    def take(self, now_s: float) -> int:
        if self._last is not None:
            refill = (now_s - self._last) * self.daily / 86_400
            self.available = min(self.burst, self.available + refill)
        self._last = now_s
        size = int(min(self.maximum, self.available))
        if size < self.minimum:
            return 0
        self.available -= size
        return size

    def refund(self, size: int) -> None:
        """Give back an allotment that was not spent (its manifest was not checked)."""
        self.available = min(self.burst, self.available + size)
