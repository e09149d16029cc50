"""The hub holds every credited tweet once, as its first committer published it, and
nothing else; it loads with the usual readers; a copy can be verified; an update that
crashes or cannot fetch resumes cleanly."""

from __future__ import annotations

import json

import bittensor as bt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pytest

from d3.hub.builder import HubBuilder
from d3.hub.layout import INDEX_NAME, SIGNATURE_NAME, HubCorrupt, verify_copy
from d3.hub.ledger import Ledger
from d3.hub.schema import HUB_SCHEMA
from d3.hub.signing import SignatureInvalid, verify_signature
from d3.record import COLUMNS
from tests.support.net import run

from .support import build, published_files


def _rows(directory) -> pa.Table:
    return pads.dataset(directory / "data").to_table().sort_by("id")


def test_every_credited_tweet_once_as_its_first_committer_published_it(net, redis_url, tmp_path):
    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            world, runner, builder, report = await build(net, client, redis_url, tmp_path / "hub")
            builder.close()
            scores = await runner.scores(await runner.chain.metagraph())
            return world, report, {s.hotkey: s.unique for s in scores}

    world, report, unique = run(body())
    table = _rows(tmp_path / "hub")
    assert table.schema.names == HUB_SCHEMA.names
    assert table.num_rows == report.rows == 240
    assert pc.count_distinct(table["id"]).as_py() == table.num_rows  # every id once
    owners = pc.value_counts(table["miner_hotkey"]).to_pylist()
    by_owner = {entry["values"]: entry["counts"] for entry in owners}
    honest = {world.hotkeys["honest-a"], world.hotkeys["honest-b"]}
    assert set(by_owner) == honest  # no copier, no fabricator, no failed audit
    for hotkey in honest:
        assert by_owner[hotkey] == unique[hotkey] > 0  # what the validator credited
    assert report.discarded == 30 + 20  # the fabricator's and the alterer's periods
    # Each row exactly as its first committer published it: a's rows of the overlap in
    # period 0, b's in period 1.
    for name in ("honest-a", "honest-b"):
        mine = table.filter(pc.equal(table["miner_hotkey"], world.hotkeys[name]))
        published = pa.concat_tables(world.published[name])
        wanted = published.filter(pc.is_in(published["id"], mine["id"])).sort_by("id")
        assert mine.select(list(COLUMNS)).to_pylist() == wanted.to_pylist()
        manifests = {p.stem for p in (net.data_dir / name).glob("*.json")}
        assert set(mine["manifest_sha256"].to_pylist()) <= manifests
    overlap = table.filter(pc.is_in(table["id"], pa.array(world.published["honest-b"][0]["id"])))
    assert set(overlap.slice(0, 40)["miner_hotkey"].to_pylist()) == {world.hotkeys["honest-a"]}


def test_the_hub_loads_with_pyarrow_pandas_duckdb_polars_and_datasets(net, redis_url, tmp_path):
    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            _, _, builder, _ = await build(net, client, redis_url, tmp_path / "hub")
            builder.close()

    run(body())
    hub = tmp_path / "hub"
    expected = _rows(hub)
    pd = pytest.importorskip("pandas")
    frame = pd.read_parquet(hub / "data")
    assert len(frame) == expected.num_rows and frame["id"].is_unique
    duckdb = pytest.importorskip("duckdb")
    count, days = (
        duckdb.connect()
        .execute(
            f"SELECT count(DISTINCT id), count(DISTINCT created_at::DATE) "
            f"FROM read_parquet('{hub}/data/*/*.parquet')"
        )
        .fetchone()
    )
    assert (count, days) == (expected.num_rows, 2)
    try:
        import polars
    except ImportError:  # not a test dependency; checked where it is installed
        pass
    else:
        assert polars.read_parquet(f"{hub}/data/*/*.parquet")["id"].n_unique() == count
    datasets = pytest.importorskip("datasets")
    loaded = datasets.load_dataset(str(hub), split="train", cache_dir=str(tmp_path / "cache"))
    assert loaded.num_rows == expected.num_rows
    assert sorted(loaded["id"]) == expected["id"].to_pylist()
    assert list(loaded.features) == HUB_SCHEMA.names


def test_a_copy_is_verified_against_its_signed_index(net, redis_url, tmp_path):
    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            world, _, builder, _ = await build(net, client, redis_url, tmp_path / "hub")
            builder.close()
            return world

    world = run(body())
    hub = tmp_path / "hub"
    index = verify_copy(hub)
    assert index["rows"] == 240 and len(index["files"]) == 3
    signature = (hub / SIGNATURE_NAME).read_bytes()
    validator = world.hotkeys["va"]
    assert verify_signature((hub / INDEX_NAME).read_bytes(), signature, validator) == validator
    with pytest.raises(SignatureInvalid, match="not"):
        verify_signature((hub / INDEX_NAME).read_bytes(), signature, world.hotkeys["vb"])
    with pytest.raises(SignatureInvalid, match="another index"):
        verify_signature(b"{}", signature)
    # One flipped byte in a data file, an unlisted file, a missing file: each is named.
    first = hub / index["files"][0]["path"]
    data = bytearray(first.read_bytes())
    data[100] ^= 1
    first.write_bytes(bytes(data))
    with pytest.raises(HubCorrupt, match=index["files"][0]["path"]):
        verify_copy(hub)
    data[100] ^= 1
    first.write_bytes(bytes(data))
    (hub / "data" / "2026-01-01" / "extra.parquet").write_bytes(b"x")
    with pytest.raises(HubCorrupt, match="not in the index"):
        verify_copy(hub)
    (hub / "data" / "2026-01-01" / "extra.parquet").unlink()
    (hub / "README.md").unlink()
    with pytest.raises(HubCorrupt, match=r"README\.md: missing"):
        verify_copy(hub)


def test_an_interrupted_update_resumes_to_the_same_bytes(net, redis_url, tmp_path):
    """A crash while publishing (data files written, ledger not) and a host that has lost
    a shard: each update after that picks up where the last stopped, and the hub ends
    byte-identical to one built in a single clean pass."""

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            _, runner, clean, _ = await build(net, client, redis_url, tmp_path / "clean")
            clean.close()
            signer = net.wallet("va").hotkey
            hub = HubBuilder.for_runner(tmp_path / "hub", runner, signer)
            # The host of honest-b lost a shard: the hub waits at that commitment.
            shard = sorted((net.data_dir / "honest-b").glob("*.parquet"))[0]
            kept = shard.read_bytes()
            shard.unlink()
            waiting = await hub.update()
            shard.write_bytes(kept)
            # Then the process dies while publishing its first period.
            real = Ledger.publish

            def dying(self, *args, **kwargs):
                raise SystemExit("killed while publishing")

            Ledger.publish = dying
            try:
                with pytest.raises(SystemExit):
                    await hub.update()
            finally:
                Ledger.publish = real
            hub.close()
            again = HubBuilder.for_runner(tmp_path / "hub", runner, signer)  # a new process
            resumed = await again.update()
            idle = await again.update()
            again.close()
            return waiting, resumed, idle

    waiting, resumed, idle = run(body())
    assert waiting.blocked and "no such file" in waiting.blocked and waiting.rows == 0
    assert resumed.rows == 240 and not resumed.blocked
    assert idle.applied == 0 and not idle.published  # nothing applied or published twice
    clean, hub = published_files(tmp_path / "clean"), published_files(tmp_path / "hub")
    assert clean == hub


def test_a_miner_period_the_validator_credited_otherwise_is_withheld(net, redis_url, tmp_path):
    """The hub never publishes an attribution the validator did not make: if its count for
    a miner's period differs from the index's credit, those rows stay out, with a reason."""

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            world, runner, builder, _ = await build(net, client, redis_url, tmp_path / "clean")
            builder.close()
            credits = runner.index.credits
            victim = world.hotkeys["honest-b"]

            async def skewed():
                out = await credits()
                out[victim][1] += 1
                return out

            runner.index.credits = skewed
            hub = HubBuilder.for_runner(tmp_path / "hub", runner)
            report = await hub.update()
            hub.close()
            return report

    report = run(body())
    [line] = report.withheld
    assert "period 1" in line and "the hub attributed 60 tweets, the validator credited 61" in line
    table = _rows(tmp_path / "hub")
    assert table.num_rows == 240 - 60
    index = json.loads((tmp_path / "hub" / INDEX_NAME).read_bytes())
    assert index["rows"] == 180
