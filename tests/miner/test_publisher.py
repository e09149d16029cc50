"""Publishing through the real SDK over the dev chain, into real directories."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import bittensor as bt
import pytest

from d3.chain.sdk import SdkChain
from d3.commitment import decode_commitment
from d3.dev.chain_state import SubnetParams
from d3.dev.substrate import DevSubstrate
from d3.dev.synthetic import synthetic_records
from d3.dev.wallets import dev_wallet
from d3.manifest import parse_manifest
from d3.miner.hosts import HostError, LocalDirHost
from d3.miner.publisher import Publisher, PublishError
from d3.miner.store import TweetStore

NETUID = 4


@pytest.fixture
def world(tmp_path):
    dev = DevSubstrate(tmp_path / "chain.sqlite")
    owner = dev_wallet(tmp_path / "w", "owner")
    dev.create_subnet(
        NETUID, owner.hotkey.ss58_address, owner.coldkeypub.ss58_address, SubnetParams()
    )
    host_dir = Path(tempfile.mkdtemp(prefix="d3p"))
    yield dev, dev_wallet(tmp_path / "w", "miner"), host_dir, tmp_path
    shutil.rmtree(host_dir, ignore_errors=True)


class WatchedHost(LocalDirHost):
    """A real directory host that notes, at each upload, whether the chain already shows the
    commitment, and can be made to fail."""

    def __init__(self, directory, chain: SdkChain):
        super().__init__(directory)
        self.chain = chain
        self.uploads: list[tuple[str, set[str]]] = []  # (file, manifests committed by then)
        self.fail_uploads = False

    async def upload(self, name: str, data: bytes) -> None:
        if self.fail_uploads:
            raise HostError("disk on fire", transient=False)
        records = await self.chain.commitments()
        mine = [r for r in records if r.hotkey == self.chain.hotkey]
        self.uploads.append((name, {decode_commitment(r.data).manifest_sha256 for r in mine}))
        await super().upload(name, data)


def test_commit_first_then_upload_and_restart_without_double_publishing(world):
    dev, wallet, host_dir, tmp = world
    store = TweetStore(tmp / "store.sqlite")
    store.add(synthetic_records(250, seed=1))

    async def body():
        async with bt.Subtensor("local", substrate=dev) as client:
            chain = SdkChain(client, wallet, NETUID)
            assert (await chain.register()).ok
            host = WatchedHost(host_dir, chain)
            publisher = Publisher(
                store, host, chain, wallet.hotkey, NETUID, tmp / "staging", shard_rows=100
            )
            host.fail_uploads = True  # the commit lands, then the "process dies" mid-upload
            with pytest.raises(PublishError, match="disk on fire"):
                await publisher.publish_once()
            [first_commit] = await chain.commitments()
            assert list(host_dir.iterdir()) == []  # nothing visible yet
            host.fail_uploads = False
            restarted = Publisher(
                store, host, chain, wallet.hotkey, NETUID, tmp / "staging", shard_rows=100
            )
            published = await restarted.publish_once()
            [after] = await chain.commitments()
            nothing = await restarted.publish_once()
            store.add(synthetic_records(50, seed=2))
            second = await restarted.publish_once()
            return first_commit, published, after, nothing, second, host

    first_commit, published, after, nothing, second, host = asyncio.run(body())
    # The same manifest, not re-signed:
    assert decode_commitment(first_commit.data).manifest_sha256 == published.manifest_sha256
    assert after.block == first_commit.block  # not committed twice
    assert published.rows == 250 and published.shards == 3
    assert nothing is None
    assert len(host.uploads) == 4 + 2
    for name, committed in host.uploads:  # every file's manifest was on chain before it
        listed = set()
        for sha in committed:
            m = parse_manifest((host_dir / f"{sha}.json").read_bytes())
            listed |= {f"{sha}.json", *(f"{r.sha256}.parquet" for r in m.body.shards)}
        assert name in listed, name
    manifest = parse_manifest((host_dir / f"{second.manifest_sha256}.json").read_bytes())
    assert manifest.body.parent == published.manifest_sha256 and manifest.body.rows == 50
    assert store.unpublished_count() == 0


def test_commit_refused_keeps_the_batch_pending(world):
    dev, wallet, host_dir, tmp = world
    store = TweetStore(tmp / "store.sqlite")
    store.add(synthetic_records(20, seed=3))

    async def body():
        async with bt.Subtensor("local", substrate=dev) as client:
            chain = SdkChain(client, wallet, NETUID)  # not registered
            publisher = Publisher(
                store, LocalDirHost(host_dir), chain, wallet.hotkey, NETUID, tmp / "st"
            )
            with pytest.raises(PublishError, match="not registered"):
                await publisher.publish_once()
            assert store.pending_batches() and list(host_dir.iterdir()) == []
            assert (await chain.register()).ok
            return await publisher.publish_once()

    published = asyncio.run(body())
    assert published.rows == 20 and store.pending_batches() == []
