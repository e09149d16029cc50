"""Helpers for the conformance suite: its two subnets and what is written on them, a dev
substrate that records what the SDK asks of it, and a strict comparison of the dev chain's
answers with what a node's would decode to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from d3.dev.substrate import DevSubstrate

NETUID = 2  # plaintext weights: `set_mechanism_weights`
CR_NETUID = 3  # commit-reveal, as the runtime defaults to: `commit_timelocked_mechanism_weights`
TEMPO = 20
COMMITS = {"alice": b"d3.1:alice", "bob": b"b" * 128, "carol": b""}  # carol: a Raw0 field
WEIGHTS = {0: 0.25, 1: 0.75}
AXON = ("127.0.0.1", 8091)


@dataclass
class Read:
    kind: str  # "query", "query_map" or "runtime_call"
    module: str  # the pallet, or the runtime API
    name: str  # the storage item, or the runtime API method
    params: list
    answer: Any


@dataclass
class Recorded:
    reads: list[Read] = field(default_factory=list)
    calls: list[tuple[str, str, dict]] = field(default_factory=list)


class RecordingSubstrate(DevSubstrate):
    """The dev substrate, noting every read the SDK makes and every call it composes."""

    def __init__(self, path):
        super().__init__(path)
        self.recorded = Recorded()
        self.recording = True

    def _note(self, read: Read) -> None:
        if self.recording:
            self.recorded.reads.append(read)

    async def query(self, module, storage_function, params=None, block_hash=None):
        answer = await super().query(module, storage_function, params, block_hash)
        self._note(Read("query", module, storage_function, list(params or []), answer))
        return answer

    async def query_map(self, module, storage_function, params=None, block_hash=None):
        answer = await super().query_map(module, storage_function, params, block_hash)
        self._note(Read("query_map", module, storage_function, list(params or []), answer))
        return answer

    async def runtime_call(self, api, method, params, block_hash=None):
        answer = await super().runtime_call(api, method, params, block_hash)
        self._note(Read("runtime_call", api, method, list(params), answer))
        return answer

    async def compose(self, call):
        module, function, params = call
        if self.recording:
            self.recorded.calls.append((module, function, dict(params)))
        return await super().compose(call)


def mismatch(ours: Any, real: Any, path: str = "") -> str | None:
    """Where the dev chain's answer differs from what the SDK would receive from a node,
    or None. Strict about types (True is not 1, a tuple is not a list) and dict keys."""
    if isinstance(ours, dict) and isinstance(real, dict):
        if set(ours) != set(real):
            extra, missing = sorted(set(ours) - set(real)), sorted(set(real) - set(ours))
            return f"{path or 'value'}: keys differ (extra {extra}, missing {missing})"
        for key in ours:
            found = mismatch(ours[key], real[key], f"{path}.{key}")
            if found:
                return found
        return None
    if type(ours) is not type(real):
        return f"{path or 'value'}: {type(ours).__name__} {ours!r:.80} != {real!r:.80}"
    if isinstance(ours, list | tuple):
        if len(ours) != len(real):
            return f"{path or 'value'}: length {len(ours)} != {len(real)}"
        for index, (a, b) in enumerate(zip(ours, real, strict=True)):
            found = mismatch(a, b, f"{path}[{index}]")
            if found:
                return found
        return None
    return None if ours == real else f"{path or 'value'}: {ours!r:.80} != {real!r:.80}"
