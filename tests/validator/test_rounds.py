"""Validator rounds end to end: dev chain through the real SDK, real Redis, real files."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import bittensor as bt
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from bittensor.sp_core import Keypair

from d3.commitment import Commitment, parse_locator
from d3.dev.synthetic import synthetic_table
from d3.manifest import build_manifest
from d3.shards import EncodedShard, ShardLimits, encode_shard, sha256_hex
from d3.validator.pipeline import PipelineLimits
from tests.support.datasets import TruthLookup, write_dataset
from tests.support.net import NETUID, run
from tests.support.runner import audit_now, make_runner

FUTURE = datetime.now(UTC) + timedelta(days=3)


async def _setup(client, net, names):
    chains = {n: await net.chain(client, n) for n in names}
    for chain in chains.values():
        verdict = await chain.register()
        assert verdict.ok, verdict.message
    net.dev.set_stake(chains["validator"].hotkey, 10**12)
    return chains


async def _commit(chain, net, name, tables, parent=None, signer=None):
    wallet = net.wallet(name)
    published = write_dataset(net.data_dir / name, signer or wallet.hotkey, NETUID, tables, parent)
    verdict = await chain.commit(published.commitment)
    assert verdict.ok, verdict.message
    return published


def test_first_committer_wins_and_weights_follow_the_curve(net, redis_url):
    a_table = synthetic_table(3000, seed=1)
    b_table = pa.concat_tables([a_table.slice(0, 1000), synthetic_table(500, seed=2)])
    c_table = synthetic_table(200, seed=3)

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            chains = await _setup(client, net, ["validator", "alice", "bob", "carol"])
            await _commit(chains["alice"], net, "alice", [a_table])
            await _commit(chains["bob"], net, "bob", [b_table])  # later: overlap earns nothing
            await _commit(chains["carol"], net, "carol", [c_table])
            runner = make_runner(
                chains["validator"], redis_url, TruthLookup(a_table, b_table, c_table)
            )
            net.dev.advance(1)  # sampling is seeded by the block after the last commit
            graph = await chains["validator"].metagraph()
            report = await runner.process(graph)
            unaudited = await runner.scores(await chains["validator"].metagraph())
            audit = await audit_now(runner, net.dev)
            scores = await runner.scores(await chains["validator"].metagraph())
            verdict = await runner.set_weights(scores, version_key=0)
            # Commit-reveal (the runtime's default): nothing applies until the reveal.
            before = await client.weights.weights(NETUID)
            assert await chains["validator"].reveal_outcome() is None  # still timelocked
            net.dev.next_epoch(NETUID)
            outcome = await chains["validator"].reveal_outcome()
            assert outcome is not None and outcome.ok, outcome
            matrix = await client.weights.weights(NETUID)
            assert 0 not in before
            return report, unaudited, audit, scores, verdict, matrix

    report, unaudited, audit, scores, verdict, matrix = run(body())
    assert len(report.accepted) == 3 and not report.rejected
    # No credit without evidence: nothing counts until the period's audit.
    assert [s.unique for s in unaudited] == [0, 0, 0, 0] and audit.audited == 3
    by_name = {s.uid: s for s in scores}
    assert [by_name[u].unique for u in (1, 2, 3)] == [3000, 500, 200]
    assert verdict.ok, verdict.message
    # 3000 against 500 and 200 is 19 and 28 ranks (10 % steps): the chain keeps the
    # u16-quantised weights the validator computed, which round the others to nothing.
    assert matrix[0] == pytest.approx({1: 1.0}, abs=1e-3)
    assert by_name[1].weight > 0.99 and by_name[2].weight > by_name[3].weight > 0


def test_copied_data_committed_later_earns_nothing(net, redis_url):
    table = synthetic_table(1000, seed=4)

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            chains = await _setup(client, net, ["validator", "honest", "copier"])
            await _commit(chains["honest"], net, "honest", [table])
            await _commit(chains["copier"], net, "copier", [table])  # re-signed copy
            runner = make_runner(chains["validator"], redis_url)
            net.dev.advance(1)
            await runner.process(await chains["validator"].metagraph())
            return await runner.scores(await chains["validator"].metagraph())

    scores = {s.uid: s for s in run(body())}
    assert scores[1].unique == 1000 and scores[2].unique == 0 and scores[2].weight == 0


def _shard_of(data: bytes, rows: int, low: int, high: int) -> EncodedShard:
    return EncodedShard(sha256_hex(data), data, rows, low, high)


def _bad_datasets():
    """name -> (list of shards to publish, files to corrupt after writing, expected reason)."""
    good = synthetic_table(300, seed=20)
    future = synthetic_table(50, seed=21, start=FUTURE)
    bad_snowflake = synthetic_table(50, seed=22)
    created = bad_snowflake["created_at"].to_pylist()
    created[7] = created[7] + timedelta(hours=1)
    bad_snowflake = bad_snowflake.set_column(
        2, "created_at", pa.array(created, pa.timestamp("ms", tz="UTC"))
    )
    garbage = b"PAR1" + b"\x00" * 200 + b"PAR1"
    wrong = io.BytesIO()
    pq.write_table(pa.table({"id": [1, 2, 3]}), wrong)
    return {
        "future": ([encode_shard(future)], "in the future"),
        "snowflake": ([encode_shard(bad_snowflake)], "id does not encode created_at"),
        "malformed": ([_shard_of(garbage, 10, 1, 2)], "parquet"),
        "schema": ([_shard_of(wrong.getvalue(), 3, 1, 3)], "schema mismatch"),
        "oversized": ([encode_shard(synthetic_table(20_000, seed=23))], "limit"),
        "good": ([encode_shard(good)], None),
    }


def test_bad_manifests_are_rejected_and_honest_miners_still_scored(net, redis_url, tmp_path):
    honest_table = synthetic_table(500, seed=30)
    real = synthetic_table(200, seed=31)
    texts = [t if i % 2 else t + " (edited)" for i, t in enumerate(real["text"].to_pylist())]
    altered = real.set_column(1, "text", pa.array(texts))
    fabricated = synthetic_table(200, seed=32)  # consistent snowflakes, but not on X
    cases = _bad_datasets()
    names = ["validator", "honest", "fabricator", "alterer", "tamperer", "forger", *cases]

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            chains = await _setup(client, net, names)
            await _commit(chains["honest"], net, "honest", [honest_table])
            await _commit(chains["fabricator"], net, "fabricator", [fabricated])
            await _commit(chains["alterer"], net, "alterer", [altered])
            tampered = await _commit(
                chains["tamperer"], net, "tamperer", [synthetic_table(100, seed=33)]
            )
            shard = tampered.manifest.body.shards[0].sha256
            path = net.data_dir / "tamperer" / f"{shard}.parquet"
            path.write_bytes(path.read_bytes()[:-9] + b"123456789")
            # Forger: a manifest signed by someone else's key, committed under its hotkey.
            await _commit(
                chains["forger"],
                net,
                "forger",
                [synthetic_table(100, seed=34)],
                signer=Keypair.create_from_uri("//Mallory"),
            )
            for name, (shards, _reason) in cases.items():
                wallet = net.wallet(name)
                directory = net.data_dir / name
                directory.mkdir(parents=True)
                for s in shards:
                    (directory / s.name).write_bytes(s.data)
                manifest = build_manifest(wallet.hotkey, NETUID, shards, None)
                (directory / manifest.name).write_bytes(manifest.to_bytes())
                text = Commitment(manifest.sha256, parse_locator(f"file://{directory}")).encode()
                assert (await chains[name].commit(text)).ok
            lookup = TruthLookup(honest_table, real, synthetic_table(300, seed=20))
            limits = PipelineLimits(grace_blocks=5, shard=ShardLimits(max_bytes=400_000))
            runner = make_runner(chains["validator"], redis_url, lookup, limits)
            net.dev.advance(1)  # sampling is seeded by the block after the last commit
            graph = await chains["validator"].metagraph()
            report = await runner.process(graph)
            await audit_now(runner, net.dev)
            scores = await runner.scores(await chains["validator"].metagraph())
            audits = await runner.state.audits()
            return graph, report, scores, audits

    graph, report, scores, audits = run(body())
    by_uid = {s.uid: s for s in scores}
    uid = {n: graph.uid_of(net.wallet(n).hotkey.ss58_address) for n in names}
    rejected_reasons = dict(report.rejected)
    assert len(report.accepted) == 4  # honest, "good", and the two only X can catch
    assert by_uid[uid["honest"]].unique == 500 and by_uid[uid["good"]].unique == 300
    # Invented and altered tweets pass every structural check: the audit catches them.
    fabricated = audits[net.wallet("fabricator").hotkey.ss58_address]
    [fabricated_audit] = fabricated.values()
    assert fabricated_audit.found == 0 and fabricated_audit.checked >= 20  # its allotment
    [altered] = audits[net.wallet("alterer").hotkey.ss58_address].values()
    assert altered.altered > 0 and "differs from X" in altered.reason
    for name in ("fabricator", "alterer"):
        assert by_uid[uid[name]].unique == 0 and by_uid[uid[name]].weight == 0
        assert by_uid[uid[name]].credibility < 1.0
    expected = {
        "tamperer": "do not match their sha256",
        "forger": "committed by",
        **{n: r for n, (_s, r) in cases.items() if r},
    }
    assert len(rejected_reasons) == len(expected)
    all_reasons = " | ".join(rejected_reasons.values())
    for name, fragment in expected.items():
        assert fragment in all_reasons, (name, all_reasons)
        assert by_uid[uid[name]].unique == 0 and by_uid[uid[name]].weight == 0
        assert by_uid[uid[name]].credibility < 1.0
