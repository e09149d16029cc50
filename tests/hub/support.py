"""A small network for the hub's tests: two honest miners whose data overlaps, a copier,
a fabricator and a miner whose audit finds an altered tweet, over two credit periods on
the dev chain, judged by the real validator code with X as a table of the real tweets.
With `later`, two more periods: the first day's remaining tweets and newer ones, so that
the first day closes (its tweets can no longer be fresh) while the second stays open."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from d3.dev.synthetic import synthetic_table
from d3.hub.layout import SIGNATURE_NAME, STATE_DIR
from d3.validator.scoring import ScoringParams
from tests.support.datasets import TruthLookup, write_dataset
from tests.support.net import NETUID, registered

# Two periods with no freshness bound (the dev chain's genesis is 2026-01-01, and the
# tweets start just before it, so that they span two days).
SCORING = ScoringParams(period_blocks=50, window_periods=7, decay=0.5, fresh_periods=2)
START = datetime(2025, 12, 31, 23, 58, 30, tzinfo=UTC)
LATE_START = datetime(2026, 1, 1, 0, 25, tzinfo=UTC)  # fresh in period 3 (from block 50)
MINERS = ["honest-a", "honest-b", "copier", "fabricator", "alterer"]
VALIDATORS = ["va", "vb"]


@dataclass
class World:
    hotkeys: dict[str, str]  # name -> hotkey
    published: dict[str, list[pa.Table]] = field(default_factory=dict)  # what each committed
    lookup: TruthLookup = field(default_factory=TruthLookup)


def _altered(table: pa.Table) -> pa.Table:
    """The same tweets with every like count inflated far beyond X's."""
    likes = pc.add(table["like_count"], pa.scalar(100_000, pa.int64()))
    return table.set_column(table.schema.get_field_index("like_count"), "like_count", likes)


async def play(
    net,
    client,
    lookup: TruthLookup,
    on_step: Callable[[int], Awaitable[None]] | None = None,
    later: bool = False,
) -> tuple[World, dict]:
    """Commit the scenario's data (and tell `lookup`, X, about the real tweets), calling
    `on_step` after each step. Returns the world and the chains by name."""
    chains = await registered(client, net, [*VALIDATORS, *MINERS])
    world = World({n: c.hotkey for n, c in chains.items()}, lookup=lookup)
    real = synthetic_table(240, seed=11, start=START)
    invented = synthetic_table(30, seed=12, start=START)
    alterer = synthetic_table(20, seed=13, start=START)
    missed = synthetic_table(10, seed=16, start=START - timedelta(minutes=8))  # the 31st too
    late_b = synthetic_table(50, seed=14, start=LATE_START)
    late_a = synthetic_table(40, seed=15, start=LATE_START + timedelta(minutes=20))
    world.lookup.add(real)
    world.lookup.add(alterer)
    world.lookup.add(missed)
    world.lookup.add(late_b)
    world.lookup.add(late_a)
    parents: dict[str, str | None] = {}

    async def commit(name: str, tables: list[pa.Table]) -> None:
        signer = net.wallet(name).hotkey
        published = write_dataset(net.data_dir / name, signer, NETUID, tables, parents.get(name))
        parents[name] = published.manifest.sha256
        assert (await chains[name].commit(published.commitment)).ok
        world.published.setdefault(name, []).extend(tables)

    steps = [
        # period 0: a before b, so a wins their overlap; the copier copies a a block later
        [("honest-a", [real.slice(0, 80)]), ("fabricator", [invented])],
        [("honest-b", [real.slice(40, 80)]), ("copier", [real.slice(0, 80)])],
        [("alterer", [_altered(alterer)])],
        # period 1: b first this time, then a (chained to its first manifest), overlapping
        [("honest-b", [real.slice(150, 60)])],
        [("honest-a", [real.slice(120, 60), real.slice(200, 40)])],
    ]
    periods = [0, 0, 0, 1, 1]
    if later:
        steps += [
            # period 2: first-day tweets nobody had committed, and newer ones
            [("honest-b", [missed, late_b])],
            # period 3: its tweets are fresh, the first day's no longer can be
            [("honest-a", [late_a])],
        ]
        periods += [2, 3]
    for i, step in enumerate(steps):
        head = await chains["va"].block()
        if i == 3:  # into period 1
            net.dev.advance(SCORING.period_blocks + 1 - head % SCORING.period_blocks)
        elif periods[i] > SCORING.period_of(head):
            # Past the block that seeds the previous period's audit, so that a validator
            # judging step by step audits it before this step's commitment.
            net.dev.advance(periods[i] * SCORING.period_blocks + 10 - head)
        for name, tables in step:
            await commit(name, tables)
        net.dev.advance(1)
        if on_step is not None:
            await on_step(i)
    return world, chains


def published_files(directory: Path) -> dict[str, bytes]:
    """Every published file's bytes, by relative path (not the private state, not the
    signature, which is randomised and the builder's own)."""
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
        and STATE_DIR not in p.relative_to(directory).parts
        and p.name != SIGNATURE_NAME
    }


async def build(net, client, redis_url: str, directory: Path, later: bool = False, **builder_args):
    """The scenario judged by one validator (audits included), then its hub built once.
    Returns (world, runner, builder, report): the builder is still open."""
    from d3.hub.builder import HubBuilder
    from tests.support.runner import audit_now, make_runner

    lookup = TruthLookup()
    world, _ = await play(net, client, lookup, later=later)
    chain = await net.chain(client, "va")
    runner = make_runner(chain, redis_url, lookup, scoring=SCORING)
    await audit_now(runner, net.dev)
    builder = HubBuilder.for_runner(directory, runner, net.wallet("va").hotkey, **builder_args)
    report = await builder.update()
    return world, runner, builder, report


async def build_in_steps(
    net, client, redis_url: str, directory: Path, later: bool = False
) -> list[Path]:
    """The scenario with the validator judging and the hub updating after every step:
    a copy of the hub after each update that published something, the last one final."""
    import shutil

    from d3.hub.builder import HubBuilder
    from tests.support.runner import audit_now, make_runner

    lookup = TruthLookup()
    live: dict = {}
    snapshots: list[Path] = []

    async def update(runner) -> None:
        report = await live["hub"].update()
        if report.published:
            snapshot = directory.with_name(f"{directory.name}-{len(snapshots)}")
            shutil.copytree(directory, snapshot)
            snapshots.append(snapshot)

    async def every_step(step: int) -> None:
        if not live:
            runner = make_runner(await net.chain(client, "va"), redis_url, lookup, scoring=SCORING)
            live.update(
                runner=runner,
                hub=HubBuilder.for_runner(directory, runner, net.wallet("va").hotkey),
            )
        await live["runner"].process(await live["runner"].chain.metagraph())
        await update(live["runner"])

    await play(net, client, lookup, every_step, later=later)
    await audit_now(live["runner"], net.dev)
    await update(live["runner"])
    live["hub"].close()
    return snapshots
