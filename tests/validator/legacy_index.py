"""A frozen copy of the index's first layout (v1) and its writer, as of e0d8260.

Not used by the validator. Tests use it to build a v1 index to migrate and to show that a
v1 writer cannot write to a migrated (v2) index; `bench/index_bench.py` uses it as the
previous-layout baseline in the same run. Do not change it: it stands for released code.
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


@dataclass(frozen=True)
class IngestResult:
    new: int  # IDs this ingest added (and credited)
    duplicates: int  # IDs not added: already indexed, repeated, or in a skipped group
    skipped_groups: int  # groups whose token was already applied (a resumed ingest)
    credited: int = 0  # IDs this token has added, now or in an earlier (interrupted) run


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


# One group's update, server-side: no window is sent back and forth, so adding a few IDs
# to a large window costs a binary search per ID and one memcpy, not a round trip of the
# window. KEYS: done set, credit hash, then the windows. ARGV: token, credit field, then
# per window its new offsets, sorted and packed like the window (4-byte column, 1-byte
# column). Returns {0, IDs added}, or {1, what it added then} when the token was already
# applied, so a resumed ingest knows its exact credit.
# Values are compared as numbers, never as strings (Lua's string order follows the locale).
_APPLY_GROUP = """
local byte = string.byte
local function low(s, i)
  local b0, b1, b2, b3 = byte(s, 4 * i + 1, 4 * i + 4)
  return b0 + b1 * 256 + b2 * 65536 + b3 * 16777216
end
-- old[i] < (vh, vl)? The 1-byte column decides most probes without decoding the rest.
local function less(s, n, i, vh, vl)
  local h = byte(s, 4 * n + i + 1)
  if h ~= vh then return h < vh end
  return low(s, i) < vl
end
local before = redis.call('HGET', KEYS[1], ARGV[1])
if before then return {1, tonumber(before)} end
local added = 0
for k = 3, #KEYS do
  local new = ARGV[k]
  local m = #new / 5
  local old = redis.call('GET', KEYS[k])
  if not old or #old == 0 then
    redis.call('SET', KEYS[k], new)
    added = added + m
  else
    local n = #old / 5
    local lows, highs = {}, {}
    local copied, lo, here = 0, 0, 0
    for j = 0, m - 1 do
      local vh, vl = byte(new, 4 * m + j + 1), low(new, j)
      local a, b = lo, n
      while a < b do
        local mid = math.floor((a + b) / 2)
        if less(old, n, mid, vh, vl) then a = mid + 1 else b = mid end
      end
      lo = a
      if a >= n or byte(old, 4 * n + a + 1) ~= vh or low(old, a) ~= vl then
        lows[#lows + 1] = string.sub(old, 4 * copied + 1, 4 * a)
        highs[#highs + 1] = string.sub(old, 4 * n + copied + 1, 4 * n + a)
        lows[#lows + 1] = string.sub(new, 4 * j + 1, 4 * j + 4)
        highs[#highs + 1] = string.sub(new, 4 * m + j + 1, 4 * m + j + 1)
        copied = a
        here = here + 1
      end
    end
    if here > 0 then
      lows[#lows + 1] = string.sub(old, 4 * copied + 1, 4 * n)
      highs[#highs + 1] = string.sub(old, 4 * n + copied + 1, 5 * n)
      redis.call('SET', KEYS[k], table.concat(lows) .. table.concat(highs))
      added = added + here
    end
  end
end
if added > 0 then redis.call('HINCRBY', KEYS[2], ARGV[2], added) end
redis.call('HSET', KEYS[1], ARGV[1], added)
return {0, added}
"""


class LegacyTweetIndex:
    """The v1 index: every group update rewrites its windows in Lua."""

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
        new = skipped = credited = 0
        for group, start, stop in _runs(pc.shift_right(windows, _SHIFT_GROUP)):
            applied_before, added = await self._ingest_group(
                group,
                ids.slice(start, stop - start),
                windows.slice(start, stop - start),
                hotkey,
                token,
                period,
            )
            if applied_before:
                skipped += 1
            else:
                new += added
            credited += added
        return IngestResult(
            new=new, duplicates=total - new, skipped_groups=skipped, credited=credited
        )

    async def _ingest_group(
        self,
        group: int,
        ids: pa.Array,
        windows: pa.Array,
        hotkey: str,
        token: str,
        period: int,
    ) -> tuple[bool, int]:
        """One group in one atomic script: (token applied before, IDs it added)."""
        offsets = pc.bit_wise_and(ids, _OFFSET_MASK)
        low = _buffer_bytes(pc.cast(pc.bit_wise_and(offsets, _LOW_MASK), pa.uint32()))
        high = _buffer_bytes(pc.cast(pc.shift_right(offsets, _SHIFT_32), pa.uint8()))
        keys, packed = [], []
        for window, start, stop in _runs(windows):
            keys.append(self.window_key(window))
            packed.append(low[4 * start : 4 * stop] + high[start:stop])
        await self.redis.sadd(f"{self.prefix}:groups", group)
        done_key, credit_key = self._key(group, "done"), self._key(group, "credit")
        before, added = await self._apply(
            keys=[done_key, credit_key, *keys], args=[token, f"{hotkey}:{period}", *packed]
        )
        return bool(before), int(added)

    async def contains(self, ids: Iterable[int]) -> list[bool]:
        """Membership for a few IDs (audit candidates, diagnostics): each window read once."""
        wanted = list(ids)
        windows = sorted({i >> WINDOW_BITS for i in wanted})
        async with self.redis.pipeline(transaction=False) as pipe:  # keys span cluster slots
            for window in windows:
                pipe.get(self.window_key(window))
            values = await pipe.execute() if windows else []
        mask = (1 << WINDOW_BITS) - 1
        found: dict[int, bool] = {}
        for window, data in zip(windows, values, strict=True):
            mine = [i for i in wanted if i >> WINDOW_BITS == window]
            if not data:
                found.update((i, False) for i in mine)
                continue
            # Vectorised against the packed window: a full window holds ~10^5 IDs, too
            # many to turn into Python objects for a handful of look-ups.
            hits = pc.is_in(
                pa.array([i & mask for i in mine], _U64), value_set=unpack_offsets(data)
            )
            found.update(zip(mine, hits.to_pylist(), strict=True))
        return [found[i] for i in wanted]

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
