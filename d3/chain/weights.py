"""What the chain checks of a weight-set, checked by the validator before it commits.

On a commit-reveal subnet (the runtime's default) the chain runs its weight checks only at
the reveal, an epoch later, and a failure there is silent: the commit was "included", the
old weights stay, and nobody is told. So the validator reads the same rules first
(`WeightRules`), refuses to commit what the reveal would drop, pads to the subnet's
`MinAllowedWeights`, and after the reveal confirms from `Weights` that its row landed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bittensor.intents.weights import clip_to_max_weight, normalize

U16_MAX = 65535


@dataclass(frozen=True)
class WeightRules:
    """The runtime's weight rules for one validator, read at one block."""

    uid: int
    n_uids: int
    commit_reveal: bool
    min_allowed_weights: int
    max_weights_limit: int  # u16: the largest weight may be at most this / 65535 of the sum
    required_version: int  # WeightsVersionKey; 0 means any
    stake_threshold: int  # StakeThreshold, rao
    stake: int  # this hotkey's stake, rao
    permit: bool
    owner: bool  # the subnet owner's hotkey is exempt from the stake and permit rules

    def refusal(self, version_key: int) -> str | None:
        """Why the chain would refuse these weights (None: it would not)."""
        if not self.owner and self.stake < self.stake_threshold:
            return (
                f"stake {self.stake} rao is below the chain's StakeThreshold "
                f"{self.stake_threshold} rao"
            )
        if self.required_version and version_key < self.required_version:
            return (
                f"version key {version_key} is older than the subnet's WeightsVersionKey "
                f"{self.required_version}: update the validator"
            )
        if not self.owner and not self.permit:
            return (
                f"uid {self.uid} holds no validator permit (permits go to the top stakes "
                "at each epoch)"
            )
        return None

    def padded(self, weights: Mapping[int, float]) -> dict[int, float]:
        """`weights` plus the smallest weight the chain keeps (1 of 65535 of the top) on the
        lowest other uids, until `min(n_uids, MinAllowedWeights)` uids have one: the chain
        refuses fewer, and the SDK refuses them before sending."""
        out = {uid: w for uid, w in weights.items() if w > 0}
        needed = min(self.n_uids, self.min_allowed_weights)
        if not out or len(out) >= needed:
            return out
        filler = max(out.values()) / U16_MAX
        for uid in range(self.n_uids):
            if len(out) >= needed:
                break
            if uid not in out and uid != self.uid:
                out[uid] = filler
        return out

    def expected_row(self, weights: Mapping[int, float]) -> list[tuple[int, int]]:
        """The u16 row the chain stores for `weights` (the SDK's clip and quantisation)."""
        uids = sorted(weights)
        values = [weights[u] for u in uids]
        if self.max_weights_limit < U16_MAX and uids != [self.uid]:
            values = clip_to_max_weight(values, self.max_weights_limit / U16_MAX)
        return list(zip(*normalize(uids, values), strict=True))


def same_row(stored: list[tuple[int, int]], expected: list[tuple[int, int]]) -> bool:
    """The chain max-upscales what it stores; a value may differ by rounding alone."""
    if [u for u, _ in stored] != [u for u, _ in expected]:
        return False
    return all(abs(a - b) <= 1 for (_, a), (_, b) in zip(stored, expected, strict=True))
