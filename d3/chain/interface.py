"""What the neurons need from the chain, and nothing more.

Neurons depend on this protocol, not on the SDK, so a miner or validator can be tested
against any chain (the dev substrate through the real SDK, in practice) and the SDK can
change underneath without touching them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from d3.chain.weights import WeightRules


@dataclass(frozen=True)
class Neuron:
    uid: int
    hotkey: str
    coldkey: str
    stake: float  # in the subnet's alpha units
    validator_permit: bool
    registered_block: int


@dataclass(frozen=True)
class MetagraphSnapshot:
    netuid: int
    block: int
    neurons: tuple[Neuron, ...]

    def uid_of(self, hotkey: str) -> int | None:
        for neuron in self.neurons:
            if neuron.hotkey == hotkey:
                return neuron.uid
        return None

    @property
    def hotkeys(self) -> list[str]:
        return [n.hotkey for n in self.neurons]


@dataclass(frozen=True)
class CommitmentRecord:
    """A hotkey's latest commitment: its raw text and the block it landed in."""

    hotkey: str
    block: int
    data: str
    uid: int | None  # None when the hotkey is no longer registered


class SubnetNotFound(Exception):
    """The configured netuid has no subnet on this chain: no round can ever succeed."""


class ChainUnreachable(Exception):
    """No endpoint answered within the start-up deadline."""


class HistoryUnavailable(Exception):
    """A read of an old block that the endpoint no longer has (pruned state, no archive)."""


@dataclass(frozen=True)
class ChainVerdict:
    """The chain's answer to a write. `code` is the SDK's error code (e.g. RATE_LIMITED)."""

    ok: bool
    message: str
    code: str | None = None
    block: int | None = None


class Chain(Protocol):
    netuid: int
    hotkey: str

    async def block(self) -> int: ...

    async def finalized_block(self) -> int: ...

    async def block_hash(self, block: int) -> str | None: ...

    async def metagraph(self, block: int | None = None) -> MetagraphSnapshot: ...

    async def commitments(self, block: int | None = None) -> list[CommitmentRecord]: ...

    async def commitment_of(self, hotkey: str, block: int) -> CommitmentRecord | None:
        """`hotkey`'s latest commitment as of `block`: read at `record.block - 1` for the one
        before it. Raises HistoryUnavailable when the endpoint has pruned that block."""
        ...

    async def block_timestamp_ms(self, block: int) -> int: ...

    async def commit(self, data: str) -> ChainVerdict: ...

    async def set_weights(self, weights: Mapping[int, float], version_key: int) -> ChainVerdict: ...

    async def blocks_until_weights_allowed(self) -> int: ...

    async def reveal_outcome(self) -> ChainVerdict | None:
        """Once the chain has revealed (or dropped) the last timelocked weight commit: whether
        its weights landed. None while it waits or when there is nothing to confirm."""
        ...

    async def register(self) -> ChainVerdict: ...

    async def weight_rules(self) -> WeightRules | None:
        """The runtime's weight rules for this hotkey now (None: not registered)."""
        ...

    async def weights_of(self, uid: int) -> dict[int, int] | None:
        """The `Weights` row `uid` has set on chain: target uid -> raw u16 weight."""
        ...

    @property
    def pending_reveal_block(self) -> int | None:
        """The block of a timelocked weight commit not yet revealed (None: nothing waits)."""
        ...
