"""A dev chain with one subnet, wallets made on demand and a short host directory: the
network most neuron, validator, hub and adversarial tests run on (fixture `net`, in
tests/conftest.py)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import bittensor as bt

from d3.chain.sdk import SdkChain
from d3.dev.chain_state import SubnetParams
from d3.dev.substrate import DevSubstrate
from d3.dev.wallets import dev_wallet

NETUID = 3


@dataclass
class Net:
    dev: DevSubstrate
    wallets_dir: Path
    data_dir: Path

    def wallet(self, name: str) -> bt.Wallet:
        return dev_wallet(self.wallets_dir, name)

    async def chain(self, client, name: str) -> SdkChain:
        return SdkChain(client, self.wallet(name), NETUID)


@contextmanager
def dev_net(tmp_path: Path) -> Iterator[Net]:
    dev = DevSubstrate(tmp_path / "chain.sqlite")
    owner = dev_wallet(tmp_path / "wallets", "owner")
    dev.create_subnet(
        NETUID,
        owner.hotkey.ss58_address,
        owner.coldkeypub.ss58_address,
        SubnetParams(weights_rate_limit=2, tempo=100),
    )
    # file:// locators must fit the 128-byte commitment: keep the hosts' paths short.
    hosts = Path(tempfile.mkdtemp(prefix="d3h"))
    try:
        yield Net(dev, tmp_path / "wallets", hosts)
    finally:
        shutil.rmtree(hosts, ignore_errors=True)


def run(coro):
    return asyncio.run(coro)


async def registered(client, net: Net, names) -> dict:
    """name -> chain of each named wallet, registered on the subnet."""
    chains = {n: await net.chain(client, n) for n in names}
    for chain in chains.values():
        assert (await chain.register()).ok
    return chains


def register(net: Net, *names: str) -> dict[str, str]:
    """Register each named wallet on the subnet, for a neuron process to run as; name ->
    its hotkey."""

    async def body() -> dict[str, str]:
        async with bt.Subtensor("local", substrate=net.dev) as client:
            chains = await registered(client, net, names)
        return {name: chain.hotkey for name, chain in chains.items()}

    return run(body())
