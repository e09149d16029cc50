"""Miners' datasets written the way a miner publishes them, and X as a table of the real
tweets (what a look-up would answer)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from d3.commitment import Commitment, parse_locator
from d3.manifest import Manifest, build_manifest
from d3.record import TweetRecord, table_to_records
from d3.shards import encode_shard
from d3.validator.verifier import LookupAnswer


@dataclass
class Published:
    manifest: Manifest
    commitment: str


def write_dataset(
    directory: Path,
    signer,
    netuid: int,
    tables: list[pa.Table],
    parent: str | None = None,
    locator: str | None = None,
) -> Published:
    directory.mkdir(parents=True, exist_ok=True)
    shards = [encode_shard(t) for t in tables]
    for shard in shards:
        (directory / shard.name).write_bytes(shard.data)
    manifest = build_manifest(signer, netuid, shards, parent, created_at=datetime.now(UTC))
    (directory / manifest.name).write_bytes(manifest.to_bytes())
    text = Commitment(manifest.sha256, parse_locator(locator or f"file://{directory}")).encode()
    return Published(manifest, text)


class TruthLookup:
    """X as a table of the real tweets: what a look-up would answer."""

    def __init__(self, *tables: pa.Table):
        self.truth: dict[int, TweetRecord] = {}
        for table in tables:
            self.add(table)
        self.calls = 0
        self.down = False

    def add(self, table: pa.Table) -> None:
        for record in table_to_records(table):
            self.truth[record.id] = record

    async def __call__(self, ids) -> LookupAnswer:
        self.calls += 1
        if self.down:
            return LookupAnswer(found={}, failed=set(ids))
        found = {i: self.truth[i] for i in ids if i in self.truth}
        return LookupAnswer(found=found, missing={i for i in ids if i not in self.truth})


async def register_and_publish(net, netuid: int, datasets: dict[str, list[pa.Table]]) -> None:
    """Register a staked validator and one miner per dataset on the dev chain, publish each
    miner's tables and commit them; then one block, so the commitments are history."""
    import bittensor as bt

    async with bt.Subtensor("local", substrate=net.dev) as client:
        validator = await net.chain(client, "validator")
        assert (await validator.register()).ok
        net.dev.set_stake(validator.hotkey, 10**12)
        for name, tables in datasets.items():
            chain = await net.chain(client, name)
            assert (await chain.register()).ok
            published = write_dataset(net.data_dir / name, net.wallet(name).hotkey, netuid, tables)
            assert (await chain.commit(published.commitment)).ok
    net.dev.advance(1)
