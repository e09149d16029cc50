"""Attribution from chain history: every honest validator reaches the same credit.

The property test plays many seeded schedules on one dev chain: honest miners with
overlapping data who commit before they upload (sometimes twice before uploading), a
copier that re-publishes an honest miner's uploaded shards between its commits, a miner
that commits and never uploads; and validators with separate state that poll at
different cadences, crash mid-round and restart, lose their Redis and rebuild it, or join
late with an empty one. Every validator must compute identical scores, and the copier
must earn nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bittensor as bt
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import redis.asyncio as aioredis

from d3.commitment import Commitment, parse_locator
from d3.dev.substrate import GENESIS_TIMESTAMP_MS
from d3.dev.synthetic import synthetic_table
from d3.manifest import build_manifest
from d3.shards import EncodedShard, encode_shard
from d3.validator.pipeline import PipelineLimits
from d3.validator.rounds import RoundRunner
from d3.validator.scoring import ScoringParams
from tests.support.datasets import TruthLookup
from tests.support.net import NETUID, run
from tests.support.runner import TEST_AUDIT, make_runner

# Short periods so that a schedule spans several windows and the history horizon bites.
SCORING = ScoringParams(period_blocks=10, window_periods=5, decay=0.5, fresh_periods=1)
GRACE = 20
LIMITS = PipelineLimits(grace_blocks=GRACE)


def chain_time(block: int) -> datetime:
    """The dev chain's timestamp of `block`."""
    return datetime.fromtimestamp((GENESIS_TIMESTAMP_MS + block * 12_000) / 1000, tz=UTC)


def scraped_before(block: int, seed: int) -> pa.Table:
    """Tweets created just before `block` (as a miner scraping then would find them)."""
    return synthetic_table(6, seed=seed, start=chain_time(block) - timedelta(seconds=14))


@dataclass
class Miner:
    name: str
    chain: object
    signer: object
    host: Path
    staging: Path
    parent: str | None = None
    pending: list[tuple[int, list[Path]]] = field(default_factory=list)  # (upload at, files)
    uploaded: list[EncodedShard] = field(default_factory=list)

    async def commit(self, shards: list[EncodedShard], block: int, upload_at: int | None):
        """Stage, commit, and schedule the upload (None: never)."""
        manifest = build_manifest(
            self.signer, NETUID, shards, self.parent, created_at=chain_time(block)
        )
        files = []
        for name, data in [(s.name, s.data) for s in shards] + [
            (manifest.name, manifest.to_bytes())
        ]:
            path = self.staging / name
            path.write_bytes(data)
            files.append(path)
        text = Commitment(manifest.sha256, parse_locator(f"file://{self.host}")).encode()
        verdict = await self.chain.commit(text)
        assert verdict.ok, verdict.message
        self.parent = manifest.sha256
        if upload_at is not None:
            self.pending.append((upload_at, files))
        return manifest

    def upload_due(self, step: int, shards_by_name: dict[str, EncodedShard]) -> None:
        due = [p for p in self.pending if p[0] <= step]
        self.pending = [p for p in self.pending if p[0] > step]
        for _, files in due:  # shards first, then the manifest, as the publisher does
            for path in sorted(files, key=lambda p: p.suffix == ".json"):
                shutil.copy(path, self.host / path.name)
                if path.name in shards_by_name:
                    self.uploaded.append(shards_by_name[path.name])


@dataclass
class Validator:
    name: str
    prefix: str
    cadence: int
    start_step: int = 0
    crash_at_step: int | None = None
    wipe_at_step: int | None = None
    runner: RoundRunner | None = None


async def _wipe(redis_url: str, prefix: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def _round(validator: Validator, chain, redis_url: str, lookup, crash: bool = False) -> None:
    if validator.runner is None:
        validator.runner = make_runner(
            chain, redis_url, lookup, limits=LIMITS, prefix=validator.prefix, scoring=SCORING
        )
    runner = validator.runner
    if crash:  # the process dies after its first write to the index this round
        real = runner.index.ingest
        calls = 0

        async def dying(*args, **kwargs):
            nonlocal calls
            result = await real(*args, **kwargs)
            calls += 1
            if calls == 1:
                raise SystemExit("killed mid-round")
            return result

        runner.index.ingest = dying
        with contextlib.suppress(SystemExit):
            await runner.process(await chain.metagraph())
        validator.runner = None  # restart: a new process, the same Redis
        return
    report = await runner.process(await chain.metagraph())
    assert report.caught_up


async def _play(seed: int, net, redis_url: str) -> dict:
    rng = random.Random(seed)
    steps = 36
    validators = [
        Validator("every-step", "v1", cadence=1),
        Validator("slow", "v2", cadence=rng.randint(3, 7)),
        Validator("crashes", "v3", cadence=2, crash_at_step=rng.randrange(8, steps - 4)),
        Validator("wiped", "v4", cadence=3, wipe_at_step=rng.randrange(6, steps - 6)),
        Validator("late", "v5", cadence=4, start_step=steps - rng.randint(0, 5)),
    ]
    async with bt.Subtensor("local", substrate=net.dev) as client:
        names = ["owner-v", "honest-a", "honest-b", "copier", "ghost", "fabricator"]
        x = TruthLookup()  # what X knows: every tweet there was to scrape
        chains = {n: await net.chain(client, n) for n in names}
        for chain in chains.values():
            assert (await chain.register()).ok
        miners = {}
        for name in names[1:]:
            host, staging = net.data_dir / name, net.data_dir / f"{name}-staging"
            host.mkdir(parents=True)
            staging.mkdir(parents=True)
            miners[name] = Miner(name, chains[name], net.wallet(name).hotkey, host, staging)
        shards_by_name: dict[str, EncodedShard] = {}
        pool: list[pa.Table] = []  # what there is to scrape: tweets of the recent blocks
        ghost_done = False
        for step in range(steps):
            block = await chains["owner-v"].block()
            pool.append(scraped_before(block + 1, seed * 1000 + step))
            x.add(pool[-1])
            for name in ("honest-a", "honest-b"):
                if rng.random() < 0.45:
                    # A random recent slice of the pool: the two honest miners overlap, and
                    # older picks can be stale by the time they are committed.
                    recent = range(max(0, len(pool) - 12), len(pool))
                    picks = rng.sample(recent, min(2, len(recent)))
                    table = pa.concat_tables([pool[i] for i in picks])
                    table = table.take(pc.sort_indices(table, [("id", "ascending")]))
                    table = pa.Table.from_pylist(
                        list({r["id"]: r for r in table.to_pylist()}.values()), table.schema
                    )
                    shard = encode_shard(table)
                    shards_by_name[shard.name] = shard
                    await miners[name].commit(
                        [shard], await chains[name].block() + 1, step + rng.randint(0, 2)
                    )
            if miners["honest-a"].uploaded and rng.random() < 0.4:
                stolen = rng.choice(miners["honest-a"].uploaded)
                await miners["copier"].commit([stolen], await chains["copier"].block() + 1, step)
            if rng.random() < 0.3:  # well-formed, fresh, and not on X
                invented = encode_shard(scraped_before(block + 1, seed * 1000 + 500 + step))
                await miners["fabricator"].commit(
                    [invented], await chains["fabricator"].block() + 1, step
                )
            if not ghost_done and step > 3 and rng.random() < 0.2:
                ghost = encode_shard(scraped_before(block, seed * 1000 + 999))
                await miners["ghost"].commit([ghost], block + 1, None)  # never uploaded
                ghost_done = True
            for miner in miners.values():
                miner.upload_due(step, shards_by_name)
            net.dev.advance(1)
            for v in validators:
                if v.wipe_at_step == step:
                    await _wipe(redis_url, v.prefix)
                    v.runner = None
                if step >= v.start_step and step % v.cadence == 0:
                    crash = v.crash_at_step == step
                    await _round(v, chains["owner-v"], redis_url, x, crash=crash)
        for miner in miners.values():
            miner.upload_due(steps + 2, shards_by_name)
        # Every upload that will ever happen has happened; the last period is audited.
        head = await chains["owner-v"].block()
        last = (SCORING.period_of(head) + 1) * SCORING.period_blocks - 1
        net.dev.advance(last + GRACE + TEST_AUDIT.delay_blocks - head)
        graph = await chains["owner-v"].metagraph()
        results = {}
        for v in validators:
            await _round(v, chains["owner-v"], redis_url, x)
            assert v.runner is not None
            results[v.name] = await v.runner.scores(graph)
        hotkeys = {n: chains[n].hotkey for n in names}
        return {"scores": results, "hotkeys": hotkeys}


@pytest.mark.parametrize("seed", range(12))
def test_every_validator_reaches_the_same_scores_whatever_it_saw(seed, net, redis_url):
    outcome = run(_play(seed, net, redis_url))
    scores = outcome["scores"]
    reference = scores["every-step"]
    for name, theirs in scores.items():
        assert theirs == reference, (name, theirs, reference)
    by_hotkey = {s.hotkey: s for s in reference}
    assert by_hotkey[outcome["hotkeys"]["copier"]].unique == 0
    assert by_hotkey[outcome["hotkeys"]["copier"]].weight == 0
    assert by_hotkey[outcome["hotkeys"]["ghost"]].unique == 0
    assert by_hotkey[outcome["hotkeys"]["fabricator"]].unique == 0
    assert by_hotkey[outcome["hotkeys"]["fabricator"]].weight == 0
    honest = [by_hotkey[outcome["hotkeys"][n]].unique for n in ("honest-a", "honest-b")]
    assert sum(honest) > 0


def test_copier_between_two_honest_commits_earns_nothing_for_a_validator_that_polls_once(
    net, redis_url
):
    """The measured failure: M1 (honest), the copier's re-publication of M1's shards, then
    M2 (parent M1); a validator that reads the chain once after all three."""
    table = synthetic_table(120, seed=5)

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            chains = {n: await net.chain(client, n) for n in ("v", "honest", "copier")}
            for chain in chains.values():
                assert (await chain.register()).ok
            host = net.data_dir / "honest"
            host.mkdir(parents=True)
            shard = encode_shard(table)
            honest = net.wallet("honest").hotkey
            m1 = build_manifest(honest, NETUID, [shard], None)
            for name, data in ((shard.name, shard.data), (m1.name, m1.to_bytes())):
                (host / name).write_bytes(data)
            locator = parse_locator(f"file://{host}")
            assert (await chains["honest"].commit(Commitment(m1.sha256, locator).encode())).ok
            copier_host = net.data_dir / "copier"
            copier_host.mkdir()
            copy = build_manifest(net.wallet("copier").hotkey, NETUID, [shard], None)
            for name, data in ((shard.name, shard.data), (copy.name, copy.to_bytes())):
                (copier_host / name).write_bytes(data)
            text = Commitment(copy.sha256, parse_locator(f"file://{copier_host}")).encode()
            assert (await chains["copier"].commit(text)).ok
            more = encode_shard(synthetic_table(30, seed=6))
            m2 = build_manifest(honest, NETUID, [more], m1.sha256)
            for name, data in ((more.name, more.data), (m2.name, m2.to_bytes())):
                (host / name).write_bytes(data)
            assert (await chains["honest"].commit(Commitment(m2.sha256, locator).encode())).ok
            net.dev.advance(1)
            runner = make_runner(chains["v"], redis_url)
            graph = await chains["v"].metagraph()
            report = await runner.process(graph)
            return report, await runner.scores(graph), chains

    report, scores, chains = run(body())
    by_hotkey = {s.hotkey: s for s in scores}
    assert report.read == 3 and len(report.accepted) == 3
    assert by_hotkey[chains["honest"].hotkey].unique == 150
    assert by_hotkey[chains["copier"].hotkey].unique == 0
    assert by_hotkey[chains["copier"].hotkey].weight == 0


def test_an_interrupted_history_walk_keeps_what_it_read_and_ends_the_same(net, redis_url):
    """A bootstrap that dies half-way through reading history resumes from the walks it
    finished, and judges nothing until every walk is done."""
    tables = {
        name: [synthetic_table(20, seed=10 * i + j) for j in range(3)]
        for i, name in enumerate(("m0", "m1", "m2"))
    }

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            chains = {n: await net.chain(client, n) for n in ("v", *tables)}
            for chain in chains.values():
                assert (await chain.register()).ok
            for round_ in range(3):
                for name, shards in tables.items():
                    host = net.data_dir / name
                    host.mkdir(parents=True, exist_ok=True)
                    shard = encode_shard(shards[round_])
                    parent = None if round_ == 0 else (host / "head").read_text()
                    manifest = build_manifest(net.wallet(name).hotkey, NETUID, [shard], parent)
                    (host / shard.name).write_bytes(shard.data)
                    (host / manifest.name).write_bytes(manifest.to_bytes())
                    (host / "head").write_text(manifest.sha256)
                    text = Commitment(manifest.sha256, parse_locator(f"file://{host}")).encode()
                    assert (await chains[name].commit(text)).ok
            net.dev.advance(1)
            graph = await chains["v"].metagraph()
            dying = make_runner(chains["v"], redis_url, prefix="a")
            real, real_enqueue = dying.chain.commitment_of, dying.state.enqueue
            others_saved = asyncio.Event()
            saves = 0

            async def enqueue(records, manifests):
                nonlocal saves
                await real_enqueue(records, manifests)
                saves += 1
                if saves == 2:
                    others_saved.set()

            async def m2_endpoint_goes_away(hotkey, block):
                if hotkey == chains["m2"].hotkey:  # after the other two walks are saved
                    await others_saved.wait()
                    raise ConnectionError("endpoint went away")
                return await real(hotkey, block)

            dying.state.enqueue = enqueue
            dying.chain = _ChainWith(dying.chain, m2_endpoint_goes_away)
            with pytest.raises(ConnectionError):
                await dying.process(graph)
            kept = await dying.state.cursors()
            judged_before = await dying.state.credibility(dying.scoring.period_blocks)
            resumed = make_runner(chains["v"], redis_url, prefix="a")
            await resumed.process(graph)
            clean = make_runner(chains["v"], redis_url, prefix="b")
            await clean.process(graph)
            return kept, judged_before, await resumed.scores(graph), await clean.scores(graph)

    kept, judged_before, resumed, clean = run(body())
    assert len(kept) == 2  # the finished walks were saved, the broken one not
    assert judged_before == {}  # nothing judged from a partial history
    assert resumed == clean and sum(s.unique for s in clean) == 180


class _ChainWith:
    """A chain whose `commitment_of` is replaced (everything else is the real one)."""

    def __init__(self, chain, commitment_of):
        self._chain, self.commitment_of = chain, commitment_of

    def __getattr__(self, name):
        return getattr(self._chain, name)


def test_commitments_are_read_only_from_finalized_blocks(net, redis_url):
    """A block that is not final may be reorganised away: a commitment in it must not be
    read by the validators that happened to look early."""
    table = synthetic_table(40, seed=12)

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            chains = {n: await net.chain(client, n) for n in ("v", "m")}
            for chain in chains.values():
                assert (await chain.register()).ok
            host = net.data_dir / "m"
            host.mkdir(parents=True)
            shard = encode_shard(table)
            manifest = build_manifest(net.wallet("m").hotkey, NETUID, [shard], None)
            (host / shard.name).write_bytes(shard.data)
            (host / manifest.name).write_bytes(manifest.to_bytes())
            text = Commitment(manifest.sha256, parse_locator(f"file://{host}")).encode()
            verdict = await chains["m"].commit(text)
            assert verdict.ok
            runner = make_runner(chains["v"], redis_url)
            lagging = verdict.block - 1

            async def finalized_block():
                return lagging

            runner.chain = _ChainWith(runner.chain, runner.chain.commitment_of)
            runner.chain.finalized_block = finalized_block
            early = await runner.process(await chains["v"].metagraph())
            lagging = verdict.block
            final = await runner.process(await chains["v"].metagraph())
            return early, final

    early, final = run(body())
    assert early.read == 0 and not early.accepted
    assert final.read == 1 and final.new_unique == 40
