from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import bittensor as bt
import pytest

from d3.chain.interface import ChainVerdict
from d3.chain.sdk import SdkChain
from d3.dev.chain_state import SubnetParams
from d3.dev.wallets import dev_wallet
from tests.chain.support import (
    AXON,
    COMMITS,
    CR_NETUID,
    NETUID,
    TEMPO,
    WEIGHTS,
    RecordingSubstrate,
)


@dataclass
class World:
    """A dev chain populated through the project's own chain layer over the real SDK, with
    every read the SDK made and every call it composed on the way."""

    dev: RecordingSubstrate
    hotkeys: dict[str, str]
    verdicts: dict[str, ChainVerdict] = field(default_factory=dict)


async def _populate(world: World, wallets: dict[str, bt.Wallet]) -> None:
    dev = world.dev
    async with bt.Subtensor("local", substrate=dev) as client:
        plain = {name: SdkChain(client, wallets[name], NETUID) for name in COMMITS}
        timelocked = {name: SdkChain(client, wallets[name], CR_NETUID) for name in ("alice", "bob")}
        for name, chain in plain.items():
            world.verdicts[f"register {name}"] = await chain.register()
        for name, chain in timelocked.items():
            world.verdicts[f"register {name} cr"] = await chain.register()
        dev.set_stake(world.hotkeys["alice"], 10**12)
        dev.advance(TEMPO)  # permits are assigned at the epoch
        for name, data in COMMITS.items():
            world.verdicts[f"commit {name}"] = await plain[name].commit(data.decode())
        alice = plain["alice"]
        world.verdicts["set_weights"] = await alice.set_weights(WEIGHTS, version_key=0)
        world.verdicts["set_weights cr"] = await timelocked["alice"].set_weights(
            WEIGHTS, version_key=0
        )
        served = await client.execute(
            bt.ServeAxon(netuid=NETUID, ip=AXON[0], port=AXON[1]), wallets["alice"]
        )
        world.verdicts["serve_axon"] = ChainVerdict(served.success, served.message)
        # The reads the project makes, and the SDK's own around them.
        head = await alice.block()
        await alice.metagraph()
        await timelocked["bob"].metagraph()
        await alice.commitments()
        await alice.commitment_of(world.hotkeys["alice"], head)
        await alice.commitment_of(world.hotkeys["owner"], head)  # never committed
        await alice.block_timestamp_ms(head)
        await alice.blocks_until_weights_allowed()
        await client.weights.weights(NETUID)
        await client.subnets.metagraph(NETUID)


@pytest.fixture(scope="package")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("conformance")
    wallets = {name: dev_wallet(root / "wallets", name) for name in ("owner", *COMMITS)}
    dev = RecordingSubstrate(root / "chain.sqlite")
    owner = wallets["owner"]
    for netuid, commit_reveal in ((NETUID, False), (CR_NETUID, True)):
        dev.create_subnet(
            netuid,
            owner.hotkey.ss58_address,
            owner.coldkeypub.ss58_address,
            SubnetParams(tempo=TEMPO, weights_rate_limit=1, commit_reveal=commit_reveal),
        )
    world = World(dev, {name: w.hotkey.ss58_address for name, w in wallets.items()})
    asyncio.run(_populate(world, wallets))
    dev.recording = False  # what the tests read themselves is not what the SDK read
    return world
