"""The tweet-ID index: every ID ever accepted, in Redis; the first committer wins.

Layout (docs/protocol.md has the numbers):

    <prefix>:{g<group>}:w:<window>   string: the window's IDs, packed (5 bytes per ID)
    <prefix>:{g<group>}:credit       hash:   "<hotkey>:<period>" -> new unique IDs credited
    <prefix>:{g<group>}:done         set:    ingest tokens already applied in this group
    <prefix>:groups                  set:    every group seen (to enumerate credits)

A snowflake ID's high bits are its time, so IDs are bucketed by time: a *window* is 2^38
IDs (~65 s of tweets), stored as one string of sorted 38-bit offsets split into a 4-byte
and a 1-byte column (5 bytes per ID, no per-ID key overhead: ~70 bytes for a plain
`SETNX <id> 1`). A *group* is 256 windows (~4.7 h); its keys share a hash tag, so one
group is one Redis Cluster slot and one MULTI/EXEC.

Each group's update is a single transaction that writes the new IDs, adds their credit and
records the ingest token together: IDs and credit can never disagree, and re-ingesting
the same shard after a crash finds its token and changes nothing. Callers must ingest in
(commit block, hotkey) order; then every validator reaches the same attribution.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import redis.asyncio as aioredis
from redis.exceptions import WatchError

WINDOW_BITS = 38
GROUP_BITS = 8
# Arrow scalars built once: converting a Python int per call is slow (pyarrow probes for
# numpy on every conversion).
_U64 = pa.uint64()
_OFFSET_MASK = pa.scalar((1 << WINDOW_BITS) - 1, _U64)
_LOW_MASK = pa.scalar(0xFFFFFFFF, _U64)
_SHIFT_32 = pa.scalar(32, _U64)
_SHIFT_WINDOW = pa.scalar(WINDOW_BITS, _U64)
_SHIFT_GROUP = pa.scalar(GROUP_BITS, _U64)
MAX_WATCH_RETRIES = 16


@dataclass(frozen=True)
class IngestResult:
    new: int  # IDs this ingest added (and credited)
    duplicates: int  # IDs not added: already indexed, repeated, or in a skipped group
    skipped_groups: int  # groups whose token was already applied (a resumed ingest)


def pack_offsets(offsets: pa.Array) -> bytes:
    """Sorted uint64 offsets (< 2^38) -> low 32 bits column + high bits column."""
    low = pc.cast(pc.bit_wise_and(offsets, _LOW_MASK), pa.uint32())
    high = pc.cast(pc.shift_right(offsets, _SHIFT_32), pa.uint8())
    return _buffer_bytes(low) + _buffer_bytes(high)


def unpack_offsets(data: bytes) -> pa.Array:
    if len(data) % 5:
        raise ValueError(f"corrupt index window: {len(data)} bytes is not a multiple of 5")
    n = len(data) // 5
    buffer = pa.py_buffer(data)
    low = pa.Array.from_buffers(pa.uint32(), n, [None, buffer.slice(0, 4 * n)])
    high = pa.Array.from_buffers(pa.uint8(), n, [None, buffer.slice(4 * n, n)])
    return pc.bit_wise_or(pc.shift_left(pc.cast(high, _U64), _SHIFT_32), pc.cast(low, _U64))


def _buffer_bytes(array: pa.Array) -> bytes:
    """The values buffer of a null-free fixed-width array, exactly `len` items long."""
    array = pa.concat_arrays([array])  # drops any slice offset
    width = array.type.bit_width // 8
    return array.buffers()[1].to_pybytes()[: len(array) * width]


class TweetIndex:
    """First-committer-wins set of tweet IDs with per-hotkey credit, in Redis."""

    def __init__(self, redis: aioredis.Redis, prefix: str = "d3"):
        self.redis = redis
        self.prefix = prefix

    def _key(self, group: int, kind: str) -> str:
        return f"{self.prefix}:{{g{group}}}:{kind}"

    def window_key(self, window: int) -> str:
        return self._key(window >> GROUP_BITS, f"w:{window}")

    async def ingest(self, ids: pa.Array, hotkey: str, token: str, period: int) -> IngestResult:
        """Add `ids` committed by `hotkey`; credit the ones nobody had before.

        `token` names this unit of work (e.g. "<shard sha256>:<hotkey>") and makes it
        idempotent; `period` is the credit period the commitment falls in.
        """
        total = len(ids)
        ids = pc.unique(pc.cast(ids, _U64))
        ids = pc.take(ids, pc.sort_indices(ids))
        windows = pc.shift_right(ids, _SHIFT_WINDOW)
        new = skipped = 0
        for group, start, stop in _runs(pc.shift_right(windows, _SHIFT_GROUP)):
            added = await self._ingest_group(
                group,
                ids.slice(start, stop - start),
                windows.slice(start, stop - start),
                hotkey,
                token,
                period,
            )
            if added is None:
                skipped += 1
            else:
                new += added
        return IngestResult(new=new, duplicates=total - new, skipped_groups=skipped)

    async def _ingest_group(
        self,
        group: int,
        ids: pa.Array,
        windows: pa.Array,
        hotkey: str,
        token: str,
        period: int,
    ) -> int | None:
        """One group in one transaction; None when its token was already applied."""
        runs = list(_runs(windows))
        window_keys = [self.window_key(w) for w, _, _ in runs]
        done_key, credit_key = self._key(group, "done"), self._key(group, "credit")
        await self.redis.sadd(f"{self.prefix}:groups", group)
        for _attempt in range(MAX_WATCH_RETRIES):
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(done_key, *window_keys)
                    if await pipe.sismember(done_key, token):
                        return None
                    existing = await pipe.mget(window_keys)
                    pipe.multi()
                    added = 0
                    for (_window, start, stop), key, old in zip(
                        runs, window_keys, existing, strict=True
                    ):
                        offsets = pc.bit_wise_and(ids.slice(start, stop - start), _OFFSET_MASK)
                        merged, fresh = _merge(old, offsets)
                        if fresh:
                            pipe.set(key, pack_offsets(merged))
                            added += fresh
                    if added:
                        pipe.hincrby(credit_key, f"{hotkey}:{period}", added)
                    pipe.sadd(done_key, token)
                    await pipe.execute()
                    return added
                except WatchError:
                    continue
        raise RuntimeError(
            f"index group {group} kept changing under ingest; is another writer on it?"
        )

    async def contains(self, ids: Iterable[int]) -> list[bool]:
        """Membership for a few IDs (diagnostics and tests; ingest is the bulk path)."""
        wanted = list(ids)
        keys = [self.window_key(i >> WINDOW_BITS) for i in wanted]
        values = await self.redis.mget(keys) if keys else []
        out = []
        for tweet_id, data in zip(wanted, values, strict=True):
            present = (
                data is not None
                and pc.is_in(
                    pa.array([tweet_id & ((1 << WINDOW_BITS) - 1)], _U64),
                    value_set=unpack_offsets(data),
                )[0].as_py()
            )
            out.append(bool(present))
        return out

    async def credits(self) -> dict[str, dict[int, int]]:
        """hotkey -> period -> new unique IDs credited, summed over all groups."""
        groups = sorted(int(g) for g in await self.redis.smembers(f"{self.prefix}:groups"))
        totals: dict[str, dict[int, int]] = {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for group in groups:
                pipe.hgetall(self._key(group, "credit"))
            ledgers = await pipe.execute()
        for ledger in ledgers:
            for field, count in ledger.items():
                hotkey, _, period = _text(field).rpartition(":")
                per = totals.setdefault(hotkey, {})
                per[int(period)] = per.get(int(period), 0) + int(count)
        return totals

    async def size(self) -> int:
        """How many IDs the index holds (walks every window; for tests and benches)."""
        total = 0
        async for key in self.redis.scan_iter(match=f"{self.prefix}:{{g*}}:w:*", count=1000):
            total += (await self.redis.strlen(key)) // 5
        return total


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _runs(sorted_keys: pa.Array) -> Iterable[tuple[int, int, int]]:
    """(key, start, stop) for each run of equal values in a sorted array."""
    if len(sorted_keys) == 0:
        return
    counts = pc.value_counts(sorted_keys)  # preserves first-seen order, i.e. sorted
    start = 0
    for entry in counts.to_pylist():
        stop = start + entry["counts"]
        yield entry["values"], start, stop
        start = stop


def _merge(old: bytes | None, offsets: pa.Array) -> tuple[pa.Array, int]:
    """Union of a stored window and new sorted offsets; also how many were new."""
    if old is None:
        return offsets, len(offsets)
    existing = unpack_offsets(old)
    fresh = pc.filter(offsets, pc.invert(pc.is_in(offsets, value_set=existing)))
    if len(fresh) == 0:
        return existing, 0
    merged = pa.concat_arrays([existing, fresh])
    return pc.take(merged, pc.sort_indices(merged)), len(fresh)
