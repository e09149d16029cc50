"""The chain layer through the real bittensor SDK over the dev substrate."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import bittensor as bt
import pytest

from d3.chain.sdk import SdkChain, open_chain
from d3.config import SubtensorConfig
from d3.dev.chain_state import SubnetParams
from d3.dev.substrate import DevSubstrate
from d3.dev.wallets import dev_wallet

NETUID = 2


@pytest.fixture
def chain_file(tmp_path):
    return tmp_path / "chain.sqlite"


@pytest.fixture
def wallets(tmp_path):
    return {
        name: dev_wallet(tmp_path / "wallets", name) for name in ("owner", "alice", "bob", "carol")
    }


@pytest.fixture
def dev(chain_file, wallets):
    substrate = DevSubstrate(chain_file)
    owner = wallets["owner"]
    substrate.create_subnet(
        NETUID,
        owner.hotkey.ss58_address,
        owner.coldkeypub.ss58_address,
        SubnetParams(weights_rate_limit=5, max_uids=3, tempo=100),
    )
    return substrate


def run(coro):
    return asyncio.run(coro)


async def _with_chains(dev, wallets, names, body):
    async with bt.Subtensor("local", substrate=dev) as client:
        chains = [SdkChain(client, wallets[n], NETUID) for n in names]
        return await body(*chains)


def test_commit_reads_back_with_its_block(dev, wallets):
    async def body(alice, bob):
        assert (await alice.register()).ok
        verdict = await alice.commit("d3.1:first")
        assert verdict.ok and verdict.block == await alice.block()
        first_block = verdict.block
        dev.advance(3)
        later = await alice.commit("d3.1:second")
        assert later.ok and later.block == first_block + 4
        records = await bob.commitments()
        assert [(r.hotkey, r.block, r.data, r.uid) for r in records] == [
            (alice.hotkey, later.block, "d3.1:second", 0)
        ]
        # A read pinned before the second commit sees the first.
        pinned = await bob.commitments(block=first_block)
        assert [(r.block, r.data) for r in pinned] == [(first_block, "d3.1:first")]

    run(_with_chains(dev, wallets, ["alice", "bob"], body))


def test_unregistered_hotkey_is_refused(dev, wallets):
    async def body(bob):
        verdict = await bob.commit("d3.1:x")
        assert not verdict.ok and verdict.code == "not_registered"
        weights = await bob.set_weights({0: 1.0}, version_key=0)
        assert not weights.ok and weights.code == "not_registered"
        assert await bob.commitments() == []

    run(_with_chains(dev, wallets, ["bob"], body))


def test_chain_itself_refuses_commits_from_unregistered_hotkeys(dev, wallets):
    """Bypassing our preflight, the extrinsic is still refused by the chain."""

    async def body():
        async with bt.Subtensor("local", substrate=dev) as client:
            call = bt.calls.Commitments.set_commitment(
                netuid=NETUID, info={"fields": [[{"Raw2": b"hi"}]]}
            )
            return await client.submit_call(call, wallets["bob"], signer="hotkey")

    result = run(body())
    assert not result.success and result.error.name == "AccountNotAllowedCommit"


def test_commit_byte_budget_per_tempo(dev, wallets):
    async def body(alice):
        assert (await alice.register()).ok
        verdicts = [await alice.commit(f"d3.1:{i}") for i in range(32)]
        # 3100 bytes per tempo at a minimum charge of 100 bytes: 31 commits fit.
        assert [v.ok for v in verdicts].count(True) == 31
        assert "SpaceLimitExceeded" in verdicts[-1].message
        dev.advance(100)
        assert (await alice.commit("d3.1:next-tempo")).ok

    run(_with_chains(dev, wallets, ["alice"], body))


def test_weights_visible_and_rate_limited(dev, wallets):
    """The plain path (commit-reveal off): weights apply in their block."""
    owner = wallets["owner"]
    plain = SubnetParams(weights_rate_limit=5, max_uids=3, tempo=100, commit_reveal=False)
    dev.create_subnet(NETUID, owner.hotkey.ss58_address, owner.coldkeypub.ss58_address, plain)

    async def body(alice, bob, carol):
        for chain in (alice, bob, carol):
            assert (await chain.register()).ok
        dev.set_stake(alice.hotkey, 10**12)
        graph = await alice.metagraph()
        assert not any(n.validator_permit for n in graph.neurons)  # permits come per epoch
        dev.next_epoch(NETUID)
        graph = await alice.metagraph()
        assert [n.validator_permit for n in graph.neurons] == [True, False, False]
        first = await alice.set_weights({1: 0.75, 2: 0.25}, version_key=0)
        assert first.ok, first.message
        async with bt.Subtensor("local", substrate=dev) as reader:
            matrix = await reader.weights.weights(NETUID)
        assert matrix[0] == pytest.approx({1: 0.75, 2: 0.25}, abs=1e-4)
        # Within the rate limit: refused by the SDK's own preflight and reported.
        second = await alice.set_weights({1: 0.5, 2: 0.5}, version_key=0)
        assert not second.ok and second.code == "rate_limited"
        assert "rate limit is 5 blocks" in second.message
        assert await alice.blocks_until_weights_allowed() == 5
        dev.advance(5)
        assert await alice.blocks_until_weights_allowed() == 0
        assert (await alice.set_weights({1: 0.5, 2: 0.5}, version_key=0)).ok
        # Without a validator permit the validator does not even send them.
        refused = await bob.set_weights({0: 1.0}, version_key=0)
        assert not refused.ok and refused.code == "refused" and "permit" in refused.message

    run(_with_chains(dev, wallets, ["alice", "bob", "carol"], body))


def test_full_subnet_replaces_the_lowest_stake_neuron(dev, wallets, tmp_path):
    extra = dev_wallet(tmp_path / "wallets", "dave")
    wallets = {**wallets, "dave": extra}

    async def body(alice, bob, carol, dave):
        for chain in (alice, bob, carol):
            assert (await chain.register()).ok
        dev.set_stake(alice.hotkey, 10**12)
        dev.set_stake(carol.hotkey, 10**9)
        assert (await bob.commit("d3.1:bob")).ok
        assert (await dave.register()).ok
        graph = await alice.metagraph()
        assert graph.hotkeys == [alice.hotkey, dave.hotkey, carol.hotkey]
        assert graph.neurons[1].registered_block == await alice.block()
        [bob_record] = [r for r in await alice.commitments() if r.hotkey == bob.hotkey]
        assert bob_record.uid is None

    run(_with_chains(dev, wallets, ["alice", "bob", "carol", "dave"], body))


def test_axon_and_block_hashes(dev, wallets):
    async def body():
        async with bt.Subtensor("local", substrate=dev) as client:
            alice = SdkChain(client, wallets["alice"], NETUID)
            assert (await alice.register()).ok
            result = await client.execute(
                bt.ServeAxon(netuid=NETUID, ip="127.0.0.1", port=8091), wallets["alice"]
            )
            assert result.success, result.message
            graph = await client.subnets.metagraph(NETUID)
            assert graph.neurons[0].axon == "127.0.0.1:8091"
            head = await alice.block()
            hashes = {await alice.block_hash(b) for b in range(1, head + 1)}
            assert len(hashes) == head and all(h.startswith("0x") and len(h) == 66 for h in hashes)
            assert await alice.block_hash(head) == await alice.block_hash(head)

    run(body())


def test_timed_clock_advances_and_writes_wait_for_inclusion(dev, wallets):
    dev.set_block_time(0.2)

    async def body(alice):
        start = await alice.block()
        verdict = await alice.register()
        assert verdict.ok and verdict.block == start + 1
        assert await alice.block() >= verdict.block
        await asyncio.sleep(0.5)
        assert await alice.block() >= start + 3

    run(_with_chains(dev, wallets, ["alice"], body))


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from d3.chain.sdk import open_chain
    from d3.config import SubtensorConfig
    from d3.dev.wallets import dev_wallet

    async def main(chain_file, wallets_dir, name, netuid):
        wallet = dev_wallet(wallets_dir, name)
        config = SubtensorConfig(network="dev:" + chain_file)
        async with open_chain(config, wallet, int(netuid)) as chain:
            assert (await chain.register()).ok
            verdict = await chain.commit("d3.1:from-" + name)
            print(verdict.ok, verdict.block)

    asyncio.run(main(*sys.argv[1:]))
    """
)


def test_dev_chain_is_shared_between_processes(dev, chain_file, tmp_path, wallets):
    args = [str(chain_file), str(tmp_path / "wallets")]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, *args, name, str(NETUID)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("alice", "bob")
    ]
    outputs = [child.communicate(timeout=120) for child in children]
    for child, (out, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err
        assert out.startswith("True")

    async def body():
        async with open_chain(
            SubtensorConfig(network=f"dev:{chain_file}"), wallets["carol"], NETUID
        ) as chain:
            return await chain.commitments(), await chain.metagraph()

    records, graph = run(body())
    assert sorted(r.data for r in records) == ["d3.1:from-alice", "d3.1:from-bob"]
    assert sorted(graph.hotkeys) == sorted(
        [wallets["alice"].hotkey.ss58_address, wallets["bob"].hotkey.ss58_address]
    )
    # Commit blocks are distinct: every write sealed its own block.
    assert len({r.block for r in records}) == 2


def test_open_chain_refuses_unknown_networks():
    with pytest.raises(ValueError, match="dev:PATH"):
        SubtensorConfig(network="mainnet")


def test_commitment_history_reads_back_through_block_minus_one(dev, wallets):
    """CommitmentOf holds only the latest; pinned at `block - 1` it gives the one before."""

    async def body(alice):
        assert (await alice.register()).ok
        blocks = []
        for i in range(3):
            verdict = await alice.commit(f"d3.1:{i}".ljust(100, "x"))
            assert verdict.ok
            blocks.append(verdict.block)
            dev.advance(3)
        head = await alice.block()
        seen, record = [], await alice.commitment_of(alice.hotkey, head)
        while record is not None:
            seen.append((record.block, record.data[:5]))
            record = await alice.commitment_of(alice.hotkey, record.block - 1)
        stamps = [await alice.block_timestamp_ms(b) for b in blocks]
        return blocks, seen, stamps

    blocks, seen, stamps = run(_with_chains(dev, wallets, ["alice"], body))
    assert seen == [(blocks[2], "d3.1:"), (blocks[1], "d3.1:"), (blocks[0], "d3.1:")]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3


def test_a_pruned_block_is_one_clear_error_naming_the_archive_flag(dev, wallets):
    from bittensor import ChainError

    from d3.chain.interface import HistoryUnavailable

    async def body(alice):
        async def pruned(*args, **kwargs):
            raise ChainError("State discarded for 0xabc. This indicates the block is too old")

        alice.client.identity.commitment = pruned
        alice.client.chain.timestamp = pruned
        with pytest.raises(HistoryUnavailable) as first:
            await alice.commitment_of(alice.hotkey, 5)
        with pytest.raises(HistoryUnavailable) as second:
            await alice.block_timestamp_ms(5)
        return str(first.value), str(second.value)

    first, second = run(_with_chains(dev, wallets, ["alice"], body))
    for message in (first, second):
        assert message.startswith("block 5 is not available") and "\n" not in message
        assert "--subtensor.archive_endpoints" in message


class _Wrapped:
    """The dev substrate with one method replaced (everything else is the real one)."""

    def __init__(self, inner, **replaced):
        self._inner, self._replaced = inner, replaced

    def __getattr__(self, name):
        return self._replaced.get(name) or getattr(self._inner, name)


def test_a_write_that_never_finalizes_is_a_timeout_verdict(dev, wallets):
    async def never(*args, **kwargs):
        await asyncio.Event().wait()  # finality stalled: the watch never returns

    async def body():
        async with bt.Subtensor("local", substrate=dev) as client:
            alice = SdkChain(client, wallets["alice"], NETUID)
            assert (await alice.register()).ok
        stalled = _Wrapped(dev, submit=never)
        async with bt.Subtensor("local", substrate=stalled) as client:
            alice = SdkChain(client, wallets["alice"], NETUID, write_timeout_s=0.3)
            return await alice.commit("d3.1:stalled".ljust(100, "x"))

    verdict = run(body())
    assert not verdict.ok and verdict.code == "timeout"
    assert verdict.message == "commit: not finalized within 0.3s (it may still land)"


def test_an_sdk_that_does_not_understand_the_runtime_gives_a_verdict_not_a_crash(dev, wallets):
    """The SetWeights preflight reads storage the runtime may not have; the codec then
    raises a plain ValueError before any RPC."""

    async def body():
        async with bt.Subtensor("local", substrate=dev) as client:
            alice = SdkChain(client, wallets["alice"], NETUID)
            assert (await alice.register()).ok
            dev.set_stake(alice.hotkey, 10**12)
            dev.next_epoch(NETUID)
        async with bt.Subtensor("local", substrate=_without_epoch_consensus(dev)) as client:
            alice = SdkChain(client, wallets["alice"], NETUID)
            return await alice.set_weights({0: 1.0}, version_key=0)

    verdict = run(body())
    assert not verdict.ok and verdict.code == "sdk_error"
    assert "SubnetEpochConsensus" in verdict.message and "\n" not in verdict.message


def _without_epoch_consensus(dev) -> _Wrapped:
    """The dev chain as a runtime whose metadata lacks `SubnetEpochConsensus` (spec 461),
    which the pinned SDK's SetWeights preflight reads: its codec raises before any RPC."""
    real_query = dev.query

    async def skewed(module, name, params=None, block_hash=None):
        if name == "SubnetEpochConsensus":
            raise ValueError("Storage function SubnetEpochConsensus not found")
        return await real_query(module, name, params, block_hash)

    return _Wrapped(dev, query=skewed)


def test_seed_hashes_come_only_from_finalized_blocks(dev, wallets):
    async def behind():
        return await dev.block_number() - 3

    async def body():
        dev.advance(10)
        async with bt.Subtensor(
            "local", substrate=_Wrapped(dev, finalized_block_number=behind)
        ) as client:
            alice = SdkChain(client, wallets["alice"], NETUID)
            head = await alice.block()
            return head, await alice.block_hash(head - 3), await alice.block_hash(head - 2)

    head, final, not_final = run(body())
    assert final == dev.state.block_hash(head - 3)
    assert not_final is None


def test_start_up_probe_names_what_the_runtime_lacks(dev, wallets):
    """Run before the first round: an SDK whose reads the runtime does not serve is one
    line at start-up, not a failed weight-set every round."""

    async def body():
        async with bt.Subtensor("local", substrate=dev) as client:
            alice = SdkChain(client, wallets["alice"], NETUID)
            assert (await alice.register()).ok
            healthy = await alice.runtime_skew(weights=True)
        async with bt.Subtensor("local", substrate=_without_epoch_consensus(dev)) as client:
            alice = SdkChain(client, wallets["alice"], NETUID)
            return healthy, await alice.runtime_skew(False), await alice.runtime_skew(True)

    healthy, as_miner, as_validator = run(body())
    assert healthy is None and as_miner is None  # a miner does not read it
    assert "SubtensorModule.SubnetEpochConsensus" in as_validator and "\n" not in as_validator
    assert bt.__version__ in as_validator
