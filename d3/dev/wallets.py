"""Deterministic, unencrypted wallets for dev chains and tests.

The seed comes from the wallet and hotkey names, so a local network that is restarted
gets the same keys, and hence the same uids and commitments, as before. Never use these
for real funds: anyone who knows the names knows the keys.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import bittensor as bt


def dev_wallet(path: str | Path, name: str, hotkey: str = "default") -> bt.Wallet:
    """Load the wallet `name/hotkey` under `path`, creating it first if missing."""
    wallet = bt.Wallet(name, hotkey, path=str(path))
    if not wallet.coldkey_file.exists_on_device():
        seed = hashlib.sha256(f"d3-dev-coldkey:{name}".encode()).hexdigest()
        wallet.regenerate_coldkey(seed=seed, use_password=False, overwrite=True, suppress=True)
    if not wallet.hotkey_file.exists_on_device():
        seed = hashlib.sha256(f"d3-dev-hotkey:{name}/{hotkey}".encode()).hexdigest()
        wallet.regenerate_hotkey(seed=seed, use_password=False, overwrite=True, suppress=True)
    return bt.Wallet(name, hotkey, path=str(path))
