"""The dev chain's stand-in for drand: the plaintext of timelocked weight commits.

On a commit-reveal subnet the SDK encrypts a validator's weights to a future drand round,
and the runtime applies them when that round's signature lets it decrypt them. Offline
there is no beacon, and nobody can decrypt a drand timelock without one. So a process
that talks to a dev chain installs an escrow (`install`): the SDK encrypts inside one
compiled function, `bittensor_core.get_encrypted_commit_v2`, which `bittensor.intents.weights`
calls through its module attribute `_core`; the escrow wraps that attribute so every
ciphertext it returns is remembered with the plaintext it sealed. The dev chain takes the
plaintext when the commit is submitted (`plaintext_of`), keeps it beside the ciphertext
(never served to readers) and applies it at the reveal with the runtime's checks. The
real encryption still runs, so the call, its reveal round and its ciphertext are exactly
what a real node would receive.

A commit sealed by a process without the escrow has no plaintext, and the dev chain drops
it at its reveal, as the runtime drops a commit it cannot decrypt.

This is the one process-wide hook in the project: the SDK's encryption is process-wide
too. It is installed only on the dev-chain path (`d3.chain.sdk.open_chain` for `dev:`,
tests), and installing it twice is a no-op.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

_REMEMBERED = 4096  # ciphertexts kept; a validator commits at most once per rate limit


@dataclass(frozen=True)
class WeightsPayload:
    """What the runtime decodes from a decrypted commit (its `WeightsTlockPayload`)."""

    hotkey: bytes  # the committer's public key
    uids: tuple[int, ...]
    values: tuple[int, ...]
    version_key: int


class _Escrow:
    def __init__(self, core: Any):
        self._core = core
        self._lock = threading.Lock()
        self._plain: OrderedDict[str, WeightsPayload] = OrderedDict()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._core, name)

    def get_encrypted_commit_v2(self, **kwargs: Any) -> Any:
        commit, reveal_round = self._core.get_encrypted_commit_v2(**kwargs)
        payload = WeightsPayload(
            hotkey=bytes(kwargs["hotkey"]),
            uids=tuple(int(u) for u in kwargs["uids"]),
            values=tuple(int(v) for v in kwargs["weights"]),
            version_key=int(kwargs["version_key"]),
        )
        with self._lock:
            self._plain[_key(commit)] = payload
            while len(self._plain) > _REMEMBERED:
                self._plain.popitem(last=False)
        return commit, reveal_round

    def plaintext_of(self, commit: bytes) -> WeightsPayload | None:
        with self._lock:
            return self._plain.get(_key(commit))


def _key(commit: Any) -> str:
    data = bytes.fromhex(commit.removeprefix("0x")) if isinstance(commit, str) else bytes(commit)
    return hashlib.sha256(data).hexdigest()


def install() -> None:
    """Wrap the SDK's timelock encryption so this process remembers what it sealed."""
    from bittensor.intents import weights

    if not isinstance(weights._core, _Escrow):
        weights._core = _Escrow(weights._core)


def plaintext_of(commit: Any) -> WeightsPayload | None:
    """The plaintext this process sealed into `commit`, if it did (and `install` ran)."""
    from bittensor.intents import weights

    escrow = weights._core
    return escrow.plaintext_of(commit) if isinstance(escrow, _Escrow) else None
