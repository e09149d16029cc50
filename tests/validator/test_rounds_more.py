"""Ordering, grace periods, missed commitments, and agreement between validators."""

from __future__ import annotations

import bittensor as bt
import pyarrow as pa
import redis.asyncio as aioredis

from d3.commitment import Commitment, parse_locator
from d3.dev.redis_server import start_redis
from d3.dev.synthetic import synthetic_table
from d3.manifest import build_manifest
from d3.shards import encode_shard
from d3.validator.pipeline import PipelineLimits
from tests.support.datasets import TruthLookup, write_dataset
from tests.support.net import NETUID, registered, run
from tests.support.runner import make_runner


def test_missed_commitments_are_read_from_chain_history(net, redis_url):
    tables = [synthetic_table(400, seed=s) for s in (40, 41, 42)]

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            chains = await registered(client, net, ["validator", "miner"])
            signer = net.wallet("miner").hotkey
            parent = None
            for table in tables:  # three commits; the validator only ever sees the last
                published = write_dataset(net.data_dir / "miner", signer, NETUID, [table], parent)
                assert (await chains["miner"].commit(published.commitment)).ok
                parent = published.manifest.sha256
            net.dev.advance(1)
            runner = make_runner(chains["validator"], redis_url)
            report = await runner.process(await chains["validator"].metagraph())
            again = await runner.process(await chains["validator"].metagraph())
            return report, again, await runner.index.credits()

    report, again, credits = run(body())
    # Each commitment is read from history and judged on its own, at its own block.
    assert report.read == 3 and len(report.accepted) == 3 and report.new_unique == 1200
    assert again.accepted == [] and again.new_unique == 0
    assert sum(credits[net.wallet("miner").hotkey.ss58_address].values()) == 1200


def test_late_upload_waits_then_counts_and_holds_back_later_commits(net, redis_url):
    early = synthetic_table(300, seed=50)
    late_copy = pa.concat_tables([early, synthetic_table(100, seed=51)])

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            chains = await registered(client, net, ["validator", "slow", "fast"])
            slow = net.wallet("slow").hotkey
            # The slow miner commits first but has not uploaded yet.
            shard = encode_shard(early)
            manifest = build_manifest(slow, NETUID, [shard], None)
            directory = net.data_dir / "slow"
            directory.mkdir(parents=True)
            locator = parse_locator(f"file://{directory}")
            assert (await chains["slow"].commit(Commitment(manifest.sha256, locator).encode())).ok
            fast = write_dataset(
                net.data_dir / "fast", net.wallet("fast").hotkey, NETUID, [late_copy]
            )
            assert (await chains["fast"].commit(fast.commitment)).ok
            net.dev.advance(1)
            runner = make_runner(chains["validator"], redis_url)
            first = await runner.process(await chains["validator"].metagraph())
            (directory / shard.name).write_bytes(shard.data)  # the upload lands
            (directory / manifest.name).write_bytes(manifest.to_bytes())
            second = await runner.process(await chains["validator"].metagraph())
            return first, second, await runner.index.credits()

    first, second, credits = run(body())
    assert first.pending and not first.accepted  # the fast miner waits behind the slow one
    assert len(second.accepted) == 2
    slow_hk, fast_hk = (net.wallet(n).hotkey.ss58_address for n in ("slow", "fast"))
    assert sum(credits[slow_hk].values()) == 300  # priority by commit, not by upload
    assert sum(credits[fast_hk].values()) == 100


def test_never_uploaded_is_rejected_after_the_grace_period(net, redis_url):
    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            chains = await registered(client, net, ["validator", "ghost"])
            missing = "0" * 64
            locator = parse_locator(f"file://{net.data_dir}/ghost")
            assert (await chains["ghost"].commit(Commitment(missing, locator).encode())).ok
            runner = make_runner(chains["validator"], redis_url)
            within = await runner.process(await chains["validator"].metagraph())
            net.dev.advance(10)  # grace is 5 blocks in these tests
            after = await runner.process(await chains["validator"].metagraph())
            return within, after, await runner.state.credibility(runner.scoring.period_blocks)

    within, after, credibility = run(body())
    assert within.pending and not within.rejected
    [reason] = after.rejected.values()
    assert "not available 5 blocks after commit" in reason
    assert credibility[net.wallet("ghost").hotkey.ss58_address] < 1.0


def test_two_validators_with_separate_redis_agree(net, redis_url, tmp_path):
    datasets = {
        "m1": [synthetic_table(800, seed=60)],
        "m2": [
            pa.concat_tables(
                [synthetic_table(800, seed=60).slice(0, 300), synthetic_table(200, seed=61)]
            )
        ],
        "m3": [synthetic_table(500, seed=62)],
    }

    async def body(second_url: str):
        async with bt.Subtensor("local", substrate=net.dev) as client:
            chains = await registered(client, net, ["v1", "v2", *datasets])
            for hk in ("v1", "v2"):
                net.dev.set_stake(chains[hk].hotkey, 10**12)
            net.dev.next_epoch(NETUID)  # permits are computed at epochs
            for name, tables in datasets.items():
                published = write_dataset(
                    net.data_dir / name, net.wallet(name).hotkey, NETUID, tables
                )
                assert (await chains[name].commit(published.commitment)).ok
            net.dev.advance(1)
            for name, url in (("v1", redis_url), ("v2", second_url)):
                runner = make_runner(chains[name], url)
                graph = await chains[name].metagraph()
                await runner.process(graph)
                scores = await runner.scores(graph)
                assert (await runner.set_weights(scores, version_key=0)).ok
                await aioredis.Redis.from_url(url).aclose()
            net.dev.next_epoch(NETUID)  # the reveal
            matrix = await client.weights.weights(NETUID)
            return matrix[0], matrix[1]

    with start_redis(tmp_path / "second") as second:
        v1, v2 = run(body(second.url))
    assert v1 == v2 and len(v1) == 3


def test_a_long_uncommitted_ancestry_is_taken_oldest_first_not_rejected(net, redis_url):
    """One commitment reaches more never-committed manifests than one item may hold."""
    tables = [synthetic_table(300, seed=70 + i) for i in range(5)]

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            chains = await registered(client, net, ["validator", "miner"])
            signer, parent = net.wallet("miner").hotkey, None
            for table in tables:
                published = write_dataset(net.data_dir / "miner", signer, NETUID, [table], parent)
                parent = published.manifest.sha256
            assert (await chains["miner"].commit(published.commitment)).ok
            net.dev.advance(1)
            limits = PipelineLimits(grace_blocks=5, max_rows=700)  # two manifests per item
            runner = make_runner(chains["validator"], redis_url, limits=limits)
            reports = [
                await runner.process(await chains["validator"].metagraph()) for _ in range(4)
            ]
            return (
                reports,
                await runner.index.credits(),
                await runner.state.credibility(runner.scoring.period_blocks),
            )

    reports, credits, credibility = run(body())
    assert [r.new_unique for r in reports] == [1500, 0, 0, 0]
    assert len(reports[0].accepted) == 1
    assert not any(r.rejected for r in reports)
    hotkey = net.wallet("miner").hotkey.ss58_address
    assert sum(credits[hotkey].values()) == 1500 and credibility[hotkey] == 1.0


async def _one_commitment_past_grace(client, net, redis_url, table):
    """One miner's commitment of `table`, 10 blocks old (past the 5-block grace), and a
    validator runner that looks it up against the truth."""
    chains = await registered(client, net, ["validator", "miner"])
    published = write_dataset(net.data_dir / "m", net.wallet("miner").hotkey, NETUID, [table])
    assert (await chains["miner"].commit(published.commitment)).ok
    net.dev.advance(10)
    return make_runner(chains["validator"], redis_url, lookup=TruthLookup(table))


def test_validator_side_errors_past_grace_do_not_cost_credibility(net, redis_url):
    table = synthetic_table(100, seed=80)

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            runner = await _one_commitment_past_grace(client, net, redis_url, table)

            async def broken_chain(_block):
                raise RuntimeError("the node answered nonsense")

            runner.pipeline.block_hash = broken_chain
            report = await runner.process(await runner.chain.metagraph())
            return report, await runner.state.credibility(runner.scoring.period_blocks)

    report, credibility = run(body())
    [reason] = report.rejected.values()
    assert reason.startswith("unexpected validator error: RuntimeError")
    # Not counted: the miner stays at the initial credibility.
    assert credibility.get(net.wallet("miner").hotkey.ss58_address, 1.0) == 1.0


def test_a_seed_block_not_final_yet_waits_and_never_costs_the_miner(net, redis_url):
    table = synthetic_table(100, seed=81)

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            runner = await _one_commitment_past_grace(client, net, redis_url, table)

            async def finality_stalled(_block):
                return None

            real = runner.pipeline.block_hash
            runner.pipeline.block_hash = finality_stalled
            stalled = await runner.process(await runner.chain.metagraph())
            runner.pipeline.block_hash = real
            resumed = await runner.process(await runner.chain.metagraph())
            return stalled, resumed, await runner.state.credibility(runner.scoring.period_blocks)

    stalled, resumed, credibility = run(body())
    assert not stalled.rejected and len(stalled.pending) == 1
    assert resumed.accepted == stalled.pending and resumed.new_unique == 100
    assert credibility.get(net.wallet("miner").hotkey.ss58_address, 1.0) == 1.0
