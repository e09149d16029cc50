"""The tweet-ID index: every ID ever accepted, in Redis; the first committer wins.

Layout v2 (docs/validator.md has the sizing; v1 is the same without deltas and versions):

    <prefix>:groups                  zset:   every group seen, scored by its number
    <prefix>:{g<group>}:w:<window>   string: the window's *base*: sorted IDs, 5 bytes each
    <prefix>:{g<group>}:d:<window>   string: the window's *delta*: IDs appended since
    <prefix>:{g<group>}:v            string: the group's version, +1 at every write
    <prefix>:{g<group>}:credit       hash:   "<hotkey>:<period>" -> new unique IDs credited
    <prefix>:{g<group>}:done         zset:   ingest token, scored by the IDs it added here

A snowflake ID's high bits are its time, so IDs are bucketed by time: a *window* is 2^40
IDs (~4.4 min of tweets), stored as 40-bit offsets with no per-ID key overhead (~70 bytes
for a plain `SETNX <id> 1`). The base is sorted, split into a 4-byte and a 1-byte column;
the delta is an append-only run of 5-byte big-endian offsets; base and delta never share
an ID, and every reader reads both. A *group* is 64 windows (~4.7 h); its keys share a
hash tag, so one group is one Redis Cluster slot and one atomic (Lua) update.

Ingest finds the new IDs on the client, against a bounded cache of the windows it touches
(d3/validator/index_cache.py), filed under the group version they were read or written at;
the windows it lacks are read with their group's version, `FETCH_BATCH` windows to an
MGET (one instant: the contents are exactly that version's), a few MGETs in flight (a
large read on a connection of its own that receives in place: index_wire.py).
Then it sends one script per group, all groups in one non-transactional pipeline. The
script first looks up the token (already applied: nothing changes, and the caller
learns what it added then); then, if it has anything to write, checks that the group's
version is still the one the client computed against (a compare-and-set: any mismatch
writes nothing, and the client refetches the group's windows and retries with the same
token). Otherwise it APPENDs each window's new IDs to its delta, or, once the delta would
pass 1/`MERGE_RATIO` of the base, SETs base + delta + new as the base and deletes the
delta; then it increments the version, adds the credit and records the token. IDs and
credit can never disagree, a crash anywhere leaves each group either applied or not, and
what is stored depends only on the order of ingests, never on the cache: callers ingest
in (commit block, hotkey) order and every validator holds the same bytes.

A version names the group's contents only while nothing is removed from it: nothing in
the index ever is. Dropping the whole index (`ValidatorState.ensure_version` does, at
start-up) is safe for a fresh `TweetIndex`; a live one must `forget()` after it.

Migration from v1 is one explicit step, `python -m d3.validator.index_migrate` (or
`TweetIndex.migrate()`): v1's windows are valid v2 bases as they are, so it only turns the
groups set and each group's token hash into sorted sets. That is also the fence: a v1
writer adds to the groups set and reads the token hash before it writes anything, and
both fail with WRONGTYPE on a v2 index; a v2 writer refuses a v1 index the same way.
"""

from __future__ import annotations

import asyncio
import struct
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import redis.asyncio as aioredis
from redis.commands.core import AsyncScript as Script
from redis.exceptions import NoScriptError, RedisError, ResponseError

from d3.validator.index_cache import (
    OFFSET_BYTES,
    CachedWindow,
    WindowCache,
    decode_base,
    encode_base,
    encode_delta,
    sorted_unique,
    split_words,
)
from d3.validator.index_wire import BulkReader, bulk_address

WINDOW_BITS = 40
GROUP_BITS = 6
MERGE_RATIO = 8  # a window's delta is merged into its base at 1/8 of the base's size
DEFAULT_CACHE_BYTES = 1 << 30  # ~200M cached IDs (5.3 bytes each: the stored bytes, a fence)
MAX_ATTEMPTS = 16  # compare-and-set retries of one group before giving up
FETCH_BATCH = 8  # windows per MGET (a window of a day of 50M IDs is ~0.75 MB)
FETCH_PIPELINE = 2  # MGETs in flight (more: Redis buffers what is not read yet)
BULK_MIN_MGETS = 4  # a read of this many MGETs or more takes a connection of its own
_U64 = pa.uint64()
_OFFSET_MASK = np.uint64((1 << WINDOW_BITS) - 1)


class TweetIndexError(Exception):
    """Base of the index's own errors (Redis's own errors pass through unchanged)."""


class LayoutError(TweetIndexError):
    """The Redis holds another layout of the index (remedy in the message)."""


class ConflictError(TweetIndexError):
    """Another writer kept changing the same windows; nothing of the group was written."""


@dataclass(frozen=True)
class IngestResult:
    new: int  # IDs this ingest added (and credited)
    duplicates: int  # IDs not added: already indexed, repeated, or in a skipped group
    skipped_groups: int  # groups whose token was already applied (a resumed ingest)
    credited: int = 0  # IDs this token has added, now or in an earlier (interrupted) run


@dataclass
class IndexStats:
    """Counters since this `TweetIndex` was made (for benches, logs and tests)."""

    cache_hits: int = 0  # windows found in the cache
    cache_misses: int = 0  # windows read from Redis
    appends: int = 0  # windows whose new IDs went to the delta
    merges: int = 0  # windows rewritten as one base
    conflicts: int = 0  # group scripts refused by the compare-and-set
    script_loads: int = 0  # times the script was missing on a node (NOSCRIPT) and loaded
    bulk_reads: int = 0  # reads through a connection of their own (index_wire.py)
    bulk_fallbacks: int = 0  # reads through redis-py because that connection failed to open


def pack_offsets(offsets: pa.Array) -> bytes:
    """Sorted uint64 offsets (< 2^40) -> a base: low 32 bits column + high 8 bits column."""
    return encode_base(pc.cast(offsets, _U64).to_numpy(zero_copy_only=False))


def unpack_offsets(data: bytes) -> pa.Array:
    return pa.array(decode_base(data), _U64)


# One group's update. KEYS: token zset, credit hash, version, then per written window its
# base and delta. ARGV: token, credit field, IDs added, the group version the client
# computed against, a header of 9 bytes per written window (`_HEADER`: "a" to append its
# payload to the delta or "s" to set it as the base and delete the delta; the delta's
# length; the payload's length), then every payload, concatenated. Returns {0, added};
# {1, what it added then} when the token was already applied; {2, version} when the group
# has moved on since (nothing written). A group with nothing new to write is not checked:
# IDs once in the index stay there.
_APPLY_GROUP = """
local before = redis.call('ZSCORE', KEYS[1], ARGV[1])
if before then return {1, tonumber(before)} end
if #KEYS > 3 then
  local version = tonumber(redis.call('GET', KEYS[3]) or 0)
  if version ~= tonumber(ARGV[4]) then return {2, version} end
  local header, blob, at = ARGV[5], ARGV[6], 1
  for i = 0, (#KEYS - 3) / 2 - 1 do
    local op, delta, size = struct.unpack('<c1I4I4', header, 9 * i + 1)
    local payload = string.sub(blob, at, at + size - 1)
    at = at + size
    if op == 'a' then
      redis.call('APPEND', KEYS[5 + 2 * i], payload)
    else
      redis.call('SET', KEYS[4 + 2 * i], payload)
      if delta > 0 then redis.call('DEL', KEYS[5 + 2 * i]) end
    end
  end
  redis.call('INCR', KEYS[3])
end
local added = tonumber(ARGV[3])
if added > 0 then redis.call('HINCRBY', KEYS[2], ARGV[2], added) end
redis.call('ZADD', KEYS[1], added, ARGV[1])
return {0, added}
"""
_HEADER = struct.Struct("<cII")

# Migration, one key at a time (each its own slot): a set (the groups, v1) or a hash (a
# group's tokens, v1) becomes a sorted set; anything else is left alone. Returns 1 if it
# converted the key.
_TO_ZSET = """
local kind = redis.call('TYPE', KEYS[1])['ok']
local pairs = {}
if kind == 'set' then
  for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do
    pairs[#pairs + 1] = tonumber(member)
    pairs[#pairs + 1] = member
  end
elseif kind == 'hash' then
  local flat = redis.call('HGETALL', KEYS[1])
  for i = 1, #flat, 2 do
    pairs[#pairs + 1] = tonumber(flat[i + 1])
    pairs[#pairs + 1] = flat[i]
  end
else
  return 0
end
redis.call('DEL', KEYS[1])
for i = 1, #pairs, 1000 do
  redis.call('ZADD', KEYS[1], unpack(pairs, i, math.min(i + 999, #pairs)))
end
return 1
"""


@dataclass
class _Part:
    """One group's share of an ingest: its distinct IDs' offsets, sorted, and where each
    window's run of them starts."""

    group: int
    offsets: np.ndarray
    windows: list[int]
    starts: np.ndarray  # index into `offsets` of each window's first offset

    def runs(self) -> Iterable[tuple[int, int, int]]:
        """(window, start, stop) of each window's offsets."""
        stops = [*self.starts[1:].tolist(), len(self.offsets)]
        return zip(self.windows, self.starts.tolist(), stops, strict=True)


@dataclass
class _Plan:
    """What one group's script will do, and the cache entries it leaves when it applies."""

    group: int
    version: int  # the group's version the plan was computed against
    keys: list[str] = field(default_factory=list)
    header: list[bytes] = field(default_factory=list)
    payload: bytes = b""
    after: dict[int, CachedWindow] = field(default_factory=dict)
    added: int = 0


class TweetIndex:
    """First-committer-wins set of tweet IDs with per-hotkey credit, in Redis."""

    def __init__(
        self,
        redis: aioredis.Redis,
        prefix: str = "d3",
        *,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ):
        self.redis = redis
        self.prefix = prefix
        self.cache = WindowCache(cache_bytes, GROUP_BITS)
        self.stats = IndexStats()
        self._apply = redis.register_script(_APPLY_GROUP)
        self._to_zset = redis.register_script(_TO_ZSET)
        self._groups: set[int] = set()  # groups this client has seen in the groups zset

    def _key(self, group: int, kind: str) -> str:
        return f"{self.prefix}:{{g{group}}}:{kind}"

    def window_key(self, window: int) -> str:
        """The window's base (v1: the whole window)."""
        return self._key(window >> GROUP_BITS, f"w:{window}")

    def delta_key(self, window: int) -> str:
        return self._key(window >> GROUP_BITS, f"d:{window}")

    @property
    def _groups_key(self) -> str:
        return f"{self.prefix}:groups"

    # -- writes --------------------------------------------------------------------------

    async def ingest(self, ids: pa.Array, hotkey: str, token: str, period: int) -> IngestResult:
        """Add `ids` committed by `hotkey`; credit the ones nobody had before.

        `token` names this unit of work (e.g. "<shard sha256>:<hotkey>") and makes it
        idempotent; `period` is the credit period the commitment falls in.
        """
        total = len(ids)
        if ids.null_count:
            raise ValueError(f"{ids.null_count} null tweet IDs: the records' checks let them by")
        parts = _parts(sorted_unique(pc.cast(ids, _U64).to_numpy(zero_copy_only=False)))
        credit_field = f"{hotkey}:{period}"
        await self._register(list(parts))
        new = skipped = credited = 0
        pending = sorted(parts)
        for _ in range(MAX_ATTEMPTS):
            views = await self._views({g: parts[g].windows for g in pending})
            plans = [self._plan(parts[g], *views[g]) for g in pending]
            replies = await self._run(plans, token, credit_field)
            pending = []
            for plan, (status, count) in zip(plans, replies, strict=True):
                if status == 0:
                    self._applied(plan)
                    new += count
                    credited += count
                elif status == 1:
                    skipped += 1
                    credited += count
                else:
                    self.stats.conflicts += 1
                    self.cache.drop_group(plan.group)
                    pending.append(plan.group)
            if not pending:
                break
        else:
            raise ConflictError(
                f"groups {pending} changed under this writer {MAX_ATTEMPTS} times in a row "
                "(another writer on the same Redis prefix?); nothing of them was written"
            )
        return IngestResult(
            new=new, duplicates=total - new, skipped_groups=skipped, credited=credited
        )

    async def _register(self, groups: list[int]) -> None:
        """Adds groups to the groups zset before anything is written to them (and fails
        on a v1 index, whose groups key is a set)."""
        unknown = [g for g in groups if g not in self._groups]
        if unknown:
            try:
                await self.redis.zadd(self._groups_key, {str(g): g for g in unknown})
            except ResponseError as error:
                raise _layout_error(self.prefix, error) from error
            self._groups.update(unknown)

    def _applied(self, plan: _Plan) -> None:
        """The cache after `plan` applied: its windows as written, the group's other
        cached windows unchanged but valid at the new version."""
        if not plan.after:
            return  # nothing written, the version stays
        self.cache.advance(plan.group, plan.version, plan.version + 1)
        for window, entry in plan.after.items():
            self.cache.put(window, entry, plan.version + 1)

    async def _views(
        self, wanted: dict[int, list[int]]
    ) -> dict[int, tuple[int, dict[int, CachedWindow]]]:
        """group -> (its version, each wanted window as of that version), from the cache,
        reading what it lacks."""
        out: dict[int, tuple[int, dict[int, CachedWindow]]] = {}
        todo = wanted
        for _ in range(MAX_ATTEMPTS):
            reads: dict[int, list[int]] = {}
            partial: dict[int, tuple[int | None, dict[int, CachedWindow]]] = {}
            for group, windows in todo.items():
                version = self.cache.version(group)
                cached = {}
                if version is not None:
                    cached = {w: e for w in windows if (e := self.cache.get(w)) is not None}
                self.stats.cache_hits += len(cached)
                if len(cached) == len(windows):
                    out[group] = (version, cached)
                else:
                    reads[group] = [w for w in windows if w not in cached]
                    partial[group] = (version, cached)
            todo = {}
            for group, (version, fetched) in (await self._read_groups(reads)).items():
                self.stats.cache_misses += len(fetched)
                was, cached = partial[group]
                if version is None or (cached and was != version):
                    # Read across a write, or the group moved on since `cached`: again.
                    self.cache.drop_group(group)
                    todo[group] = wanted[group]
                    continue
                for window, entry in fetched.items():
                    self.cache.put(window, entry, version)
                out[group] = (version, cached | fetched)
            if not todo:
                return out
        raise ConflictError(f"groups {sorted(todo)} kept changing while being read")

    async def _read_groups(
        self, reads: dict[int, list[int]]
    ) -> dict[int, tuple[int | None, dict[int, CachedWindow]]]:
        """Each group's version and windows as of it (None: the group's windows took more
        than one MGET, and a write landed between them)."""
        batches = [
            (group, windows[i : i + FETCH_BATCH])
            for group, windows in reads.items()
            for i in range(0, len(windows), FETCH_BATCH)
        ]
        out: dict[int, tuple[int | None, dict[int, CachedWindow]]] = {}
        for (group, _), (version, views) in zip(
            batches, await self._fetch(batches, versions=True), strict=True
        ):
            if group in out:
                before, seen = out[group]
                out[group] = (version if before == version else None, seen | views)
            else:
                out[group] = (version, views)
        return out

    async def _fetch(
        self, batches: list[tuple[int, list[int]]], versions: bool
    ) -> list[tuple[int, dict[int, CachedWindow]]]:
        """Each batch's windows (all of one group) and, with `versions`, the group's
        version (else -1): one MGET a batch (one instant, one cluster slot)."""
        commands = []
        for group, windows in batches:
            keys = [self._key(group, "v")] if versions else []
            for window in windows:
                keys += [self.window_key(window), self.delta_key(window)]
            commands.append(keys)
        out = []
        at = 1 if versions else 0
        async with aclosing(self._mgets(commands)) as replies:
            async for values in replies:
                _, windows = batches[len(out)]
                views = {
                    w: CachedWindow.from_stored(values[at + 2 * i], values[at + 2 * i + 1])
                    for i, w in enumerate(windows)
                }
                out.append((int(values[0] or 0) if versions else -1, views))
        return out

    async def _mgets(self, commands: list[list[str]]) -> AsyncIterator[list]:
        """Each MGET's values, in order, `FETCH_PIPELINE` MGETs in flight (all of them at
        once made Redis buffer the whole reply: twice its CPU for a day of 50M IDs). A read
        of `BULK_MIN_MGETS` or more goes through a connection of its own that receives the
        values in place (d3/validator/index_wire.py: a third of redis-py's CPU), when the
        client is one it can reach; else, or if that connection cannot be opened, through
        redis-py."""
        reader = None
        address = bulk_address(self.redis) if len(commands) >= BULK_MIN_MGETS else None
        if address is not None:
            try:
                reader = await BulkReader.open(address)
            except (OSError, RedisError):
                self.stats.bulk_fallbacks += 1  # e.g. maxclients reached: redis-py will do
        if reader is None:
            for first in range(0, len(commands), FETCH_PIPELINE):
                async with self.redis.pipeline(transaction=False) as pipe:
                    for keys in commands[first : first + FETCH_PIPELINE]:
                        pipe.execute_command("MGET", *keys)  # (a cluster pipeline blocks `mget`)
                    for values in await pipe.execute():
                        yield values
            return
        self.stats.bulk_reads += 1
        try:
            pending: deque[asyncio.Future] = deque()
            for keys in commands:
                pending.append(reader.send("MGET", *keys))
                if len(pending) == FETCH_PIPELINE:
                    yield await reader.reply(pending.popleft())
            while pending:
                yield await reader.reply(pending.popleft())
        finally:
            reader.close()

    async def _read(self, windows: Sequence[int]) -> list[CachedWindow]:
        """Base and delta of each window, as of one instant for each (for readers)."""
        by_group: dict[int, list[int]] = {}
        for window in dict.fromkeys(windows):
            by_group.setdefault(window >> GROUP_BITS, []).append(window)
        batches = [
            (group, ws[i : i + FETCH_BATCH])
            for group, ws in by_group.items()
            for i in range(0, len(ws), FETCH_BATCH)
        ]
        views: dict[int, CachedWindow] = {}
        for _, fetched in await self._fetch(batches, versions=False):
            views.update(fetched)
        return [views[w] for w in windows]

    def _plan(self, part: _Part, version: int, views: dict[int, CachedWindow]) -> _Plan:
        """The group's script: each window's offsets its view lacks, appended to its delta
        or merged into a new base."""
        plan = _Plan(part.group, version)
        offsets = part.offsets
        low, high = split_words(offsets)
        payloads: list[bytes] = []
        for window, start, stop in part.runs():
            view = views[window]
            words = (low[start:stop], high[start:stop])
            fresh, after, merged = view.add(offsets[start:stop], words, MERGE_RATIO)
            if after is None:
                continue  # known IDs stay known: the set never shrinks, no check needed
            if merged:
                op, payload = b"s", after.raw
                self.stats.merges += 1
            else:
                op, payload = b"a", encode_delta(fresh)
                self.stats.appends += 1
            plan.keys += [self.window_key(window), self.delta_key(window)]
            plan.header.append(_HEADER.pack(op, view.delta_len * OFFSET_BYTES, len(payload)))
            payloads.append(payload)
            plan.after[window] = after
            plan.added += len(fresh)
        plan.payload = b"".join(payloads)
        return plan

    async def _run(
        self, plans: list[_Plan], token: str, credit_field: str
    ) -> list[tuple[int, int]]:
        """Every group's script in one pipeline: (status, count) per plan."""
        calls = [
            (
                [
                    self._key(p.group, "done"),
                    self._key(p.group, "credit"),
                    self._key(p.group, "v"),
                    *p.keys,
                ],
                [token, credit_field, p.added, p.version, b"".join(p.header), p.payload],
            )
            for p in plans
        ]
        return [(int(r[0]), int(r[1])) for r in await self._evalsha(self._apply, calls)]

    async def _evalsha(self, script: Script, calls: list[tuple[list[str], list]]) -> list:
        """One script over many key sets, in one non-transactional pipeline (the key sets
        may lie in different cluster slots); loaded wherever a node answers NOSCRIPT."""
        replies: list = [None] * len(calls)
        todo = list(range(len(calls)))
        for attempt in range(2):
            async with self.redis.pipeline(transaction=False) as pipe:
                for i in todo:
                    keys, args = calls[i]
                    # Not `pipe.evalsha`: redis-py blocks that name in a cluster pipeline.
                    pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
                results = await pipe.execute(raise_on_error=False)
            unloaded = []
            for i, result in zip(todo, results, strict=True):
                if isinstance(result, NoScriptError) and attempt == 0:
                    unloaded.append(i)  # this node has not seen the script: nothing ran
                elif isinstance(result, ResponseError) and "WRONGTYPE" in str(result):
                    raise _layout_error(self.prefix, result)
                elif isinstance(result, Exception):
                    raise result
                else:
                    replies[i] = result
            if not unloaded:
                break
            await self.redis.script_load(script.script)  # on every primary of a cluster
            self.stats.script_loads += 1
            todo = unloaded
        return replies

    def forget(self) -> None:
        """Drop everything this client remembers about Redis (after the index was wiped
        behind its back; a miss costs only a refetch)."""
        self.cache.clear()
        self._groups.clear()

    async def migrate(self) -> int:
        """Turn a v1 index into v2 in place (idempotent; a v2 or empty index is left as
        it is). Returns how many keys it converted. Stop every v1 writer first: from the
        first converted key on, they fail instead of writing."""
        converted = int(await self._to_zset(keys=[self._groups_key]))
        for group in await self._group_numbers():
            converted += int(await self._to_zset(keys=[self._key(group, "done")]))
        self.forget()
        return converted

    async def layout(self) -> str:
        """The layout found: "v2", "v1" (migrate before use) or "empty"."""
        kind = _text(await self.redis.type(self._groups_key))
        return {"zset": "v2", "set": "v1", "none": "empty"}.get(kind, kind)

    # -- reads ---------------------------------------------------------------------------

    async def contains(self, ids: Iterable[int]) -> list[bool]:
        """Membership for a few IDs (audit candidates, diagnostics): read from Redis, base
        and delta of each window once."""
        wanted = list(ids)
        windows = sorted({i >> WINDOW_BITS for i in wanted})
        views = dict(zip(windows, await self._read(windows), strict=True))
        mask = (1 << WINDOW_BITS) - 1
        found: dict[int, bool] = {}
        for window, view in views.items():
            mine = [i for i in wanted if i >> WINDOW_BITS == window]
            hits = view.contains(np.array([i & mask for i in mine], np.uint64))
            found.update(zip(mine, hits.tolist(), strict=True))
        return [found[i] for i in wanted]

    async def window_ids(self, window: int) -> pa.Array:
        """Every ID of one window, sorted, base and delta together (for the hub)."""
        (view,) = await self._read([window])
        return pa.array(view.offsets() | np.uint64(window << WINDOW_BITS), _U64)

    async def credits(self) -> dict[str, dict[int, int]]:
        """hotkey -> period -> new unique IDs credited, summed over all groups."""
        groups = await self._group_numbers()
        totals: dict[str, dict[int, int]] = {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for group in groups:
                pipe.hgetall(self._key(group, "credit"))
            ledgers = await pipe.execute()
        for ledger in ledgers:
            for key, count in ledger.items():
                hotkey, _, period = _text(key).rpartition(":")
                per = totals.setdefault(hotkey, {})
                per[int(period)] = per.get(int(period), 0) + int(count)
        return totals

    async def size(self) -> int:
        """How many IDs the index holds, bases and deltas (walks every key; for tests and
        benches)."""
        total = 0
        for kind in ("w", "d"):
            pattern = f"{self.prefix}:{{g*}}:{kind}:*"
            async for key in self.redis.scan_iter(match=pattern, count=1000):
                total += (await self.redis.strlen(key)) // OFFSET_BYTES
        return total

    async def _group_numbers(self) -> list[int]:
        try:
            return [int(g) for g in await self.redis.zrange(self._groups_key, 0, -1)]
        except ResponseError as error:
            raise _layout_error(self.prefix, error) from error


def _layout_error(prefix: str, error: Exception) -> LayoutError:
    return LayoutError(
        f"the index under prefix {prefix!r} has another layout ({error}): a v1 index needs "
        f"`python -m d3.validator.index_migrate --redis.prefix {prefix}` (once, with every "
        "older validator stopped), then a restart"
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _parts(values: np.ndarray) -> dict[int, _Part]:
    """Sorted distinct IDs by group, as offsets in their windows."""
    if len(values) == 0:
        return {}
    windows = values >> np.uint64(WINDOW_BITS)
    starts = np.concatenate(([0], np.flatnonzero(windows[1:] != windows[:-1]) + 1))
    numbers = windows[starts].tolist()
    offsets = values & _OFFSET_MASK
    parts: dict[int, _Part] = {}
    first = 0  # index into `numbers` of the current group's first window
    bounds = [*starts.tolist(), len(values)]
    for i in range(1, len(numbers) + 1):
        if i < len(numbers) and numbers[i] >> GROUP_BITS == numbers[first] >> GROUP_BITS:
            continue
        lo = bounds[first]
        parts[numbers[first] >> GROUP_BITS] = _Part(
            numbers[first] >> GROUP_BITS,
            offsets[lo : bounds[i]],
            numbers[first:i],
            starts[first:i] - lo,
        )
        first = i
    return parts
