"""The tweet-ID index: every ID ever accepted, in Redis; the first committer wins.

Layout (docs/protocol.md has the numbers):

    <prefix>:{g<group>}:w:<window>   string: the window's IDs, packed (5 bytes per ID)
    <prefix>:{g<group>}:credit       hash:   "<hotkey>:<period>" -> new unique IDs credited
    <prefix>:{g<group>}:done         set:    ingest tokens already applied in this group
    <prefix>:groups                  set:    every group seen (to enumerate credits)

A snowflake ID's high bits are its time, so IDs are bucketed by time: a *window* is 2^40
IDs (~4.4 min of tweets), stored as one string of sorted 40-bit offsets split into a 4-byte
and a 1-byte column (5 bytes per ID, no per-ID key overhead: ~70 bytes for a plain
`SETNX <id> 1`). A *group* is 64 windows (~4.7 h); its keys share a hash tag, so one
group is one Redis Cluster slot and one atomic (Lua) update.

Each group's update is a single atomic script that writes the new IDs, adds their credit and
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

WINDOW_BITS = 40
GROUP_BITS = 6
# Arrow scalars built once: converting a Python int per call is slow (pyarrow probes for
# numpy on every conversion).
_U64 = pa.uint64()
_OFFSET_MASK = pa.scalar((1 << WINDOW_BITS) - 1, _U64)
_LOW_MASK = pa.scalar(0xFFFFFFFF, _U64)
_SHIFT_32 = pa.scalar(32, _U64)
_SHIFT_WINDOW = pa.scalar(WINDOW_BITS, _U64)
_SHIFT_GROUP = pa.scalar(GROUP_BITS, _U64)
MAX_CAS_RETRIES = 16


@dataclass(frozen=True)
class IngestResult:
    new: int  # IDs this ingest added (and credited)
    duplicates: int  # IDs not added: already indexed, repeated, or in a skipped group
    skipped_groups: int  # groups whose token was already applied (a resumed ingest)


def pack_offsets(offsets: pa.Array) -> bytes:
    """Sorted uint64 offsets (< 2^40) -> low 32 bits column + high 8 bits column."""
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


# Compare-and-set for one group. KEYS: done set, credit hash, then the windows.
# ARGV: token, credit field, IDs added, then per window: the length read, the new value
# ("" when unchanged). Every key shares the group's hash tag: one slot, one atomic step,
# on a single Redis and on a Cluster alike.
_APPLY_GROUP = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return -1 end
for i = 3, #KEYS do
  if redis.call('STRLEN', KEYS[i]) ~= tonumber(ARGV[2 * i - 2]) then return -2 end
end
for i = 3, #KEYS do
  local value = ARGV[2 * i - 1]
  if value ~= '' then redis.call('SET', KEYS[i], value) end
end
local added = tonumber(ARGV[3])
if added > 0 then redis.call('HINCRBY', KEYS[2], ARGV[2], added) end
redis.call('SADD', KEYS[1], ARGV[1])
return added
"""
_ALREADY_DONE, _CONFLICT = -1, -2


class TweetIndex:
    """First-committer-wins set of tweet IDs with per-hotkey credit, in Redis."""

    def __init__(self, redis: aioredis.Redis, prefix: str = "d3"):
        self.redis = redis
        self.prefix = prefix
        self._apply = redis.register_script(_APPLY_GROUP)

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
        """One group in one atomic step; None when its token was already applied.

        Read, merge here, then write with a compare-and-set script: it applies only if the
        token is still absent and every window still has the length we read (windows only
        grow), so a concurrent change makes us re-read instead of losing IDs.
        """
        runs = list(_runs(windows))
        window_keys = [self.window_key(w) for w, _, _ in runs]
        done_key, credit_key = self._key(group, "done"), self._key(group, "credit")
        await self.redis.sadd(f"{self.prefix}:groups", group)
        for _attempt in range(MAX_CAS_RETRIES):
            if await self.redis.sismember(done_key, token):
                return None
            existing = await self.redis.execute_command("MGET", *window_keys)
            new_values, added = _merge_group([w for w, _, _ in runs], existing, ids)
            window_args: list[bytes | int] = []
            for old, value in zip(existing, new_values, strict=True):
                window_args += [len(old or b""), value]
            applied = await self._apply(
                keys=[done_key, credit_key, *window_keys],
                args=[token, f"{hotkey}:{period}", added, *window_args],
            )
            if applied == _ALREADY_DONE:
                return None
            if applied != _CONFLICT:
                return added
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


def _merge_group(
    windows: list[int], existing: list[bytes | None], ids: pa.Array
) -> tuple[list[bytes], int]:
    """Merge sorted new `ids` into a group's stored windows, vectorised over the group.

    Returns the new packed value of each window (b"" where nothing was added) and how many
    IDs were new. Per window there is only byte slicing; the set work is a few Arrow calls
    for the whole group, so sparse data (few IDs per window) stays fast.
    """
    stored = [(w, d) for w, d in zip(windows, existing, strict=True) if d]
    if stored:
        known = (
            pa.concat_arrays(
                [
                    pc.bit_wise_or(unpack_offsets(d), pa.scalar(w << WINDOW_BITS, _U64))
                    for w, d in stored
                ]
            )
            if len(stored) < 4
            else _unpack_many(stored)
        )
        fresh = pc.filter(ids, pc.invert(pc.is_in(ids, value_set=known)))
    else:
        known, fresh = pa.array([], _U64), ids
    if len(fresh) == 0:
        return [b""] * len(windows), 0
    changed = set(pc.unique(pc.shift_right(fresh, _SHIFT_WINDOW)).to_pylist())
    merged = pa.concat_arrays([known, fresh])
    merged = pc.take(merged, pc.sort_indices(merged))
    offsets = pc.bit_wise_and(merged, _OFFSET_MASK)
    low = _buffer_bytes(pc.cast(pc.bit_wise_and(offsets, _LOW_MASK), pa.uint32()))
    high = _buffer_bytes(pc.cast(pc.shift_right(offsets, _SHIFT_32), pa.uint8()))
    packed = {
        window: low[4 * start : 4 * stop] + high[start:stop]
        for window, start, stop in _runs(pc.shift_right(merged, _SHIFT_WINDOW))
        if window in changed
    }
    return [packed.get(w, b"") for w in windows], len(fresh)


def _unpack_many(stored: list[tuple[int, bytes]]) -> pa.Array:
    """Full IDs of many stored windows with a constant number of Arrow calls."""
    lows, highs, run_ends, bases, end = [], [], [], [], 0
    for window, data in stored:
        n = len(data) // 5
        if len(data) % 5:
            raise ValueError(f"corrupt index window {window}: {len(data)} bytes")
        buffer = pa.py_buffer(data)
        lows.append(pa.Array.from_buffers(pa.uint32(), n, [None, buffer.slice(0, 4 * n)]))
        highs.append(pa.Array.from_buffers(pa.uint8(), n, [None, buffer.slice(4 * n, n)]))
        end += n
        run_ends.append(end)
        bases.append(window << WINDOW_BITS)
    encoded = pa.RunEndEncodedArray.from_arrays(
        pa.array(run_ends, pa.int64()), pa.array(bases, _U64)
    )
    offsets = pc.bit_wise_or(
        pc.shift_left(pc.cast(pa.concat_arrays(highs), _U64), _SHIFT_32),
        pc.cast(pa.concat_arrays(lows), _U64),
    )
    return pc.bit_wise_or(pc.run_end_decode(encoded), offsets)
