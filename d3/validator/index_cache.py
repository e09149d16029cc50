"""The index's client side: its two window encodings and a bounded cache of windows.

A window's IDs are stored as 40-bit offsets in two strings (d3/validator/index.py has the
layout): the *base*, sorted, as a 4-byte little-endian column then a 1-byte column of the
high bits (5 bytes an ID), and the *delta*, an append-only run of 5-byte big-endian
offsets, each append sorted in itself. Base and delta never share an offset.

The cache keeps, per window, the base as Redis returned it (searched in place, never
decoded: `CachedWindow`) and the delta decoded and sorted, about 5.3 bytes an ID; and per
group of windows the group's version they are all valid at (every write to a group
increments its version; the group's cached windows are dropped together when it moves on
without this client). It is bounded by bytes and evicts the least recently used window; a
miss costs only a refetch, and a stale entry is caught by the compare-and-set of the
write that relies on it.

Note on numpy 2.x: `np.unique` hashes and is slow here; sorted arrays are deduplicated
with a sort and a mask instead.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

OFFSET_BYTES = 5
BLOCK = 32  # offsets per block of a cached base: a look-up compares one block
_PAD = np.iinfo(np.uint64).max  # after every real offset (< 2^40)
_ONE_PAD = np.full(1, _PAD, np.uint64)
_ONE_PAD.flags.writeable = False
_ANY = np.logical_or.reduce


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """`values` sorted with repeats removed (a new array)."""
    out = np.sort(values)
    if len(out) < 2:
        return out
    keep = np.empty(len(out), bool)
    keep[0] = True
    np.not_equal(out[1:], out[:-1], out=keep[1:])
    return out[keep]


Words = tuple[np.ndarray, np.ndarray]


def split_words(offsets: np.ndarray) -> Words:
    """Offsets as columns (n, 1) of their low words and high bytes, the stored types."""
    low = (offsets & np.uint64(0xFFFFFFFF)).astype("<u4")
    high = (offsets >> np.uint64(32)).astype(np.uint8)
    return low[:, None], high[:, None]


def _words(offsets: np.ndarray) -> np.ndarray:
    """uint64 offsets as (n, 2) little-endian uint32 words: [:, 0] low, [:, 1] high."""
    return np.ascontiguousarray(offsets, "<u8").view("<u4").reshape(-1, 2)


def encode_base(offsets: np.ndarray) -> bytes:
    """Sorted offsets (< 2^40) -> low 32 bits column (little-endian) + high 8 bits column."""
    words = _words(offsets)
    return words[:, 0].tobytes() + words[:, 1].astype(np.uint8).tobytes()


def decode_base(data: bytes) -> np.ndarray:
    """A base -> its offsets."""
    if len(data) % OFFSET_BYTES:
        raise ValueError(f"corrupt index window: {len(data)} bytes is not a multiple of 5")
    n = len(data) // OFFSET_BYTES
    return _join(np.frombuffer(data, "<u4", n, 0), np.frombuffer(data, np.uint8, n, 4 * n))


def encode_delta(offsets: np.ndarray) -> bytes:
    """Offsets -> 5-byte big-endian each, in the given order."""
    return offsets.astype(">u8").view(np.uint8).reshape(-1, 8)[:, 3:].tobytes()


def decode_delta(data: bytes) -> np.ndarray:
    """A delta string -> its offsets, in the stored order."""
    if len(data) % OFFSET_BYTES:
        raise ValueError(f"corrupt index delta: {len(data)} bytes is not a multiple of 5")
    wide = np.zeros((len(data) // OFFSET_BYTES, 8), np.uint8)
    wide[:, 3:] = np.frombuffer(data, np.uint8).reshape(-1, OFFSET_BYTES)
    return wide.view(">u8").ravel().astype(np.uint64)


class _Base:
    """A base as stored, viewed for searching: full blocks of `BLOCK` offsets (a row of low
    words and a row of high bytes each, views of the stored bytes), the first offset of
    each block but the first (the *fence*), and the last partial block, decoded."""

    __slots__ = ("fence", "high", "low", "raw", "size", "tail")

    def __init__(self, raw: bytes, offsets: np.ndarray | None = None):
        """`offsets`: the base decoded, when the caller has it (it just encoded them)."""
        if len(raw) % OFFSET_BYTES:
            raise ValueError(f"corrupt index window: {len(raw)} bytes is not a multiple of 5")
        self.raw = raw
        self.size = n = len(raw) // OFFSET_BYTES
        full = n // BLOCK * BLOCK
        self.low = np.frombuffer(raw, "<u4", full, 0).reshape(-1, BLOCK)
        self.high = np.frombuffer(raw, np.uint8, full, 4 * n).reshape(-1, BLOCK)
        if offsets is not None:
            self.fence, self.tail = offsets[BLOCK:full:BLOCK].copy(), offsets[full:].copy()
            return
        self.fence = _join(self.low[1:, 0], self.high[1:, 0])
        self.tail = _join(
            np.frombuffer(raw, "<u4", n - full, 4 * full),
            np.frombuffer(raw, np.uint8, n - full, 4 * n + full),
        )


class CachedWindow:
    """One window as this client last saw it: its base as stored, and its delta.

    The base is searched without decoding it (decoding a day of 50M IDs would fault in
    400 MB of fresh pages, most of a cold start's time): a look-up searches the fence,
    small enough to stay in the CPU's caches, then compares the one block it points to.
    The base's last partial block and the delta are kept decoded and sorted together as
    `extra`, which ends in one pad so that a search never runs off its end.
    """

    __slots__ = ("_base", "_extra", "delta_len", "nbytes")

    def __init__(self, base: _Base, extra: np.ndarray, delta_len: int):
        self._base, self._extra, self.delta_len = base, extra, delta_len
        self.nbytes = len(base.raw) + base.fence.nbytes + extra.nbytes  # what it holds

    @classmethod
    def from_stored(cls, base: bytes | None, delta: bytes | None) -> CachedWindow:
        stored, fresh = _Base(base or b""), decode_delta(delta or b"")
        extra = np.concatenate((stored.tail, fresh, _ONE_PAD))
        extra.sort()
        return cls(stored, extra, len(fresh))

    @property
    def raw(self) -> bytes:
        """The base, as stored."""
        return self._base.raw

    @property
    def base_len(self) -> int:
        return self._base.size

    @property
    def size(self) -> int:
        return self._base.size + self.delta_len

    def offsets(self) -> np.ndarray:
        """Every offset of the window, base and delta, sorted."""
        blocks = _join(self._base.low.ravel(), self._base.high.ravel())
        every = np.concatenate((blocks, self._extra[:-1]))
        every.sort(kind="stable")  # two sorted runs: a merge
        return every

    def contains(self, offsets: np.ndarray, words: Words | None = None) -> np.ndarray:
        """Whether each offset (< 2^40; sorted is fastest) is in the base or the delta.
        `words`: `split_words(offsets)`, when the caller has it already."""
        return self._find(offsets, words)[0]

    def add(
        self, offsets: np.ndarray, words: Words, merge_ratio: int
    ) -> tuple[np.ndarray, CachedWindow | None, bool]:
        """(the sorted `offsets` this window lacks, the window with them added or None if
        none, whether they were merged into a new base: once the delta would pass
        1/`merge_ratio` of the base; else appended to the delta)."""
        found, blocks = self._find(offsets, words)
        fresh = offsets[~found]
        if not len(fresh):
            return fresh, None, False
        if (self.delta_len + len(fresh)) * merge_ratio <= self._base.size:
            return fresh, self.appended(fresh), False
        return fresh, self._merged(fresh, blocks), True

    def appended(self, fresh: np.ndarray) -> CachedWindow:
        """After APPENDing the sorted `fresh` offsets (none of them in it) to the delta."""
        extra = np.concatenate((self._extra, fresh))
        extra.sort(kind="stable")  # two sorted runs: a merge (the pad stays last)
        return CachedWindow(self._base, extra, self.delta_len + len(fresh))

    def merged(self, fresh: np.ndarray) -> CachedWindow:
        """After SETting base + delta + the sorted `fresh` offsets (none of them in it) as
        the new base (`raw`) and deleting the delta."""
        return self._merged(fresh, None)

    def _merged(self, fresh: np.ndarray, blocks: np.ndarray | None) -> CachedWindow:
        if blocks is None:
            blocks = _join(self._base.low.ravel(), self._base.high.ravel())
        every = np.concatenate((blocks, self._extra[:-1], fresh))
        every.sort(kind="stable")  # three sorted runs: a merge, not a full sort
        base = _Base(encode_base(every), every)
        return CachedWindow(base, np.concatenate((base.tail, _ONE_PAD)), 0)

    def _find(
        self, offsets: np.ndarray, words: Words | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(whether each offset is in the window, its full blocks decoded if that was the
        cheaper way to look)."""
        base, blocks = self._base, None
        if not len(base.low):
            found = np.zeros(len(offsets), bool)
        elif len(offsets) * BLOCK > base.size:
            # More look-ups than blocks (a shard in time order): comparing a block for
            # each would cost more than decoding the blocks once.
            blocks = _join(base.low.ravel(), base.high.ravel())
            at = blocks.searchsorted(offsets)
            np.minimum(at, len(blocks) - 1, out=at)
            found = blocks.take(at) == offsets
        else:
            low, high = split_words(offsets) if words is None else words
            block = base.fence.searchsorted(offsets, "right")  # the last block starting <= it
            same = base.low.take(block, axis=0) == low
            same &= base.high.take(block, axis=0) == high
            found = _ANY(same, axis=1)
        if len(self._extra) > 1:
            found |= self._extra.take(self._extra.searchsorted(offsets)) == offsets
        return found, blocks


def _join(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Offsets from their low words and high bytes."""
    out = high.astype(np.uint64)
    out <<= np.uint64(32)
    out |= low
    return out


class WindowCache:
    """Windows by number, least recently used evicted first, at most `max_bytes` in all.

    Every cached window of a group is valid at the same version of the group, `version()`;
    a window filed under another version replaces the group's (and drops its other
    windows) when it is newer, and is not kept when it is older.
    """

    def __init__(self, max_bytes: int, group_bits: int):
        if max_bytes < 0:
            raise ValueError("the cache size is a number of bytes, at least 0")
        self.max_bytes = max_bytes
        self.nbytes = 0
        self._group_bits = group_bits
        self._windows: OrderedDict[int, CachedWindow] = OrderedDict()
        self._groups: dict[int, list[int]] = {}  # group -> [version, cached windows]

    def __len__(self) -> int:
        return len(self._windows)

    def __contains__(self, window: int) -> bool:
        return window in self._windows

    def version(self, group: int) -> int | None:
        """The version the group's cached windows are valid at (None: none cached)."""
        entry = self._groups.get(group)
        return None if entry is None else entry[0]

    def get(self, window: int) -> CachedWindow | None:
        entry = self._windows.get(window)
        if entry is not None:
            self._windows.move_to_end(window)
        return entry

    def put(self, window: int, entry: CachedWindow, version: int) -> None:
        group = window >> self._group_bits
        known = self._groups.get(group)
        if known is not None and known[0] != version:
            if known[0] > version:
                return  # older than what is cached
            self.drop_group(group)
        self.drop(window)
        if entry.nbytes > self.max_bytes:
            return  # larger than the whole cache: not kept
        known = self._groups.get(group)  # (the drop may have emptied the group)
        if known is None:
            known = self._groups[group] = [version, 0]
        known[1] += 1
        self._windows[window] = entry
        self.nbytes += entry.nbytes
        while self.nbytes > self.max_bytes:
            self.drop(next(iter(self._windows)))

    def advance(self, group: int, before: int, after: int) -> None:
        """The group went from `before` to `after` by this client's own write: its cached
        windows are still valid, except those the write changed (the caller puts them)."""
        known = self._groups.get(group)
        if known is None:
            return
        if known[0] == before:
            known[0] = after
        else:
            self.drop_group(group)

    def drop(self, window: int) -> None:
        entry = self._windows.pop(window, None)
        if entry is None:
            return
        self.nbytes -= entry.nbytes
        group = window >> self._group_bits
        known = self._groups[group]
        known[1] -= 1
        if known[1] == 0:
            del self._groups[group]

    def drop_group(self, group: int) -> None:
        first = group << self._group_bits
        for window in range(first, first + (1 << self._group_bits)):
            self.drop(window)
        self._groups.pop(group, None)

    def clear(self) -> None:
        self._windows.clear()
        self._groups.clear()
        self.nbytes = 0
