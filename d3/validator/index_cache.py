"""The index's client side: its two window encodings and a bounded cache of windows.

A window's IDs are stored as 40-bit offsets in two strings (d3/validator/index.py has the
layout): the *base*, sorted, as a 4-byte little-endian column then a 1-byte column of the
high bits (5 bytes an ID), and the *delta*, an append-only run of 5-byte big-endian
offsets, each append sorted in itself. Base and delta never share an offset.

The cache keeps, per window, both as sorted numpy arrays, with the version of the
window's group they are valid at (every write to a group increments its version). It is
bounded by bytes and evicts the least recently used window; a miss costs only a refetch,
and a stale entry is caught by the compare-and-set of the write that relies on it.

Note on numpy 2.x: `np.unique` hashes and is slow here; sorted arrays are deduplicated
with a sort and a mask instead.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

OFFSET_BYTES = 5
_EMPTY = np.empty(0, np.uint64)
_BE_SHIFTS = np.array([32, 24, 16, 8, 0], np.uint64)


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """`values` sorted with repeats removed (a new array)."""
    out = np.sort(values)
    if len(out) < 2:
        return out
    keep = np.empty(len(out), bool)
    keep[0] = True
    np.not_equal(out[1:], out[:-1], out=keep[1:])
    return out[keep]


def members(sorted_values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """For each query, whether it is in `sorted_values` (a binary search each)."""
    if len(sorted_values) == 0:
        return np.zeros(len(queries), bool)
    at = np.searchsorted(sorted_values, queries)
    np.minimum(at, len(sorted_values) - 1, out=at)
    return sorted_values[at] == queries


def encode_base(offsets: np.ndarray) -> bytes:
    """Sorted offsets (< 2^40) -> low 32 bits column (little-endian) + high 8 bits column."""
    low = (offsets & np.uint64(0xFFFFFFFF)).astype("<u4")
    high = (offsets >> np.uint64(32)).astype(np.uint8)
    return low.tobytes() + high.tobytes()


def decode_base(data: bytes) -> np.ndarray:
    if len(data) % OFFSET_BYTES:
        raise ValueError(f"corrupt index window: {len(data)} bytes is not a multiple of 5")
    n = len(data) // OFFSET_BYTES
    low = np.frombuffer(data, "<u4", n, 0)
    high = np.frombuffer(data, np.uint8, n, 4 * n)
    return (high.astype(np.uint64) << np.uint64(32)) | low


def encode_delta(offsets: np.ndarray) -> bytes:
    """Offsets -> 5-byte big-endian each, in the given order."""
    return ((offsets[:, None] >> _BE_SHIFTS) & np.uint64(0xFF)).astype(np.uint8).tobytes()


def decode_delta(data: bytes) -> np.ndarray:
    """A delta string -> its offsets, sorted."""
    if len(data) % OFFSET_BYTES:
        raise ValueError(f"corrupt index delta: {len(data)} bytes is not a multiple of 5")
    rows = np.frombuffer(data, np.uint8).reshape(-1, OFFSET_BYTES).astype(np.uint64)
    return np.sort((rows << _BE_SHIFTS).sum(axis=1, dtype=np.uint64))


@dataclass(frozen=True)
class CachedWindow:
    """One window as this client last saw it, at `version` of its group: sorted offsets."""

    base: np.ndarray
    delta: np.ndarray
    version: int  # the group's version these contents are valid at

    @classmethod
    def from_stored(cls, base: bytes | None, delta: bytes | None, version: int) -> CachedWindow:
        return cls(decode_base(base or b""), decode_delta(delta or b""), version)

    @property
    def size(self) -> int:
        return len(self.base) + len(self.delta)

    @property
    def nbytes(self) -> int:
        return self.base.nbytes + self.delta.nbytes

    def contains(self, offsets: np.ndarray) -> np.ndarray:
        found = members(self.base, offsets)
        if len(self.delta):
            found |= members(self.delta, offsets)
        return found

    def appended(self, fresh: np.ndarray, version: int) -> CachedWindow:
        """After APPENDing the sorted `fresh` offsets to the delta."""
        delta = np.concatenate((self.delta, fresh))
        delta.sort(kind="stable")  # two sorted runs: a merge
        return CachedWindow(self.base, delta, version)

    def merged(self, fresh: np.ndarray, version: int) -> CachedWindow:
        """After SETting base + delta + `fresh` as the new base and deleting the delta."""
        merged = np.concatenate((self.base, self.delta, fresh))
        merged.sort(kind="stable")  # three sorted runs: a merge, not a full sort
        return CachedWindow(merged, _EMPTY, version)

    def at(self, version: int) -> CachedWindow:
        """The same contents, known to be valid at a later `version` of the group."""
        return CachedWindow(self.base, self.delta, version)


class WindowCache:
    """Windows by number, least recently used evicted first, at most `max_bytes` of arrays."""

    def __init__(self, max_bytes: int):
        if max_bytes < 0:
            raise ValueError("the cache size is a number of bytes, at least 0")
        self.max_bytes = max_bytes
        self.nbytes = 0
        self._windows: OrderedDict[int, CachedWindow] = OrderedDict()

    def peek(self, window: int) -> CachedWindow | None:
        """The entry, without making it the most recently used."""
        return self._windows.get(window)

    def __len__(self) -> int:
        return len(self._windows)

    def __contains__(self, window: int) -> bool:
        return window in self._windows

    def get(self, window: int) -> CachedWindow | None:
        entry = self._windows.get(window)
        if entry is not None:
            self._windows.move_to_end(window)
        return entry

    def put(self, window: int, entry: CachedWindow) -> None:
        self.drop(window)
        if entry.nbytes > self.max_bytes:
            return  # larger than the whole cache: not kept
        self._windows[window] = entry
        self.nbytes += entry.nbytes
        while self.nbytes > self.max_bytes:
            _, evicted = self._windows.popitem(last=False)
            self.nbytes -= evicted.nbytes

    def drop(self, window: int) -> None:
        entry = self._windows.pop(window, None)
        if entry is not None:
            self.nbytes -= entry.nbytes

    def clear(self) -> None:
        self._windows.clear()
        self.nbytes = 0
